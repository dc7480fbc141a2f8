/*
 * The downstream tokens a request takes upstream: from the worker's
 * cache, else opened from the zone, else refreshed, with one refresh per
 * session at a time across all workers; and the waiting that may take.
 */

#include "ngx_http_nao_sso_tokens.h"

#include "ngx_http_nao_sso_flow.h"

namespace nao {

namespace {

constexpr ngx_msec_t kPollMs = 25;

/* refreshed ahead of expiry, but never in the first half of its life */
bool
fresh(const AccessToken &token, int64_t now, int64_t ahead)
{
    int64_t lifetime = token.expires - token.issued;

    return token.expires - std::min(ahead, lifetime / 2) > now;
}


std::shared_ptr<const AccessToken>
fromZone(ngx_http_request_t *r, const SessionData &session,
    const Downstream &downstream, int64_t now)
{
    auto stored = SessionStore(zoneOf(r)).getToken(
        SessionStore::tokenKey(session.id, downstream.name), now);

    if (!stored || stored->scope != downstream.scope) {
        return nullptr;
    }

    auto opened = open(worker->sealKeys, stored->sealed,
                       accessTokenBinding(session.id, downstream));
    if (!opened) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "nao_sso: stored token for \"%s\" of user \"%s\" "
                      "cannot be opened: %s", downstream.scope.c_str(),
                      session.userId.c_str(), opened.error().c_str());
        return nullptr;
    }

    auto token = std::make_shared<AccessToken>();
    token->token = std::move(opened.value());
    token->audience = stored->audience;
    token->scope = stored->scope;
    token->issued = stored->issued;
    token->expires = stored->expires;

    return token;
}


/*
 * The worker's copy while it is fresh; else whatever the zone has, which
 * another worker may have refreshed meanwhile.
 */
std::shared_ptr<const AccessToken>
current(ngx_http_request_t *r, ngx_http_nao_sso_srv_conf_t *sscf,
    const SessionData &session, size_t index, int64_t now)
{
    const Downstream &downstream = sscf->state->downstream[index];

    TokenCacheKey key(session.id, downstream.name);

    auto cached = worker->tokens.find(key.view());
    std::shared_ptr<const AccessToken> known;

    if (cached != worker->tokens.end()
        && cached->second->scope == downstream.scope)
    {
        known = cached->second;

        if (fresh(*known, now, sscf->refresh_ahead)) {
            return known;
        }
    }

    auto stored = fromZone(r, session, downstream, now);
    if (stored && (!known || stored->expires > known->expires)) {
        cacheToken(key, stored);
        return stored;
    }

    return known;
}


void
reply(ngx_http_nao_sso_ctx_t *ctx, const flow::Reply &answer)
{
    ngx_http_request_t *r = ctx->request;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    flow::finish(ctx, answer);
}


void
sessionExpired(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf)
{
    flow::Reply answer = flow::needSignIn(ctx->request,
        "your session has ended, sign in again", "session_expired");

    answer.cookies.push_back(
        flow::expiredCookie(sscf, sscf->state->sessionCookie));
    reply(ctx, answer);
}


/*
 * NGX_DONE once the reply is sent; NGX_DECLINED where nao_sso is
 * optional, since there the request simply goes on without a session.
 */
ngx_int_t
sessionEnded(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    auto *lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(
        ngx_http_get_module_loc_conf(ctx->request, ngx_http_nao_sso_module));

    if (lcf->mode == NGX_HTTP_NAO_SSO_OPTIONAL) {
        ctx->session.reset();
        ctx->downstream.clear();
        ctx->downstreamDone = 0;
        return NGX_DECLINED;
    }

    sessionExpired(ctx, sscf);
    return NGX_DONE;
}


void
unavailable(ngx_http_nao_sso_ctx_t *ctx, const char *why)
{
    ErrorView view;
    view.status = NGX_HTTP_SERVICE_UNAVAILABLE;
    view.error = "token_unavailable";
    view.title = "Your data access could not be renewed";
    view.message = std::string("nao needs a fresh Microsoft token to query "
                               "data on your behalf, but ") + why + ".";
    view.advice = "Try again in a few seconds. If it keeps failing, ask "
                  "your administrator to check the nginx error log.";

    flow::Reply answer = flow::errorReply(ctx->request, view);
    answer.headers.emplace_back("Retry-After",
                                std::to_string(Refresher::kBackoff));
    reply(ctx, answer);
}


void
stopWaiting(ngx_http_nao_sso_ctx_t *ctx)
{
    flow::resumed(ctx);

    if (ctx->poll.timer_set) {
        ngx_del_timer(&ctx->poll);
    }

    if (ctx->refreshWaiter != 0) {
        worker->refresher->cancel(ctx->refreshWaiter);
        ctx->refreshWaiter = 0;
    }
}


/* back into nginx's phases, where the access handler picks up again */
void
resume(ngx_http_nao_sso_ctx_t *ctx)
{
    ngx_http_request_t *r = ctx->request;
    ngx_connection_t *c = r->connection;

    stopWaiting(ctx);

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


void
onTokenDeadline(ngx_event_t *ev)
{
    auto *ctx = static_cast<ngx_http_nao_sso_ctx_t *>(ev->data);

    stopWaiting(ctx);
    flow::guard(ctx, [ctx] {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "nao_sso: token refresh did not finish in time");
        unavailable(ctx, "Microsoft Entra ID did not answer in time");
    });
}


