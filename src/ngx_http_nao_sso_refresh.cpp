/*
 * The refresh_token grant, one job per claimed session: open the sealed
 * refresh token, ask Entra for the downstream resource, seal what comes
 * back and release the claim.
 */

#include "ngx_http_nao_sso_tokens.h"

#include "downstream.h"
#include "ngx_http_nao_sso_flow.h"

namespace nao {

struct Refresher::Job {
    uint64_t id = 0;
    Refresher *owner = nullptr;
    RefreshJob job;
    Done done;
    std::string refreshToken;         /* the newest Entra handed out */
    Provider *provider = nullptr;
    uint64_t providerWaiter = 0;
    uint64_t transfer = 0;
    uint64_t graphRead = 0;

    /*
     * Not cancelable: a worker shutting down gracefully (a reload) waits
     * for the job, since Entra may already have rotated the refresh
     * token, and the new one must not be lost with the worker.
     */
    ngx_event_t deadline{};
};


HttpRequest
refreshRequest(ngx_http_nao_sso_srv_conf_t *sscf,
    const std::string &tokenEndpoint, const std::string &refreshToken,
    const std::string &scope)
{
    const ProviderSettings &settings = sscf->state->settings;

    RefreshGrant grant;
    grant.clientId = settings.clientId;
    grant.clientSecret = settings.clientSecret;
    grant.refreshToken = refreshToken;
    grant.scope = scope;

    HttpRequest request;
    request.url = tokenEndpoint;
    request.form = refreshGrantBody(grant);
    request.timeoutMs = sscf->timeout;

    return request;
}


TokenOutcome
refreshOutcome(const HttpResponse &response)
{
    if (response.transportOk()) {
        return parseRefreshResponse(response.status, response.body);
    }

    TokenOutcome outcome;
    outcome.problem = response.error;
    return outcome;
}


namespace {

ngx_log_t *
logOf()
{
    return ngx_cycle->log;
}


const Downstream &
downstreamOf(const RefreshJob &job)
{
    return job.sscf->state->downstream[job.index];
}

}  // namespace


Worker::Worker(ngx_log_t *log)
    : reactor(log), client(reactor), graph(client)
{
    reactor.attach(&client);
    refresher = std::make_unique<Refresher>(client);
}


/* the refresher goes first: it cancels what it has in the client */
Worker::~Worker() = default;


Refresher::Refresher(HttpClient &client) : client_(client)
{
}


Refresher::~Refresher()
{
    for (auto &[id, job] : jobs_) {
        if (job->deadline.timer_set) {
            ngx_del_timer(&job->deadline);
        }

        client_.cancel(job->transfer);
        worker->graph.cancel(job->graphRead);

        if (job->provider != nullptr) {
            job->provider->cancel(job->providerWaiter);
        }
    }
}


uint64_t
Refresher::run(RefreshJob job, Done done, RefreshOutcome *now)
{
    auto opened = open(worker->sealKeys, job.sealedRefresh,
                       refreshTokenBinding(job.sessionId));

    if (!opened) {
        /* e.g. the secret it was sealed with is no longer configured */
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: refresh token of user \"%s\" cannot be "
                      "used: %s, the session ends",
                      job.userId.c_str(), job.sealedRefresh.empty()
                      ? "Entra issued none (is offline_access granted?)"
                      : opened.error().c_str());
        endSession(job.zone, job.sscf, job.sessionId);
        *now = RefreshOutcome::Gone;
        return 0;
    }

    uint64_t id = nextId_++;
    auto owned = std::make_unique<Job>();
    Job &j = *owned;

    j.id = id;
    j.owner = this;
    j.job = std::move(job);
    j.done = std::move(done);
    j.refreshToken = std::move(opened.value());
    j.provider = flow::providerFor(j.job.sscf);
    jobs_.emplace(id, std::move(owned));
    arm(j);

    /* a stale document will do: the token endpoint hardly ever moves */
    bool started;

    if (const ProviderMetadata *metadata = j.provider->metadata()) {
        started = post(j, metadata->tokenEndpoint);

    } else {
        j.providerWaiter = j.provider->fetchMetadata(
            [this, id](const std::string &problem) {
                onMetadata(id, problem);
            },
            ngx_time());

        started = j.providerWaiter != 0;
    }

    if (!started) {
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: cannot start the refresh request");
        ngx_del_timer(&j.deadline);
        *now = RefreshOutcome::Failed;
        SessionStore(j.job.zone).finishRefresh(j.job.sessionId, j.job.owner,
                                               ngx_time() + kBackoff);
        jobs_.erase(id);
        return 0;
    }

