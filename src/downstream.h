/*
 * Downstream access tokens (nao_sso_downstream NAME SCOPE): their names,
 * a look inside them for the log, and the Microsoft Graph membership
 * pages read when Entra leaves the groups out of the ID token.
 */

#ifndef NAO_SSO_DOWNSTREAM_H
#define NAO_SSO_DOWNSTREAM_H

#include "result.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

struct TokenInfo {
    std::string audience;     /* "aud", or its first entry; may be empty */
    int64_t expires = 0;      /* "exp"; 0 when absent */
};

/*
 * Reads a JWT's payload WITHOUT checking its signature: the token is for
 * another resource, which checks it. For diagnostics only; anything that
 * is not a three-part JWT with a JSON object payload gives {}.
 */
TokenInfo peekAccessToken(std::string_view token);

/* "red_shift" -> "X-Nao-Token-Red-Shift" */
std::string tokenHeaderName(std::string_view name);

/*
 * 1 to 32 of [a-z0-9_], starting with a letter: the name also ends the
 * variable $nao_sso_token_<name>, and variables are lowercase.
 */
inline constexpr size_t kMaxDownstreamName = 32;

bool validDownstreamName(std::string_view name);

struct GroupPage {
    std::vector<std::string> groupIds;
    std::string nextLink;     /* "@odata.nextLink"; empty on the last page */
};

/*
 * One page of Graph's transitiveMemberOf answer. Only groups are kept
 * (entries without "@odata.type" too), so directory roles and
 * administrative units are dropped.
 */
Result<GroupPage> parseGroupPage(std::string_view body);

/* the first page's URL under graphBase, e.g. "https://graph.microsoft.com" */
std::string graphMembersUrl(std::string_view graphBase);

}  // namespace nao

#endif
