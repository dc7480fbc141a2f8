/* base64url without padding (RFC 4648 section 5), as JOSE and cookies use */

#ifndef NAO_SSO_BASE64URL_H
#define NAO_SSO_BASE64URL_H

#include <optional>
#include <string>
#include <string_view>

namespace nao {

std::string base64urlEncode(std::string_view data);

/*
 * Strict: rejects padding, characters outside the url-safe alphabet, a
 * length of 1 mod 4 and non-zero trailing bits.
 */
std::optional<std::string> base64urlDecode(std::string_view text);

}  // namespace nao

#endif
