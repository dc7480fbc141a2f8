/* unit tests for src/url.cpp */

#include "url.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>

using nao::checkIdpUrl;
using nao::logSafe;
using nao::queryParam;
using nao::sanitizeReturnTo;
using nao::urlDecode;
using nao::urlEncode;

namespace {

void
assertReturnTo(const std::string &input, const char *expected)
{
    assert_string_equal(sanitizeReturnTo(input).c_str(), expected);
}

void
assertIdpUrlOk(const char *url)
{
    nao::Status status = checkIdpUrl(url);

    if (!status) {
        fail_msg("\"%s\" refused: %s", url, status.error().c_str());
    }
}

void
assertIdpUrlRefused(const char *url, const char *reason)
{
    nao::Status status = checkIdpUrl(url);

    if (status) {
        fail_msg("\"%s\" accepted", url);
    }

    if (status.error().find(reason) == std::string::npos) {
        fail_msg("\"%s\": \"%s\" does not mention \"%s\"", url,
            status.error().c_str(), reason);
    }
}

/*
 * Scenario: text with reserved, non-ASCII and unreserved characters.
 * Expected: only RFC 3986 unreserved characters stay as they are.
 */
void
testEncodeKeepsOnlyUnreserved(void **state)
{
    (void) state;

    assert_string_equal(urlEncode("AZaz09-._~").c_str(), "AZaz09-._~");
    assert_string_equal(urlEncode("a b+c&d=e/f?g#h").c_str(),
        "a%20b%2Bc%26d%3De%2Ff%3Fg%23h");
    assert_string_equal(urlEncode("\xc3\xa9").c_str(), "%C3%A9");
    assert_string_equal(urlEncode(std::string("\0", 1)).c_str(), "%00");
    assert_string_equal(urlEncode("").c_str(), "");
}

/*
 * Scenario: escapes in both cases, "+" and broken escapes.
 * Expected: a decoded string, or nullopt for a broken escape or a NUL.
 */
void
testDecode(void **state)
{
    (void) state;

    assert_string_equal(urlDecode("a%20b+c%2fd%2F").value().c_str(),
        "a b c/d/");
    assert_string_equal(urlDecode("%C3%a9").value().c_str(), "\xc3\xa9");
    assert_string_equal(urlDecode("").value().c_str(), "");

    assert_false(urlDecode("%").has_value());
    assert_false(urlDecode("abc%2").has_value());
    assert_false(urlDecode("%zz").has_value());
    assert_false(urlDecode("%g0").has_value());
    assert_false(urlDecode("a%00b").has_value());
}

/*
 * Scenario: anything encoded is decoded back.
 * Expected: the round trip gives the input for every non-NUL byte.
 */
void
testEncodeDecodeRoundTrip(void **state)
{
    (void) state;

    std::string all;

    for (int c = 1; c < 256; c++) {
        all += static_cast<char>(c);
    }

    assert_true(urlDecode(urlEncode(all)).value() == all);
}

/*
 * Scenario: a raw query with several parameters, a repeated name, a name
 * that is the prefix of another and a value that will not decode.
 * Expected: the first exact match, decoded; nullopt otherwise.
 */
void
testQueryParam(void **state)
{
    (void) state;

    const char *query = "codex=1&code=abc%2Fd&state=s+t&code=second&empty=";

    assert_string_equal(queryParam(query, "code").value().c_str(), "abc/d");
    assert_string_equal(queryParam(query, "state").value().c_str(), "s t");
    assert_string_equal(queryParam(query, "codex").value().c_str(), "1");
    assert_string_equal(queryParam(query, "empty").value().c_str(), "");
    assert_false(queryParam(query, "cod").has_value());
    assert_false(queryParam(query, "missing").has_value());
    assert_false(queryParam("", "code").has_value());
    assert_false(queryParam("code", "code").has_value());
    assert_false(queryParam("code=%zz&code=ok", "code").has_value());
    assert_string_equal(queryParam("&&a=1&", "a").value().c_str(), "1");
    assert_string_equal(queryParam("x=1&return%5Fto=%2Fp", "return_to")
        .value().c_str(), "/p");
}

/*
 * Scenario: ordinary same-site paths, some with encoded line breaks or
 * slashes in the query, or a stray "%".
 * Expected: kept byte for byte, query and fragment included.
 */
void
testReturnToKeepsPaths(void **state)
{
    (void) state;

    assertReturnTo("/", "/");
    assertReturnTo("/ok?x=1#f", "/ok?x=1#f");
    assertReturnTo("/dashboards/42?tab=sql&q=a%20b",
        "/dashboards/42?tab=sql&q=a%20b");
    assertReturnTo("/a//b", "/a//b");
    assertReturnTo("/caf\xc3\xa9", "/caf\xc3\xa9");
    assertReturnTo("/sql?q=SELECT%0A1", "/sql?q=SELECT%0A1");
    assertReturnTo("/a?next=%2F%2Fx#%0a", "/a?next=%2F%2Fx#%0a");
    assertReturnTo("/100%", "/100%");
}

/*
 * Scenario: open-redirect and header-injection attempts.
 * Expected: every one becomes "/".
 */
void
testReturnToRefusesHostile(void **state)
{
    (void) state;

    const char *hostile[] = {
        "", "//evil.com", "///evil.com", "/\\evil.com", "\\\\evil.com",
        "https://x", "http://evil.com/", "javascript:alert(1)",
        "javascript:", "data:text/html,x", "evil.com", " /ok", "/ok\r\n",
        "/\r\nSet-Cookie: a=b", "/a\tb", "/a\x7f", "/%0d%0a",
        "/x%0aLocation:%20//evil.com", "/%2f%2fevil.com", "/%2F/evil.com",
        "/%5cevil.com", "/a%5Cb", "/a%0d%0a?x=1", "?x=1", "#f",
    };

    for (const char *input : hostile) {
        if (sanitizeReturnTo(input) != "/") {
            fail_msg("\"%s\" was kept", input);
        }
    }

    assertReturnTo(std::string("/a\0b", 4), "/");
}

/*
 * Scenario: a return_to arriving in a query string, encoded.
 * Expected: decoding first still cannot smuggle CRLF or "//" through.
 */
void
testReturnToFromQuery(void **state)
{
    (void) state;

    std::string crlf = queryParam("return_to=/%0d%0a", "return_to").value();
    std::string slashes = queryParam("return_to=%2F%2Fevil.com",
        "return_to").value();
    std::string ok = queryParam("return_to=%2Fok%3Fx%3D1%23f",
        "return_to").value();

    assertReturnTo(crlf, "/");
    assertReturnTo(slashes, "/");
    assertReturnTo(ok, "/ok?x=1#f");
}

/*
 * Scenario: paths at and past the 2048-byte limit.
 * Expected: 2048 bytes are kept, 2049 become "/".
 */
void
testReturnToLength(void **state)
{
    (void) state;

    std::string limit = "/" + std::string(2047, 'a');
    std::string over = limit + "a";

    assert_true(sanitizeReturnTo(limit) == limit);
    assertReturnTo(over, "/");
}

/*
 * Scenario: https anywhere, http to each loopback form.
 * Expected: accepted, with or without port and path.
 */
void
testIdpUrlAccepted(void **state)
{
    (void) state;

    assertIdpUrlOk("https://login.microsoftonline.com");
    assertIdpUrlOk("https://login.microsoftonline.com/");
    assertIdpUrlOk("https://login.microsoftonline.com/t/oauth2/v2.0/token");
    assertIdpUrlOk("HTTPS://Login.Example.COM:8443/x");
    assertIdpUrlOk("https://[2001:db8::1]/keys");
    assertIdpUrlOk("http://127.0.0.1:8080/token");
    assertIdpUrlOk("http://127.1.2.3/token");
    assertIdpUrlOk("http://[::1]:9000/token");
    assertIdpUrlOk("http://localhost/token");
    assertIdpUrlOk("http://LOCALHOST:1/");
}

/*
 * Scenario: plain http to a real host, and look-alike loopback names.
 * Expected: refused as not https.
 */
void
testIdpUrlRefusesHttp(void **state)
{
    (void) state;

    const char *rule = "must be https";

    assertIdpUrlRefused("http://example.com/token", rule);
    assertIdpUrlRefused("http://127.0.0.1.evil.com/", rule);
    assertIdpUrlRefused("http://localhost.evil.com/", rule);
    assertIdpUrlRefused("http://128.0.0.1/", rule);
    assertIdpUrlRefused("http://127.0.0/", rule);
    assertIdpUrlRefused("http://127.0.0.1.2/", rule);
    assertIdpUrlRefused("http://127.0.0.256/", rule);
    assertIdpUrlRefused("http://[::2]/", rule);
    assertIdpUrlRefused("ftp://example.com/", rule);
    assertIdpUrlRefused("//example.com/", rule);
    assertIdpUrlRefused("login.microsoftonline.com", rule);
    assertIdpUrlRefused("javascript:alert(1)", rule);
}

/*
 * Scenario: URLs carrying user information, a query, a fragment, no host
 * or a broken host or port.
 * Expected: refused, the error naming the rule.
 */
void
testIdpUrlRefusesParts(void **state)
{
    (void) state;

    assertIdpUrlRefused("https://user:pw@idp.example/", "user information");
    assertIdpUrlRefused("https://user@idp.example/", "user information");
    assertIdpUrlRefused("http://evil.com@127.0.0.1/", "user information");
    assertIdpUrlRefused("https://idp.example/token?x=1", "query");
    assertIdpUrlRefused("https://idp.example/token?", "query");
    assertIdpUrlRefused("https://idp.example/token#f", "fragment");
    assertIdpUrlRefused("https://", "no host");
    assertIdpUrlRefused("https:///path", "no host");
    assertIdpUrlRefused("https://:443/", "no host");
    assertIdpUrlRefused("https://idp.example:/", "port");
    assertIdpUrlRefused("https://idp.example:99999/", "port");
    assertIdpUrlRefused("https://idp.example:4a/", "port");
    assertIdpUrlRefused("https://idp\\.example/", "host");
    assertIdpUrlRefused("https://idp_example/", "host");
    assertIdpUrlRefused("https://[::1/", "host");
    assertIdpUrlRefused("https://idp.example /", "white space");
    assertIdpUrlRefused("https://idp.example/\r\n", "white space");
    assertIdpUrlRefused("", "must be https");
}

/*
 * Scenario: outside text with quotes, control bytes and great length.
 * Expected: printable ASCII only, cut with "..." past the limit.
 */
void
testLogSafe(void **state)
{
    (void) state;

    assert_string_equal(logSafe("plain-text 1.0").c_str(), "plain-text 1.0");
    assert_string_equal(logSafe("a\"b\\c\r\nd\xc3\xa9").c_str(),
        "a?b?c??d??");
    assert_string_equal(logSafe("abcdef", 3).c_str(), "abc...");
    assert_int_equal(logSafe(std::string(500, 'x')).size(), 131);
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testEncodeKeepsOnlyUnreserved),
        cmocka_unit_test(testDecode),
        cmocka_unit_test(testEncodeDecodeRoundTrip),
        cmocka_unit_test(testQueryParam),
        cmocka_unit_test(testReturnToKeepsPaths),
        cmocka_unit_test(testReturnToRefusesHostile),
        cmocka_unit_test(testReturnToFromQuery),
        cmocka_unit_test(testReturnToLength),
        cmocka_unit_test(testIdpUrlAccepted),
        cmocka_unit_test(testIdpUrlRefusesHttp),
        cmocka_unit_test(testIdpUrlRefusesParts),
        cmocka_unit_test(testLogSafe),
    };

    return cmocka_run_group_tests_name("url", tests, nullptr, nullptr);
}
