/*
 * Signed cookie values: "<payload>.<mac>", where the MAC is HMAC-SHA256
 * over the payload, base64url. The first secret signs; every secret
 * verifies, so secrets can be rotated.
 */

#ifndef NAO_SSO_COOKIE_H
#define NAO_SSO_COOKIE_H

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

/*
 * payload must be base64url text; the result is cookie-safe. Empty when
 * the secret is empty or the MAC cannot be computed.
 */
std::string signCookieValue(std::string_view payload,
    std::string_view secret);

/*
 * the payload when some secret's MAC matches, else nullopt; empty
 * secrets in the list are skipped
 */
std::optional<std::string> verifyCookieValue(std::string_view value,
    const std::vector<std::string> &secrets);

/*
 * The value of the named cookie in one Cookie header value, or nullopt.
 * The first occurrence wins.
 */
std::optional<std::string_view> findCookie(std::string_view header,
    std::string_view name);

/*
 * The header value with every cookie whose name starts with one of the
 * prefixes removed; "; " separated.
 */
std::string removeCookies(std::string_view header,
    const std::vector<std::string_view> &prefixes);

}  // namespace nao

#endif
