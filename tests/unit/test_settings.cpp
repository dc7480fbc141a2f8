/* unit tests for src/settings.cpp: config resolution */

#include "settings.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

using nao::DirectiveValues;
using nao::ProviderSettings;
using nao::checkSettings;
using nao::isGuid;
using nao::missingSettings;
using nao::resolveSettings;

namespace {

const char kClientId[] = "11111111-2222-3333-4444-555555555555";
const char kTenantId[] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/*
 * An environment held in a map. It hands back empty values as they are,
 * so resolveSettings' own "empty is unset" rule is what gets tested.
 */
nao::EnvLookup
fakeEnv(std::map<std::string, std::string> vars)
{
    return [vars](const char *name) -> std::optional<std::string> {
        auto it = vars.find(name);

        if (it == vars.end()) {
            return std::nullopt;
        }

        return it->second;
    };
}

std::map<std::string, std::string>
fullEnv()
{
    return {
        {"AZURE_AD_CLIENT_ID", kClientId},
        {"AZURE_AD_CLIENT_SECRET", "env-secret"},
        {"AZURE_AD_TENANT_ID", kTenantId},
    };
}

bool
hasReason(const std::vector<std::string> &reasons, const char *text)
{
    for (const std::string &reason : reasons) {
        if (reason == text) {
            return true;
        }
    }

    return false;
}

/*
 * Scenario: only the environment is set.
 * Expected: every value comes from it; scope and authority default.
 */
void
testEnvironmentOnly(void **state)
{
    (void) state;

    ProviderSettings s =
        resolveSettings(DirectiveValues{}, fakeEnv(fullEnv()));

    assert_string_equal(s.clientId.c_str(), kClientId);
    assert_string_equal(s.clientSecret.c_str(), "env-secret");
    assert_string_equal(s.tenantId.c_str(), kTenantId);
    assert_string_equal(s.tokenScope.c_str(),
        "11111111-2222-3333-4444-555555555555/.default");
    assert_string_equal(s.authority.c_str(),
        "https://login.microsoftonline.com");
    assert_int_equal(missingSettings(s).size(), 0);
    assert_true(checkSettings(s).ok());
}

/*
 * Scenario: directives and environment both set.
 * Expected: each directive wins over its variable.
 */
void
testDirectiveOverridesEnv(void **state)
{
    (void) state;

    std::map<std::string, std::string> env = fullEnv();
    DirectiveValues d;

    env["AZURE_AD_TOKEN_SCOPE"] = "api://env/user_impersonation";
    d.clientId = "directive-client";
    d.clientSecret = "directive-secret";
    d.tenantId = "contoso.onmicrosoft.com";
    d.tokenScope = "api://directive/user_impersonation";
    d.authority = "https://login.example.test";

    ProviderSettings s = resolveSettings(d, fakeEnv(env));

    assert_string_equal(s.clientId.c_str(), "directive-client");
    assert_string_equal(s.clientSecret.c_str(), "directive-secret");
    assert_string_equal(s.tenantId.c_str(), "contoso.onmicrosoft.com");
    assert_string_equal(s.tokenScope.c_str(),
        "api://directive/user_impersonation");
    assert_string_equal(s.authority.c_str(), "https://login.example.test");
}

/*
 * Scenario: the token scope comes from AZURE_AD_TOKEN_SCOPE.
 * Expected: it is used instead of the default.
 */
void
testScopeFromEnv(void **state)
{
    (void) state;

    std::map<std::string, std::string> env = fullEnv();

    env["AZURE_AD_TOKEN_SCOPE"] = "api://x/user_impersonation";

    ProviderSettings s = resolveSettings(DirectiveValues{}, fakeEnv(env));

    assert_string_equal(s.tokenScope.c_str(), "api://x/user_impersonation");
}

/*
 * Scenario: variables set to the empty string or to white space.
 * Expected: treated as unset, so they are reported missing.
 */
void
testEmptyEnvIsUnset(void **state)
{
    (void) state;

    std::map<std::string, std::string> env = {
        {"AZURE_AD_CLIENT_ID", ""},
        {"AZURE_AD_CLIENT_SECRET", " \n"},
        {"AZURE_AD_TENANT_ID", ""},
        {"AZURE_AD_TOKEN_SCOPE", ""},
    };

    ProviderSettings s = resolveSettings(DirectiveValues{}, fakeEnv(env));

    assert_true(s.clientId.empty());
    assert_true(s.clientSecret.empty());
    assert_true(s.tokenScope.empty());
    assert_int_equal(missingSettings(s).size(), 3);
}

/*
 * Scenario: a variable whose value carries a trailing line break.
 * Expected: the white space is dropped.
 */
void
testValuesAreTrimmed(void **state)
{
    (void) state;

    std::map<std::string, std::string> env = fullEnv();

    env["AZURE_AD_CLIENT_SECRET"] = "s3cr3t\n";
    env["AZURE_AD_CLIENT_ID"] = " abc ";

    ProviderSettings s = resolveSettings(DirectiveValues{}, fakeEnv(env));

    assert_string_equal(s.clientSecret.c_str(), "s3cr3t");
    assert_string_equal(s.tokenScope.c_str(), "abc/.default");
}

/*
 * Scenario: a directive present but empty while the variable is set.
 * Expected: the directive still wins, which switches SSO off.
 */
void
testEmptyDirectiveWins(void **state)
{
    (void) state;

    DirectiveValues d;

    d.clientId = "";

    ProviderSettings s = resolveSettings(d, fakeEnv(fullEnv()));

    assert_true(s.clientId.empty());
    assert_true(s.tokenScope.empty());
    assert_true(hasReason(missingSettings(s),
        "client id not set (nao_sso_client_id or AZURE_AD_CLIENT_ID)"));
}

/*
 * Scenario: authorities with one and several trailing slashes, or empty.
 * Expected: slashes stripped; empty falls back to the default.
 */
void
testAuthority(void **state)
{
    (void) state;

    DirectiveValues d;

    d.authority = "https://login.microsoftonline.us/";
    assert_string_equal(resolveSettings(d, fakeEnv({})).authority.c_str(),
        "https://login.microsoftonline.us");

    d.authority = "http://127.0.0.1:9000///";
    assert_string_equal(resolveSettings(d, fakeEnv({})).authority.c_str(),
        "http://127.0.0.1:9000");

    d.authority = "";
    assert_string_equal(resolveSettings(d, fakeEnv({})).authority.c_str(),
        nao::kDefaultAuthority);

    assert_string_equal(
        resolveSettings(DirectiveValues{}, nao::EnvLookup()).authority
            .c_str(), nao::kDefaultAuthority);
}

/*
 * Scenario: nothing is configured.
 * Expected: one reason per missing value naming directive and variable.
 */
void
testMissingReasons(void **state)
{
    (void) state;

    ProviderSettings s = resolveSettings(DirectiveValues{}, fakeEnv({}));
    std::vector<std::string> reasons = missingSettings(s);

    assert_int_equal(reasons.size(), 3);
    assert_true(hasReason(reasons,
        "client id not set (nao_sso_client_id or AZURE_AD_CLIENT_ID)"));
    assert_true(hasReason(reasons, "client secret not set "
        "(nao_sso_client_secret or AZURE_AD_CLIENT_SECRET)"));
    assert_true(hasReason(reasons,
        "tenant id not set (nao_sso_tenant_id or AZURE_AD_TENANT_ID)"));

    s.authority.clear();
    assert_int_equal(missingSettings(s).size(), 4);
}

/*
 * Scenario: tenants as a GUID, a domain, a keyword, and with characters
 * that could break the URL they go into.
 * Expected: letters, digits, "." and "-" only.
 */
void
testTenantCharacters(void **state)
{
    (void) state;

    ProviderSettings s =
        resolveSettings(DirectiveValues{}, fakeEnv(fullEnv()));
    const char *good[] = {kTenantId, "contoso.onmicrosoft.com",
        "organizations"};
    const char *bad[] = {"a/b", "a?b", "a b", "..%2f", "t#x", "t\"x",
        "a\\b", "a@b"};

    for (const char *tenant : good) {
        s.tenantId = tenant;
        assert_true(checkSettings(s).ok());
    }

    for (const char *tenant : bad) {
        s.tenantId = tenant;

        nao::Status status = checkSettings(s);

        if (status) {
            fail_msg("tenant \"%s\" accepted", tenant);
        }

        assert_non_null(strstr(status.error().c_str(), "tenant id"));
    }
}

/*
 * Scenario: an authority that is plain http to a public host.
 * Expected: refused, naming the directive and the rule.
 */
void
testAuthorityChecked(void **state)
{
    (void) state;

    DirectiveValues d;

    d.authority = "http://login.example.com";

    ProviderSettings s = resolveSettings(d, fakeEnv(fullEnv()));
    nao::Status status = checkSettings(s);

    assert_false(status.ok());
    assert_non_null(strstr(status.error().c_str(), "nao_sso_authority"));
    assert_non_null(strstr(status.error().c_str(), "https"));
}

/*
 * Scenario: GUIDs in both cases and near misses.
 * Expected: only the 8-4-4-4-12 hex form is a GUID.
 */
void
testIsGuid(void **state)
{
    (void) state;

    assert_true(isGuid(kTenantId));
    assert_true(isGuid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
    assert_true(isGuid("72f988bf-86f1-41af-91ab-2d7cd011db47"));

    assert_false(isGuid(""));
    assert_false(isGuid("72f988bf86f141af91ab2d7cd011db47"));
    assert_false(isGuid("{72f988bf-86f1-41af-91ab-2d7cd011db47}"));
    assert_false(isGuid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
    assert_false(isGuid("72f988bf-86f1-41af-91ab-2d7cd011db477"));
    assert_false(isGuid("72f988bg-86f1-41af-91ab-2d7cd011db47"));
    assert_false(isGuid("72f988bf-86f1-41af-91ab_2d7cd011db47"));
    assert_false(isGuid("72f988bf-86f1-41af-91ab2-d7cd011db47"));
    assert_false(isGuid("contoso.onmicrosoft.com"));
}

/*
 * Scenario: the process environment through processEnv.
 * Expected: set values are read; empty ones count as unset.
 */
void
testProcessEnv(void **state)
{
    (void) state;

    setenv("NAO_SSO_TEST_SET", "value", 1);
    setenv("NAO_SSO_TEST_EMPTY", "", 1);
    unsetenv("NAO_SSO_TEST_UNSET");

    assert_string_equal(nao::processEnv("NAO_SSO_TEST_SET").value().c_str(),
        "value");
    assert_false(nao::processEnv("NAO_SSO_TEST_EMPTY").has_value());
    assert_false(nao::processEnv("NAO_SSO_TEST_UNSET").has_value());
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testEnvironmentOnly),
        cmocka_unit_test(testDirectiveOverridesEnv),
        cmocka_unit_test(testScopeFromEnv),
        cmocka_unit_test(testEmptyEnvIsUnset),
        cmocka_unit_test(testValuesAreTrimmed),
        cmocka_unit_test(testEmptyDirectiveWins),
        cmocka_unit_test(testAuthority),
        cmocka_unit_test(testMissingReasons),
        cmocka_unit_test(testTenantCharacters),
        cmocka_unit_test(testAuthorityChecked),
        cmocka_unit_test(testIsGuid),
        cmocka_unit_test(testProcessEnv),
    };

    return cmocka_run_group_tests_name("config resolution", tests, nullptr,
        nullptr);
}
