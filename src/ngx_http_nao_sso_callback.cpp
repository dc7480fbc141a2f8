/*
 * /api/auth/callback/microsoft: Microsoft sends the browser back here.
 *
 *  1. An error from Microsoft: a page that names the AADSTS code.
 *  2. The state must be one we issued, unused, unexpired, and started by
 *     this browser (its binding cookie); else 400 and a way to start over.
 *  3. The code is exchanged at the token endpoint with the client secret
 *     and the PKCE verifier.
 *  4. The ID token is verified against Entra's keys, refetched once when
 *     it names an unknown key.
 *  5. A session is created and the browser goes to return_to.
 */

#include "ngx_http_nao_sso_flow.h"
#include "ngx_http_nao_sso_tokens.h"

#include "base64url.h"
#include "cookie.h"
#include "crypto.h"
#include "url.h"

namespace nao::flow {

namespace {

std::string
returnToOf(ngx_http_nao_sso_ctx_t *ctx)
{
    return ctx->pending.returnTo.empty() ? "/" : ctx->pending.returnTo;
}


Reply
stateProblem(ngx_http_request_t *r)
{
    ErrorView view;

    view.status = NGX_HTTP_BAD_REQUEST;
    view.error = "invalid_state";
    view.title = "This sign-in has expired";
    view.message = "The sign-in took too long, was already completed, or "
                   "was started in another browser.";
    view.advice = "Start the sign-in again.";
    view.actionUrl = std::string(kSignInMicrosoft);
    view.actionLabel = "Start again";

    return errorReply(r, view);
}


void
microsoftRefused(ngx_http_nao_sso_ctx_t *ctx, const std::string &error)
{
    ngx_http_request_t *r = ctx->request;
    std::string description = arg(r, "error_description").value_or("");
    AuthErrorAdvice advice = adviseOnAuthError(error, description,
                                               redirectUri(r, serverConf(r)));

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "nao_sso: microsoft refused the sign-in: \"%s\"",
                  advice.code.empty() ? "unrecognised error"
                                      : advice.code.c_str());

    ErrorView view;
    view.status = NGX_HTTP_FORBIDDEN;
    view.error = "sign_in_refused";
    view.title = advice.title;
    view.message = "Microsoft did not sign you in.";
    view.advice = advice.advice;
    view.code = advice.code;
    view.actionUrl = signInUrl(returnToOf(ctx));
    view.actionLabel = "Try again";

    finish(ctx, errorReply(r, view));
}


/* takes the sign-in named by the state; single use */
bool
claimState(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    const std::string &stateText)
{
    ngx_http_request_t *r = ctx->request;
    auto state = base64urlDecode(stateText);

    if (!state || state->size() != kIdBytes) {
        return false;
    }

    auto pending = ngx_http_nao_sso_store(r).takePending(*state, ngx_time());
    if (!pending) {
        return false;
    }

    std::string name = sscf->state->bindingPrefix
                       + stateText.substr(0, kBindingNameChars);
    auto cookie = findCookie(view(ctx->cookies), name);
    auto binding = cookie ? base64urlDecode(*cookie) : std::nullopt;

    if (!binding || !constantTimeEqual(*binding, pending->binding)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: sign-in callback from a browser that did "
                      "not start it");
        return false;
    }

    ctx->pending = std::move(*pending);
    ctx->bindingCookie = std::move(name);
    return true;
}


std::string
clean(std::string_view text)
{
    std::string out;

    /* claims become header values: no control characters */
    for (char ch : text) {
        if (static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f) {
            out += ch;
        }
    }

    return out;
}




void
rejectIdToken(ngx_http_nao_sso_ctx_t *ctx, const std::string &problem)
{
    ngx_http_request_t *r = ctx->request;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "nao_sso: id token rejected: %s", problem.c_str());

    ErrorView view;
    view.status = NGX_HTTP_BAD_GATEWAY;
    view.error = "invalid_id_token";
    view.title = "Microsoft's answer could not be verified";
    view.message = "The identity token returned by Microsoft failed "
                   "verification, so you were not signed in.";
    view.advice = "Try again. If it keeps failing, ask your administrator "
                  "to check the nginx error log.";
    view.actionUrl = signInUrl(returnToOf(ctx));
    view.actionLabel = "Try again";

    finish(ctx, errorReply(r, view));
}


