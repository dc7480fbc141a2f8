/* URL and query-string helpers, and the return_to rule */

#include "url.h"

#include <cstddef>

namespace nao {

namespace {

constexpr size_t kMaxReturnTo = 2048;

bool
isUnreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~';
}

int
hexValue(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}

bool
isControl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

bool
hasPrefixNoCase(std::string_view text, std::string_view prefix)
{
    if (text.size() < prefix.size()) {
        return false;
    }

    for (size_t i = 0; i < prefix.size(); i++) {
        char c = text[i];

        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }

        if (c != prefix[i]) {
            return false;
        }
    }

    return true;
}

bool
returnToShapeOk(std::string_view path)
{
    if (path.empty() || path.size() > kMaxReturnTo || path[0] != '/') {
        return false;
    }

    if (path.size() > 1 && path[1] == '/') {
        return false;
    }

    for (unsigned char c : path) {
        if (c == '\\' || isControl(c)) {
            return false;
        }
    }

    return true;
}

/* a decimal number in [0, max], no sign, no leading "+" */
bool
isDecimalUpTo(std::string_view text, unsigned long max)
{
    unsigned long value = 0;

    if (text.empty() || text.size() > 5) {
        return false;
    }

    for (char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }

        value = value * 10 + static_cast<unsigned long>(c - '0');
    }

    return value <= max;
}

bool
isLoopbackIpv4(std::string_view host)
{
    int octets = 0;

    while (!host.empty()) {
        size_t dot = host.find('.');
        std::string_view part = host.substr(0, dot);

        if (part.size() > 3 || !isDecimalUpTo(part, 255)) {
            return false;
        }

        if (octets == 0 && part != "127") {
            return false;
        }

        octets++;

        if (dot == std::string_view::npos) {
            break;
        }

        host.remove_prefix(dot + 1);

        if (host.empty()) {
            return false;
        }
    }

    return octets == 4;
}

bool
isLoopbackHost(std::string_view host)
{
    if (host == "[::1]" || isLoopbackIpv4(host)) {
        return true;
    }

    return host.size() == 9 && hasPrefixNoCase(host, "localhost");
}

bool
isHostName(std::string_view host)
{
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') {
            return false;
        }

        for (char c : host.substr(1, host.size() - 2)) {
            if (hexValue(c) < 0 && c != ':' && c != '.') {
                return false;
            }
        }

        return true;
    }

    for (char c : host) {
        if (!isUnreserved(static_cast<unsigned char>(c)) || c == '_'
            || c == '~')
        {
            return false;
        }
    }

    return true;
}

/* splits "host[:port]" with a bracketed IPv6 host in mind */
Status
splitAuthority(std::string_view authority, std::string_view *host)
{
    size_t colon;

    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');

        colon = (close == std::string_view::npos) ? close : close + 1;

        if (colon < authority.size() && authority[colon] != ':') {
            return fail("URL has an invalid host");
        }

    } else {
        colon = authority.find(':');
    }

    *host = authority.substr(0, colon);

    if (host->empty()) {
        return fail("URL has no host");
    }

    if (colon < authority.size()
        && !isDecimalUpTo(authority.substr(colon + 1), 65535))
    {
        return fail("URL has an invalid port");
    }

    if (!isHostName(*host)) {
        return fail("URL has an invalid host");
    }

    return Status::success();
}

}  // namespace

std::string
urlEncode(std::string_view text)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;

    out.reserve(text.size() * 3);

    for (unsigned char c : text) {
        if (isUnreserved(c)) {
            out += static_cast<char>(c);
            continue;
        }

        out += '%';
        out += hex[c >> 4];
        out += hex[c & 0x0f];
    }

    return out;
}

std::optional<std::string>
urlDecode(std::string_view text)
{
    std::string out;

    out.reserve(text.size());

    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];

        if (c == '+') {
            c = ' ';

        } else if (c == '%') {
            if (i + 2 >= text.size()) {
                return std::nullopt;
            }

            int high = hexValue(text[i + 1]);
            int low = hexValue(text[i + 2]);

            if (high < 0 || low < 0) {
                return std::nullopt;
            }

            c = static_cast<char>(high * 16 + low);
            i += 2;
        }

        if (c == '\0') {
            return std::nullopt;
        }

        out += c;
    }

    return out;
}

std::optional<std::string>
queryParam(std::string_view query, std::string_view name)
{
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        size_t eq = pair.find('=');

        if (eq != std::string_view::npos) {
            std::optional<std::string> key = urlDecode(pair.substr(0, eq));

            if (key && *key == name) {
                return urlDecode(pair.substr(eq + 1));
            }
        }

        if (amp == std::string_view::npos) {
            break;
        }

        query.remove_prefix(amp + 1);
    }

    return std::nullopt;
}

std::string
sanitizeReturnTo(std::string_view path)
{
    if (!returnToShapeOk(path)) {
        return "/";
    }

    /*
     * Anything downstream that decodes the path once more must not find
     * "//", "\" or a line break in it either. The query is left alone:
     * an encoded line break there is ordinary (a SQL text, say).
     */
    std::string_view pathOnly = path.substr(0, path.find_first_of("?#"));

    if (pathOnly.find('%') != std::string_view::npos) {
        std::optional<std::string> again = urlDecode(pathOnly);

        if (again && !returnToShapeOk(*again)) {
            return "/";
        }
    }

    return std::string(path);
}

Status
checkIdpUrl(std::string_view url)
{
    bool secure;
    std::string_view host;

    for (unsigned char c : url) {
        if (isControl(c) || c == ' ' || c >= 0x80) {
            return fail("URL contains white space or a non-ASCII character");
        }
    }

    if (hasPrefixNoCase(url, "https://")) {
        secure = true;
        url.remove_prefix(8);

    } else if (hasPrefixNoCase(url, "http://")) {
        secure = false;
        url.remove_prefix(7);

    } else {
        return fail("URL must be https, or http to a loopback host");
    }

    if (url.find('?') != std::string_view::npos) {
        return fail("URL must not have a query");
    }

    if (url.find('#') != std::string_view::npos) {
        return fail("URL must not have a fragment");
    }

    std::string_view authority = url.substr(0, url.find('/'));

    if (authority.find('@') != std::string_view::npos) {
        return fail("URL must not carry user information");
    }

    if (authority.find('\\') != std::string_view::npos) {
        return fail("URL has an invalid host");
    }

    Status split = splitAuthority(authority, &host);

    if (!split) {
        return split;
    }

    if (!secure && !isLoopbackHost(host)) {
        return fail("URL must be https, or http to a loopback host");
    }

    return Status::success();
}

std::string
logSafe(std::string_view text, size_t limit)
{
    std::string out;
    bool cut = text.size() > limit;

    text = text.substr(0, limit);
    out.reserve(text.size() + 3);

    for (unsigned char c : text) {
        bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';

        out += plain ? static_cast<char>(c) : '?';
    }

    if (cut) {
        out += "...";
    }

    return out;
}

}  // namespace nao
