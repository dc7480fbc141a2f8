/*
 * Downstream tokens kept: sealed into the zone, opened into the worker's
 * cache, dropped with their session; and the variables that read them.
 */

#include "ngx_http_nao_sso_tokens.h"

#include "downstream.h"
#include "ngx_http_nao_sso_flow.h"
#include "url.h"

namespace nao {

std::string
refreshTokenBinding(std::string_view sessionId)
{
    std::string binding("nao_sso refresh token\0", 22);

    binding.append(sessionId);
    return binding;
}


std::string
accessTokenBinding(std::string_view sessionId, const Downstream &downstream)
{
    std::string binding("nao_sso access token\0", 21);

    binding.append(sessionId);
    binding.push_back('\0');
    binding.append(downstream.name);
    binding.push_back('\0');
    binding.append(downstream.scope);

    return binding;
}


TokenCacheKey::TokenCacheKey(std::string_view sessionId,
    std::string_view name)
{
    /* ids are kIdBytes and names at most kMaxDownstreamName: all fits */
    size_ = sessionId.copy(data_, kIdBytes);
    data_[size_++] = '\0';
    size_ += name.copy(data_ + size_, kMaxDownstreamName);
}


void
cacheToken(const TokenCacheKey &key,
    std::shared_ptr<const AccessToken> token)
{
    auto &cache = worker->tokens;

    if (cache.size() >= 4 * Worker::kCacheEntries) {
        cache.clear();
    }

    cache.insert_or_assign(std::string(key.view()), std::move(token));
}


ngx_shm_zone_t *
zoneOf(ngx_http_request_t *r)
{
    auto *mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_get_module_main_conf(r, ngx_http_nao_sso_module));

    return mcf->zone;
}


namespace {


/* Redshift refuses a token for another audience, and says little why */
void
checkAudience(const Downstream &downstream, const AccessToken &token,
    ngx_log_t *log)
{
    if (downstream.audience.empty()
        || token.audience == downstream.audience)
    {
        return;
    }

    std::string key = downstream.scope + '\0' + token.audience;
    if (!worker->audienceWarned.insert(key).second) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "nao_sso: the token for \"%s\" has audience \"%s\" but "
                  "\"%s\" is expected; the downstream service will likely "
                  "refuse it", downstream.scope.c_str(),
                  token.audience.empty() ? "(none)" : token.audience.c_str(),
                  downstream.audience.c_str());
}

}  // namespace


std::shared_ptr<const AccessToken>
keepAccessToken(ngx_shm_zone_t *zone, ngx_http_nao_sso_srv_conf_t *sscf,
    std::string_view sessionId, size_t index, const std::string &token,
    int64_t expiresIn, ngx_log_t *log)
{
    const Downstream &downstream = sscf->state->downstream[index];
    int64_t now = ngx_time();

    auto opened = std::make_shared<AccessToken>();
    opened->token = token;
    opened->audience = peekAccessToken(token).audience;
    opened->scope = downstream.scope;
    opened->issued = now;
    opened->expires = now + std::max<int64_t>(expiresIn, 0);

    checkAudience(downstream, *opened, log);

    auto sealed = seal(worker->sealKeys.front(), token,
                       accessTokenBinding(sessionId, downstream));

    StoredToken stored;
    stored.issued = opened->issued;
    stored.audience = opened->audience;
    stored.scope = opened->scope;
    stored.expires = opened->expires;

    if (sealed) {
        stored.sealed = std::move(*sealed);
        SessionStore(zone).putToken(sessionId,
            SessionStore::tokenKey(sessionId, downstream.name), stored, now);
    }

    cacheToken(TokenCacheKey(sessionId, downstream.name), opened);
    return opened;
}


void
endSession(ngx_shm_zone_t *zone, ngx_http_nao_sso_srv_conf_t *sscf,
    std::string_view sessionId)
{
    SessionStore store(zone);

    store.removeSession(sessionId);

    for (const Downstream &downstream : sscf->state->downstream) {
        store.removeToken(SessionStore::tokenKey(sessionId,
                                                 downstream.name));
        auto cached = worker->tokens.find(
            TokenCacheKey(sessionId, downstream.name).view());
        if (cached != worker->tokens.end()) {
            worker->tokens.erase(cached);
        }
    }
}


}  // namespace nao


void
ngx_http_nao_sso_store_login_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, const std::string &sessionId,
    const nao::TokenResponse &tokens)
{
    if (tokens.accessToken.empty()) {
        return;
    }

    nao::keepAccessToken(nao::zoneOf(r), sscf, sessionId, 0,
                         tokens.accessToken, tokens.expiresIn,
                         r->connection->log);
}


void
ngx_http_nao_sso_forget_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, const std::string &sessionId)
{
    nao::endSession(nao::zoneOf(r), sscf, sessionId);
}


/*
 * $nao_sso_access_token (data 0) and $nao_sso_token_<name> (data is the
 * variable's name): filled by the access phase, empty before it.
 */
ngx_int_t
ngx_http_nao_sso_token_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    static constexpr std::string_view kPrefix = "nao_sso_token_";

    ngx_http_nao_sso_ctx_t *ctx = ngx_http_nao_sso_get_ctx(r->main);
    auto *sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
        ngx_http_get_module_srv_conf(r->main, ngx_http_nao_sso_module));

    auto *lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r->main, ngx_http_nao_sso_module));

    v->not_found = 1;

    if (ctx == nullptr || sscf->state == nullptr || !lcf->tokens) {
        return NGX_OK;
    }

    std::string_view name;
    if (data != 0) {
        name = nao::view(*reinterpret_cast<ngx_str_t *>(data));
        name.remove_prefix(std::min(name.size(), kPrefix.size()));
    }

    const auto &list = sscf->state->downstream;

    for (size_t i = 0; i < list.size() && i < ctx->downstream.size(); i++) {
        const auto &token = ctx->downstream[i];

        if (list[i].name != name || !token) {
            continue;
        }

        v->data = (u_char *) token->token.data();
        v->len = token->token.size();
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        break;
    }

    return NGX_OK;
}
