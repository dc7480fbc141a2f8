/* URL and query-string helpers, and the return_to rule */

#ifndef NAO_SSO_URL_H
#define NAO_SSO_URL_H

#include "result.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace nao {

/* percent-encodes everything but RFC 3986 unreserved characters */
std::string urlEncode(std::string_view text);

/* decodes %XX and "+"; nullopt on a broken escape or a decoded NUL */
std::optional<std::string> urlDecode(std::string_view text);

/*
 * The decoded value of the first "name=" parameter of a raw query string
 * (without the "?"), or nullopt when absent or undecodable.
 */
std::optional<std::string> queryParam(std::string_view query,
    std::string_view name);

/*
 * A decoded return_to is honoured only as a same-site path: it starts
 * with exactly one "/", has no "\" and no control characters, and is at
 * most 2048 bytes. Anything else becomes "/".
 */
std::string sanitizeReturnTo(std::string_view path);

/*
 * An IdP URL is acceptable when it is https://, or http:// to a loopback
 * host (127.0.0.0/8, localhost, [::1]); it has a host and no userinfo,
 * query or fragment. The error names the rule that failed.
 */
Status checkIdpUrl(std::string_view url);

/*
 * Outside text (a setting, an IdP document, a token claim) fit to quote
 * in a log line: bytes that are not printable ASCII, and '"' and '\',
 * become "?"; past limit bytes it is cut and ends in "...".
 */
std::string logSafe(std::string_view text, size_t limit = 128);

}  // namespace nao

#endif
