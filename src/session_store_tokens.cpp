/*
 * Downstream tokens in shared memory and the one-refresh-at-a-time claim
 * on a session. Tokens are stored sealed by the caller; nothing here sees
 * them in the clear.
 */

#include "store_layout.h"

#include "crypto.h"

namespace nao {

std::string
SessionStore::tokenKey(std::string_view sessionId, std::string_view name)
{
    std::string input("nao_sso token\0", 14);

    input.append(sessionId);
    input.push_back('\0');
    input.append(name);

    return sha256(input);
}


bool
SessionStore::putToken(std::string_view sessionId, std::string_view key,
    const StoredToken &token, int64_t now)
{
    int dropped = 0;
    bool stored = false;

    {
        ZoneLock lock(zone_);

        sweep(now);

        Entry *old = find(kToken, key);
        if (old != nullptr) {
            unlink(old);
        }

        /* a refresh that ends after its session did keeps nothing */
        Entry *session = find(kSession, sessionId);

        if (session != nullptr && session->expires > now && !keyTaken(key)) {
            stored = insertLocked(kToken, key,
                                  {token.sealed, token.audience,
                                   token.scope},
                                  token.issued, token.expires,
                                  &dropped) != nullptr;
        }
    }

    reportDropped(dropped, kToken);
    return stored;
}


std::optional<StoredToken>
SessionStore::getToken(std::string_view key, int64_t now)
{
    std::optional<StoredToken> result;
    ZoneLock lock(zone_);

    Entry *entry = find(kToken, key);

    if (entry != nullptr && entry->expires > now) {
        StoredToken &t = result.emplace();
        t.sealed = entry->field(0);
        t.audience = entry->field(1);
        t.scope = entry->field(2);
        t.issued = entry->created;
        t.expires = entry->expires;
    }

    return result;
}


void
SessionStore::removeToken(std::string_view key)
{
    remove(kToken, key);
}


RefreshClaim
SessionStore::claimRefresh(std::string_view sessionId, int64_t now,
    int64_t until, bool respectBackoff, uint64_t owner,
    std::string *sealedRefresh)
{
    ZoneLock lock(zone_);

    Entry *entry = find(kSession, sessionId);

    if (entry == nullptr || entry->expires <= now) {
        return RefreshClaim::Gone;
    }

    if (entry->busyUntil > now) {
        return RefreshClaim::Busy;
    }

    if (respectBackoff && entry->retryAt > now) {
        return RefreshClaim::Backoff;
    }

    entry->busyUntil = until;
    entry->busyOwner = owner;
    *sealedRefresh = entry->field(6);
    return RefreshClaim::Claimed;
}


std::optional<bool>
SessionStore::refreshBusy(std::string_view sessionId, int64_t now)
{
    ZoneLock lock(zone_);

    Entry *entry = find(kSession, sessionId);

    if (entry == nullptr || entry->expires <= now) {
        return std::nullopt;
    }

    return entry->busyUntil > now;
}


void
SessionStore::finishRefresh(std::string_view sessionId, uint64_t owner,
    int64_t retryAt)
{
    ZoneLock lock(zone_);

    Entry *entry = find(kSession, sessionId);

    /* a claim that ran out may belong to another refresh by now */
    if (entry == nullptr || entry->busyOwner != owner) {
        return;
    }

    entry->busyUntil = 0;
    entry->busyOwner = 0;
    entry->retryAt = retryAt;
}



bool
SessionStore::holdRefresh(std::string_view sessionId, uint64_t owner,
    const std::string *sealed, int64_t until, int64_t now)
{
    int dropped = 0;
    bool held = false;

    {
        ZoneLock lock(zone_);

        Entry *entry = find(kSession, sessionId);
        if (entry == nullptr || entry->expires <= now) {
            return false;
        }

        /*
         * A newer token is kept even when the claim was lost meanwhile:
         * Entra has just rotated, so the stored one may be spent.
         */
        held = entry->busyOwner == owner;
        if (held) {
            entry->busyUntil = until;
        }

        if (sealed != nullptr) {
            SessionData session = sessionOf(entry);
            session.sealedRefresh = *sealed;
            replaceLocked(entry, fieldsOf(session), &dropped);
        }
    }

    reportDropped(dropped, kSession);
    return held;
}


bool
SessionStore::updateRole(std::string_view sessionId, std::string_view role,
    std::string_view flags, int64_t now)
{
    int dropped = 0;
    bool stored = false;

    {
        ZoneLock lock(zone_);

        Entry *entry = find(kSession, sessionId);
        if (entry != nullptr && entry->expires > now) {
            SessionData session = sessionOf(entry);
            session.role = role;
            session.flags = flags;
            stored = replaceLocked(entry, fieldsOf(session), &dropped);
        }
    }

    reportDropped(dropped, kSession);
    return stored;
}

}  // namespace nao
