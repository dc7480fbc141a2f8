/*
 * Shared memory layout: one header (rbtree, LRU queue, secret) and one
 * slab allocation per entry holding its strings inline.
 */

#include "session_store.h"

#include "crypto.h"

#include <algorithm>

namespace nao {

namespace {

constexpr uint8_t kSession = 1;
constexpr uint8_t kPending = 2;
constexpr size_t kMaxFields = 8;
constexpr size_t kMaxField = 4096;
constexpr int kSweepPerPut = 4;
constexpr int kEvictPerPut = 16;

struct ShmHeader {
    ngx_rbtree_t tree;
    ngx_rbtree_node_t sentinel;
    ngx_queue_t lru;
    u_char secret[kSecretBytes];
    uint64_t versions;
};

ngx_rbtree_key_t
keyOf(std::string_view id)
{
    ngx_rbtree_key_t key = 0;

    ngx_memcpy(&key, id.data(), std::min(id.size(), sizeof(key)));
    return key;
}

}  // namespace


struct SessionStore::Entry {
    ngx_rbtree_node_t node;
    ngx_queue_t lru;
    u_char id[kIdBytes];
    uint8_t kind;
    uint8_t fieldCount;
    uint16_t lengths[kMaxFields];
    uint64_t version;
    int64_t created;
    int64_t expires;
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


ngx_int_t
SessionStore::initZone(ngx_shm_zone_t *zone, void *data)
{
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone->shm.addr);

    if (data != nullptr) {
        /* a reload with the same zone: keep sessions and the secret */
        zone->data = data;
        return NGX_OK;
    }

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    auto *header = static_cast<ShmHeader *>(
        ngx_slab_alloc(shpool, sizeof(ShmHeader)));
    if (header == nullptr) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&header->tree, &header->sentinel,
                    ngx_rbtree_insert_value);
    ngx_queue_init(&header->lru);
    header->versions = 0;

    auto secret = randomBytes(kSecretBytes);
    if (!secret) {
        return NGX_ERROR;
    }

    ngx_memcpy(header->secret, secret->data(), kSecretBytes);

    shpool->data = header;
    zone->data = header;

    static const char kContext[] = " in nao_sso zone \"";
    size_t len = sizeof(kContext) + zone->shm.name.len + 1;

    shpool->log_ctx = static_cast<u_char *>(ngx_slab_alloc(shpool, len));
    if (shpool->log_ctx != nullptr) {
        ngx_sprintf(shpool->log_ctx, " in nao_sso zone \"%V\"%Z",
                    &zone->shm.name);
    }

    return NGX_OK;
}


std::string
SessionStore::secret() const
{
    auto *header = static_cast<ShmHeader *>(zone_->data);

    return std::string(reinterpret_cast<const char *>(header->secret),
                       kSecretBytes);
}


/* callers hold the zone's mutex from here on */

SessionStore::Entry *
SessionStore::find(uint8_t kind, std::string_view id)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    ngx_rbtree_key_t key = keyOf(id);
    ngx_rbtree_node_t *node = header->tree.root;
    ngx_rbtree_node_t *sentinel = header->tree.sentinel;

    if (id.size() != kIdBytes) {
        return nullptr;
    }

    /*
     * Keys are the first bytes of random ids; put() refuses a colliding
     * key, so a key names one entry and the full id is then compared.
     */
    while (node != sentinel) {
        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        auto *entry = reinterpret_cast<Entry *>(node);

        if (entry->kind == kind
            && ngx_memcmp(id.data(), entry->id, kIdBytes) == 0)
        {
            return entry;
        }

        return nullptr;
    }

    return nullptr;
}


bool
SessionStore::keyTaken(std::string_view id)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    ngx_rbtree_key_t key = keyOf(id);
    ngx_rbtree_node_t *node = header->tree.root;

    while (node != header->tree.sentinel) {
        if (key == node->key) {
            return true;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return false;
}


void
SessionStore::unlink(Entry *entry)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);

    ngx_queue_remove(&entry->lru);
    ngx_rbtree_delete(&header->tree, &entry->node);
    ngx_slab_free_locked(shpool, entry);
}


/* a few of the least recently used entries, removed if expired */
void
SessionStore::sweep(int64_t now)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);

    for (int i = 0; i < kSweepPerPut; i++) {
        if (ngx_queue_empty(&header->lru)) {
            return;
        }

        ngx_queue_t *q = ngx_queue_last(&header->lru);
        Entry *entry = ngx_queue_data(q, Entry, lru);

        if (entry->expires > now) {
            return;
        }

        unlink(entry);
    }
}


