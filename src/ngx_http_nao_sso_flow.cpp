/*
 * The machinery the endpoints share: replies, cookies, and waiting for
 * the identity provider without blocking the worker.
 *
 * Steps that wait register a continuation and return; the request's pool
 * cleanup cancels it if the client goes away. Every step ends in
 * finish(), which finalizes the request.
 */

#include "ngx_http_nao_sso_flow.h"

#include "url.h"

namespace nao::flow {

ngx_http_nao_sso_srv_conf_t *
serverConf(ngx_http_request_t *r)
{
    return static_cast<ngx_http_nao_sso_srv_conf_t *>(
        ngx_http_get_module_srv_conf(r, ngx_http_nao_sso_module));
}


bool
addHeader(ngx_http_request_t *r, std::string_view name,
    std::string_view value)
{
    auto *h = static_cast<ngx_table_elt_t *>(
        ngx_list_push(&r->headers_out.headers));
    if (h == nullptr) {
        return false;
    }

    h->hash = 1;
    h->key = nao::poolString(r->pool, name);
    h->value = nao::poolString(r->pool, value);

    return h->key.data != nullptr && h->value.data != nullptr;
}


namespace {


ngx_int_t
send(ngx_http_request_t *r, const Reply &reply)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;
    ngx_int_t     rc;

    r->headers_out.status = reply.status;
    r->headers_out.content_length_n = reply.body.size();
    r->headers_out.content_type = nao::poolString(r->pool, reply.type);
    r->headers_out.content_type_len = reply.type.size();
    r->headers_out.content_type_lowcase = nullptr;

    /* our pages are never framed, cached, sniffed or referred from */
    bool ok = r->headers_out.content_type.data != nullptr
              && addHeader(r, "Cache-Control", "no-store")
              && addHeader(r, "X-Content-Type-Options", "nosniff")
              && addHeader(r, "Referrer-Policy", "no-referrer")
              && addHeader(r, "Content-Security-Policy",
                           "frame-ancestors 'none'");

    if (!reply.location.empty()) {
        ok = ok && addHeader(r, "Location", reply.location);
    }

    for (const std::string &cookie : reply.cookies) {
        ok = ok && addHeader(r, "Set-Cookie", cookie);
    }

    for (const auto &[name, value] : reply.headers) {
        ok = ok && addHeader(r, name, value);
    }

    if (!ok) {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (reply.body.empty()) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    b = ngx_create_temp_buf(r->pool, reply.body.size());
    if (b == nullptr) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, reply.body.data(), reply.body.size());
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = nullptr;

    return ngx_http_output_filter(r, &out);
}

}  // namespace


/* the end of every endpoint, whether it ran at once or after waiting */
void
finish(ngx_http_nao_sso_ctx_t *ctx, const Reply &reply)
{
    ngx_http_request_t *r = ctx->request;
    ngx_connection_t *c = r->connection;
    bool waited = ctx->waited;

    ngx_int_t rc = send(r, reply);
    ngx_http_finalize_request(r, rc);

    if (waited) {
        ngx_http_run_posted_requests(c);
    }
}


std::string
cookieAttributes(ngx_http_nao_sso_srv_conf_t *sscf, int64_t maxAge)
{
    std::string attributes = "; Path=/; Max-Age=" + std::to_string(maxAge)
                             + "; HttpOnly; SameSite=Lax";

    if (sscf->cookie_secure) {
        attributes += "; Secure";
    }

    return attributes;
}


std::string
expiredCookie(ngx_http_nao_sso_srv_conf_t *sscf, const std::string &name)
{
    return name + "=" + cookieAttributes(sscf, 0);
}


Reply
errorReply(ngx_http_request_t *r, const nao::ErrorView &view)
{
    Reply reply;

    reply.status = view.status;

    if (ngx_http_nao_sso_is_navigation(r)) {
        reply.body = nao::errorPage(view);

    } else {
        reply.type = "application/json";
        reply.body = nao::errorJson(view);
    }

    return reply;
}


std::string
signInUrl(const std::string &returnTo)
{
    return std::string(kSignInMicrosoft) + "?return_to="
           + nao::urlEncode(returnTo);
}


Reply
unauthenticated(const std::string &message, const std::string &error)
{
    nao::ErrorView view;
    view.status = NGX_HTTP_UNAUTHORIZED;
    view.error = error;
    view.message = message;
    view.actionUrl = std::string(kSignInMicrosoft);

    Reply reply;
    reply.status = view.status;
    reply.type = "application/json";
    reply.body = nao::errorJson(view);

    return reply;
}


Reply
redirectReply(std::string location)
{
    Reply reply;

    reply.status = NGX_HTTP_MOVED_TEMPORARILY;
    reply.location = std::move(location);
    return reply;
}


Reply
needSignIn(ngx_http_request_t *r, const std::string &message,
    const std::string &error)
{
    if (!ngx_http_nao_sso_is_navigation(r)) {
        return unauthenticated(message, error);
    }

    std::string target = nao::sanitizeReturnTo(
        std::string(nao::view(r->unparsed_uri)));

    return redirectReply(std::string(kSignIn) + "?return_to="
                         + nao::urlEncode(target));
}