void
onPoll(ngx_event_t *ev)
{
    auto *ctx = static_cast<ngx_http_nao_sso_ctx_t *>(ev->data);
    auto busy = SessionStore(zoneOf(ctx->request))
                    .refreshBusy(ctx->session->id, ngx_time());

    if (busy && *busy) {
        ngx_add_timer(&ctx->poll, kPollMs);
        return;
    }

    ctx->polled = true;
    resume(ctx);
}


/* another request is refreshing this session: check back shortly */
void
poll(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf)
{
    ctx->poll.handler = onPoll;
    ctx->poll.data = ctx;
    ctx->poll.log = ctx->request->connection->log;
    ctx->poll.cancelable = 0;
    ngx_add_timer(&ctx->poll, kPollMs);

    flow::await(ctx, sscf, onTokenDeadline);
}


void
onRefreshed(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    RefreshOutcome outcome)
{
    switch (outcome) {
    case RefreshOutcome::Refreshed:
        ctx->refreshed = true;
        resume(ctx);
        return;

    case RefreshOutcome::Gone:
        /* the access handler finds the session gone and says so */
        resume(ctx);
        return;

    default:
        stopWaiting(ctx);
        flow::guard(ctx, [ctx] {
            unavailable(ctx, "Microsoft Entra ID could not be reached");
        });
    }
}


/*
 * NGX_OK when the request may go on, NGX_DONE when it waits or ended,
 * NGX_DECLINED when it goes on without the session (see sessionEnded)
 */
ngx_int_t
refresh(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    size_t index, std::string &&sealed, uint64_t owner, bool wait)
{
    ngx_http_request_t *r = ctx->request;

    RefreshJob job;
    job.sscf = sscf;
    job.zone = zoneOf(r);
    job.sessionId = ctx->session->id;
    job.userId = ctx->session->userId;
    job.index = index;
    job.sealedRefresh = std::move(sealed);
    job.owner = owner;
    job.groupsPending = ctx->session->flags.find('g') != std::string::npos;

    for (size_t start = 0; start < ctx->session->appRoles.size();) {
        size_t end = ctx->session->appRoles.find('\n', start);
        end = end == std::string::npos ? ctx->session->appRoles.size() : end;
        job.appRoles.emplace_back(ctx->session->appRoles, start, end - start);
        start = end + 1;
    }

    Refresher::Done done;
    if (wait) {
        done = [ctx, sscf](RefreshOutcome outcome) {
            ctx->refreshWaiter = 0;
            onRefreshed(ctx, sscf, outcome);
        };
    }

    RefreshOutcome outcome = RefreshOutcome::Failed;
    uint64_t id = worker->refresher->run(std::move(job), done, &outcome);

    if (!wait) {
        return NGX_OK;
    }

    if (id != 0) {
        ctx->refreshWaiter = id;
        flow::await(ctx, sscf, onTokenDeadline);
        return NGX_DONE;
    }

    if (outcome == RefreshOutcome::Gone) {
        return sessionEnded(ctx, sscf);
    }

    unavailable(ctx, "Microsoft Entra ID could not be reached");
    return NGX_DONE;
}


ngx_int_t
obtain(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    size_t index)
{
    ngx_http_request_t *r = ctx->request;
    int64_t now = ngx_time();

    auto token = current(r, sscf, *ctx->session, index, now);

    if (token && fresh(*token, now, sscf->refresh_ahead)) {
        ctx->downstream[index] = std::move(token);
        return NGX_OK;
    }

    bool usable = token && token->expires > now;
    int64_t until = now + sscf->timeout / 1000 + 2;
    std::string sealed;
    uint64_t owner = (static_cast<uint64_t>(ngx_pid) << 32)
                     | (++worker->claims & 0xffffffff);

    /* one refresh after another would loop on a token born expired */
    RefreshClaim claim = ctx->refreshed && !usable
        ? RefreshClaim::Backoff
        : SessionStore(zoneOf(r)).claimRefresh(ctx->session->id, now, until,
                                               usable || ctx->polled, owner,
                                               &sealed);

    if (usable) {
        /* this request goes on with the valid token meanwhile */
        if (claim == RefreshClaim::Claimed) {
            refresh(ctx, sscf, index, std::move(sealed), owner, false);
        }

        ctx->downstream[index] = std::move(token);
        return NGX_OK;
    }

    switch (claim) {
    case RefreshClaim::Claimed:
        return refresh(ctx, sscf, index, std::move(sealed), owner, true);

    case RefreshClaim::Busy:
        poll(ctx, sscf);
        return NGX_DONE;

    case RefreshClaim::Gone:
        return sessionEnded(ctx, sscf);

    default:
        unavailable(ctx, "Microsoft Entra ID could not be reached");
        return NGX_DONE;
    }
}

}  // namespace

}  // namespace nao


ngx_int_t
ngx_http_nao_sso_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_ctx_t *ctx)
{
    size_t count = sscf->state->downstream.size();

    ctx->downstream.resize(count);

    while (ctx->downstreamDone < count) {
        ngx_int_t rc = nao::obtain(ctx, sscf, ctx->downstreamDone);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->downstreamDone++;
        ctx->polled = false;
        ctx->refreshed = false;
    }

    return NGX_OK;
}


/* the login's access token serves the default downstream until it ages */
