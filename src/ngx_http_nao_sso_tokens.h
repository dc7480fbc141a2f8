/*
 * Downstream tokens: sealing them for the zone, and the worker's refresh
 * jobs. A job belongs to the worker, not to a request, so a client that
 * goes away mid-refresh cannot lose the rotated refresh token Entra has
 * just handed out.
 */

#ifndef NGX_HTTP_NAO_SSO_TOKENS_H
#define NGX_HTTP_NAO_SSO_TOKENS_H

#include "ngx_http_nao_sso.h"

#include "downstream.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nao {

/* what a sealed value is bound to, so that it cannot be moved */
std::string refreshTokenBinding(std::string_view sessionId);
std::string accessTokenBinding(std::string_view sessionId,
    const Downstream &downstream);

/*
 * The worker cache's key of a session's token: the session id, a NUL
 * and the downstream name, built on the stack for the hot path.
 */
class TokenCacheKey {
public:
    TokenCacheKey(std::string_view sessionId, std::string_view name);

    std::string_view view() const { return {data_, size_}; }

private:
    char data_[kIdBytes + 1 + kMaxDownstreamName];
    size_t size_ = 0;
};

/* the worker's cache of opened tokens, bounded */
void cacheToken(const TokenCacheKey &key,
    std::shared_ptr<const AccessToken> token);

ngx_shm_zone_t *zoneOf(ngx_http_request_t *r);

/* seals and stores a token Entra issued, and caches it opened */
std::shared_ptr<const AccessToken> keepAccessToken(ngx_shm_zone_t *zone,
    ngx_http_nao_sso_srv_conf_t *sscf, std::string_view sessionId,
    size_t index, const std::string &token, int64_t expiresIn,
    ngx_log_t *log);

/* a refresh_token grant for scope at the server's token endpoint */
HttpRequest refreshRequest(ngx_http_nao_sso_srv_conf_t *sscf,
    const std::string &tokenEndpoint, const std::string &refreshToken,
    const std::string &scope);

/* its answer; a transport failure is a problem without tokens */
TokenOutcome refreshOutcome(const HttpResponse &response);

/* drops a session and whatever tokens it had, in the zone and the cache */
void endSession(ngx_shm_zone_t *zone, ngx_http_nao_sso_srv_conf_t *sscf,
    std::string_view sessionId);

enum class RefreshOutcome {
    Refreshed,
    Gone,           /* Entra refused the refresh token: the session ended */
    Failed          /* a transient failure; nothing changed */
};

struct RefreshJob {
    ngx_http_nao_sso_srv_conf_t *sscf = nullptr;
    ngx_shm_zone_t *zone = nullptr;
    std::string sessionId;
    std::string userId;               /* for the log */
    size_t index = 0;                 /* into the server's downstream */
    std::string sealedRefresh;        /* as the claim handed it out */
    uint64_t owner = 0;               /* the claim's */
    bool groupsPending = false;       /* Graph failed at sign-in */
    std::vector<std::string> appRoles;
};

class Refresher {
public:
    using Done = std::function<void(RefreshOutcome)>;

    static constexpr int64_t kBackoff = 10;

    explicit Refresher(HttpClient &client);
    ~Refresher();

    Refresher(const Refresher &) = delete;
    Refresher &operator=(const Refresher &) = delete;

    /*
     * Runs a refresh whose claim the caller holds. done, when set, runs
     * later from the event loop; the returned id is for cancel(). When
     * the job ends at once, 0 comes back and *now holds the outcome.
     */
    uint64_t run(RefreshJob job, Done done, RefreshOutcome *now);

    /* the request went away: the job goes on, without telling it */
    void cancel(uint64_t id);

private:
    struct Job;

    void onMetadata(uint64_t id, const std::string &problem);
    bool post(Job &job, const std::string &tokenEndpoint);
    void onAnswer(uint64_t id, HttpResponse &&response);
    void keepRefreshToken(Job &job, const std::string &token);
    void arm(Job &job);
    static void onDeadline(ngx_event_t *ev);
    void expire(Job &job);
    void notify(Job &job, RefreshOutcome outcome);
    void release(uint64_t id);

    /* the role again, now that Graph may answer (regroup.cpp) */
    void regroup(Job &job);
    void onGraphToken(uint64_t id, HttpResponse &&response);
    void onGroups(uint64_t id, Result<std::vector<std::string>> &&groups);
    void complete(uint64_t id, RefreshOutcome outcome, int64_t retryAt);

    HttpClient &client_;
    uint64_t nextId_ = 1;
    std::map<uint64_t, std::unique_ptr<Job>> jobs_;
};

}  // namespace nao

#endif
