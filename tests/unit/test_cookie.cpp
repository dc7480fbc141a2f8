/* unit tests for src/cookie.cpp */

#include "base64url.h"
#include "cookie.h"
#include "crypto.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>
#include <vector>

using namespace nao;

namespace {

const char kPayload[] = "eyJzaWQiOiJhYmMxMjMiLCJleHAiOjE3MDAwMDAwMDB9";

void
assertVerifies(const std::string &value,
    const std::vector<std::string> &secrets, const std::string &payload)
{
    auto verified = verifyCookieValue(value, secrets);

    if (!verified) {
        fail_msg("\"%s\" did not verify", value.c_str());
    }

    assert_string_equal(verified->c_str(), payload.c_str());
}

void
assertRejected(const std::string &value,
    const std::vector<std::string> &secrets)
{
    if (verifyCookieValue(value, secrets).has_value()) {
        fail_msg("\"%s\" verified", value.c_str());
    }
}

void
assertFound(const char *header, const char *name, const char *expected)
{
    auto value = findCookie(header, name);

    if (!value) {
        fail_msg("\"%s\" not found in \"%s\"", name, header);
    }

    assert_string_equal(std::string(*value).c_str(), expected);
}

void
assertNotFound(const char *header, const char *name)
{
    if (findCookie(header, name).has_value()) {
        fail_msg("\"%s\" found in \"%s\"", name, header);
    }
}

void
testSignAndVerify(void **state)
{
    (void) state;

    std::string value = signCookieValue(kPayload, "secret-one");
    std::string prefix = std::string(kPayload) + ".";

    assert_int_equal(value.compare(0, prefix.size(), prefix), 0);

    /* the MAC is HMAC-SHA256 over exactly the payload, base64url */
    std::string mac = value.substr(prefix.size());
    assert_string_equal(mac.c_str(),
        base64urlEncode(hmacSha256("secret-one", kPayload)).c_str());
    assert_int_equal(mac.size(), 43);

    assertVerifies(value, {"secret-one"}, kPayload);

    /* the same input always signs the same way */
    assert_string_equal(value.c_str(),
        signCookieValue(kPayload, "secret-one").c_str());
    assert_string_not_equal(value.c_str(),
        signCookieValue(kPayload, "secret-two").c_str());
}

void
testValueIsCookieSafe(void **state)
{
    (void) state;

    std::string value = signCookieValue(kPayload, "k");

    /* RFC 6265 cookie-octet excludes these; base64url never has them */
    assert_int_equal(value.find_first_of(" \t\",;\\=+/"), std::string::npos);
}

void
testRotation(void **state)
{
    (void) state;

    std::string old = signCookieValue(kPayload, "old-secret");
    std::string fresh = signCookieValue(kPayload, "new-secret");

    assertVerifies(old, {"new-secret", "old-secret"}, kPayload);
    assertVerifies(fresh, {"new-secret", "old-secret"}, kPayload);

    /* once the old secret is retired, its cookies stop working */
    assertRejected(old, {"new-secret"});
    assertRejected(fresh, {"old-secret"});
    assertRejected(old, {});
}

void
testEmptySecretNeverVerifies(void **state)
{
    (void) state;

    assert_true(signCookieValue(kPayload, "").empty());

    std::string emptyKeyMac = std::string(kPayload) + "."
        + base64urlEncode(hmacSha256("", kPayload));

    assertRejected(emptyKeyMac, {""});
    assertRejected(emptyKeyMac, {"", "other"});
    assertVerifies(signCookieValue(kPayload, "real"), {"", "real"},
        kPayload);
}

void
testTamperedPayload(void **state)
{
    (void) state;

    std::string value = signCookieValue(kPayload, "s");

    std::string changed = value;
    changed[3] = changed[3] == 'A' ? 'B' : 'A';
    assertRejected(changed, {"s"});

    assertRejected("x" + value, {"s"});
    assertRejected(value.substr(1), {"s"});
}

void
testTamperedMac(void **state)
{
    (void) state;

    std::string value = signCookieValue(kPayload, "s");

    std::string changed = value;
    size_t at = value.find('.') + 10;
    changed[at] = changed[at] == 'A' ? 'B' : 'A';
    assertRejected(changed, {"s"});

    /* truncated, extended, padded */
    assertRejected(value.substr(0, value.size() - 1), {"s"});
    assertRejected(value.substr(0, value.size() - 4), {"s"});
    assertRejected(value + "A", {"s"});
    assertRejected(value + "AAAA", {"s"});
    assertRejected(value + "=", {"s"});
}

void
testStructuralGarbage(void **state)
{
    (void) state;

    std::string value = signCookieValue(kPayload, "s");
    std::string mac = value.substr(value.find('.') + 1);

    const std::string bad[] = {
        "",
        ".",
        kPayload,
        std::string(kPayload) + ".",
        "." + mac,
        mac,
        value + ".",
        value + "." + mac,
        std::string(kPayload) + ".." + mac,
        "a." + value,
        " " + value,
        value + " ",
        "\"" + value + "\"",
    };

    for (const std::string &text : bad) {
        assertRejected(text, {"s"});
    }
}

void
testPayloadMustBeBase64url(void **state)
{
    (void) state;

    /* correctly MACed, but not something signCookieValue accepts */
    for (const char *payload : {"a b", "a;b", "a+b", "a=b", "\"ab\""}) {
        std::string value = std::string(payload) + "."
            + base64urlEncode(hmacSha256("s", payload));

        assertRejected(value, {"s"});
    }
}

void
testEmptyPayloadRoundTrips(void **state)
{
    (void) state;

    std::string value = signCookieValue("", "s");

    assert_int_equal(value[0], '.');
    assertVerifies(value, {"s"}, "");
    assertRejected(value, {"t"});
}

void
testFindCookie(void **state)
{
    (void) state;

    assertFound("a=1; b=2", "a", "1");
    assertFound("a=1; b=2", "b", "2");
    assertFound("a=1;b=2", "b", "2");
    assertFound("  a = 1 ;\tb=2  ", "a", "1");
    assertFound("  a = 1 ;\tb=2  ", "b", "2");
    assertFound("a=1; a=2", "a", "1");
    assertFound("a=", "a", "");
    assertFound("a=b=c", "a", "b=c");
    assertFound("a=\"x y\"", "a", "\"x y\"");
    assertFound("; ;; junk; =x; a=1;", "a", "1");
    assertFound("nao_session=abc.def; other=1", "nao_session", "abc.def");
}

void
testFindCookieMisses(void **state)
{
    (void) state;

    assertNotFound("", "a");
    assertNotFound("a=1", "");
    assertNotFound("=1", "");
    assertNotFound("ab=1", "a");
    assertNotFound("xa=1", "a");
    assertNotFound("A=1", "a");
    assertNotFound("a; b=1", "a");
    assertNotFound("b=a=1", "a");
    assertNotFound("b=\"a=1\"", "a");
    assertNotFound(";;;", "a");
}

void
testFindCookieViewsTheHeader(void **state)
{
    (void) state;

    std::string header = "x=1; name=value; y=2";
    auto value = findCookie(header, "name");

    assert_true(value.has_value());
    assert_ptr_equal(value->data(), header.data() + header.find("value"));
    assert_int_equal(value->size(), 5);
}

void
testRemoveCookies(void **state)
{
    (void) state;

    std::vector<std::string_view> ours = {"nao_sso_"};

    assert_string_equal(removeCookies("a=1; nao_sso_s=2; b=3", ours).c_str(),
        "a=1; b=3");
    assert_string_equal(removeCookies("nao_sso_s=2", ours).c_str(), "");
    assert_string_equal(
        removeCookies("nao_sso_a=1; nao_sso_b=2", ours).c_str(), "");
    assert_string_equal(removeCookies("a=1;b=2 ;  c=3", ours).c_str(),
        "a=1; b=2; c=3");
    assert_string_equal(removeCookies("", ours).c_str(), "");
    assert_string_equal(removeCookies("; ;a=1;;", ours).c_str(), "a=1");
}

void
testRemoveCookiesEdges(void **state)
{
    (void) state;

    std::vector<std::string_view> ours = {"nao_sso_", "nao_tx"};

    /* several prefixes; order of the rest is kept */
    assert_string_equal(removeCookies(
        "z=1; nao_tx=2; y=3; nao_sso_x=4; x=5", ours).c_str(),
        "z=1; y=3; x=5");

    /* names only: a value that looks like ours stays */
    assert_string_equal(removeCookies("a=nao_sso_x", ours).c_str(),
        "a=nao_sso_x");

    /* case matters, as it does for cookie names */
    assert_string_equal(removeCookies("NAO_SSO_x=1", ours).c_str(),
        "NAO_SSO_x=1");

    /* garbage without "=" is kept unless it carries our prefix */
    assert_string_equal(removeCookies("junk; a=1", ours).c_str(),
        "junk; a=1");
    assert_string_equal(removeCookies("nao_sso_junk; a=1", ours).c_str(),
        "a=1");

    /* the prefix is matched against the trimmed name */
    assert_string_equal(removeCookies("  nao_tx = 1 ; a=\"q\"", ours).c_str(),
        "a=\"q\"");

    assert_string_equal(removeCookies("a=1; b=2", {}).c_str(), "a=1; b=2");
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testSignAndVerify),
        cmocka_unit_test(testValueIsCookieSafe),
        cmocka_unit_test(testRotation),
        cmocka_unit_test(testEmptySecretNeverVerifies),
        cmocka_unit_test(testTamperedPayload),
        cmocka_unit_test(testTamperedMac),
        cmocka_unit_test(testStructuralGarbage),
        cmocka_unit_test(testPayloadMustBeBase64url),
        cmocka_unit_test(testEmptyPayloadRoundTrips),
        cmocka_unit_test(testFindCookie),
        cmocka_unit_test(testFindCookieMisses),
        cmocka_unit_test(testFindCookieViewsTheHeader),
        cmocka_unit_test(testRemoveCookies),
        cmocka_unit_test(testRemoveCookiesEdges),
    };

    return cmocka_run_group_tests_name("cookie", tests, nullptr, nullptr);
}