    return id;
}


void
Refresher::onMetadata(uint64_t id, const std::string &problem)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    Job &j = *it->second;
    j.providerWaiter = 0;

    if (j.provider->metadata() == nullptr) {
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: cannot refresh tokens: %s", problem.c_str());
        complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff);
        return;
    }

    if (!post(j, j.provider->metadata()->tokenEndpoint)) {
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: cannot start the refresh request");
        complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff);
    }
}


bool
Refresher::post(Job &j, const std::string &tokenEndpoint)
{
    const std::string &scope = downstreamOf(j.job).scope;
    uint64_t id = j.id;
    HttpRequest request = refreshRequest(j.job.sscf, tokenEndpoint,
                                         j.refreshToken, scope);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, logOf(), 0,
                   "nao_sso: refreshing the token for \"%s\"",
                   scope.c_str());

    arm(j);
    j.transfer = client_.start(request, [this, id](HttpResponse &&answer) {
        onAnswer(id, std::move(answer));
    });

    return j.transfer != 0;
}


void
Refresher::onAnswer(uint64_t id, HttpResponse &&response)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    Job &j = *it->second;
    const Downstream &downstream = downstreamOf(j.job);
    j.transfer = 0;

    TokenOutcome outcome = refreshOutcome(response);

    if (outcome.tokens) {
        keepAccessToken(j.job.zone, j.job.sscf, j.job.sessionId,
                        j.job.index, outcome.tokens->accessToken,
                        outcome.tokens->expiresIn, logOf());
        keepRefreshToken(j, outcome.tokens->refreshToken);

        /* the request need not wait for Graph; the claim does */
        if (j.job.groupsPending) {
            notify(j, RefreshOutcome::Refreshed);
            regroup(j);
            return;
        }

        release(id);
        return;
    }

    bool refused = outcome.idpError && response.status < 500
                   && isInvalidGrant(*outcome.idpError);

    /* a named token Entra will not give must not end the whole session */
    if (refused && j.job.index != 0
        && !refreshTokenDead(*outcome.idpError))
    {
        const IdpError &error = *outcome.idpError;
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: Entra refused a token for \"%s\" to user "
                      "\"%s\": \"%s\" (%s); check that scope's permission "
                      "and consent, retrying in %d s",
                      downstream.scope.c_str(), j.job.userId.c_str(),
                      error.error.c_str(),
                      error.code.empty() ? "no code" : error.code.c_str(),
                      (int) kBackoff);
        complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff);
        return;
    }

    if (refused) {
        const IdpError &error = *outcome.idpError;
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: Entra refused the refresh token of user "
                      "\"%s\": \"%s\" (%s), the session ends",
                      j.job.userId.c_str(), error.error.c_str(),
                      error.code.empty() ? "no code" : error.code.c_str());
        endSession(j.job.zone, j.job.sscf, j.job.sessionId);
        complete(id, RefreshOutcome::Gone, 0);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                  "nao_sso: refreshing the token for \"%s\" failed: "
                  "%s, retrying in %d s", downstream.scope.c_str(),
                  outcome.problem.c_str(), (int) kBackoff);
    complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff);
}


void
Refresher::complete(uint64_t id, RefreshOutcome outcome, int64_t retryAt)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    std::unique_ptr<Job> job = std::move(it->second);
    jobs_.erase(it);

    if (job->deadline.timer_set) {
        ngx_del_timer(&job->deadline);
    }

    if (outcome != RefreshOutcome::Gone) {
        SessionStore(job->job.zone).finishRefresh(job->job.sessionId,
                                                  job->job.owner, retryAt);
    }

    if (job->done) {
        job->done(outcome);
    }
}


/*
 * A rotated refresh token goes into the zone at once, and the claim is
 * extended for whatever the job does next: if the job then failed or
 * its claim ran out, nobody would be left with the spent old token.
 */
void
Refresher::keepRefreshToken(Job &j, const std::string &token)
{
    if (token.empty()) {
        return;
    }

    j.refreshToken = token;

    auto sealed = seal(worker->sealKeys.front(), token,
                       refreshTokenBinding(j.job.sessionId));
    if (sealed) {
        int64_t now = ngx_time();
        SessionStore(j.job.zone).holdRefresh(j.job.sessionId, j.job.owner,
            &*sealed, now + j.job.sscf->timeout / 1000 + 2, now);
    }

    arm(j);
}


