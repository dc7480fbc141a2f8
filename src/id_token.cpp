/* the checks an Entra ID token must pass before it names a user */

#include "oidc.h"

#include "crypto.h"
#include "json.h"
#include "roles.h"
#include "settings.h"
#include "url.h"

namespace nao {

namespace {

std::string
quoted(std::string_view text)
{
    return "\"" + logSafe(text) + "\"";
}

bool
equalNoCase(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }

    for (size_t i = 0; i < a.size(); i++) {
        char x = a[i];
        char y = b[i];

        x = (x >= 'A' && x <= 'Z') ? static_cast<char>(x - 'A' + 'a') : x;
        y = (y >= 'A' && y <= 'Z') ? static_cast<char>(y - 'A' + 'a') : y;

        if (x != y) {
            return false;
        }
    }

    return true;
}

Status
checkSignature(const Jws &token, const Jwks &keys)
{
    if (token.alg != "RS256") {
        return fail("id token alg " + quoted(token.alg)
            + " is not allowed, only \"RS256\"");
    }

    auto key = keys.keys.find(token.kid);

    if (key == keys.keys.end() || !key->second) {
        auto refused = keys.refused.find(token.kid);

        if (refused != keys.refused.end()) {
            return fail("id token is signed with key id " + quoted(token.kid)
                + ", which was refused: " + refused->second);
        }

        return fail("id token is signed with unknown key id "
            + quoted(token.kid));
    }

    if (!verifyRs256(key->second.get(), token.signingInput,
            token.signature))
    {
        return fail("id token signature is invalid");
    }

    return Status::success();
}

Status
checkAudience(const json_t *claims, std::string_view clientId)
{
    const json_t *aud = json_object_get(claims, "aud");

    if (aud != nullptr && json_is_string(aud)) {
        std::string value = json_string_value(aud);

        if (value != clientId) {
            return fail("id token audience " + quoted(value)
                + " does not match client id " + quoted(clientId));
        }

        return Status::success();
    }

    if (aud == nullptr || !json_is_array(aud) || json_array_size(aud) == 0) {
        return fail("id token has no \"aud\"");
    }

    bool found = false;
    size_t index;
    json_t *entry;

    json_array_foreach(aud, index, entry) {
        if (json_is_string(entry) && json_string_value(entry) == clientId) {
            found = true;
        }
    }

    if (!found) {
        return fail("id token audience does not include client id "
            + quoted(clientId));
    }

    /* OIDC Core 3.1.3.7: several audiences need azp to name us */
    if (json_array_size(aud) > 1) {
        std::string azp = jsonString(claims, "azp").value_or("");

        if (azp != clientId) {
            return fail("id token azp " + quoted(azp)
                + " does not match client id " + quoted(clientId));
        }
    }

    return Status::success();
}

Status
checkTenant(const json_t *claims, std::string_view tenantId)
{
    /* a domain or "organizations" cannot be compared with the tid GUID */
    if (!isGuid(tenantId)) {
        return Status::success();
    }

    std::optional<std::string> tid = jsonString(claims, "tid");

    if (!tid) {
        return fail("id token has no \"tid\"");
    }

    if (!equalNoCase(*tid, tenantId)) {
        return fail("id token tenant " + quoted(*tid)
            + " does not match expected " + quoted(tenantId));
    }

    return Status::success();
}

Status
checkTimes(const json_t *claims, const IdTokenCheck &check)
{
    std::optional<int64_t> exp = jsonInteger(claims, "exp");

    if (!exp) {
        return fail("id token has no \"exp\"");
    }

    /* written so that a hostile exp or nbf cannot overflow */
    if (check.now - check.skew > *exp) {
        return fail("id token expired at " + std::to_string(*exp)
            + ", now is " + std::to_string(check.now));
    }

    std::optional<int64_t> nbf = jsonInteger(claims, "nbf");

    if (nbf && *nbf > check.now + check.skew) {
        return fail("id token is not valid before " + std::to_string(*nbf)
            + ", now is " + std::to_string(check.now));
    }

    if (json_object_get(claims, "nbf") != nullptr && !nbf) {
        return fail("id token \"nbf\" is not a number");
    }

    return Status::success();
}

Status
checkNonce(const json_t *claims, std::string_view expected)
{
    std::optional<std::string> nonce = jsonString(claims, "nonce");

    if (expected.empty()) {
        return fail("no nonce to check the id token against");
    }

    if (!nonce) {
        return fail("id token has no \"nonce\"");
    }

    if (!constantTimeEqual(*nonce, expected)) {
        return fail("id token nonce does not match the sign-in request");
    }

    return Status::success();
}

Status
checkClaims(const json_t *claims, const IdTokenCheck &check)
{
    std::optional<std::string> iss = jsonString(claims, "iss");

    if (!iss) {
        return fail("id token has no \"iss\"");
    }

    if (*iss != check.issuer) {
        return fail("id token issuer " + quoted(*iss)
            + " does not match expected " + quoted(check.issuer));
    }

    Status status = checkAudience(claims, check.clientId);

    if (status) {
        status = checkTenant(claims, check.tenantId);
    }

    if (status) {
        status = checkTimes(claims, check);
    }

    if (status) {
        status = checkNonce(claims, check.nonce);
    }

    return status;
}

/* the strings of an array claim; other entries and types are skipped */
std::vector<std::string>
stringArray(const json_t *claims, const char *name)
{
    const json_t *array = json_object_get(claims, name);
    std::vector<std::string> values;
    size_t index;
    const json_t *entry;

    json_array_foreach(array, index, entry) {
        if (json_is_string(entry)) {
            values.emplace_back(json_string_value(entry),
                json_string_length(entry));
        }
    }

    return values;
}

void
readAuthorization(const json_t *claims, Identity &identity)
{
    identity.groups = stringArray(claims, "groups");
    identity.appRoles = stringArray(claims, "roles");

    for (std::string &group : identity.groups) {
        group = asciiLower(group);
    }

    /* past 200 groups Entra points at Graph instead of listing them */
    const json_t *claimNames = json_object_get(claims, "_claim_names");
    bool groupsElsewhere = json_object_get(claims, "groups") == nullptr
        && json_is_object(claimNames)
        && json_object_get(claimNames, "groups") != nullptr;

    /* the implicit flow's signal for the same */
    identity.groupOverage = groupsElsewhere
        || json_is_true(json_object_get(claims, "hasgroups"));
}

}  // namespace

Result<Identity>
validateIdToken(const Jws &token, const Jwks &keys, const IdTokenCheck &check)
{
    Status status = checkSignature(token, keys);

    if (!status) {
        return Error{status.error()};
    }

    const json_t *claims = token.payload.get();

    if (claims == nullptr || !json_is_object(claims)) {
        return fail("id token payload is not a JSON object");
    }

    status = checkClaims(claims, check);

    if (!status) {
        return Error{status.error()};
    }

    Identity identity;

    identity.objectId = jsonString(claims, "oid").value_or("");

    if (identity.objectId.empty()) {
        return fail("id token has no \"oid\"");
    }

    std::optional<std::string> email = jsonString(claims, "email");

    if (!email || email->empty()) {
        email = jsonString(claims, "preferred_username");
    }

    identity.subject = jsonString(claims, "sub").value_or("");
    identity.email = email.value_or("");
    identity.name = jsonString(claims, "name").value_or("");
    identity.tenantId = jsonString(claims, "tid").value_or("");
    identity.expires = jsonInteger(claims, "exp").value_or(0);

    readAuthorization(claims, identity);

    return identity;
}

}  // namespace nao
