/*
 * What the module's nginx-facing files share: configuration, the request
 * context and the worker's clients.
 */

#ifndef NGX_HTTP_NAO_SSO_H
#define NGX_HTTP_NAO_SSO_H

#include "aead.h"
#include "event_bridge.h"
#include "graph_reader.h"
#include "http_client.h"
#include "ngx.h"
#include "oidc.h"
#include "provider.h"
#include "roles.h"
#include "session_store.h"
#include "settings.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

extern "C" {
extern ngx_module_t  ngx_http_nao_sso_module;
}

#define NGX_HTTP_NAO_SSO_OFF       0
#define NGX_HTTP_NAO_SSO_ON        1
#define NGX_HTTP_NAO_SSO_OPTIONAL  2

/* what each $nao_sso_* variable reads */
enum ngx_http_nao_sso_field {
    NAO_VAR_USER_ID,
    NAO_VAR_EMAIL,
    NAO_VAR_NAME,
    NAO_VAR_ROLE,
    NAO_VAR_TENANT,
    NAO_VAR_ACCESS_TOKEN
};

#define NGX_HTTP_NAO_SSO_ROLE_UNSET  ((ngx_uint_t) -1)

namespace nao {

/* what the master worked out from the http{} level */
struct MainState {
    std::vector<std::string> secrets;     /* from nao_sso_secret_file */
    bool licenceOk = false;
    int64_t licenceExpires = 0;
    std::string licenceProblem;
    std::vector<RoleRule> licenceRules;   /* the licence's role_rules */
};

/* who may sign in, and with which role */
struct Policy {
    Role defaultRole = Role::Member;
    std::vector<RoleRule> rules;          /* configuration, then licence */
    std::vector<std::string> allowedDomains;
    std::vector<std::string> allowedGroups;
    bool autoCreate = true;
    std::string usersFile;
    std::string graphUrl;
    std::string graphScope;

    bool needsGroups() const;
};

/* a resource the user's tokens are obtained for */
struct Downstream {
    std::string name;                     /* empty for the default one */
    std::string scope;
    std::string audience;                 /* expected "aud", optional */
    std::string header;                   /* e.g. "X-Nao-Token-Graph" */
    std::string lowcase;
    ngx_uint_t hash = 0;
};

/* what the master worked out for one server{} */
struct ServerState {
    ProviderSettings settings;
    std::vector<std::string> problems;    /* why SSO is inactive */
    std::string providerKey;
    std::string sessionScope;             /* authority, tenant, client */
    std::string sessionCookie;            /* "__Host-nao_sso" or "nao_sso" */
    std::string bindingPrefix;            /* session cookie + "_b_" */
    std::vector<Downstream> downstream;   /* [0] is the default token */
    Policy policy;
};

/* a downstream token opened for this worker's use */
struct AccessToken {
    std::string token;
    std::string audience;
    std::string scope;
    int64_t issued = 0;
    int64_t expires = 0;
};

class Refresher;

/* per worker process */
struct Worker {
    explicit Worker(ngx_log_t *log);
    ~Worker();

    NgxReactor reactor;
    HttpClient client;
    std::vector<std::string> secrets;     /* first signs, all verify */
    std::map<std::string, std::unique_ptr<Provider>> providers;
    bool licenceExpiryLogged = false;

    /*
     * The hot path's cache, bounded and simply cleared when full: cookie
     * values whose MAC has verified, with the session data they name at
     * the version last seen. The shared zone stays the authority on
     * whether the session lives; the map's heterogeneous lookup costs no
     * allocation.
     */
    static constexpr size_t kCacheEntries = 4096;

    std::map<std::string, std::shared_ptr<const SessionData>, std::less<>>
        sessions;

    /*
     * Opened downstream tokens by session id and name, cleared like the
     * sessions. Their sealed form in the zone is the shared truth.
     */
    std::vector<SealKey> sealKeys;        /* the first seals, all open */
    std::map<std::string, std::shared_ptr<const AccessToken>, std::less<>>
        tokens;
    std::set<std::string> audienceWarned;
    uint64_t claims = 0;                  /* refresh claims made */

    /* nao_sso_users_file, read again when it changes */
    struct UsersFile {
        int64_t mtime = -1;
        int64_t size = -1;
        UserList users;
    };

    std::map<std::string, UsersFile> usersFiles;
    GraphReader graph;
    std::unique_ptr<Refresher> refresher;
};

extern Worker *worker;

}  // namespace nao

struct ngx_http_nao_sso_main_conf_t {
    size_t            zone_size;
    ngx_array_t      *secret_files;
    ngx_str_t         licence_file;
    ngx_str_t         licence_key_file;
    ngx_shm_zone_t   *zone;
    ngx_flag_t        used;
    nao::MainState   *state;
};

struct ngx_http_nao_sso_srv_conf_t {
    ngx_str_t          client_id;
    ngx_str_t          client_secret;
    ngx_str_t          tenant_id;
    ngx_str_t          token_scope;
    ngx_str_t          authority;
    ngx_str_t          redirect_uri;
    ngx_str_t          password_login_url;
    ngx_flag_t         cookie_secure;
    time_t             idle_timeout;
    time_t             max_age;
    ngx_msec_t         timeout;
    time_t             signin_timeout;
    ngx_str_t          token_audience;
    time_t             refresh_ahead;
    ngx_array_t       *downstream;       /* of ngx_str_t triples */
    ngx_uint_t         default_role;
    ngx_array_t       *role_map;         /* of ngx_str_t pairs */
    ngx_array_t       *allowed_domains;  /* of ngx_str_t */
    ngx_array_t       *allowed_groups;   /* of ngx_str_t */
    ngx_flag_t         auto_create;
    ngx_str_t          users_file;
    ngx_str_t          graph_url;
    nao::ServerState  *state;
};

