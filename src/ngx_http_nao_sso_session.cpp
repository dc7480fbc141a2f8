/*
 * The request context and the session behind the cookie.
 */

#include "ngx_http_nao_sso.h"

#include "base64url.h"
#include "cookie.h"
#include "ngx_http_nao_sso_tokens.h"
#include "pages.h"


static void
ngx_http_nao_sso_cleanup_ctx(void *data)
{
    auto *ctx = static_cast<ngx_http_nao_sso_ctx_t *>(data);

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->poll.timer_set) {
        ngx_del_timer(&ctx->poll);
    }

    if (nao::worker != nullptr) {
        nao::worker->client.cancel(ctx->transfer);

        nao::worker->graph.cancel(ctx->graphRead);

        if (ctx->refreshWaiter != 0) {
            nao::worker->refresher->cancel(ctx->refreshWaiter);
        }

        if (ctx->provider != nullptr) {
            ctx->provider->cancel(ctx->waiter);
        }
    }

    ctx->~ngx_http_nao_sso_ctx_t();
}


/*
 * ngx_http_internal_redirect() clears module contexts; the pool cleanup
 * keeps ours reachable, as the realip module does with its own.
 */
ngx_http_nao_sso_ctx_t *
ngx_http_nao_sso_get_ctx(ngx_http_request_t *r)
{
    ngx_http_nao_sso_ctx_t  *ctx;
    ngx_pool_cleanup_t      *cln;

    ctx = static_cast<ngx_http_nao_sso_ctx_t *>(
        ngx_http_get_module_ctx(r, ngx_http_nao_sso_module));
    if (ctx != NULL) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_nao_sso_cleanup_ctx) {
            ctx = static_cast<ngx_http_nao_sso_ctx_t *>(cln->data);
            ngx_http_set_ctx(r, ctx, ngx_http_nao_sso_module);
            return ctx;
        }
    }

    return NULL;
}


ngx_http_nao_sso_ctx_t *
ngx_http_nao_sso_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_nao_sso_ctx_t  *ctx;

    /* the pool holds the memory; the cleanup runs the destructor */
    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_nao_sso_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = new (cln->data) ngx_http_nao_sso_ctx_t();

    ctx->request = r;
    ngx_memzero(&ctx->deadline, sizeof(ngx_event_t));
    ngx_memzero(&ctx->poll, sizeof(ngx_event_t));

    cln->handler = ngx_http_nao_sso_cleanup_ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_nao_sso_module);

    return ctx;
}


ngx_http_nao_sso_ctx_t *
ngx_http_nao_sso_ctx(ngx_http_request_t *r)
{
    ngx_http_nao_sso_ctx_t  *ctx;

    ctx = ngx_http_nao_sso_get_ctx(r);
    if (ctx == NULL) {
        ctx = ngx_http_nao_sso_create_ctx(r);
    }

    return ctx;
}


nao::SessionStore
ngx_http_nao_sso_store(ngx_http_request_t *r)
{
    ngx_http_nao_sso_main_conf_t  *mcf;

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_get_module_main_conf(r, ngx_http_nao_sso_module));

    return nao::SessionStore(mcf->zone);
}


bool
ngx_http_nao_sso_active(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf)
{
    ngx_http_nao_sso_main_conf_t  *mcf;

    if (!sscf->state->problems.empty() || nao::worker == nullptr) {
        return false;
    }

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_get_module_main_conf(r, ngx_http_nao_sso_module));

    if (ngx_time() < mcf->state->licenceExpires) {
        return true;
    }

    if (!nao::worker->licenceExpiryLogged) {
        nao::worker->licenceExpiryLogged = true;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "nao_sso: the licence expired on %s, single sign-on "
                      "is inactive and requests pass through to nao's own "
                      "login",
                      nao::isoTime(mcf->state->licenceExpires).c_str());
    }

    return false;
}


/*
 * The session named by a well-signed cookie, if the store still has it;
 * a bad cookie is simply no session.
 */
void
ngx_http_nao_sso_load_session(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_ctx_t *ctx)
{
    if (ctx->sessionChecked) {
        return;
    }

    ctx->sessionChecked = true;

    auto value = nao::findCookie(nao::view(ctx->cookies),
                                 sscf->state->sessionCookie);
    if (!value) {
        return;
    }

    auto &cache = nao::worker->sessions;
    auto cached = cache.find(*value);
    std::string decoded;
    std::string_view id;

    if (cached != cache.end()) {
        id = cached->second->id;

    } else {
        auto payload = nao::verifyCookieValue(*value, nao::worker->secrets);
        auto bytes = payload ? nao::base64urlDecode(*payload) : std::nullopt;

        if (!bytes || bytes->size() != nao::kIdBytes) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "nao_sso: client sent an invalid session cookie");
            return;
        }

        decoded = std::move(*bytes);
        id = decoded;
    }

    nao::SessionLimits limits{sscf->idle_timeout, sscf->max_age};
    uint64_t known = cached != cache.end() ? cached->second->version : 0;

    auto touched = ngx_http_nao_sso_store(r).touchSession(id, ngx_time(),
                                                           limits, known);
    if (!touched) {
        if (cached != cache.end()) {
            cache.erase(cached);
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "nao_sso: session cookie names no live session");
        return;
    }

    std::shared_ptr<const nao::SessionData> data;

    if (touched->data) {
        touched->data->id = std::string(id);
        touched->data->version = touched->version;
        data = std::make_shared<const nao::SessionData>(
            std::move(*touched->data));

        if (cache.size() >= nao::Worker::kCacheEntries) {
            cache.clear();
        }

        cache.insert_or_assign(std::string(*value), data);

    } else {
        data = cached->second;
    }

    /* servers that share the zone may sign in to other applications */
    if (data->scope != sscf->state->sessionScope) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "nao_sso: session of user \"%s\" belongs to another "
                      "application", data->userId.c_str());
        return;
    }

    ctx->session = std::move(data);
    ctx->sessionExpires = touched->expires;
}


ngx_int_t
ngx_http_nao_sso_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_nao_sso_ctx_t  *ctx;
    const std::string       *field;

    r = r->main;
    ctx = ngx_http_nao_sso_get_ctx(r);

    /* a variable may be read before the access phase, e.g. by "return" */
    if (ctx != NULL && !ctx->sessionChecked) {
        auto *sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
            ngx_http_get_module_srv_conf(r, ngx_http_nao_sso_module));
        auto *lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(
            ngx_http_get_module_loc_conf(r, ngx_http_nao_sso_module));

        /* where the module is off, a session is neither read nor used */
        if (lcf->mode != NGX_HTTP_NAO_SSO_OFF
            && ngx_http_nao_sso_active(r, sscf))
        {
            try {
                ngx_http_nao_sso_load_session(r, sscf, ctx);

            } catch (const std::exception &e) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "nao_sso: %s", e.what());
                return NGX_ERROR;
            }
        }
    }

    if (ctx == NULL || !ctx->session) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {
    case NAO_VAR_USER_ID:
        field = &ctx->session->userId;
        break;
    case NAO_VAR_EMAIL:
        field = &ctx->session->email;
        break;
    case NAO_VAR_NAME:
        field = &ctx->session->name;
        break;
    case NAO_VAR_ROLE:
        field = &ctx->session->role;
        break;
    default:
        field = &ctx->session->tenantId;
        break;
    }

    v->data = (u_char *) field->data();
    v->len = field->size();
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