void verifyIdToken(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf);


void
refetchKeys(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    Provider *provider, bool forKidMiss)
{
    ctx->keysRefetched = true;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "nao_sso: fetching the signing keys");

    uint64_t waiter = provider->fetchKeys(
        [ctx, sscf, provider](const std::string &problem) {
            resumed(ctx);
            guard(ctx, [&] {
                if (!problem.empty()) {
                    ngx_log_error(NGX_LOG_WARN,
                                  ctx->request->connection->log, 0,
                                  "nao_sso: %s", problem.c_str());
                }

                if (provider->keys() == nullptr) {
                    failIdp(ctx, "no signing keys: " + problem,
                            returnToOf(ctx));
                    return;
                }

                verifyIdToken(ctx, sscf);
            });
        },
        ngx_time(), forKidMiss);

    if (waiter == 0) {
        failIdp(ctx, "cannot start the signing keys request",
                returnToOf(ctx));
        return;
    }

    ctx->waiter = waiter;
    ctx->provider = provider;
    await(ctx, sscf);
}


void
verifyIdToken(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    Provider *provider = providerFor(sscf);
    const ProviderSettings &settings = sscf->state->settings;
    int64_t now = ngx_time();

    auto jws = parseJws(ctx->tokens->idToken);
    if (!jws) {
        rejectIdToken(ctx, jws.error());
        return;
    }

    const Jwks *keys = provider->keys();
    bool known = keys != nullptr && keys->keys.count(jws->kid) != 0;

    /* only a token that could verify is worth a refetch of the keys */
    bool plausible = jws->alg == "RS256" && !jws->kid.empty();

    if (!ctx->keysRefetched
        && (keys == nullptr || !provider->keysFresh(now)
            || (!known && plausible && provider->mayRefetchForKid(now))))
    {
        refetchKeys(ctx, sscf, provider, keys != nullptr && !known);
        return;
    }

    IdTokenCheck check;
    check.issuer = provider->metadata()->issuer;
    check.clientId = settings.clientId;
    check.tenantId = settings.tenantId;
    check.nonce = ctx->pending.nonce;
    check.now = now;

    auto identity = validateIdToken(jws.value(), keys ? *keys : Jwks(),
                                    check);
    if (!identity) {
        rejectIdToken(ctx, identity.error());
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "nao_sso: id token verified");
    admit(ctx, sscf, std::move(identity.value()));
}


void
onTokens(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    HttpResponse &&response)
{
    ngx_http_request_t *r = ctx->request;

    if (!response.transportOk()) {
        failIdp(ctx, "token endpoint: " + response.error, returnToOf(ctx));
        return;
    }

    TokenOutcome outcome = parseTokenResponse(response.status,
                                              response.body);
    if (outcome.tokens) {
        ctx->tokens = std::move(outcome.tokens);
        verifyIdToken(ctx, sscf);
        return;
    }

    /* a 5xx is an outage, whatever error body came with it */
    if (!outcome.idpError || response.status >= 500) {
        failIdp(ctx, outcome.problem, returnToOf(ctx),
                outcome.idpError ? outcome.idpError->code : std::string());
        return;
    }

    const IdpError &error = *outcome.idpError;
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "nao_sso: token endpoint refused the code: \"%s\" (%s)",
                  error.error.c_str(),
                  error.code.empty() ? "no code" : error.code.c_str());

    ErrorView view;
    view.status = NGX_HTTP_BAD_GATEWAY;
    view.error = "token_exchange_failed";
    view.title = "Microsoft refused to complete the sign-in";
    view.message = "Microsoft did not accept the sign-in code.";
    view.advice = "Start the sign-in again. If it keeps failing, ask your "
                  "administrator to check the application registration.";
    view.code = error.code.empty() ? error.error : error.code;
    view.actionUrl = signInUrl(returnToOf(ctx));
    view.actionLabel = "Start again";

    finish(ctx, errorReply(r, view));
}


