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
    RefreshJob job;
    Done done;
    std::string refreshToken;
    Provider *provider = nullptr;
    uint64_t providerWaiter = 0;
    uint64_t transfer = 0;
};


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
        client_.cancel(job->transfer);

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
    j.job = std::move(job);
    j.done = std::move(done);
    j.refreshToken = std::move(opened.value());
    j.provider = flow::providerFor(j.job.sscf);
    jobs_.emplace(id, std::move(owned));

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
        *now = RefreshOutcome::Failed;
        SessionStore(j.job.zone).finishRefresh(j.job.sessionId, nullptr,
                                               ngx_time() + kBackoff,
                                               ngx_time());
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
        complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff, nullptr);
        return;
    }

    if (!post(j, j.provider->metadata()->tokenEndpoint)) {
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: cannot start the refresh request");
        complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff, nullptr);
    }
}


bool
Refresher::post(Job &j, const std::string &tokenEndpoint)
{
    const ProviderSettings &settings = j.job.sscf->state->settings;
    uint64_t id = j.id;

    RefreshGrant grant;
    grant.clientId = settings.clientId;
    grant.clientSecret = settings.clientSecret;
    grant.refreshToken = j.refreshToken;
    grant.scope = downstreamOf(j.job).scope;

    HttpRequest request;
    request.url = tokenEndpoint;
    request.form = refreshGrantBody(grant);
    request.timeoutMs = j.job.sscf->timeout;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, logOf(), 0,
                   "nao_sso: refreshing the token for \"%s\"",
                   grant.scope.c_str());

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

    TokenOutcome outcome;
    if (response.transportOk()) {
        outcome = parseRefreshResponse(response.status, response.body);
    } else {
        outcome.problem = response.error;
    }

    if (outcome.tokens) {
        keepAccessToken(j.job.zone, j.job.sscf, j.job.sessionId,
                        j.job.index, outcome.tokens->accessToken,
                        outcome.tokens->expiresIn, logOf());

        std::optional<std::string> sealed;
        if (!outcome.tokens->refreshToken.empty()) {
            sealed = seal(worker->sealKeys.front(),
                          outcome.tokens->refreshToken,
                          refreshTokenBinding(j.job.sessionId));
        }

        complete(id, RefreshOutcome::Refreshed, 0,
                 sealed ? &*sealed : nullptr);
        return;
    }

    if (outcome.idpError && response.status < 500
        && isInvalidGrant(*outcome.idpError))
    {
        const IdpError &error = *outcome.idpError;
        ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                      "nao_sso: Entra refused the refresh token of user "
                      "\"%s\": \"%s\" (%s), the session ends",
                      j.job.userId.c_str(), error.error.c_str(),
                      error.code.empty() ? "no code" : error.code.c_str());
        endSession(j.job.zone, j.job.sscf, j.job.sessionId);
        complete(id, RefreshOutcome::Gone, 0, nullptr);
        return;
    }

    std::string code = outcome.idpError && !outcome.idpError->code.empty()
                       ? " (" + outcome.idpError->code + ")" : "";
    ngx_log_error(NGX_LOG_ERR, logOf(), 0,
                  "nao_sso: refreshing the token for \"%s\" failed: "
                  "%s%s, retrying in %d s", downstream.scope.c_str(),
                  outcome.problem.c_str(), code.c_str(), (int) kBackoff);
    complete(id, RefreshOutcome::Failed, ngx_time() + kBackoff, nullptr);
}


void
Refresher::complete(uint64_t id, RefreshOutcome outcome, int64_t retryAt,
    const std::string *sealedRefresh)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        return;
    }

    std::unique_ptr<Job> job = std::move(it->second);
    jobs_.erase(it);

    if (outcome != RefreshOutcome::Gone) {
        SessionStore(job->job.zone).finishRefresh(job->job.sessionId,
                                                  sealedRefresh, retryAt,
                                                  ngx_time());
    }

    if (job->done) {
        job->done(outcome);
    }
}


void
Refresher::cancel(uint64_t id)
{
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
        it->second->done = nullptr;
    }
}

}  // namespace nao
