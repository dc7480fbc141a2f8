/* unit tests for src/pages.cpp */

#include "json.h"
#include "pages.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include "test_support.h"

#include <set>
#include <string>
#include <vector>

using nao::ErrorView;
using nao::JsonPtr;
using nao::SessionView;
using nao::htmlEscape;
using nao::jsonQuote;
using nao::parseJson;

using test::assertContains;
using test::assertLacks;

namespace {

const char kHostile[] = "\"><script>alert('x')</script><img src=x "
    "onerror=alert(1)>&amp;";
const char kHostileEscaped[] = "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)"
    "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;";

/* a tag with its quoted values blanked; the quotes must pair up */
std::string
attributeNames(const std::string &tag)
{
    std::string names;
    bool quoted = false;

    for (char c : tag) {
        if (c == '"') {
            quoted = !quoted;
        }

        if (!quoted && c != '"') {
            names += c;
        }
    }

    assert_false(quoted);

    return names;
}

/*
 * What every page must be: complete and self-contained, its only tags
 * our own, with no script, event handler or outside resource.
 */
void
assertWellFormedPage(const std::string &html)
{
    static const std::set<std::string> allowed = {"!DOCTYPE", "html",
        "head", "meta", "title", "style", "body", "main", "p", "h1", "a",
        "form", "button", "strong", "code", "svg", "rect", "span"};

    assert_true(html.compare(0, 15, "<!DOCTYPE html>") == 0);
    assertContains(html, "<meta charset=\"utf-8\">");
    assertContains(html, "</html>");
    assertLacks(html, "url(");
    assertLacks(html, "@import");

    for (size_t at = html.find('<'); at != std::string::npos;
        at = html.find('<', at + 1))
    {
        size_t end = html.find('>', at);

        assert_true(end != std::string::npos);

        std::string tag = html.substr(at + 1, end - at - 1);
        size_t start = tag[0] == '/' ? 1 : 0;
        std::string name = tag.substr(start,
            tag.find_first_of(" /", start) - start);

        if (allowed.count(name) == 0) {
            fail_msg("unexpected tag <%s>", tag.c_str());
        }

        assertLacks(attributeNames(tag), " on");
        assertLacks(attributeNames(tag), " src=");
        assertLacks(tag, "javascript:");
    }
}

std::string
stringMember(const json_t *object, const char *key)
{
    auto value = nao::jsonString(object, key);

    if (!value) {
        fail_msg("no string member \"%s\"", key);
    }

    return *value;
}

/*
 * Scenario: each character HTML gives meaning to, and plain text.
 * Expected: the five are replaced by entities; the rest is kept.
 */
void
testHtmlEscape(void **state)
{
    (void) state;

    assert_string_equal(htmlEscape("a&b<c>d\"e'f").c_str(),
        "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_string_equal(htmlEscape("caf\xc3\xa9 / 100%").c_str(),
        "caf\xc3\xa9 / 100%");
    assert_string_equal(htmlEscape(kHostile).c_str(), kHostileEscaped);
}

/*
 * Scenario: quotes, backslashes, control bytes, HTML characters, valid
 * and broken UTF-8.
 * Expected: a literal that jansson reads back as the same text, with a
 * broken byte as U+FFFD and no raw "<" in the output.
 */
void
testJsonQuote(void **state)
{
    (void) state;

    assert_string_equal(jsonQuote("a\"b\\c").c_str(), "\"a\\\"b\\\\c\"");
    assert_string_equal(jsonQuote("\n\x01").c_str(), "\"\\u000a\\u0001\"");
    assert_string_equal(jsonQuote("</script>").c_str(),
        "\"\\u003c/script\\u003e\"");

    std::string text = std::string("a\"\\\n\t\x1f<>&\xc3\xa9\xe2\x82\xac"
        "\xf0\x9f\x98\x80 ok");
    JsonPtr json = parseJson(jsonQuote(text));

    assert_non_null(json.get());
    assert_true(json_is_string(json.get()));
    assert_true(std::string(json_string_value(json.get())) == text);

    const char *broken[] = {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xe2\x82"};

    for (const char *bad : broken) {
        json = parseJson(jsonQuote(std::string("x") + bad + "y"));
        assert_non_null(json.get());
        assert_true(std::string(json_string_value(json.get())).find(
            "\xef\xbf\xbd") != std::string::npos);
    }
}

/*
 * Scenario: the sign-in page with and without nao's own login.
 * Expected: a "Sign in with Microsoft" button to the given URL, and the
 * email and password link only when there is a URL for it.
 */
void
testSignInPage(void **state)
{
    (void) state;

    std::string html = nao::signInPage("/api/auth/signin/microsoft?a=1&b=2",
        "/login");

    assertWellFormedPage(html);
    assertContains(html, "Sign in with Microsoft");
    assertContains(html,
        "href=\"/api/auth/signin/microsoft?a=1&amp;b=2\"");
    assertContains(html, "Sign in with email and password");
    assertContains(html, "href=\"/login\"");

    html = nao::signInPage("/api/auth/signin/microsoft", "");
    assertWellFormedPage(html);
    assertContains(html, "Sign in with Microsoft");
    assertLacks(html, "email and password");
}

/*
 * Scenario: hostile URLs on the sign-in page, including script schemes.
 * Expected: escaped where kept; "javascript:" and "data:" never reach an
 * href.
 */
void
testSignInPageHostile(void **state)
{
    (void) state;

    std::string html = nao::signInPage(kHostile, kHostile);

    assertWellFormedPage(html);
    assertContains(html, kHostileEscaped);

    html = nao::signInPage("javascript:alert(1)", " JavaScript:alert(1)");
    assertWellFormedPage(html);
    assertLacks(html, "alert");

    html = nao::signInPage("data:text/html,x", "vbscript:x");
    assertLacks(html, "data:");
    assertLacks(html, "vbscript");

    html = nao::signInPage("https://login.example/a:b", "HTTP://x/");
    assertContains(html, "href=\"https://login.example/a:b\"");
    assertContains(html, "href=\"HTTP://x/\"");
}

/*
 * Scenario: the sign-out page for a user, for nobody, and for hostile
 * values.
 * Expected: a POST form to the action with a "Sign out" button; the
 * email shown escaped.
 */
void
testSignOutPage(void **state)
{
    (void) state;

    std::string html = nao::signOutPage("/api/auth/signout",
        "ada@contoso.com");

    assertWellFormedPage(html);
    assertContains(html, "method=\"post\" action=\"/api/auth/signout\"");
    assertContains(html, ">Sign out</button>");
    assertContains(html, "ada@contoso.com");

    html = nao::signOutPage("/api/auth/signout", "");
    assertWellFormedPage(html);
    assertContains(html, ">Sign out</button>");

    html = nao::signOutPage(kHostile, kHostile);
    assertWellFormedPage(html);
    assertContains(html, std::string("action=\"") + kHostileEscaped);
    assertContains(html, kHostileEscaped);

    html = nao::signOutPage("javascript:alert(1)", "x");
    assertLacks(html, "javascript");
}

ErrorView
fullError(const std::string &text)
{
    ErrorView view;

    view.status = 403;
    view.error = "not_assigned";
    view.title = "Title " + text;
    view.message = "Message " + text;
    view.advice = "Advice " + text;
    view.code = "AADSTS50105";
    view.actionUrl = "/api/auth/signin/microsoft?x=" + text;
    view.actionLabel = "Label " + text;

    return view;
}

/*
 * Scenario: an error page with every field, and with only a message.
 * Expected: each field shown when set, nothing for those left empty.
 */
void
testErrorPage(void **state)
{
    (void) state;

    std::string html = nao::errorPage(fullError("plain"));

    assertWellFormedPage(html);
    assertContains(html, "<h1>Title plain</h1>");
    assertContains(html, "Message plain");
    assertContains(html, "Advice plain");
    assertContains(html, "AADSTS50105");
    assertContains(html, "href=\"/api/auth/signin/microsoft?x=plain\"");
    assertContains(html, "Label plain");

    ErrorView bare;

    bare.message = "Something broke";
    html = nao::errorPage(bare);
    assertWellFormedPage(html);
    assertContains(html, "Something broke");
    assertContains(html, "Sign-in could not be completed");
    assertLacks(html, "Error code");
    assertLacks(html, "href=");

    bare.actionUrl = "/again";
    html = nao::errorPage(bare);
    assertContains(html, "href=\"/again\"");
    assertContains(html, "Try again");
}

/*
 * Scenario: an error page where every field is hostile.
 * Expected: all of it escaped; not one raw tag or quote gets through.
 */
void
testErrorPageHostile(void **state)
{
    (void) state;

    ErrorView view = fullError(kHostile);

    view.code = kHostile;

    std::string html = nao::errorPage(view);

    assertWellFormedPage(html);
    assertLacks(html, "<img");
    assertLacks(html, "'x'");
    assertContains(html, std::string("Title ") + kHostileEscaped);
    assertContains(html, std::string("Message ") + kHostileEscaped);
    assertContains(html, std::string("Advice ") + kHostileEscaped);
    assertContains(html, std::string("Label ") + kHostileEscaped);
    assertContains(html, std::string("?x=") + kHostileEscaped);
}

std::vector<std::string>
keysOf(const json_t *object)
{
    std::vector<std::string> keys;
    const char *key;
    json_t *value;

    json_object_foreach(const_cast<json_t *>(object), key, value) {
        keys.push_back(key);
    }

    return keys;
}

/*
 * Scenario: errorJson with every field, and with neither code nor action.
 * Expected: exactly the keys the contract names, values read back intact
 * even when hostile.
 */
void
testErrorJson(void **state)
{
    (void) state;

    JsonPtr json = parseJson(nao::errorJson(fullError(kHostile)));

    assert_non_null(json.get());
    assert_int_equal(json_object_size(json.get()), 4);
    assert_string_equal(stringMember(json.get(), "error").c_str(),
        "not_assigned");
    assert_true(stringMember(json.get(), "message")
        == std::string("Message ") + kHostile);
    assert_string_equal(stringMember(json.get(), "code").c_str(),
        "AADSTS50105");
    assert_true(stringMember(json.get(), "signInUrl")
        == std::string("/api/auth/signin/microsoft?x=") + kHostile);

    ErrorView bare;

    bare.error = "invalid_state";
    bare.message = "The sign-in expired";
    json = parseJson(nao::errorJson(bare));

    std::vector<std::string> keys = keysOf(json.get());

    assert_int_equal(keys.size(), 2);
    assert_true(keys[0] == "error" && keys[1] == "message");
}

/*
 * Scenario: a session with hostile and non-ASCII values.
 * Expected: exactly {"user":{id,email,name,role,tenantId},"expiresAt",
 * "tokens":[]} with the values intact and the time in ISO 8601 UTC.
 */
void
testSessionJson(void **state)
{
    (void) state;

    SessionView view;

    view.userId = "00000000-0000-0000-66f3-3332eca7ea81";
    view.email = "ada@contoso.com";
    view.name = std::string("Ad\xc3\xa1 \"L\" ") + kHostile;
    view.role = "member";
    view.tenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    view.expiresAt = 1796400000;

    std::string text = nao::sessionJson(view);
    JsonPtr json = parseJson(text);

    assert_non_null(json.get());

    std::vector<std::string> top = keysOf(json.get());

    assert_int_equal(top.size(), 3);
    assert_true(top[0] == "user" && top[1] == "expiresAt"
                && top[2] == "tokens");
    assert_int_equal(json_array_size(json_object_get(json.get(), "tokens")),
                     0);
    assert_string_equal(stringMember(json.get(), "expiresAt").c_str(),
        "2026-12-04T16:00:00Z");

    const json_t *user = json_object_get(json.get(), "user");
    std::vector<std::string> keys = keysOf(user);
    const char *expected[] = {"id", "email", "name", "role", "tenantId"};

    assert_int_equal(keys.size(), 5);

    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(keys[i].c_str(), expected[i]);
    }

    assert_true(stringMember(user, "id") == view.userId);
    assert_true(stringMember(user, "email") == view.email);
    assert_true(stringMember(user, "name") == view.name);
    assert_true(stringMember(user, "role") == view.role);
    assert_true(stringMember(user, "tenantId") == view.tenantId);
    assertLacks(text, "<");
}

/*
 * Scenario: one token obtained, one not yet.
 * Expected: each listed with name, scope, audience and expiry; the one
 * not obtained has null audience and expiry; no token text anywhere.
 */
void
testSessionJsonTokens(void **state)
{
    (void) state;

    SessionView view;
    view.expiresAt = 1796400000;
    view.tokens.push_back({"", "api://x/user_impersonation", "api://x",
                           1796400000});
    view.tokens.push_back({"graph", "https://graph.microsoft.com/User.Read",
                           "", 0});

    std::string text = nao::sessionJson(view);
    JsonPtr json = parseJson(text);
    assert_non_null(json.get());

    const json_t *tokens = json_object_get(json.get(), "tokens");
    assert_int_equal(json_array_size(tokens), 2);

    const json_t *first = json_array_get(tokens, 0);
    assert_true(stringMember(first, "name").empty());
    assert_true(stringMember(first, "audience") == "api://x");
    assert_true(stringMember(first, "expiresAt") == "2026-12-04T16:00:00Z");

    const json_t *second = json_array_get(tokens, 1);
    assert_true(stringMember(second, "name") == "graph");
    assert_true(json_is_null(json_object_get(second, "audience")));
    assert_true(json_is_null(json_object_get(second, "expiresAt")));
}

/*
 * Scenario: the epoch, a leap day, a recent time and the end of 2099.
 * Expected: "YYYY-MM-DDThh:mm:ssZ" in UTC.
 */
void
testIsoTime(void **state)
{
    (void) state;

    assert_string_equal(nao::isoTime(0).c_str(), "1970-01-01T00:00:00Z");
    assert_string_equal(nao::isoTime(951782400).c_str(),
        "2000-02-29T00:00:00Z");
    assert_string_equal(nao::isoTime(1796400000).c_str(),
        "2026-12-04T16:00:00Z");
    assert_string_equal(nao::isoTime(4102444799).c_str(),
        "2099-12-31T23:59:59Z");
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testHtmlEscape),
        cmocka_unit_test(testJsonQuote),
        cmocka_unit_test(testSignInPage),
        cmocka_unit_test(testSignInPageHostile),
        cmocka_unit_test(testSignOutPage),
        cmocka_unit_test(testErrorPage),
        cmocka_unit_test(testErrorPageHostile),
        cmocka_unit_test(testErrorJson),
        cmocka_unit_test(testSessionJson),
        cmocka_unit_test(testSessionJsonTokens),
        cmocka_unit_test(testIsoTime),
    };

    return cmocka_run_group_tests_name("pages", tests, nullptr, nullptr);
}
