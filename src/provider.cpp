#include "provider.h"

#include <utility>
#include <vector>

namespace nao {

namespace {

std::string
describeFailure(const char *what, const HttpResponse &response)
{
    if (!response.transportOk()) {
        return std::string(what) + " fetch failed: " + response.error;
    }

    return std::string(what) + " endpoint answered "
           + std::to_string(response.status);
}

}  // namespace


Provider::Provider(HttpClient &client, std::string authority,
    std::string tenant, long timeoutMs)
    : client_(client), authority_(std::move(authority)),
      tenant_(std::move(tenant)), timeoutMs_(timeoutMs)
{
}


Provider::~Provider()
{
    client_.cancel(metadataFetch_.transfer);
    client_.cancel(keysFetch_.transfer);
}


const ProviderMetadata *
Provider::metadata() const
{
    return metadata_ ? &*metadata_ : nullptr;
}


bool
Provider::metadataFresh(int64_t now) const
{
    return metadata_ && (now - metadataAt_ < kMetadataTtl
                         || now - metadataFailedAt_ < kRetryAfterFailure);
}


const Jwks *
Provider::keys() const
{
    return keys_ ? &*keys_ : nullptr;
}


bool
Provider::keysFresh(int64_t now) const
{
    return keys_ && now - keysAt_ < kKeysTtl;
}


bool
Provider::mayRefetchForKid(int64_t now) const
{
    return lastMissRefetch_ == 0
           || now - lastMissRefetch_ >= kMissRefetchInterval;
}


uint64_t
Provider::join(Fetch &fetch, Ready ready)
{
    uint64_t id = nextWaiter_++;

    fetch.waiters.emplace(id, std::move(ready));
    return id;
}


void
Provider::complete(Fetch &fetch, const std::string &problem)
{
    std::vector<uint64_t> ids;

    for (const auto &entry : fetch.waiters) {
        ids.push_back(entry.first);
    }

    fetch.transfer = 0;

    /*
     * One at a time from the map: a callback may cancel a later waiter
     * (its request ended) or start the next fetch, whose new waiters are
     * not this fetch's to call.
     */
    for (uint64_t id : ids) {
        auto it = fetch.waiters.find(id);
        if (it == fetch.waiters.end()) {
            continue;
        }

        Ready ready = std::move(it->second);
        fetch.waiters.erase(it);
        ready(problem);
    }
}


uint64_t
Provider::fetchMetadata(Ready ready, int64_t now)
{
    if (metadataFetch_.transfer == 0) {
        HttpRequest request;
        request.url = discoveryUrl(authority_, tenant_);
        request.timeoutMs = timeoutMs_;

        metadataFetch_.transfer = client_.start(request,
            [this, now](HttpResponse &&response) {
                onMetadata(std::move(response), now);
            });

        if (metadataFetch_.transfer == 0) {
            return 0;
        }
    }

    return join(metadataFetch_, std::move(ready));
}


void
Provider::onMetadata(HttpResponse &&response, int64_t now)
{
    if (!response.transportOk() || response.status != 200) {
        metadataFailedAt_ = now;
        complete(metadataFetch_, describeFailure("discovery", response));
        return;
    }

    auto parsed = parseDiscovery(response.body,
                                 expectedIssuer(authority_, tenant_));
    if (!parsed) {
        metadataFailedAt_ = now;
        complete(metadataFetch_, "discovery document rejected: "
                                 + parsed.error());
        return;
    }

    metadata_ = std::move(parsed.value());
    metadataAt_ = now;
    complete(metadataFetch_, "");
}


uint64_t
Provider::fetchKeys(Ready ready, int64_t now, bool forKidMiss)
{
    if (metadata_ == std::nullopt) {
        return 0;
    }

    if (keysFetch_.transfer == 0) {
        HttpRequest request;
        request.url = metadata_->jwksUri;
        request.timeoutMs = timeoutMs_;

        keysFetch_.transfer = client_.start(request,
            [this, now](HttpResponse &&response) {
                onKeys(std::move(response), now);
            });

        if (keysFetch_.transfer == 0) {
            return 0;
        }

        if (forKidMiss) {
            lastMissRefetch_ = now;
        }
    }

    return join(keysFetch_, std::move(ready));
}


void
Provider::onKeys(HttpResponse &&response, int64_t now)
{
    if (!response.transportOk() || response.status != 200) {
        complete(keysFetch_, describeFailure("signing keys", response));
        return;
    }

    auto parsed = parseJwks(response.body);
    if (!parsed) {
        /* the last good set stays in use */
        complete(keysFetch_, "signing keys rejected: " + parsed.error());
        return;
    }

    keys_ = std::move(parsed.value());
    keysAt_ = now;
    complete(keysFetch_, "");
}


void
Provider::cancel(uint64_t waiter)
{
    metadataFetch_.waiters.erase(waiter);
    keysFetch_.waiters.erase(waiter);
}

}  // namespace nao