/* each step gets the IdP timeout, and the claim is stretched to cover it */
void
Refresher::arm(Job &j)
{
    int64_t now = ngx_time();

    SessionStore(j.job.zone).holdRefresh(j.job.sessionId, j.job.owner,
        nullptr, now + j.job.sscf->timeout / 1000 + 2, now);

    if (j.deadline.timer_set) {
        ngx_del_timer(&j.deadline);
    }

    j.deadline.handler = onDeadline;
    j.deadline.data = &j;
    j.deadline.log = logOf();
    j.deadline.cancelable = 0;
    ngx_add_timer(&j.deadline, j.job.sscf->timeout + 1000);
}


/*
 * curl's own timeout fires first; this is the bound of last resort. An
 * nginx event handler: nothing may unwind out of it.
 */
void
Refresher::onDeadline(ngx_event_t *ev)
{
    auto *j = static_cast<Job *>(ev->data);
    Refresher *owner = j->owner;

    try {
        owner->expire(*j);

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, logOf(), 0, "nao_sso: %s", e.what());
    }
}


void
Refresher::expire(Job &j)
{
    client_.cancel(j.transfer);
    worker->graph.cancel(j.graphRead);
    if (j.provider != nullptr) {
        j.provider->cancel(j.providerWaiter);
    }

    ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                  "nao_sso: token refresh of user \"%s\" did not finish "
                  "in time", j.job.userId.c_str());
    complete(j.id, RefreshOutcome::Failed, ngx_time() + kBackoff);
}


void
Refresher::notify(Job &j, RefreshOutcome outcome)
{
    Done done = std::move(j.done);
    j.done = nullptr;

    if (done) {
        done(outcome);
    }
}


/* the end of a job that worked: the newest refresh token goes back */
void
Refresher::release(uint64_t id)
{
    complete(id, RefreshOutcome::Refreshed, 0);
}


void
Refresher::cancel(uint64_t id)
{
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
        it->second->done = nullptr;
    }
}



/*
 * A session whose groups Graph could not give at sign-in tries again on
 * refresh: a Graph token from the refresh token, the memberships, then
 * the role, all while the session's claim is held, so that the refresh
 * token this rotates is not raced.
 */
void
Refresher::regroup(Job &j)
{
    uint64_t id = j.id;
    HttpRequest request = refreshRequest(j.job.sscf,
        j.provider->metadata()->tokenEndpoint, j.refreshToken,
        j.job.sscf->state->policy.graphScope);

    arm(j);
    j.transfer = client_.start(request, [this, id](HttpResponse &&answer) {
        onGraphToken(id, std::move(answer));
    });

    if (j.transfer == 0) {
        onGroups(id, fail("cannot start the Graph token request"));
    }
}


void
Refresher::onGraphToken(uint64_t id, HttpResponse &&response)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    Job &j = *it->second;
    j.transfer = 0;

    TokenOutcome outcome = refreshOutcome(response);

    if (!outcome.tokens) {
        onGroups(id, fail("no Graph token: " + outcome.problem));
        return;
    }

    keepRefreshToken(j, outcome.tokens->refreshToken);
    arm(j);

    j.graphRead = worker->graph.read(j.job.sscf->state->policy.graphUrl,
        outcome.tokens->accessToken, j.job.sscf->timeout,
        [this, id](Result<std::vector<std::string>> &&groups) {
            onGroups(id, std::move(groups));
        });

    if (j.graphRead == 0) {
        onGroups(id, fail("cannot start the graph request"));
    }
}


void
Refresher::onGroups(uint64_t id, Result<std::vector<std::string>> &&groups)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    Job &j = *it->second;
    j.graphRead = 0;

    if (!groups) {
        ngx_log_error(NGX_LOG_WARN, logOf(), 0,
                      "nao_sso: still cannot read the groups of user "
                      "\"%s\" from Microsoft Graph: %s; the role stays, "
                      "to be retried at the next refresh",
                      j.job.userId.c_str(), groups.error().c_str());
        release(id);
        return;
    }

    const Policy &policy = j.job.sscf->state->policy;
    Role role = resolveRole(policy.defaultRole, policy.rules, groups.value(),
                            j.job.appRoles);
    std::string name(roleName(role));

    SessionStore(j.job.zone).updateRole(j.job.sessionId, name, "",
                                        ngx_time());

    ngx_log_error(NGX_LOG_INFO, logOf(), 0,
                  "nao_sso: groups of user \"%s\" read from Microsoft "
                  "Graph, role is \"%s\"", j.job.userId.c_str(),
                  name.c_str());
    release(id);
}

}  // namespace nao
