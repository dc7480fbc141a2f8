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

    bool putPending(std::string_view state, const PendingSignIn &pending,
        int64_t expires, int64_t now);

    /* single use: the entry is removed whether or not it has expired */
    std::optional<PendingSignIn> takePending(std::string_view state,
        int64_t now);

private:
    struct Entry;

    bool put(uint8_t kind, std::string_view id,
        const std::vector<std::string_view> &fields, int64_t created,
        int64_t expires, int64_t now);
    Entry *find(uint8_t kind, std::string_view id);
    bool keyTaken(std::string_view id);
    void unlink(Entry *entry);
    void sweep(int64_t now);
    void *allocate(size_t size, uint8_t kind, int *dropped);

    ngx_shm_zone_t *zone_;
};

}  // namespace nao

#endif