struct ngx_http_nao_sso_loc_conf_t {
    ngx_uint_t         mode;
    ngx_flag_t         tokens;           /* downstream tokens go upstream */
};

/*
 * Request state. It outlives internal redirects (found again through its
 * pool cleanup) and its cleanup cancels whatever is in flight.
 */
struct ngx_http_nao_sso_ctx_t {
    ngx_http_request_t              *request;
    ngx_str_t                        cookies{};   /* the module's, as sent */
    std::string                      args;        /* the callback's, masked */
    bool                             sessionChecked = false;
    std::shared_ptr<const nao::SessionData> session;
    int64_t                          sessionExpires = 0;

    /* an identity provider step in flight */
    uint64_t                         transfer = 0;
    uint64_t                         waiter = 0;
    nao::Provider                   *provider = nullptr;
    ngx_event_t                      deadline;
    bool                             waited = false;

    /* the callback's progress */
    nao::PendingSignIn               pending;
    std::string                      bindingCookie;
    std::string                      code;
    std::optional<nao::TokenResponse> tokens;
    bool                             keysRefetched = false;

    /* downstream tokens, one per sscf->state->downstream entry */
    std::vector<std::shared_ptr<const nao::AccessToken>> downstream;
    size_t                           downstreamDone = 0;
    ngx_event_t                      poll;
    uint64_t                         refreshWaiter = 0;
    uint64_t                         graphRead = 0;
    std::optional<nao::Identity>     identity;
    bool                             polled = false;
    bool                             refreshed = false;
};

/* a C++ object owned by a pool: destroyed with it */
template <typename T>
T *
ngx_http_nao_sso_pool_new(ngx_pool_t *pool)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    T *object = new (std::nothrow) T();
    if (object == NULL) {
        return NULL;
    }

    cln->data = object;
    cln->handler = [](void *data) { delete static_cast<T *>(data); };

    return object;
}


/* conf.cpp */
void *ngx_http_nao_sso_create_srv_conf(ngx_conf_t *cf);
char *ngx_http_nao_sso_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
char *ngx_http_nao_sso_load_secrets(ngx_conf_t *cf,
    ngx_http_nao_sso_main_conf_t *mcf);
char *ngx_http_nao_sso_check_licence(ngx_conf_t *cf,
    ngx_http_nao_sso_main_conf_t *mcf);
char *ngx_http_nao_sso_resolve(ngx_conf_t *cf,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_main_conf_t *mcf);
void ngx_http_nao_sso_report(ngx_conf_t *cf,
    ngx_http_nao_sso_main_conf_t *mcf);
char *ngx_http_nao_sso_downstream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* policy.cpp */
char *ngx_http_nao_sso_role_map(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_nao_sso_id_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_nao_sso_resolve_policy(ngx_conf_t *cf,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_main_conf_t *mcf);

/* session.cpp */
ngx_int_t ngx_http_nao_sso_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_http_nao_sso_ctx_t *ngx_http_nao_sso_create_ctx(ngx_http_request_t *r);
ngx_http_nao_sso_ctx_t *ngx_http_nao_sso_get_ctx(ngx_http_request_t *r);
ngx_http_nao_sso_ctx_t *ngx_http_nao_sso_ctx(ngx_http_request_t *r);
void ngx_http_nao_sso_load_session(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_ctx_t *ctx);
bool ngx_http_nao_sso_active(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf);
nao::SessionStore ngx_http_nao_sso_store(ngx_http_request_t *r);

/* headers.cpp */
ngx_int_t ngx_http_nao_sso_sanitize(ngx_http_request_t *r);
void ngx_http_nao_sso_mask_callback(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx);
ngx_int_t ngx_http_nao_sso_strip_private_headers(ngx_http_request_t *r);
ngx_int_t ngx_http_nao_sso_strip_cookies(ngx_http_request_t *r,
    ngx_str_t *captured);
ngx_int_t ngx_http_nao_sso_add_identity(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx, bool withTokens);
std::string_view ngx_http_nao_sso_header(ngx_http_request_t *r,
    std::string_view lowcase);
bool ngx_http_nao_sso_is_navigation(ngx_http_request_t *r);

/* tokens.cpp */
ngx_int_t ngx_http_nao_sso_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_ctx_t *ctx);
void ngx_http_nao_sso_store_login_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, const std::string &sessionId,
    const nao::TokenResponse &tokens);
void ngx_http_nao_sso_forget_tokens(ngx_http_request_t *r,
    ngx_http_nao_sso_srv_conf_t *sscf, const std::string &sessionId);
ngx_int_t ngx_http_nao_sso_token_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* endpoints.cpp */
bool ngx_http_nao_sso_is_endpoint(ngx_http_request_t *r);
ngx_int_t ngx_http_nao_sso_endpoint(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx);
ngx_int_t ngx_http_nao_sso_deny(ngx_http_request_t *r);

#endif
