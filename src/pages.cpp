/*
 * The HTML pages and JSON bodies the module answers with. Pages are
 * self-contained: inline CSS, no script, no outside asset, so they render
 * under a strict Content-Security-Policy and with the IdP unreachable.
 */

#include "pages.h"

#include <ctime>

namespace nao {

namespace {

const char kStyle[] =
    "body{margin:0;background:#f3f4f6;color:#1f2328;"
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif}"
    "main{box-sizing:border-box;max-width:26rem;margin:12vh auto 2rem;"
    "padding:2rem;background:#fff;border:1px solid #d6dae0;"
    "border-radius:8px}"
    ".brand{margin:0 0 1.5rem;font-weight:700;letter-spacing:.04em;"
    "color:#57606a}"
    "h1{margin:0 0 1rem;font-size:1.35rem;line-height:1.3}"
    "p{margin:0 0 1rem}"
    "a{color:#0b5cad}"
    ".button{display:flex;box-sizing:border-box;width:100%;"
    "align-items:center;justify-content:center;gap:.6rem;"
    "padding:.7rem 1rem;border:0;border-radius:6px;background:#24292f;"
    "color:#fff;font:inherit;font-weight:600;text-decoration:none;"
    "cursor:pointer}"
    ".button:hover,.button:focus{background:#000}"
    ".alt{margin:1.25rem 0 0;text-align:center;font-size:.95rem}"
    ".code{color:#57606a;font-size:.9rem}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace}";

/* the four squares, drawn here so the page needs nothing from outside */
const char kMicrosoftLogo[] =
    "<svg width=\"20\" height=\"20\" viewBox=\"0 0 20 20\" "
    "aria-hidden=\"true\">"
    "<rect x=\"0\" y=\"0\" width=\"9\" height=\"9\" fill=\"#f25022\"/>"
    "<rect x=\"11\" y=\"0\" width=\"9\" height=\"9\" fill=\"#7fba00\"/>"
    "<rect x=\"0\" y=\"11\" width=\"9\" height=\"9\" fill=\"#00a4ef\"/>"
    "<rect x=\"11\" y=\"11\" width=\"9\" height=\"9\" fill=\"#ffb900\"/>"
    "</svg>";

std::string
page(std::string_view title, std::string_view body)
{
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
        "<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" "
        "content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"robots\" content=\"noindex\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "base-uri 'none'\">\n"
        "<title>";

    html += htmlEscape(title);
    html += "</title>\n<style>";
    html += kStyle;
    html += "</style>\n</head>\n<body>\n<main>\n"
        "<p class=\"brand\">nao</p>\n<h1>";
    html += htmlEscape(title);
    html += "</h1>\n";
    html += body;
    html += "</main>\n</body>\n</html>\n";

    return html;
}

/*
 * A link target is used as given unless it names a scheme other than
 * http or https: "javascript:" and "data:" must never reach an href.
 */
std::string
safeUrl(std::string_view url)
{
    size_t colon = url.find(':');
    size_t end = url.find_first_of("/?#");

    if (colon == std::string_view::npos || colon > end) {
        return htmlEscape(url);
    }

    std::string scheme(url.substr(0, colon));

    for (char &c : scheme) {
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }

    if (scheme == "https" || scheme == "http") {
        return htmlEscape(url);
    }

    return "#";
}

/* the length of the valid UTF-8 sequence at text[i], 0 when invalid */
size_t
utf8Length(std::string_view text, size_t i)
{
    auto at = [&](size_t k) {
        return static_cast<unsigned char>(text[k]);
    };
    unsigned char c = at(i);
    size_t length;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        low = (c == 0xe0) ? 0xa0 : 0x80;
        high = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        low = (c == 0xf0) ? 0x90 : 0x80;
        high = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if (i + length > text.size() || at(i + 1) < low || at(i + 1) > high) {
        return 0;
    }

    for (size_t k = i + 2; k < i + length; k++) {
        if (at(k) < 0x80 || at(k) > 0xbf) {
            return 0;
        }
    }

    return length;
}

std::string
member(const char *name, std::string_view value)
{
    return jsonQuote(name) + ":" + jsonQuote(value);
}

}  // namespace

std::string
htmlEscape(std::string_view text)
{
    std::string out;

    out.reserve(text.size());

    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }

    return out;
}

