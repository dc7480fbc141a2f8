/*
 * The zone's layout, shared by the files that implement SessionStore and
 * by nothing else: one header (rbtree, LRU queues, secret) and one slab
 * allocation per entry holding its strings inline.
 */

#ifndef NAO_SSO_STORE_LAYOUT_H
#define NAO_SSO_STORE_LAYOUT_H

#include "session_store.h"

#include <algorithm>
#include <string_view>
#include <vector>

namespace nao {

namespace zone {

constexpr uint8_t kSession = 1;
constexpr uint8_t kPending = 2;
constexpr uint8_t kToken = 3;
constexpr size_t kMaxFields = 10;
/* a field's length is a uint16_t; longer values are refused, not cut */
constexpr size_t kMaxField = 65535;
constexpr int kSweepPerPut = 4;
constexpr int kEvictPerPut = 16;

/* changes whenever ShmHeader or Entry does */
constexpr uint32_t kLayout = 0x6e616f06;

/*
 * Two LRU queues, so that sign-ins started by anyone, which need no
 * session, can only ever push out other sign-ins, never a session or
 * its tokens (which share the first queue).
 */
struct ShmHeader {
    uint32_t layout;
    ngx_rbtree_t tree;
    ngx_rbtree_node_t sentinel;
    ngx_queue_t lru[2];
    u_char secret[kSecretBytes];
    uint64_t versions;
};

inline bool
fits(const std::vector<std::string_view> &fields)
{
    if (fields.size() > kMaxFields) {
        return false;
    }

    for (auto field : fields) {
        if (field.size() > kMaxField) {
            return false;
        }
    }

    return true;
}


inline ngx_rbtree_key_t
keyOf(std::string_view id)
{
    ngx_rbtree_key_t key = 0;

    ngx_memcpy(&key, id.data(), std::min(id.size(), sizeof(key)));
    return key;
}

inline ngx_queue_t *
queueOf(void *data, uint8_t kind)
{
    return &static_cast<ShmHeader *>(data)->lru[kind == kPending ? 1 : 0];
}


/* nothing may leave the zone locked, not even an exception */
class ZoneLock {
public:
    explicit ZoneLock(ngx_shm_zone_t *zone)
        : pool_(reinterpret_cast<ngx_slab_pool_t *>(zone->shm.addr))
    {
        ngx_shmtx_lock(&pool_->mutex);
    }

    ~ZoneLock() { ngx_shmtx_unlock(&pool_->mutex); }

    ZoneLock(const ZoneLock &) = delete;
    ZoneLock &operator=(const ZoneLock &) = delete;

private:
    ngx_slab_pool_t *pool_;
};

}  // namespace zone


struct SessionStore::Entry {
    ngx_rbtree_node_t node;
    ngx_queue_t lru;
    u_char id[kIdBytes];
    uint8_t kind;
    uint16_t lengths[zone::kMaxFields];
    uint64_t version;
    int64_t created;
    int64_t expires;
    int64_t busyUntil;          /* a refresh claimed until then */
    uint64_t busyOwner;         /* by whom, so only it releases it */
    int64_t retryAt;            /* no new claim before then */
    u_char data[1];

    std::string_view field(size_t n) const
    {
        size_t offset = 0;

        for (size_t i = 0; i < n; i++) {
            offset += lengths[i];
        }

        return std::string_view(reinterpret_cast<const char *>(data)
                                + offset, lengths[n]);
    }
};


namespace zone {

inline std::vector<std::string_view>
fieldsOf(const SessionData &s)
{
    return {s.userId, s.email, s.name, s.role, s.tenantId, s.scope,
            s.sealedRefresh, s.flags, s.appRoles};
}


inline SessionData
sessionOf(const SessionStore::Entry *entry)
{
    SessionData s;

    s.userId = entry->field(0);
    s.email = entry->field(1);
    s.name = entry->field(2);
    s.role = entry->field(3);
    s.tenantId = entry->field(4);
    s.scope = entry->field(5);
    s.sealedRefresh = entry->field(6);
    s.flags = entry->field(7);
    s.appRoles = entry->field(8);
    s.created = entry->created;
    s.expires = entry->expires;

    return s;
}

}  // namespace zone

using namespace zone;

}  // namespace nao

#endif
