/* resolution and static checks of the provider settings */

#include "settings.h"

#include "url.h"
#include "text.h"

#include <cstdlib>

namespace nao {

namespace {

/*
 * A directive that is present wins even when empty, so a configuration
 * can switch SSO off whatever the environment says. Surrounding white
 * space is dropped: a secret pasted with a line break is a common slip.
 */
std::string
pick(const std::optional<std::string> &directive, const EnvLookup &env,
    const char *variable)
{
    if (directive) {
        return std::string(trim(*directive));
    }

    if (variable == nullptr || !env) {
        return {};
    }

    std::optional<std::string> value = env(variable);

    if (!value) {
        return {};
    }

    return std::string(trim(*value));
}

bool
isTenantChar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

bool
isHexDigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
        || (c >= 'A' && c <= 'F');
}

}  // namespace

std::optional<std::string>
processEnv(const char *name)
{
    const char *value = std::getenv(name);

    if (value == nullptr || trim(value).empty()) {
        return std::nullopt;
    }

    return std::string(value);
}

ProviderSettings
resolveSettings(const DirectiveValues &directives, const EnvLookup &env)
{
    ProviderSettings settings;

    settings.clientId = pick(directives.clientId, env, "AZURE_AD_CLIENT_ID");
    settings.clientSecret = pick(directives.clientSecret, env,
        "AZURE_AD_CLIENT_SECRET");
    settings.tenantId = pick(directives.tenantId, env, "AZURE_AD_TENANT_ID");
    settings.tokenScope = pick(directives.tokenScope, env,
        "AZURE_AD_TOKEN_SCOPE");
    settings.authority = pick(directives.authority, env, nullptr);

    if (settings.tokenScope.empty() && !settings.clientId.empty()) {
        settings.tokenScope = settings.clientId + "/.default";
    }

    if (settings.authority.empty()) {
        settings.authority = kDefaultAuthority;
    }

    while (!settings.authority.empty() && settings.authority.back() == '/') {
        settings.authority.pop_back();
    }

    return settings;
}

std::vector<std::string>
missingSettings(const ProviderSettings &settings)
{
    std::vector<std::string> reasons;

    if (settings.clientId.empty()) {
        reasons.push_back(
            "client id not set (nao_sso_client_id or AZURE_AD_CLIENT_ID)");
    }

    if (settings.clientSecret.empty()) {
        reasons.push_back("client secret not set "
            "(nao_sso_client_secret or AZURE_AD_CLIENT_SECRET)");
    }

    if (settings.tenantId.empty()) {
        reasons.push_back(
            "tenant id not set (nao_sso_tenant_id or AZURE_AD_TENANT_ID)");
    }

    if (settings.authority.empty()) {
        reasons.push_back("authority not set (nao_sso_authority)");
    }

    return reasons;
}

Status
checkSettings(const ProviderSettings &settings)
{
    if (!settings.authority.empty()) {
        Status url = checkIdpUrl(settings.authority);

        if (!url) {
            return fail("nao_sso_authority is not usable: " + url.error());
        }
    }

    for (char c : settings.tenantId) {
        if (!isTenantChar(c)) {
            return fail("tenant id \"" + logSafe(settings.tenantId)
                + "\" may hold only letters, digits, \".\" and \"-\"");
        }
    }

    return Status::success();
}

bool
isGuid(std::string_view text)
{
    static const size_t dashes[] = {8, 13, 18, 23};

    if (text.size() != 36) {
        return false;
    }

    for (size_t i = 0; i < text.size(); i++) {
        bool dash = i == dashes[0] || i == dashes[1] || i == dashes[2]
            || i == dashes[3];

        if (dash ? text[i] != '-' : !isHexDigit(text[i])) {
            return false;
        }
    }

    return true;
}

}  // namespace nao
