/* the HTML pages and JSON bodies the module answers with */

#ifndef NAO_SSO_PAGES_H
#define NAO_SSO_PAGES_H

#include <cstdint>
#include <string>
#include <vector>
#include <string_view>

namespace nao {

std::string htmlEscape(std::string_view text);

/* a JSON string literal, quotes included */
std::string jsonQuote(std::string_view text);

/* passwordLoginUrl empty: no link to nao's own login */
std::string signInPage(std::string_view microsoftUrl,
    std::string_view passwordLoginUrl);

/* a form that POSTs to actionUrl */
std::string signOutPage(std::string_view actionUrl, std::string_view email);

struct ErrorView {
    int status = 500;
    std::string error;          /* machine slug, e.g. "invalid_state" */
    std::string title;          /* "Sign-in could not be completed" */
    std::string message;        /* what happened, plain words */
    std::string advice;         /* what to do, may be empty */
    std::string code;           /* e.g. "AADSTS50105", may be empty */
    std::string actionUrl;      /* e.g. a "start again" link, may be empty */
    std::string actionLabel;
};

std::string errorPage(const ErrorView &view);

/* {"error":...,"message":...[,"code":...][,"signInUrl":...]} */
std::string errorJson(const ErrorView &view);

/* what get-session says of a downstream token: never the token itself */
struct TokenView {
    std::string name;           /* empty for the default token */
    std::string scope;
    std::string audience;
    int64_t expiresAt = 0;      /* 0 when not obtained yet */
};

struct SessionView {
    std::string userId;
    std::string email;
    std::string name;
    std::string role;
    std::string tenantId;
    int64_t expiresAt = 0;      /* seconds since the epoch */
    std::vector<TokenView> tokens;
};

/*
 * {"user":{"id","email","name","role","tenantId"},"expiresAt":"<ISO 8601
 * UTC>","tokens":[{"name","scope","audience","expiresAt"}]}; a token not
 * obtained yet has null audience and expiresAt
 */
std::string sessionJson(const SessionView &view);

/* seconds since the epoch as "2026-12-03T16:08:43Z" */
std::string isoTime(int64_t seconds);

}  // namespace nao

#endif
