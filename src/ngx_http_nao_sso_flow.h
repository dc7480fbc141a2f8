/*
 * The machinery the endpoints share: building and sending a reply,
 * waiting for the identity provider, failing plainly.
 */

#ifndef NGX_HTTP_NAO_SSO_FLOW_H
#define NGX_HTTP_NAO_SSO_FLOW_H

#include "ngx_http_nao_sso.h"
#include "pages.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace nao::flow {

inline constexpr std::string_view kSignIn = "/api/auth/sign-in";
inline constexpr std::string_view kSignInMicrosoft =
    "/api/auth/sign-in/microsoft";
inline constexpr std::string_view kCallback = "/api/auth/callback/microsoft";
inline constexpr std::string_view kSignOut = "/api/auth/sign-out";
inline constexpr std::string_view kGetSession = "/api/auth/get-session";

inline constexpr size_t kBindingBytes = 16;
inline constexpr size_t kBindingNameChars = 8;

struct Reply {
    ngx_uint_t status = NGX_HTTP_OK;
    std::string type = "text/html; charset=utf-8";
    std::string body;
    std::string location;
    std::vector<std::string> cookies;
    std::vector<std::pair<std::string, std::string>> headers;
};

using Step = std::function<void()>;
using Failure = std::function<void(const std::string &problem)>;

ngx_http_nao_sso_srv_conf_t *serverConf(ngx_http_request_t *r);
bool addHeader(ngx_http_request_t *r, std::string_view name,
    std::string_view value);

/* "https://host", from nao_sso_redirect_uri or the request */
std::string siteOrigin(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf);
std::string redirectUri(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf);

/* sends the reply and finalizes the request */
void finish(ngx_http_nao_sso_ctx_t *ctx, const Reply &reply);

Reply errorReply(ngx_http_request_t *r, const ErrorView &view);

/* "/api/auth/sign-in/microsoft?return_to=..." */
std::string signInUrl(const std::string &returnTo);

/* 401 JSON: {"error":"unauthenticated","signInUrl":...} */
Reply unauthenticated(const std::string &message,
    const std::string &error = "unauthenticated");
Reply redirectReply(std::string location);

/*
 * A request that needs a session it lacks: a browser navigation goes to
 * the sign-in page and back here; anything else gets the 401 JSON.
 */
Reply needSignIn(ngx_http_request_t *r, const std::string &message,
    const std::string &error = "unauthenticated");

std::string cookieAttributes(ngx_http_nao_sso_srv_conf_t *sscf,
    int64_t maxAge);
std::string expiredCookie(ngx_http_nao_sso_srv_conf_t *sscf,
    const std::string &name);

std::optional<std::string> arg(ngx_http_request_t *r, std::string_view name);
Provider *providerFor(ngx_http_nao_sso_srv_conf_t *sscf);

/* logs the problem at error and answers 502 */
void failIdp(ngx_http_nao_sso_ctx_t *ctx, const std::string &problem,
    const std::string &returnTo, const std::string &code = std::string());

void guard(ngx_http_nao_sso_ctx_t *ctx, const Step &step);
/* onTimeout, when set, replaces the default 502 at the deadline */
void await(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    ngx_event_handler_pt onTimeout = nullptr);
void resumed(ngx_http_nao_sso_ctx_t *ctx);

/* runs next once the discovery document is known, else fail */
void awaitMetadata(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf, Step next, Failure fail);

/* /api/auth/callback/microsoft */
void callback(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf);

/* the sign-in policy, then createSession() or a refusal */
void admit(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    Identity &&identity);

/* flags: "g" when the groups are still to be read */
void createSession(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf, const Identity &identity,
    const std::string &role, const std::string &flags);

}  // namespace nao::flow

#endif