std::string
siteOrigin(ngx_http_request_t *r, ngx_http_nao_sso_srv_conf_t *sscf)
{
    if (sscf->redirect_uri.data != nullptr) {
        std::string_view uri = nao::view(sscf->redirect_uri);
        size_t scheme = uri.find("://");
        size_t path = uri.find('/', scheme == uri.npos ? 0 : scheme + 3);

        return std::string(uri.substr(0, path));
    }

    std::string origin = r->connection->ssl ? "https://" : "http://";

    if (r->headers_in.host != nullptr) {
        origin += nao::view(r->headers_in.host->value);
    } else {
        origin += nao::view(r->headers_in.server);
    }

    return origin;
}


std::string
redirectUri(ngx_http_request_t *r, ngx_http_nao_sso_srv_conf_t *sscf)
{
    if (sscf->redirect_uri.data != nullptr) {
        return std::string(nao::view(sscf->redirect_uri));
    }

    return siteOrigin(r, sscf) + std::string(kCallback);
}


std::optional<std::string>
arg(ngx_http_request_t *r, std::string_view name)
{
    ngx_http_nao_sso_ctx_t *ctx = ngx_http_nao_sso_get_ctx(r);

    if (ctx != nullptr && !ctx->args.empty()) {
        return nao::queryParam(ctx->args, name);
    }

    return nao::queryParam(nao::view(r->args), name);
}


nao::Provider *
providerFor(ngx_http_nao_sso_srv_conf_t *sscf)
{
    nao::ServerState *state = sscf->state;
    auto &slot = nao::worker->providers[state->providerKey];

    if (!slot) {
        slot = std::make_unique<nao::Provider>(nao::worker->client,
            state->settings.authority, state->settings.tenantId,
            static_cast<long>(sscf->timeout));
    }

    return slot.get();
}





/* runs a continuation; nothing may unwind into curl or nginx */
void
guard(ngx_http_nao_sso_ctx_t *ctx, const Step &step)
{
    try {
        step();

    } catch (const std::exception &e) {
        ngx_http_request_t *r = ctx->request;
        ngx_connection_t *c = r->connection;
        bool waited = ctx->waited;

        /* no allocation here: it may be what failed */
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "nao_sso: %s", e.what());
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

        if (waited) {
            ngx_http_run_posted_requests(c);
        }
    }
}


void
resumed(ngx_http_nao_sso_ctx_t *ctx)
{
    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    ctx->transfer = 0;
    ctx->waiter = 0;
    ctx->provider = nullptr;
}




namespace {

Reply
idpUnavailable(ngx_http_request_t *r, const std::string &returnTo,
    const std::string &code)
{
    nao::ErrorView view;

    view.status = NGX_HTTP_BAD_GATEWAY;
    view.error = "idp_unavailable";
    view.title = "Microsoft sign-in is unavailable";
    view.message = "Microsoft Entra ID did not answer properly, so the "
                   "sign-in could not be completed.";
    view.advice = "Try again in a moment. If it keeps failing, ask your "
                  "administrator to check the nginx error log.";
    view.actionUrl = signInUrl(returnTo);
    view.actionLabel = "Try again";
    view.code = code;

    return errorReply(r, view);
}

}  // namespace


void
failIdp(ngx_http_nao_sso_ctx_t *ctx, const std::string &problem,
    const std::string &returnTo, const std::string &code)
{
    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "nao_sso: %s", problem.c_str());

    finish(ctx, idpUnavailable(ctx->request, returnTo, code));
}


void
onDeadline(ngx_event_t *ev)
{
    auto *ctx = static_cast<ngx_http_nao_sso_ctx_t *>(ev->data);

    nao::worker->client.cancel(ctx->transfer);
    if (ctx->provider != nullptr) {
        ctx->provider->cancel(ctx->waiter);
    }

    resumed(ctx);
    guard(ctx, [ctx] {
        failIdp(ctx, "identity provider did not answer in time",
                ctx->pending.returnTo.empty() ? "/" : ctx->pending.returnTo);
    });
}


/*
 * The request now waits for the identity provider. The deadline is a
 * timer that is not cancelable, so a worker shutting down gracefully
 * lets the sign-in finish; the client closing the connection ends the
 * request and its cleanup cancels the wait.
 */
void
await(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    ngx_event_handler_pt onTimeout)
{
    ngx_http_request_t *r = ctx->request;

    /*
     * The phases must not run again meanwhile: a write event on a reused
     * keep-alive connection would call the access handler a second time.
     */
    ctx->waited = true;
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    ctx->deadline.handler = onTimeout != nullptr ? onTimeout : onDeadline;
    ctx->deadline.data = ctx;
    ctx->deadline.log = r->connection->log;
    ctx->deadline.cancelable = 0;
    ngx_add_timer(&ctx->deadline, sscf->timeout + 1000);
}


void
awaitMetadata(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    Step next, Failure fail)
{
    nao::Provider *provider = providerFor(sscf);
    int64_t now = ngx_time();

    if (provider->metadataFresh(now)) {
        next();
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "nao_sso: fetching the discovery document");

    uint64_t waiter = provider->fetchMetadata(
        [ctx, provider, next, fail](const std::string &problem) {
            resumed(ctx);
            guard(ctx, [&] {
                if (problem.empty()) {
                    next();
                    return;
                }

                if (provider->metadata() == nullptr) {
                    fail(problem);
                    return;
                }

                ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log,
                              0, "nao_sso: %s, using the last good "
                              "discovery document", problem.c_str());
                next();
            });
        },
        now);

    if (waiter == 0) {
        if (provider->metadata() != nullptr) {
            next();
        } else {
            fail("cannot start the discovery request");
        }
        return;
    }

    ctx->waiter = waiter;
    ctx->provider = provider;
    await(ctx, sscf);
}

}  // namespace nao::flow
