/*
 * Sessions and sign-ins in shared memory: allocation, eviction, lookup.
 */

#include "store_layout.h"

#include "crypto.h"

namespace nao {


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
        /* kSession stands for the queue that sessions and tokens share */
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
                               : kind != kPending ? sessions : nullptr;

        if (victims == nullptr || ngx_queue_empty(victims)) {
            return nullptr;
        }

        unlink(ngx_queue_data(ngx_queue_last(victims), Entry, lru));
        (*dropped)++;
    }

    return nullptr;
}


SessionStore::Entry *
SessionStore::insertLocked(uint8_t kind, std::string_view id,
    const std::vector<std::string_view> &fields, int64_t created,
    int64_t expires, int *dropped)
{
    auto *header = static_cast<ShmHeader *>(zone_->data);
    size_t size = offsetof(Entry, data);

    if (id.size() != kIdBytes || !fits(fields)) {
        return nullptr;
    }

    for (auto field : fields) {
        size += field.size();
    }

    auto *entry = static_cast<Entry *>(allocate(size, kind, dropped));
    if (entry == nullptr) {
        return nullptr;
    }

    ngx_memcpy(entry->id, id.data(), kIdBytes);
    entry->node.key = keyOf(id);
    entry->kind = kind;
    entry->created = created;
    entry->expires = expires;
    entry->busyUntil = 0;
    entry->busyOwner = 0;
    entry->retryAt = 0;
    entry->version = ++header->versions;

    u_char *p = entry->data;
    for (size_t i = 0; i < kMaxFields; i++) {
        size_t len = i < fields.size() ? fields[i].size() : 0;
        entry->lengths[i] = static_cast<uint16_t>(len);
        if (len > 0) {
            p = ngx_cpymem(p, fields[i].data(), len);
        }
    }

    ngx_rbtree_insert(&header->tree, &entry->node);
    ngx_queue_insert_head(queueOf(zone_->data, kind), &entry->lru);

    return entry;
}


/*
 * Entries are sized to their strings, so new strings need a new entry.
 * The old one goes first (the allocation might otherwise evict it under
 * us); the fields are copied out beforehand since they may point into it.
 */
bool
SessionStore::replaceLocked(Entry *entry,
    const std::vector<std::string_view> &fields, int *dropped)
{
    if (!fits(fields)) {
        return false;
    }

    std::vector<std::string> copies(fields.begin(), fields.end());
    std::vector<std::string_view> views(copies.begin(), copies.end());
    std::string id(reinterpret_cast<const char *>(entry->id), kIdBytes);
    uint8_t kind = entry->kind;
    int64_t created = entry->created;
    int64_t expires = entry->expires;
    int64_t busyUntil = entry->busyUntil;
    uint64_t busyOwner = entry->busyOwner;
    int64_t retryAt = entry->retryAt;

    unlink(entry);

    Entry *fresh = insertLocked(kind, id, views, created, expires, dropped);
    if (fresh == nullptr) {
        return false;
    }

    fresh->busyUntil = busyUntil;
    fresh->busyOwner = busyOwner;
    fresh->retryAt = retryAt;
    return true;
}


void
SessionStore::reportDropped(int dropped, uint8_t kind)
{
    if (dropped == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "nao_sso zone \"%V\" is full, dropped %d least "
                  "recently used %s; consider a larger "
                  "nao_sso_zone_size", &zone_->shm.name, dropped,
                  kind != kPending ? "entries" : "sign-ins");
}


bool
SessionStore::put(uint8_t kind, std::string_view id,
    const std::vector<std::string_view> &fields, int64_t created,
    int64_t expires, int64_t now)
{
    int dropped = 0;
    bool stored = false;

    {
        ZoneLock lock(zone_);

        sweep(now);

        if (!keyTaken(id)) {
            stored = insertLocked(kind, id, fields, created, expires,
                                  &dropped) != nullptr;
        }
    }

    reportDropped(dropped, kind);
    return stored;
}


bool
SessionStore::putSession(std::string_view id, const SessionData &session,
    int64_t now)
{
    return put(kSession, id, fieldsOf(session), session.created,
               session.expires, now);
}


bool
SessionStore::updateSession(std::string_view id, const SessionData &session,
    int64_t now)
{
    int dropped = 0;
    bool stored = false;

    {
        ZoneLock lock(zone_);

        Entry *entry = find(kSession, id);
        if (entry != nullptr && entry->expires > now) {
            stored = replaceLocked(entry, fieldsOf(session), &dropped);
        }
    }

    reportDropped(dropped, kSession);
    return stored;
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
            t.data = sessionOf(entry);
        }
    }

    return result;
}


void
SessionStore::removeSession(std::string_view id)
{
    remove(kSession, id);
}


void
SessionStore::remove(uint8_t kind, std::string_view id)
{
    ZoneLock lock(zone_);

    Entry *entry = find(kind, id);
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
