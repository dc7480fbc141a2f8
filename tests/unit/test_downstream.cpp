/*
 * unit tests for src/downstream.cpp: the look inside an access token,
 * downstream names and headers, and Graph membership pages
 */

#include "base64url.h"
#include "downstream.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>

using nao::GroupPage;
using nao::TokenInfo;
using nao::base64urlEncode;
using nao::parseGroupPage;
using nao::peekAccessToken;
using nao::tokenHeaderName;
using nao::validDownstreamName;

namespace {

const char kGraph[] = "00000003-0000-0000-c000-000000000000";

std::string
jwt(const std::string &payload)
{
    return base64urlEncode("{\"alg\":\"RS256\",\"typ\":\"JWT\"}") + "."
        + base64urlEncode(payload) + ".c2lnbmF0dXJl";
}

void
assertEmpty(const TokenInfo &info)
{
    assert_true(info.audience.empty());
    assert_int_equal(info.expires, 0);
}

/*
 * Scenario: an access token with a string "aud", one with an array, one
 * with neither, and an "exp" written as a real.
 * Expected: the audience (the first of an array) and the expiry.
 */
void
testPeekAccessToken(void **state)
{
    (void) state;

    TokenInfo info = peekAccessToken(jwt(std::string("{\"aud\":\"")
        + kGraph + "\",\"exp\":1767225600,\"scp\":\"User.Read\"}"));

    assert_string_equal(info.audience.c_str(), kGraph);
    assert_int_equal(info.expires, 1767225600);

    info = peekAccessToken(jwt("{\"aud\":[\"api://nao\",\"other\"],"
        "\"exp\":1.7e9}"));
    assert_string_equal(info.audience.c_str(), "api://nao");
    assert_int_equal(info.expires, 1700000000);

    info = peekAccessToken(jwt("{\"exp\":5}"));
    assert_true(info.audience.empty());
    assert_int_equal(info.expires, 5);

    info = peekAccessToken(jwt("{\"aud\":[],\"exp\":\"5\"}"));
    assertEmpty(info);

    info = peekAccessToken(jwt("{\"aud\":[7,\"late\"],\"exp\":null}"));
    assertEmpty(info);
}

/*
 * Scenario: an "exp" out of any integer's range, as a real and as an
 * integer literal.
 * Expected: no expiry; the literal makes the payload unreadable to
 * jansson, so nothing is read at all.
 */
void
testPeekHugeExp(void **state)
{
    (void) state;

    TokenInfo info = peekAccessToken(jwt("{\"aud\":\"a\",\"exp\":1e300}"));

    assert_string_equal(info.audience.c_str(), "a");
    assert_int_equal(info.expires, 0);

    info = peekAccessToken(jwt("{\"aud\":\"a\","
        "\"exp\":123456789012345678901234567890}"));
    assertEmpty(info);
}

/*
 * Scenario: text that is not a JWT: empty, opaque, two or four parts,
 * a payload that is not base64url, not JSON or not an object.
 * Expected: an empty TokenInfo each time.
 */
void
testPeekGarbage(void **state)
{
    (void) state;

    std::string good = jwt("{\"aud\":\"a\",\"exp\":1}");
    const std::string tokens[] = {
        "",
        "opaque-reference-token",
        "..",
        good.substr(0, good.rfind('.')),
        good + ".more",
        "eyJhbGciOiJub25lIn0.!!!.sig",
        "eyJhbGciOiJub25lIn0.eyJhdWQiOiJhIn0=.sig",
        jwt("not json"),
        jwt("[\"aud\",\"exp\"]"),
        jwt("\"aud\""),
        jwt("{\"aud\":\"a\",\"aud\":\"b\"}"),
    };

    assert_string_equal(peekAccessToken(good).audience.c_str(), "a");

    for (const std::string &token : tokens) {
        assertEmpty(peekAccessToken(token));
    }
}

/*
 * Scenario: downstream names as configured.
 * Expected: each part capitalised, '_' becomes '-'.
 */
void
testTokenHeaderName(void **state)
{
    (void) state;

    const char *cases[][2] = {
        {"graph", "X-Nao-Token-Graph"},
        {"red_shift", "X-Nao-Token-Red-Shift"},
        {"a_b_c", "X-Nao-Token-A-B-C"},
        {"api2", "X-Nao-Token-Api2"},
        {"x_2fa", "X-Nao-Token-X-2fa"},
        {"sales-api", "X-Nao-Token-Sales-Api"},
    };

    for (const auto &item : cases) {
        assert_string_equal(tokenHeaderName(item[0]).c_str(), item[1]);
    }
}

/*
 * Scenario: names that fit a variable suffix and names that do not.
 * Expected: only lowercase letters, digits and '_', a letter first, at
 * most 32.
 */
void
testValidDownstreamName(void **state)
{
    (void) state;

    const char *good[] = {"graph", "red_shift", "a", "api2", "a_",
        "abcdefghijklmnopqrstuvwxyz012345"};
    const char *bad[] = {"", "Graph", "2api", "_graph", "red-shift",
        "red shift", "gr\xc3\xa4ph", "abcdefghijklmnopqrstuvwxyz0123456",
        "graph$", "graph.read"};

    for (const char *name : good) {
        assert_true(validDownstreamName(name));
    }

    for (const char *name : bad) {
        assert_false(validDownstreamName(name));
    }

    assert_false(validDownstreamName(std::string("gr\0aph", 6)));
}

/*
 * Scenario: a Graph page mixing groups, a directory role, an entry
 * without a type, and a nextLink.
 * Expected: group ids only (lowercased), the untyped entry kept, the
 * role dropped; the next link as sent.
 */
void
testGroupPageWithNextLink(void **state)
{
    (void) state;

    nao::Result<GroupPage> page = parseGroupPage(
        "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#"
        "directoryObjects(id)\",\"@odata.nextLink\":\"https://graph."
        "microsoft.com/v1.0/me/transitiveMemberOf?$select=id&$top=999"
        "&$skiptoken=RFNwdAIAAQAAAA\",\"value\":["
        "{\"@odata.type\":\"#microsoft.graph.group\","
        "\"id\":\"6E2C5B1F-0000-4000-8000-000000000001\"},"
        "{\"@odata.type\":\"#microsoft.graph.directoryRole\","
        "\"id\":\"role-id\"},"
        "{\"id\":\"6e2c5b1f-0000-4000-8000-000000000002\"},"
        "{\"@odata.type\":\"#microsoft.graph.administrativeUnit\","
        "\"id\":\"unit-id\"},"
        "{\"@odata.type\":\"#microsoft.graph.group\"},"
        "7, null]}");

    assert_true(page.ok());
    assert_int_equal(page->groupIds.size(), 2);
    assert_string_equal(page->groupIds[0].c_str(),
        "6e2c5b1f-0000-4000-8000-000000000001");
    assert_string_equal(page->groupIds[1].c_str(),
        "6e2c5b1f-0000-4000-8000-000000000002");
    assert_string_equal(page->nextLink.c_str(),
        "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?"
        "$select=id&$top=999&$skiptoken=RFNwdAIAAQAAAA");
}

/*
 * Scenario: the last page, and an empty one.
 * Expected: no next link; no groups is not an error.
 */
void
testGroupPageLast(void **state)
{
    (void) state;

    nao::Result<GroupPage> page = parseGroupPage(
        "{\"value\":[{\"@odata.type\":\"#microsoft.graph.group\","
        "\"id\":\"g1\"}]}");

    assert_true(page.ok());
    assert_int_equal(page->groupIds.size(), 1);
    assert_true(page->nextLink.empty());

    page = parseGroupPage("{\"value\":[]}");
    assert_true(page.ok());
    assert_true(page->groupIds.empty());
    assert_true(page->nextLink.empty());
}

/*
 * Scenario: answers that are not a membership list: not JSON, an error
 * object, "value" not an array, an array at the top.
 * Expected: the one error, with nothing of the body in it.
 */
void
testGroupPageGarbage(void **state)
{
    (void) state;

    const char *bodies[] = {
        "",
        "<html>Service Unavailable</html>",
        "{\"error\":{\"code\":\"InvalidAuthenticationToken\"}}",
        "{\"value\":{\"id\":\"g1\"}}",
        "{\"value\":\"g1\"}",
        "[{\"id\":\"g1\"}]",
        "{\"value\":[]",
    };

    for (const char *body : bodies) {
        nao::Result<GroupPage> page = parseGroupPage(body);

        assert_false(page.ok());
        assert_string_equal(page.error().c_str(),
            "graph answer is not a membership list");
    }
}

/*
 * Scenario: Graph's base with and without trailing slashes.
 * Expected: the same first page URL, '$' kept literal.
 */
void
testGraphMembersUrl(void **state)
{
    (void) state;

    const char expected[] = "https://graph.microsoft.com/v1.0/me/"
        "transitiveMemberOf?$select=id&$top=999";

    assert_string_equal(
        nao::graphMembersUrl("https://graph.microsoft.com").c_str(),
        expected);
    assert_string_equal(
        nao::graphMembersUrl("https://graph.microsoft.com//").c_str(),
        expected);
    assert_string_equal(nao::graphMembersUrl("http://127.0.0.1:8081/")
        .c_str(), "http://127.0.0.1:8081/v1.0/me/transitiveMemberOf?"
        "$select=id&$top=999");
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testPeekAccessToken),
        cmocka_unit_test(testPeekHugeExp),
        cmocka_unit_test(testPeekGarbage),
        cmocka_unit_test(testTokenHeaderName),
        cmocka_unit_test(testValidDownstreamName),
        cmocka_unit_test(testGroupPageWithNextLink),
        cmocka_unit_test(testGroupPageLast),
        cmocka_unit_test(testGroupPageGarbage),
        cmocka_unit_test(testGraphMembersUrl),
    };

    return cmocka_run_group_tests_name("downstream", tests, nullptr,
        nullptr);
}
