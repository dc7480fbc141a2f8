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

/* changes whenever ShmHeader or Entry does */
constexpr uint32_t kLayout = 0x6e616f03;

/*
 * One LRU queue per kind, so that sign-ins started by anyone, which need
 * no session, can only ever push out other sign-ins, never a session.
 */
struct ShmHeader {
    uint32_t layout;
    ngx_rbtree_t tree;
    ngx_rbtree_node_t sentinel;
    ngx_queue_t lru[2];
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

ngx_queue_t *
queueOf(void *data, uint8_t kind)
{
    return &static_cast<ShmHeader *>(data)->lru[kind == kSession ? 0 : 1];
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

}  // namespace


struct SessionStore::Entry {
    ngx_rbtree_node_t node;
    ngx_queue_t lru;
    u_char id[kIdBytes];
    uint8_t kind;
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
        /*
         * A reload with the same zone keeps sessions and the secret; a
         * module built with another layout must not read them.
         */
        if (static_cast<ShmHeader *>(data)->layout != kLayout) {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "nao_sso zone \"%V\" was made by another version "
                          "of the module; restart nginx instead of "
                          "reloading it", &zone->shm.name);
            return NGX_ERROR;
        }

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

    header->layout = kLayout;
    ngx_rbtree_init(&header->tree, &header->sentinel,
                    ngx_rbtree_insert_value);
    ngx_queue_init(&header->lru[0]);
    ngx_queue_init(&header->lru[1]);
    header->versions = 0;

    auto secret = randomBytes(kSecretBytes);
    if (!secret) {
        return NGX_ERROR;
    }

    ngx_memcpy(header->secret, secret->data(), kSecretBytes);

    shpool->data = header;
    zone->data = header;

    /* a full zone is handled (and logged once) by allocate() */
    shpool->log_nomem = 0;

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


/* a few of the least recently used entries of each kind, if expired */
void
SessionStore::sweep(int64_t now)
{
    for (uint8_t kind : {kSession, kPending}) {
        ngx_queue_t *queue = queueOf(zone_->data, kind);

        for (int i = 0; i < kSweepPerPut && !ngx_queue_empty(queue); i++) {
            Entry *entry = ngx_queue_data(ngx_queue_last(queue), Entry, lru);

            if (entry->expires > now) {
                break;
            }

            unlink(entry);
        }
    }
}


/*
 * When the zone is full the least recently used entries make room: for a
 * sign-in only other sign-ins, for a session sign-ins first. The number
 * dropped is returned in *dropped, to be logged once the lock is gone.
 */
void *
SessionStore::allocate(size_t size, uint8_t kind, int *dropped)
{
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(zone_->shm.addr);
    ngx_queue_t *pending = queueOf(zone_->data, kPending);
    ngx_queue_t *sessions = queueOf(zone_->data, kSession);

    *dropped = 0;

    for (int i = 0; i <= kEvictPerPut; i++) {
        void *p = ngx_slab_alloc_locked(shpool, size);
        if (p != nullptr) {
            return p;
        }

        ngx_queue_t *victims = !ngx_queue_empty(pending) ? pending
                               : kind == kSession ? sessions : nullptr;

        if (victims == nullptr || ngx_queue_empty(victims)) {
            return nullptr;
        }

        unlink(ngx_queue_data(ngx_queue_last(victims), Entry, lru));
        (*dropped)++;
    }

    return nullptr;
}


bool
SessionStore::put(uint8_t kind, std::string_view id,
    const std::vector<std::string_view> &fields, int64_t created,
    int64_t expires, int64_t now)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    size_t size = offsetof(Entry, data);

    if (id.size() != kIdBytes || fields.size() > kMaxFields) {
        return false;
    }

    for (auto field : fields) {
        size += std::min(field.size(), kMaxField);
    }

    int dropped = 0;
    bool stored = false;

    {
        ZoneLock lock(zone_);

        sweep(now);

        auto *entry = keyTaken(id)
            ? nullptr : static_cast<Entry *>(allocate(size, kind, &dropped));

        if (entry != nullptr) {
            ngx_memcpy(entry->id, id.data(), kIdBytes);
            entry->node.key = keyOf(id);
            entry->kind = kind;
            entry->created = created;
            entry->expires = expires;
            entry->version = ++header->versions;

            u_char *p = entry->data;
            for (size_t i = 0; i < fields.size(); i++) {
                size_t len = std::min(fields[i].size(), kMaxField);
                entry->lengths[i] = static_cast<uint16_t>(len);
                p = ngx_cpymem(p, fields[i].data(), len);
            }

            ngx_rbtree_insert(&header->tree, &entry->node);
            ngx_queue_insert_head(queueOf(zone_->data, kind), &entry->lru);
            stored = true;
        }
    }

    if (dropped > 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "nao_sso zone \"%V\" is full, dropped %d least "
                      "recently used %s; consider a larger "
                      "nao_sso_zone_size", &zone_->shm.name, dropped,
                      kind == kSession ? "entries" : "sign-ins");
    }

    return stored;
}


bool
SessionStore::putSession(std::string_view id, const SessionData &session,
    int64_t now)
{
    return put(kSession, id,
               {session.userId, session.email, session.name, session.role,
                session.tenantId, session.scope},
               session.created, session.expires, now);
}


std::optional<SessionStore::Touched>
SessionStore::touchSession(std::string_view id, int64_t now,
    const SessionLimits &limits, uint64_t knownVersion)
{
    std::optional<Touched> result;
    ZoneLock lock(zone_);

    Entry *entry = find(kSession, id);

    if (entry != nullptr && entry->expires <= now) {
        unlink(entry);
        entry = nullptr;
    }

    if (entry != nullptr) {
        entry->expires = std::min(now + limits.idle,
                                  entry->created + limits.maxAge);
        ngx_queue_remove(&entry->lru);
        ngx_queue_insert_head(queueOf(zone_->data, kSession), &entry->lru);

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
            s.scope = entry->field(5);
            s.created = entry->created;
            s.expires = entry->expires;
        }
    }

    return result;
}


void
SessionStore::removeSession(std::string_view id)
{
    ZoneLock lock(zone_);

    Entry *entry = find(kSession, id);
    if (entry != nullptr) {
        unlink(entry);
    }
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
    std::optional<PendingSignIn> result;
    ZoneLock lock(zone_);

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

    return result;
}

}  // namespace nao