void
exchangeCode(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    const ProviderSettings &settings = sscf->state->settings;

    CodeExchange exchange;
    exchange.clientId = settings.clientId;
    exchange.clientSecret = settings.clientSecret;
    exchange.code = ctx->code;
    exchange.redirectUri = ctx->pending.redirectUri;
    exchange.codeVerifier = ctx->pending.verifier;
    exchange.scope = signInScope(settings.tokenScope);

    HttpRequest request;
    request.url = providerFor(sscf)->metadata()->tokenEndpoint;
    request.form = codeExchangeBody(exchange);
    request.timeoutMs = static_cast<long>(sscf->timeout);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "nao_sso: exchanging the code");

    ctx->transfer = worker->client.start(request,
        [ctx, sscf](HttpResponse &&response) {
            resumed(ctx);
            guard(ctx, [&] { onTokens(ctx, sscf, std::move(response)); });
        });

    if (ctx->transfer == 0) {
        failIdp(ctx, "cannot start the token request", returnToOf(ctx));
        return;
    }

    await(ctx, sscf);
}

}  // namespace


void
createSession(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    const Identity &identity, const std::string &role,
    const std::string &flags)
{
    ngx_http_request_t *r = ctx->request;
    SessionStore store = ngx_http_nao_sso_store(r);
    int64_t now = ngx_time();

    auto id = randomBytes(kIdBytes);

    SessionData session;
    session.userId = clean(identity.objectId);
    session.email = clean(identity.email);
    session.name = clean(identity.name);
    session.role = role;
    session.flags = flags;

    for (const std::string &appRole : identity.appRoles) {
        session.appRoles += (session.appRoles.empty() ? "" : "\n")
                            + clean(appRole);
    }
    session.tenantId = clean(identity.tenantId);
    session.scope = sscf->state->sessionScope;
    session.created = now;

    /* kept sealed, bound to this session id */
    if (id && !ctx->tokens->refreshToken.empty()) {
        auto sealed = seal(worker->sealKeys.front(),
                           ctx->tokens->refreshToken,
                           refreshTokenBinding(*id));
        session.sealedRefresh = sealed ? std::move(*sealed) : std::string();
    }
    session.expires = now + std::min<int64_t>(sscf->idle_timeout,
                                              sscf->max_age);

    if (!id || !store.putSession(*id, session, now)) {
        failIdp(ctx, "no room in the nao_sso zone for a new session",
                returnToOf(ctx));
        return;
    }

    ngx_http_nao_sso_store_login_tokens(r, sscf, *id, *ctx->tokens);

    /* the browser may still hold an older session: it ends here */
    ngx_http_nao_sso_load_session(r, sscf, ctx);
    if (ctx->session) {
        ngx_http_nao_sso_forget_tokens(r, sscf, ctx->session->id);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "nao_sso: user \"%s\" signed in as \"%s\"",
                  session.userId.c_str(), session.role.c_str());

    std::string value = signCookieValue(base64urlEncode(*id),
                                        worker->secrets.front());

    Reply reply = redirectReply(returnToOf(ctx));
    reply.cookies.push_back(sscf->state->sessionCookie + "=" + value
                            + cookieAttributes(sscf, sscf->max_age));
    reply.cookies.push_back(expiredCookie(sscf, ctx->bindingCookie));
    finish(ctx, reply);
}


void
callback(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    ngx_http_request_t *r = ctx->request;
    auto error = arg(r, "error");
    auto state = arg(r, "state");

    bool claimed = state && claimState(ctx, sscf, *state);

    if (error) {
        microsoftRefused(ctx, *error);
        return;
    }

    if (!claimed) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: sign-in state is missing, unknown, "
                      "expired or already used");
        finish(ctx, stateProblem(r));
        return;
    }

    auto code = arg(r, "code");
    if (!code || code->empty()) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: sign-in callback without a code");
        finish(ctx, stateProblem(r));
        return;
    }

    ctx->code = std::move(*code);

    awaitMetadata(ctx, sscf,
        [ctx, sscf] { exchangeCode(ctx, sscf); },
        [ctx](const std::string &problem) {
            failIdp(ctx, problem, returnToOf(ctx));
        });
}

}  // namespace nao::flow