/*
 * Besides what JSON requires, "<", ">" and "&" are escaped so the text is
 * also safe inside HTML, and a byte that is not valid UTF-8 becomes
 * U+FFFD so the result always parses.
 */
std::string
jsonQuote(std::string_view text)
{
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";

    for (size_t i = 0; i < text.size(); i++) {
        unsigned char c = static_cast<unsigned char>(text[i]);

        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);

        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0x0f];

        } else if (c < 0x80) {
            out += static_cast<char>(c);

        } else if (size_t length = utf8Length(text, i)) {
            out += text.substr(i, length);
            i += length - 1;

        } else {
            out += "\\ufffd";
        }
    }

    out += '"';

    return out;
}

std::string
signInPage(std::string_view microsoftUrl, std::string_view passwordLoginUrl)
{
    std::string body = "<p>Use your work Microsoft account.</p>\n"
        "<p><a class=\"button\" href=\"";

    body += safeUrl(microsoftUrl);
    body += "\">";
    body += kMicrosoftLogo;
    body += "<span>Sign in with Microsoft</span></a></p>\n";

    if (!passwordLoginUrl.empty()) {
        body += "<p class=\"alt\"><a href=\"";
        body += safeUrl(passwordLoginUrl);
        body += "\">Sign in with email and password</a></p>\n";
    }

    return page("Sign in to nao", body);
}

std::string
signOutPage(std::string_view actionUrl, std::string_view email)
{
    std::string body;

    if (email.empty()) {
        body = "<p>Sign out of nao in this browser.</p>\n";

    } else {
        body = "<p>You are signed in as <strong>" + htmlEscape(email)
            + "</strong>.</p>\n";
    }

    body += "<form method=\"post\" action=\"";
    body += safeUrl(actionUrl);
    body += "\">\n<button class=\"button\" type=\"submit\">Sign out"
        "</button>\n</form>\n";

    return page("Sign out of nao", body);
}

std::string
errorPage(const ErrorView &view)
{
    std::string body = "<p>" + htmlEscape(view.message) + "</p>\n";

    if (!view.advice.empty()) {
        body += "<p>" + htmlEscape(view.advice) + "</p>\n";
    }

    if (!view.code.empty()) {
        body += "<p class=\"code\">Error code: <code>"
            + htmlEscape(view.code) + "</code></p>\n";
    }

    if (!view.actionUrl.empty()) {
        std::string label = view.actionLabel.empty()
            ? std::string("Try again") : view.actionLabel;

        body += "<p><a class=\"button\" href=\"" + safeUrl(view.actionUrl)
            + "\">" + htmlEscape(label) + "</a></p>\n";
    }

    return page(view.title.empty() ? "Sign-in could not be completed"
        : view.title, body);
}

std::string
errorJson(const ErrorView &view)
{
    std::string json = "{" + member("error", view.error) + ","
        + member("message", view.message);

    if (!view.code.empty()) {
        json += "," + member("code", view.code);
    }

    if (!view.actionUrl.empty()) {
        json += "," + member("signInUrl", view.actionUrl);
    }

    json += "}";

    return json;
}

std::string
sessionJson(const SessionView &view)
{
    std::string json = "{\"user\":{";

    json += member("id", view.userId) + ",";
    json += member("email", view.email) + ",";
    json += member("name", view.name) + ",";
    json += member("role", view.role) + ",";
    json += member("tenantId", view.tenantId) + "},";
    json += member("expiresAt", isoTime(view.expiresAt)) + ",\"tokens\":[";

    for (size_t i = 0; i < view.tokens.size(); i++) {
        const TokenView &token = view.tokens[i];
        bool obtained = token.expiresAt != 0;

        json += i == 0 ? "{" : ",{";
        json += member("name", token.name) + ",";
        json += member("scope", token.scope) + ",";
        json += obtained ? member("audience", token.audience)
                         : std::string("\"audience\":null");
        json += ",";
        json += obtained ? member("expiresAt", isoTime(token.expiresAt))
                         : std::string("\"expiresAt\":null");
        json += "}";
    }

    json += "]}";
    return json;
}

std::string
isoTime(int64_t seconds)
{
    std::time_t time = static_cast<std::time_t>(seconds);
    std::tm parts;
    char text[64];

    if (gmtime_r(&time, &parts) == nullptr) {
        return {};
    }

    if (std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts)
        == 0)
    {
        return {};
    }

    return text;
}

}  // namespace nao
