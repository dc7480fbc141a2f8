/*
 * The nao Enterprise licence: a compact JWS, {"alg":"EdDSA"}, signed with
 * Ed25519, whose payload carries "features", "exp" and optionally "nbf",
 * "sub" and "role_rules":
 *
 *     "role_rules": [{"group": "<group object id>", "role": "admin"},
 *                    {"app_role": "<app role value>", "role": "viewer"}]
 */

#ifndef NAO_SSO_LICENCE_H
#define NAO_SSO_LICENCE_H

#include "result.h"
#include "roles.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

struct Licence {
    std::string subject;
    std::vector<std::string> features;
    int64_t notBefore = 0;
    int64_t expires = 0;
    std::vector<RoleRule> roleRules;    /* in the licence's order */

    bool hasFeature(std::string_view name) const;
};

/*
 * Verifies the signature with the PEM Ed25519 public key and the dates
 * against now (seconds since the epoch). Errors read as a reason, e.g.
 * "licence signature is invalid", "licence expired on 2026-01-31",
 * "licence is not valid before 2027-01-01", "licence is malformed",
 * 'licence role_rules[1]: invalid role "boss", expected admin, member or
 * viewer'.
 * Surrounding white space in the token is ignored.
 */
Result<Licence> verifyLicence(std::string_view token,
    std::string_view publicKeyPem, int64_t now);

}  // namespace nao

#endif
