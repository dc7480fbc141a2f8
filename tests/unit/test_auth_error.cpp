/* unit tests for src/oidc.cpp: AADSTS codes and the advice on errors */

#include "oidc.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include "test_support.h"

#include <string>

using nao::AuthErrorAdvice;
using nao::adviseOnAuthError;

using test::assertContains;
using test::assertLacks;

namespace {

/*
 * Scenario: descriptions with a code, with "AADSTS" but no digits first,
 * with no code, in lower case, and with an absurd number of digits.
 * Expected: exactly "AADSTS" and its digits, else empty.
 */
void
testAadstsCode(void **state)
{
    (void) state;

    assert_string_equal(nao::aadstsCode("AADSTS50105: The signed in user "
        "is not assigned").c_str(), "AADSTS50105");
    assert_string_equal(nao::aadstsCode("see AADSTS: then AADSTS65001.")
        .c_str(), "AADSTS65001");
    assert_string_equal(nao::aadstsCode("AADSTS7000215").c_str(),
        "AADSTS7000215");
    assert_string_equal(nao::aadstsCode("no code here").c_str(), "");
    assert_string_equal(nao::aadstsCode("aadsts50105").c_str(), "");
    assert_string_equal(nao::aadstsCode("AADSTS123456789012").c_str(), "");
    assert_string_equal(nao::aadstsCode("").c_str(), "");
}

void
assertAdvice(const AuthErrorAdvice &advice, const char *code,
    const char *inTitle, const char *inAdvice)
{
    assert_string_equal(advice.code.c_str(), code);
    assertContains(advice.title, inTitle);
    assertContains(advice.advice, inAdvice);
}

/*
 * Scenario: each error the module has words for.
 * Expected: the code, a title and advice that says what to do.
 */
void
testAdviceKnownErrors(void **state)
{
    (void) state;

    assertAdvice(adviseOnAuthError("invalid_request", "AADSTS50105: The "
        "signed in user 'x' is not assigned to a role"), "AADSTS50105",
        "not assigned", "Enterprise applications");
    assertContains(adviseOnAuthError("", "AADSTS50105").advice, "assign");
    assertAdvice(adviseOnAuthError("invalid_client", "AADSTS65001: The "
        "user or administrator has not consented"), "AADSTS65001",
        "Consent", "grant consent");
    assertAdvice(adviseOnAuthError("access_denied", "AADSTS53003: Access "
        "has been blocked by Conditional Access policies"), "AADSTS53003",
        "Conditional Access", "administrator");
    assertAdvice(adviseOnAuthError("access_denied", "User declined"),
        "access_denied", "declined", "declined");
}

/*
 * Scenario: a redirect URI mismatch, with and without the URI known.
 * Expected: the advice names the exact URI to register.
 */
void
testAdviceRedirectMismatch(void **state)
{
    (void) state;

    AuthErrorAdvice advice = adviseOnAuthError("invalid_request",
        "AADSTS50011: The redirect URI 'x' does not match",
        "https://nao.example.com/api/auth/callback/microsoft");

    assertAdvice(advice, "AADSTS50011", "Redirect URI",
        "exactly https://nao.example.com/api/auth/callback/microsoft");

    advice = adviseOnAuthError("invalid_request", "AADSTS50011: x");
    assertContains(advice.advice, "/api/auth/callback/microsoft");
}

/*
 * Scenario: an unknown code, an error without a code, and nothing.
 * Expected: a generic title; the advice names the code when there is one.
 */
void
testAdviceGeneric(void **state)
{
    (void) state;

    AuthErrorAdvice advice = adviseOnAuthError("invalid_request",
        "AADSTS90014: The required field is missing");

    assert_string_equal(advice.code.c_str(), "AADSTS90014");
    assert_false(advice.title.empty());
    assertContains(advice.advice, "AADSTS90014");
    assertLacks(advice.advice, "required field");

    advice = adviseOnAuthError("temporarily_unavailable", "");
    assert_string_equal(advice.code.c_str(), "temporarily_unavailable");
    assertContains(advice.advice, "temporarily_unavailable");

    advice = adviseOnAuthError("", "");
    assert_true(advice.code.empty());
    assert_false(advice.title.empty());
    assert_false(advice.advice.empty());
}

/*
 * Scenario: hostile error and description from the query string.
 * Expected: neither reaches the advice; only a validated token would.
 */
void
testAdviceHostileInput(void **state)
{
    (void) state;

    const char *errors[] = {"<script>alert(1)</script>", "Access_Denied",
        "access-denied", "access_denied ", "x\r\nSet-Cookie: a=b"};

    for (const char *error : errors) {
        AuthErrorAdvice advice = adviseOnAuthError(error,
            "<img src=x onerror=alert(1)> AADSTS<b>50105</b> call +1 555");

        assert_true(advice.code.empty());

        for (const std::string *text : {&advice.title, &advice.advice}) {
            assertLacks(*text, "<");
            assertLacks(*text, "555");
            assertLacks(*text, "\n");
            assertLacks(*text, error);
        }
    }
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testAadstsCode),
        cmocka_unit_test(testAdviceKnownErrors),
        cmocka_unit_test(testAdviceRedirectMismatch),
        cmocka_unit_test(testAdviceGeneric),
        cmocka_unit_test(testAdviceHostileInput),
    };

    return cmocka_run_group_tests_name("auth errors", tests, nullptr,
        nullptr);
}
