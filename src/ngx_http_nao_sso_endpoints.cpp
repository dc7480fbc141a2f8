/*
 * The /api/auth/ endpoints: the sign-in page, the redirect to Microsoft,
 * sign-out and get-session (the callback has its own file); and the
 * answer to a request that needs a session and has none.
 */

#include "ngx_http_nao_sso_flow.h"

#include "base64url.h"
#include "cookie.h"
#include "crypto.h"
#include "pages.h"
#include "url.h"


using namespace nao::flow;


namespace {


std::string
b64(const std::optional<std::string> &bytes)
{
    return nao::base64urlEncode(*bytes);
}


void
redirectToMicrosoft(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf, const std::string &returnTo)
{
    ngx_http_request_t *r = ctx->request;
    const nao::ProviderSettings &settings = sscf->state->settings;
    int64_t now = ngx_time();

    auto state = nao::randomBytes(nao::kIdBytes);
    auto nonce = nao::randomBytes(nao::kIdBytes);
    auto binding = nao::randomBytes(kBindingBytes);
    auto pkce = nao::makePkce();

    if (!state || !nonce || !binding || !pkce) {
        failIdp(ctx, "RAND_bytes() failed", returnTo);
        return;
    }

    nao::PendingSignIn pending;
    pending.binding = *binding;
    pending.nonce = b64(nonce);
    pending.verifier = pkce->verifier;
    pending.returnTo = returnTo;
    pending.redirectUri = redirectUri(r, sscf);
    pending.created = now;

    if (!ngx_http_nao_sso_store(r).putPending(*state, pending,
                                              now + sscf->signin_timeout,
                                              now))
    {
        failIdp(ctx, "no room in the nao_sso zone for a new sign-in",
                returnTo);
        return;
    }

    nao::AuthorizeRequest request;
    request.clientId = settings.clientId;
    request.redirectUri = pending.redirectUri;
    request.scope = nao::signInScope(settings.tokenScope);
    request.state = b64(state);
    request.nonce = pending.nonce;
    request.codeChallenge = pkce->challenge;

    /* after a refusal the user may pick another account */
    if (arg(r, "prompt").value_or("") == "select_account") {
        request.prompt = "select_account";
    }

    const nao::ProviderMetadata *meta = providerFor(sscf)->metadata();
    Reply reply = redirectReply(
        nao::authorizeUrl(meta->authorizationEndpoint, request));

    /* one cookie per sign-in, so that parallel sign-ins all complete */
    reply.cookies.push_back(sscf->state->bindingPrefix
                            + request.state.substr(0, kBindingNameChars)
                            + "=" + b64(binding)
                            + cookieAttributes(sscf, sscf->signin_timeout));

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "nao_sso: redirecting to the authorize endpoint");
    finish(ctx, reply);
}


void
startSignIn(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    std::string returnTo = nao::sanitizeReturnTo(
        arg(ctx->request, "return_to").value_or("/"));

    awaitMetadata(ctx, sscf,
        [ctx, sscf, returnTo] {
            redirectToMicrosoft(ctx, sscf, returnTo);
        },
        [ctx, returnTo](const std::string &problem) {
            failIdp(ctx, problem, returnTo);
        });
}


void
signInPage(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    std::string returnTo = nao::sanitizeReturnTo(
        arg(ctx->request, "return_to").value_or("/"));
    std::string password;

    if (sscf->password_login_url.data != nullptr) {
        password = std::string(nao::view(sscf->password_login_url));
    }

    Reply reply;
    reply.body = nao::signInPage(signInUrl(returnTo), password);
    finish(ctx, reply);
}


void
signOut(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    ngx_http_request_t *r = ctx->request;

    ngx_http_nao_sso_load_session(r, sscf, ctx);

    if (r->method != NGX_HTTP_POST) {
        Reply reply;
        reply.body = nao::signOutPage(kSignOut,
                                      ctx->session ? ctx->session->email
                                                   : std::string());
        finish(ctx, reply);
        return;
    }

    /* another site may not sign the user out behind their back */
    if (ngx_http_nao_sso_header(r, "sec-fetch-site") == "cross-site") {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: cross-site sign-out refused");

        nao::ErrorView view;
        view.status = NGX_HTTP_FORBIDDEN;
        view.error = "cross_site_sign_out";
        view.title = "Sign-out refused";
        view.message = "The sign-out request came from another site.";
        view.actionUrl = std::string(kSignOut);
        view.actionLabel = "Sign out here";
        finish(ctx, errorReply(r, view));
        return;
    }

    if (ctx->session) {
        ngx_http_nao_sso_forget_tokens(r, sscf, ctx->session->id);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: user \"%s\" signed out",
                      ctx->session->userId.c_str());
        ctx->session.reset();
    }

    std::string home = siteOrigin(r, sscf) + "/";
    std::string cookie = expiredCookie(sscf, sscf->state->sessionCookie);

    awaitMetadata(ctx, sscf,
        [ctx, sscf, home, cookie] {
            const nao::ProviderMetadata *meta = providerFor(sscf)->metadata();
            Reply reply = redirectReply(meta->endSessionEndpoint.empty()
                ? home : nao::endSessionUrl(meta->endSessionEndpoint, home));
            reply.cookies.push_back(cookie);
            finish(ctx, reply);
        },
        [ctx, cookie](const std::string &problem) {
            /* signed out here even if Microsoft cannot be told */
            ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                          "nao_sso: %s, signing out locally only",
                          problem.c_str());
            Reply reply = redirectReply("/");
            reply.cookies.push_back(cookie);
            finish(ctx, reply);
        });
}


