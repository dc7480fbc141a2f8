/*
 * Server-side state in one shared memory zone, so that every worker sees
 * it and it survives a reload: sessions, sign-ins in progress (state,
 * nonce, PKCE verifier) and the fallback session secret. Entries are
 * plain bytes in the slab; an LRU queue bounds them.
 */

#ifndef NAO_SSO_SESSION_STORE_H
#define NAO_SSO_SESSION_STORE_H

#include "ngx.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

constexpr size_t kIdBytes = 32;           /* session ids and states */
constexpr size_t kSecretBytes = 32;

struct SessionData {
    std::string id;             /* kIdBytes raw; set by the caller */
    uint64_t version = 0;       /* set by touchSession */
    std::string userId;
    std::string email;
    std::string name;
    std::string role;
    std::string tenantId;
    std::string scope;          /* the application it was signed in to */
    std::string sealedRefresh;  /* the refresh token, AES-GCM sealed */
    std::string flags;          /* e.g. "g": groups still to be read */
    std::string appRoles;       /* the "roles" claim, one per line */
    int64_t created = 0;
    int64_t expires = 0;        /* min(last use + idle, created + max age) */
};

struct PendingSignIn {
    std::string binding;        /* the browser cookie's random value */
    std::string nonce;
    std::string verifier;
    std::string returnTo;
    std::string redirectUri;
    int64_t created = 0;
};

/* a downstream access token, sealed: shared memory never holds it plain */
struct StoredToken {
    std::string sealed;
    std::string audience;       /* its "aud", for diagnostics */
    std::string scope;
    int64_t issued = 0;
    int64_t expires = 0;
};

/* the answer to a worker that wants to refresh a session's tokens */
enum class RefreshClaim {
    Claimed,        /* this caller refreshes; others wait or go on */
    Busy,           /* another request is refreshing right now */
    Backoff,        /* the last attempt failed moments ago */
    Gone            /* the session has ended */
};

struct SessionLimits {
    int64_t idle = 8 * 3600;
    int64_t maxAge = 7 * 86400;
};

class SessionStore {
public:
    static ngx_int_t initZone(ngx_shm_zone_t *zone, void *data);

    explicit SessionStore(ngx_shm_zone_t *zone) : zone_(zone) {}

    /* the random secret made when the zone was first created */
    std::string secret() const;

    bool putSession(std::string_view id, const SessionData &session,
        int64_t now);

    struct Touched {
        int64_t expires = 0;
        uint64_t version = 0;              /* changes when the data does */
        std::optional<SessionData> data;   /* only if not knownVersion */
    };

    /*
     * Slides the session's idle deadline forward; nullopt when unknown or
     * expired (an expired one is removed). The data is copied out only
     * when its version differs from knownVersion, which keeps the hot
     * path free of copies for a worker that has it cached.
     */
    std::optional<Touched> touchSession(std::string_view id, int64_t now,
        const SessionLimits &limits, uint64_t knownVersion = 0);

    void removeSession(std::string_view id);

    /* replaces the session's data, keeping its dates and LRU standing */
    bool updateSession(std::string_view id, const SessionData &session,
        int64_t now);

    /* the key of a session's token for one downstream name */
    static std::string tokenKey(std::string_view sessionId,
        std::string_view name);

    /* refused when the session has ended */
    bool putToken(std::string_view sessionId, std::string_view key,
        const StoredToken &token, int64_t now);
    std::optional<StoredToken> getToken(std::string_view key, int64_t now);
    void removeToken(std::string_view key);

    /*
     * One refresh per session at a time, across workers: the claim holds
     * until finishRefresh() or until `until`, so a worker that dies
     * mid-refresh cannot wedge the session. With respectBackoff a claim
     * is refused for a while after a failed attempt. A successful claim
     * hands out the sealed refresh token as it is now: one read before
     * the claim may already have been spent by another worker.
     */
    RefreshClaim claimRefresh(std::string_view sessionId, int64_t now,
        int64_t until, bool respectBackoff, uint64_t owner,
        std::string *sealedRefresh);

    /* nullopt once the session has ended */
    std::optional<bool> refreshBusy(std::string_view sessionId,
        int64_t now);

    /* releases the claim if owner still holds it; retryAt starts a backoff */
    void finishRefresh(std::string_view sessionId, uint64_t owner,
        int64_t retryAt);

    /*
     * Extends owner's claim to until, and stores a rotated refresh token
     * when sealed is set. False when the claim is no longer owner's.
     */
    bool holdRefresh(std::string_view sessionId, uint64_t owner,
        const std::string *sealed, int64_t until, int64_t now);

    /* a role worked out after sign-in, e.g. once Graph answered */
    bool updateRole(std::string_view sessionId, std::string_view role,
        std::string_view flags, int64_t now);

    bool putPending(std::string_view state, const PendingSignIn &pending,
        int64_t expires, int64_t now);

    /* single use: the entry is removed whether or not it has expired */
    std::optional<PendingSignIn> takePending(std::string_view state,
        int64_t now);

    /* the zone's entry layout, known only to the .cpp */
    struct Entry;

private:

    bool put(uint8_t kind, std::string_view id,
        const std::vector<std::string_view> &fields, int64_t created,
        int64_t expires, int64_t now);
    Entry *insertLocked(uint8_t kind, std::string_view id,
        const std::vector<std::string_view> &fields, int64_t created,
        int64_t expires, int *dropped);
    bool replaceLocked(Entry *entry,
        const std::vector<std::string_view> &fields, int *dropped);
    void reportDropped(int dropped, uint8_t kind);
    void remove(uint8_t kind, std::string_view id);
    Entry *find(uint8_t kind, std::string_view id);
    bool keyTaken(std::string_view id);
    void unlink(Entry *entry);
    void sweep(int64_t now);
    void *allocate(size_t size, uint8_t kind, int *dropped);

    ngx_shm_zone_t *zone_;
};

}  // namespace nao

#endif