/* when the zone is full the least recently used entries make room */
void *
SessionStore::allocate(size_t size)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);

    for (int i = 0; i <= kEvictPerPut; i++) {
        void *p = ngx_slab_alloc_locked(shpool, size);
        if (p != nullptr) {
            if (i > 0) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "nao_sso zone \"%V\" is full, dropped %d "
                              "least recently used entries; consider a "
                              "larger nao_sso_zone_size",
                              &zone_->shm.name, i);
            }
            return p;
        }

        if (ngx_queue_empty(&header->lru)) {
            return nullptr;
        }

        unlink(ngx_queue_data(ngx_queue_last(&header->lru), Entry, lru));
    }

    return nullptr;
}


bool
SessionStore::put(uint8_t kind, std::string_view id,
    const std::vector<std::string_view> &fields, int64_t created,
    int64_t expires, int64_t now)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);
    size_t size = offsetof(Entry, data);

    if (id.size() != kIdBytes || fields.size() > kMaxFields) {
        return false;
    }

    for (auto field : fields) {
        size += std::min(field.size(), kMaxField);
    }

    ngx_shmtx_lock(&shpool->mutex);

    sweep(now);

    if (keyTaken(id)) {
        ngx_shmtx_unlock(&shpool->mutex);
        return false;
    }

    auto *entry = static_cast<Entry *>(allocate(size));
    if (entry == nullptr) {
        ngx_shmtx_unlock(&shpool->mutex);
        return false;
    }

    ngx_memcpy(entry->id, id.data(), kIdBytes);
    entry->node.key = keyOf(id);
    entry->kind = kind;
    entry->created = created;
    entry->expires = expires;
    entry->version = ++header->versions;
    entry->fieldCount = static_cast<uint8_t>(fields.size());

    u_char *p = entry->data;
    for (size_t i = 0; i < fields.size(); i++) {
        size_t len = std::min(fields[i].size(), kMaxField);
        entry->lengths[i] = static_cast<uint16_t>(len);
        p = ngx_cpymem(p, fields[i].data(), len);
    }

    ngx_rbtree_insert(&header->tree, &entry->node);
    ngx_queue_insert_head(&header->lru, &entry->lru);

    ngx_shmtx_unlock(&shpool->mutex);
    return true;
}


bool
SessionStore::putSession(std::string_view id, const SessionData &session,
    int64_t now)
{
    return put(kSession, id,
               {session.userId, session.email, session.name, session.role,
                session.tenantId},
               session.created, session.expires, now);
}


std::optional<SessionStore::Touched>
SessionStore::touchSession(std::string_view id, int64_t now,
    const SessionLimits &limits, uint64_t knownVersion)
{
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);
    std::optional<Touched> result;

    ngx_shmtx_lock(&shpool->mutex);

    Entry *entry = find(kSession, id);

    if (entry != nullptr && entry->expires <= now) {
        unlink(entry);
        entry = nullptr;
    }

    if (entry != nullptr) {
        entry->expires = std::min(now + limits.idle,
                                  entry->created + limits.maxAge);
        ngx_queue_remove(&entry->lru);
        ngx_queue_insert_head(
            &static_cast<ShmHeader *>(zone_->data)->lru, &entry->lru);

        Touched &t = result.emplace();
        t.expires = entry->expires;
        t.version = entry->version;

        if (entry->version != knownVersion) {
            SessionData &s = t.data.emplace();
            s.userId = entry->field(0);
            s.email = entry->field(1);
            s.name = entry->field(2);
            s.role = entry->field(3);
            s.tenantId = entry->field(4);
            s.created = entry->created;
            s.expires = entry->expires;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);
    return result;
}


void
SessionStore::removeSession(std::string_view id)
{
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);

    ngx_shmtx_lock(&shpool->mutex);

    Entry *entry = find(kSession, id);
    if (entry != nullptr) {
        unlink(entry);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


bool
SessionStore::putPending(std::string_view state,
    const PendingSignIn &pending, int64_t expires, int64_t now)
{
    return put(kPending, state,
               {pending.binding, pending.nonce, pending.verifier,
                pending.returnTo, pending.redirectUri},
               pending.created, expires, now);
}


std::optional<PendingSignIn>
SessionStore::takePending(std::string_view state, int64_t now)
{
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);
    std::optional<PendingSignIn> result;

    ngx_shmtx_lock(&shpool->mutex);

    Entry *entry = find(kPending, state);

    if (entry != nullptr && entry->expires > now) {
        PendingSignIn &p = result.emplace();
        p.binding = entry->field(0);
        p.nonce = entry->field(1);
        p.verifier = entry->field(2);
        p.returnTo = entry->field(3);
        p.redirectUri = entry->field(4);
        p.created = entry->created;
    }

    if (entry != nullptr) {
        unlink(entry);
    }

    ngx_shmtx_unlock(&shpool->mutex);
    return result;
}

}  // namespace nao
