/*
 * What a worker knows of one Entra tenant: the discovery document and
 * the signing keys, fetched lazily (so nginx starts while Microsoft is
 * unreachable), shared by concurrent sign-ins (one fetch, many waiters)
 * and kept when a later fetch fails.
 */

#ifndef NAO_SSO_PROVIDER_H
#define NAO_SSO_PROVIDER_H

#include "http_client.h"
#include "jose.h"
#include "oidc.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace nao {

class Provider {
public:
    /* empty problem: the fetch worked */
    using Ready = std::function<void(const std::string &problem)>;

    static constexpr int64_t kMetadataTtl = 24 * 3600;
    static constexpr int64_t kKeysTtl = 24 * 3600;
    static constexpr int64_t kMissRefetchInterval = 5;
    static constexpr int64_t kRetryAfterFailure = 60;

    Provider(HttpClient &client, std::string authority, std::string tenant,
        long timeoutMs);
    ~Provider();

    /* nullptr until discovery has worked once; stale data is kept */
    const ProviderMetadata *metadata() const;

    /*
     * True while the document is young, and for kRetryAfterFailure after
     * a refresh failed, so that an outage does not make every sign-in
     * wait for a timeout when a stale document would do.
     */
    bool metadataFresh(int64_t now) const;

    /* nullptr until the keys were fetched once */
    const Jwks *keys() const;
    bool keysFresh(int64_t now) const;

    /*
     * A key id that is not in the set may mean Entra rolled its keys;
     * such refetches are limited to one per kMissRefetchInterval.
     */
    bool mayRefetchForKid(int64_t now) const;

    /*
     * Starts or joins a fetch; ready runs later from the event loop.
     * Returns a waiter id for cancel(), or 0 when no fetch could start
     * (ready is then never called).
     */
    uint64_t fetchMetadata(Ready ready, int64_t now);
    uint64_t fetchKeys(Ready ready, int64_t now, bool forKidMiss);

    /* a waiter whose request went away */
    void cancel(uint64_t waiter);

private:
    struct Fetch {
        uint64_t transfer = 0;
        std::map<uint64_t, Ready> waiters;
    };

    uint64_t join(Fetch &fetch, Ready ready);
    void complete(Fetch &fetch, const std::string &problem);
    void onMetadata(HttpResponse &&response, int64_t now);
    void onKeys(HttpResponse &&response, int64_t now);

    HttpClient &client_;
    std::string authority_;
    std::string tenant_;
    long timeoutMs_;
    uint64_t nextWaiter_ = 1;

    std::optional<ProviderMetadata> metadata_;
    int64_t metadataAt_ = 0;
    int64_t metadataFailedAt_ = 0;
    Fetch metadataFetch_;

    std::optional<Jwks> keys_;
    int64_t keysAt_ = 0;
    int64_t lastMissRefetch_ = 0;
    Fetch keysFetch_;
};

}  // namespace nao

#endif
