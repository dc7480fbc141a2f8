/* the nao Enterprise licence: an Ed25519-signed compact JWS */

#include "licence.h"

#include "jose.h"
#include "json.h"
#include "settings.h"
#include "text.h"
#include "url.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace nao {

namespace {

/* YYYY-MM-DD in UTC; the raw number when the date cannot be shown */
std::string
utcDate(int64_t seconds)
{
    time_t time = static_cast<time_t>(seconds);
    struct tm parts;

    if (static_cast<int64_t>(time) != seconds
        || gmtime_r(&time, &parts) == nullptr)
    {
        return "\"" + std::to_string(seconds) + "\"";
    }

    char text[32];

    std::snprintf(text, sizeof(text), "%04d-%02d-%02d",
        parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday);

    return text;
}

Error
malformed(const char *why)
{
    return fail(std::string("licence is malformed: ") + why);
}

Result<std::vector<std::string>>
readFeatures(const json_t *payload)
{
    const json_t *features = json_object_get(payload, "features");

    if (features == nullptr || !json_is_array(features)) {
        return malformed("\"features\" is not an array");
    }

    std::vector<std::string> names;
    size_t index;
    const json_t *feature;

    json_array_foreach(features, index, feature) {
        if (!json_is_string(feature)) {
            return malformed("\"features\" holds a value that is not a "
                "string");
        }

        names.emplace_back(json_string_value(feature),
            json_string_length(feature));
    }

    return names;
}

/* the selector roles.h reads: the group id, or "role:" and the value */
Result<std::string>
ruleSelector(const json_t *entry)
{
    const json_t *group = json_object_get(entry, "group");
    const json_t *appRole = json_object_get(entry, "app_role");

    if ((group == nullptr) == (appRole == nullptr)) {
        return fail("needs either \"group\" or \"app_role\"");
    }

    const json_t *value = group != nullptr ? group : appRole;
    const char *key = group != nullptr ? "group" : "app_role";

    if (!json_is_string(value)) {
        return fail(std::string("\"") + key + "\" is not a string");
    }

    std::string text(json_string_value(value), json_string_length(value));

    /* else {"group": "role:x"} would pass as an app role */
    if (group != nullptr && !isGuid(text)) {
        return fail("group \"" + logSafe(text)
            + "\" is not an object id (a GUID)");
    }

    return group != nullptr ? text : "role:" + text;
}

Result<RoleRule>
readRoleRule(const json_t *entry)
{
    if (!json_is_object(entry)) {
        return fail("not an object");
    }

    auto selector = ruleSelector(entry);

    if (!selector) {
        return fail(selector.error());
    }

    std::optional<std::string> role = jsonString(entry, "role");

    if (!role) {
        return fail("\"role\" is missing or not a string");
    }

    return parseRoleRule(selector.value(), *role);
}

/* the optional "role_rules"; an error names the entry at fault */
Result<std::vector<RoleRule>>
readRoleRules(const json_t *payload)
{
    const json_t *rules = json_object_get(payload, "role_rules");
    std::vector<RoleRule> parsed;

    if (rules == nullptr) {
        return parsed;
    }

    if (!json_is_array(rules)) {
        return malformed("\"role_rules\" is not an array");
    }

    size_t index;
    const json_t *entry;

    json_array_foreach(rules, index, entry) {
        auto rule = readRoleRule(entry);

        if (!rule) {
            return fail("licence role_rules[" + std::to_string(index)
                + "]: " + rule.error());
        }

        parsed.push_back(std::move(rule.value()));
    }

    return parsed;
}

Result<Licence>
readClaims(const json_t *payload)
{
    Licence licence;

    auto features = readFeatures(payload);

    if (!features) {
        return fail(features.error());
    }

    licence.features = std::move(features.value());

    auto expires = jsonInteger(payload, "exp");

    if (!expires) {
        return malformed("\"exp\" is missing or not an integer");
    }

    licence.expires = *expires;

    if (json_object_get(payload, "nbf") != nullptr) {
        auto notBefore = jsonInteger(payload, "nbf");

        if (!notBefore) {
            return malformed("\"nbf\" is not an integer");
        }

        licence.notBefore = *notBefore;
    }

    if (json_object_get(payload, "sub") != nullptr) {
        auto subject = jsonString(payload, "sub");

        if (!subject) {
            return malformed("\"sub\" is not a string");
        }

        licence.subject = std::move(*subject);
    }

    auto roleRules = readRoleRules(payload);

    if (!roleRules) {
        return fail(roleRules.error());
    }

    licence.roleRules = std::move(roleRules.value());

    return licence;
}

}  // namespace

bool
Licence::hasFeature(std::string_view name) const
{
    return std::find(features.begin(), features.end(), name)
        != features.end();
}

Result<Licence>
verifyLicence(std::string_view token, std::string_view publicKeyPem,
    int64_t now)
{
    auto jws = parseJws(trim(token));

    if (!jws) {
        return fail("licence is malformed");
    }

    /* the header is not trusted to choose the algorithm */
    if (jws->alg != "EdDSA") {
        return fail("licence algorithm is not \"EdDSA\"");
    }

    auto key = loadEd25519PublicKey(publicKeyPem);

    if (!key) {
        return fail("licence " + key.error());
    }

    if (!verifyEd25519(key->get(), jws->signingInput, jws->signature)) {
        return fail("licence signature is invalid");
    }

    auto licence = readClaims(jws->payload.get());

    if (!licence) {
        return licence;
    }

    if (now >= licence->expires) {
        return fail("licence expired on " + utcDate(licence->expires));
    }

    if (now < licence->notBefore) {
        return fail("licence is not valid before "
            + utcDate(licence->notBefore));
    }

    return licence;
}

}  // namespace nao
