/* signed cookie values and Cookie header handling */

#include "cookie.h"

#include "base64url.h"
#include "crypto.h"
#include "text.h"

namespace nao {

namespace {

constexpr size_t kMacSize = 32;

/* cookie pairs are separated by "; ", and only blanks are trimmed */
constexpr std::string_view kBlanks = " \t";

bool
isBase64url(std::string_view text)
{
    for (char c : text) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_';

        if (!ok) {
            return false;
        }
    }

    return true;
}

/*
 * Calls visit(pair, name, value, hasEquals) for every non-empty pair,
 * each trimmed of blanks; a pair without "=" is all name. Browsers send
 * such pairs, and worse, so nothing here is an error. Stops early when
 * visit returns false.
 */
template <typename Visit>
void
forEachPair(std::string_view header, Visit visit)
{
    while (!header.empty()) {
        size_t semicolon = header.find(';');
        std::string_view pair = trim(header.substr(0, semicolon), kBlanks);

        header = semicolon == std::string_view::npos
            ? std::string_view() : header.substr(semicolon + 1);

        if (pair.empty()) {
            continue;
        }

        size_t equals = pair.find('=');
        std::string_view name = trim(pair.substr(0, equals), kBlanks);
        std::string_view value = equals == std::string_view::npos
            ? std::string_view() : trim(pair.substr(equals + 1), kBlanks);

        if (!visit(pair, name, value, equals != std::string_view::npos)) {
            return;
        }
    }
}

}  // namespace

std::string
signCookieValue(std::string_view payload, std::string_view secret)
{
    /* verification ignores empty secrets, so signing refuses them too */
    if (secret.empty()) {
        return std::string();
    }

    std::string mac = hmacSha256(secret, payload);

    if (mac.size() != kMacSize) {
        return std::string();
    }

    std::string value(payload);
    value += '.';
    value += base64urlEncode(mac);

    return value;
}

std::optional<std::string>
verifyCookieValue(std::string_view value,
    const std::vector<std::string> &secrets)
{
    size_t dot = value.find('.');

    if (dot == std::string_view::npos
        || value.find('.', dot + 1) != std::string_view::npos)
    {
        return std::nullopt;
    }

    std::string_view payload = value.substr(0, dot);
    auto mac = base64urlDecode(value.substr(dot + 1));

    if (!isBase64url(payload) || !mac || mac->size() != kMacSize) {
        return std::nullopt;
    }

    for (const std::string &secret : secrets) {
        /* an empty secret is a configuration slip, never a key */
        if (secret.empty()) {
            continue;
        }

        if (constantTimeEqual(hmacSha256(secret, payload), *mac)) {
            return std::string(payload);
        }
    }

    return std::nullopt;
}

std::optional<std::string_view>
findCookie(std::string_view header, std::string_view name)
{
    std::optional<std::string_view> found;

    if (name.empty()) {
        return found;
    }

    forEachPair(header, [&](std::string_view, std::string_view pairName,
                    std::string_view value, bool hasEquals) {
        if (hasEquals && pairName == name) {
            found = value;
            return false;
        }

        return true;
    });

    return found;
}

std::string
removeCookies(std::string_view header,
    const std::vector<std::string_view> &prefixes)
{
    std::string out;

    forEachPair(header, [&](std::string_view pair, std::string_view name,
                    std::string_view, bool) {
        for (std::string_view prefix : prefixes) {
            if (name.substr(0, prefix.size()) == prefix) {
                return true;
            }
        }

        if (!out.empty()) {
            out += "; ";
        }

        out += pair;

        return true;
    });

    return out;
}

}  // namespace nao