void
getSession(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    ngx_http_request_t *r = ctx->request;

    ngx_http_nao_sso_load_session(r, sscf, ctx);

    if (!ctx->session) {
        finish(ctx, unauthenticated("no valid session"));
        return;
    }

    nao::SessionView view;
    view.userId = ctx->session->userId;
    view.email = ctx->session->email;
    view.name = ctx->session->name;
    view.role = ctx->session->role;
    view.tenantId = ctx->session->tenantId;
    view.expiresAt = ctx->sessionExpires;

    nao::SessionStore store = ngx_http_nao_sso_store(r);

    for (const nao::Downstream &downstream : sscf->state->downstream) {
        nao::TokenView &token = view.tokens.emplace_back();
        token.name = downstream.name;
        token.scope = downstream.scope;

        auto stored = store.getToken(
            nao::SessionStore::tokenKey(ctx->session->id, downstream.name),
            ngx_time());
        if (stored && stored->scope == downstream.scope) {
            token.audience = stored->audience;
            token.expiresAt = stored->expires;
        }
    }

    Reply reply;
    reply.type = "application/json";
    reply.body = nao::sessionJson(view);
    finish(ctx, reply);
}

}  // namespace


bool
ngx_http_nao_sso_is_endpoint(ngx_http_request_t *r)
{
    static const std::string_view prefix = "/api/auth/";

    return r->uri.len > prefix.size()
           && nao::view(r->uri).substr(0, prefix.size()) == prefix;
}


static void
ngx_http_nao_sso_not_allowed(ngx_http_nao_sso_ctx_t *ctx, bool post)
{
    Reply reply;

    reply.status = NGX_HTTP_NOT_ALLOWED;
    reply.type = "text/plain; charset=utf-8";
    reply.body = "method not allowed\n";

    if (!addHeader(ctx->request, "Allow", post ? "GET, HEAD, POST"
                                                : "GET, HEAD"))
    {
        reply.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    finish(ctx, reply);
}


/*
 * Serves an /api/auth/ endpoint of the module; NGX_DECLINED for any other
 * path under that prefix.
 */
ngx_int_t
ngx_http_nao_sso_endpoint(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx)
{
    using Handler = void (*)(ngx_http_nao_sso_ctx_t *,
                             ngx_http_nao_sso_srv_conf_t *);
    static const struct {
        std::string_view uri;
        Handler handler;
        bool post;
    } routes[] = {
        { kSignIn, signInPage, false },
        { kSignInMicrosoft, startSignIn, false },
        { kCallback, callback, false },
        { kSignOut, signOut, true },
        { kGetSession, getSession, false },
    };

    std::string_view uri = nao::view(r->uri);

    for (const auto &route : routes) {
        if (uri != route.uri) {
            continue;
        }

        ngx_int_t rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (route.handler == callback) {
            ngx_http_nao_sso_mask_callback(r, ctx);
        }

        bool allowed = (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))
                       || (route.post && r->method == NGX_HTTP_POST);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "nao_sso: endpoint \"%V\"", &r->uri);

        if (allowed) {
            guard(ctx, [&] { route.handler(ctx, serverConf(r)); });
        } else {
            ngx_http_nao_sso_not_allowed(ctx, route.post);
        }

        return NGX_DONE;
    }

    return NGX_DECLINED;
}


/* a request that needs a session and has none */
ngx_int_t
ngx_http_nao_sso_deny(ngx_http_request_t *r)
{
    ngx_http_nao_sso_ctx_t *ctx = ngx_http_nao_sso_ctx(r);

    if (ctx == nullptr) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_int_t rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    finish(ctx, needSignIn(r, "sign in to use this resource"));
    return NGX_DONE;
}
