/*
 * Resolution of the provider settings: a directive overrides its
 * environment variable, read when the configuration is parsed.
 */

#ifndef NAO_SSO_SETTINGS_H
#define NAO_SSO_SETTINGS_H

#include "result.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

constexpr const char *kDefaultAuthority = "https://login.microsoftonline.com";

/* what the configuration said; nullopt when the directive is absent */
struct DirectiveValues {
    std::optional<std::string> clientId;
    std::optional<std::string> clientSecret;
    std::optional<std::string> tenantId;
    std::optional<std::string> tokenScope;
    std::optional<std::string> authority;
};

struct ProviderSettings {
    std::string clientId;
    std::string clientSecret;
    std::string tenantId;
    std::string tokenScope;    /* defaults to "<client id>/.default" */
    std::string authority;     /* no trailing "/" */
};

/* returns the variable's value, nullopt when unset; empty counts as unset */
using EnvLookup = std::function<std::optional<std::string>(const char *)>;

/* an EnvLookup over the process environment (getenv) */
std::optional<std::string> processEnv(const char *name);

/*
 * AZURE_AD_CLIENT_ID, AZURE_AD_CLIENT_SECRET, AZURE_AD_TENANT_ID and
 * AZURE_AD_TOKEN_SCOPE; the authority has no variable. A directive that
 * is present wins even when empty. Values are trimmed of white space.
 */
ProviderSettings resolveSettings(const DirectiveValues &directives,
    const EnvLookup &env);

/*
 * Why SSO cannot run with these settings, one reason per entry, e.g.
 * "client id not set (nao_sso_client_id or AZURE_AD_CLIENT_ID)";
 * empty when complete.
 */
std::vector<std::string> missingSettings(const ProviderSettings &settings);

/*
 * Static checks of values that are set: the authority URL (see
 * checkIdpUrl) and a tenant made of letters, digits, "." and "-".
 */
Status checkSettings(const ProviderSettings &settings);

/* true for the 8-4-4-4-12 hex form */
bool isGuid(std::string_view text);

}  // namespace nao

#endif
