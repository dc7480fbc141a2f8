/*
 * ngx_http_nao_sso_module: Microsoft Entra ID single sign-on in front of
 * nao. This file is the nginx face: directives, configuration, variables
 * and the phase handlers. The protocol lives in src/.
 */

#include "ngx_http_nao_sso.h"
#include "ngx_http_nao_sso_tokens.h"

#include "base64url.h"
#include "cookie.h"
#include "licence.h"
#include "pages.h"

#include <cstdlib>
#include <fstream>
#include <new>
#include <set>
#include <sstream>

static ngx_int_t ngx_http_nao_sso_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_nao_sso_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_nao_sso_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_nao_sso_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_nao_sso_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_nao_sso_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_nao_sso_secret_files(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_nao_sso_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_nao_sso_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_nao_sso_init_process(ngx_cycle_t *cycle);
static void ngx_http_nao_sso_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_nao_sso_post_read_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_nao_sso_access_handler(ngx_http_request_t *r);


static ngx_conf_enum_t  ngx_http_nao_sso_modes[] = {
    { ngx_string("off"), NGX_HTTP_NAO_SSO_OFF },
    { ngx_string("on"), NGX_HTTP_NAO_SSO_ON },
    { ngx_string("optional"), NGX_HTTP_NAO_SSO_OPTIONAL },
    { ngx_null_string, 0 }
};


/* the values are nao::Role's */
static ngx_conf_enum_t  ngx_http_nao_sso_roles[] = {
    { ngx_string("viewer"), 0 },
    { ngx_string("member"), 1 },
    { ngx_string("admin"), 2 },
    { ngx_null_string, 0 }
};


#define NAO_MAIN  (NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1)
#define NAO_SRV   (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1)
#define NAO_SRV_OFFSET(field)  offsetof(ngx_http_nao_sso_srv_conf_t, field)
#define NAO_MAIN_OFFSET(field)  offsetof(ngx_http_nao_sso_main_conf_t, field)

static ngx_command_t  ngx_http_nao_sso_commands[] = {

    { ngx_string("nao_sso"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_nao_sso_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_nao_sso_loc_conf_t, mode),
      ngx_http_nao_sso_modes },

    { ngx_string("nao_sso_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot, NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_nao_sso_loc_conf_t, tokens), NULL },

    { ngx_string("nao_sso_zone_size"), NAO_MAIN, ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET, NAO_MAIN_OFFSET(zone_size), NULL },

    { ngx_string("nao_sso_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE, ngx_http_nao_sso_secret_files,
      NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("nao_sso_license"), NAO_MAIN, ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET, NAO_MAIN_OFFSET(licence_file), NULL },

    { ngx_string("nao_sso_license_key"), NAO_MAIN, ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET, NAO_MAIN_OFFSET(licence_key_file), NULL },

    { ngx_string("nao_sso_client_id"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(client_id), NULL },

    { ngx_string("nao_sso_client_secret"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(client_secret), NULL },

    { ngx_string("nao_sso_tenant_id"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(tenant_id), NULL },

    { ngx_string("nao_sso_token_scope"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(token_scope), NULL },

    { ngx_string("nao_sso_authority"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(authority), NULL },

    { ngx_string("nao_sso_redirect_uri"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(redirect_uri), NULL },

    { ngx_string("nao_sso_password_login_url"), NAO_SRV,
      ngx_conf_set_str_slot, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(password_login_url), NULL },

    { ngx_string("nao_sso_cookie_secure"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(cookie_secure), NULL },

    { ngx_string("nao_sso_session_idle_timeout"), NAO_SRV,
      ngx_conf_set_sec_slot, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(idle_timeout), NULL },

    { ngx_string("nao_sso_session_max_age"), NAO_SRV, ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(max_age), NULL },

    { ngx_string("nao_sso_idp_timeout"), NAO_SRV, ngx_conf_set_msec_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(timeout), NULL },

    { ngx_string("nao_sso_signin_timeout"), NAO_SRV, ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(signin_timeout), NULL },

    { ngx_string("nao_sso_token_audience"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(token_audience), NULL },

    { ngx_string("nao_sso_token_refresh_ahead"), NAO_SRV,
      ngx_conf_set_sec_slot, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(refresh_ahead), NULL },

    { ngx_string("nao_sso_default_role"), NAO_SRV, ngx_conf_set_enum_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(default_role),
      ngx_http_nao_sso_roles },

    { ngx_string("nao_sso_role_map"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
      ngx_http_nao_sso_role_map, NGX_HTTP_SRV_CONF_OFFSET, 0, NULL },

    { ngx_string("nao_sso_allowed_domains"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_nao_sso_id_list, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(allowed_domains), NULL },

    { ngx_string("nao_sso_allowed_groups"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_nao_sso_id_list, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(allowed_groups), NULL },

    { ngx_string("nao_sso_auto_create"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot, NGX_HTTP_SRV_CONF_OFFSET,
      NAO_SRV_OFFSET(auto_create), NULL },

    { ngx_string("nao_sso_users_file"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(users_file), NULL },

    { ngx_string("nao_sso_graph_url"), NAO_SRV, ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET, NAO_SRV_OFFSET(graph_url), NULL },

    { ngx_string("nao_sso_downstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE23,
      ngx_http_nao_sso_downstream, NGX_HTTP_SRV_CONF_OFFSET, 0, NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_nao_sso_module_ctx = {
    ngx_http_nao_sso_preconfiguration,     /* preconfiguration */
    ngx_http_nao_sso_postconfiguration,    /* postconfiguration */

    ngx_http_nao_sso_create_main_conf,     /* create main configuration */
    ngx_http_nao_sso_init_main_conf,       /* init main configuration */

    ngx_http_nao_sso_create_srv_conf,      /* create server configuration */
    ngx_http_nao_sso_merge_srv_conf,       /* merge server configuration */

    ngx_http_nao_sso_create_loc_conf,      /* create location configuration */
    ngx_http_nao_sso_merge_loc_conf        /* merge location configuration */
};


extern "C" {

ngx_module_t  ngx_http_nao_sso_module = {
    NGX_MODULE_V1,
    &ngx_http_nao_sso_module_ctx,          /* module context */
    ngx_http_nao_sso_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_nao_sso_init_module,          /* init module */
    ngx_http_nao_sso_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_nao_sso_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};

}


static ngx_http_variable_t  ngx_http_nao_sso_vars[] = {
    { ngx_string("nao_sso_user_id"), NULL, ngx_http_nao_sso_variable,
      NAO_VAR_USER_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_user_email"), NULL, ngx_http_nao_sso_variable,
      NAO_VAR_EMAIL, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_user_name"), NULL, ngx_http_nao_sso_variable,
      NAO_VAR_NAME, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_user_role"), NULL, ngx_http_nao_sso_variable,
      NAO_VAR_ROLE, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_tenant_id"), NULL, ngx_http_nao_sso_variable,
      NAO_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_access_token"), NULL,
      ngx_http_nao_sso_token_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("nao_sso_token_"), NULL, ngx_http_nao_sso_token_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },
      ngx_http_null_variable
};


static ngx_str_t  ngx_http_nao_sso_zone_name = ngx_string("nao_sso");

nao::Worker  *nao::worker;


static ngx_int_t
ngx_http_nao_sso_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_nao_sso_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_nao_sso_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_nao_sso_main_conf_t  *mcf;

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_nao_sso_main_conf_t)));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->zone_size = NGX_CONF_UNSET_SIZE;
    mcf->secret_files = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    mcf->used = NGX_CONF_UNSET;

    mcf->state = ngx_http_nao_sso_pool_new<nao::MainState>(cf->pool);
    if (mcf->state == NULL) {
        return NULL;
    }

    return mcf;
}


static char *
ngx_http_nao_sso_init_main_conf(ngx_conf_t *cf, void *conf)
{
    auto *mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(conf);

    ngx_conf_init_size_value(mcf->zone_size, 10 * 1024 * 1024);
    ngx_conf_init_value(mcf->used, 0);

    if (mcf->zone_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "nao_sso_zone_size \"%uz\" is too small",
                           mcf->zone_size);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (ngx_http_nao_sso_load_secrets(cf, mcf) != NGX_CONF_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (ngx_http_nao_sso_check_licence(cf, mcf) != NGX_CONF_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    mcf->zone = ngx_shared_memory_add(cf, &ngx_http_nao_sso_zone_name,
                                      mcf->zone_size,
                                      &ngx_http_nao_sso_module);
    if (mcf->zone == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    mcf->zone->init = nao::SessionStore::initZone;

    return static_cast<char *>(NGX_CONF_OK);
}


static void *
ngx_http_nao_sso_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_nao_sso_loc_conf_t  *lcf;

    lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_nao_sso_loc_conf_t)));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->mode = NGX_CONF_UNSET_UINT;
    lcf->tokens = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_http_nao_sso_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    auto *prev = static_cast<ngx_http_nao_sso_loc_conf_t *>(parent);
    auto *conf = static_cast<ngx_http_nao_sso_loc_conf_t *>(child);

    ngx_conf_merge_uint_value(conf->mode, prev->mode, NGX_HTTP_NAO_SSO_OFF);
    ngx_conf_merge_value(conf->tokens, prev->tokens, 1);

    return static_cast<char *>(NGX_CONF_OK);
}


/* every file, in order: the first signs, all verify */
static char *
ngx_http_nao_sso_secret_files(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    auto *mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(conf);
    auto *value = static_cast<ngx_str_t *>(cf->args->elts);

    if (mcf->secret_files != NGX_CONF_UNSET_PTR) {
        return const_cast<char *>("is duplicate");
    }

    mcf->secret_files = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_str_t));
    if (mcf->secret_files == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
        auto *file = static_cast<ngx_str_t *>(
            ngx_array_push(mcf->secret_files));
        if (file == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        *file = value[i];
    }

    return static_cast<char *>(NGX_CONF_OK);
}


static char *
ngx_http_nao_sso_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    auto *lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(conf);
    ngx_http_nao_sso_main_conf_t  *mcf;
    char                          *rv;

    rv = ngx_conf_set_enum_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (lcf->mode != NGX_HTTP_NAO_SSO_OFF) {
        mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
            ngx_http_conf_get_module_main_conf(cf, ngx_http_nao_sso_module));
        mcf->used = 1;
    }

    return static_cast<char *>(NGX_CONF_OK);
}


static ngx_int_t
ngx_http_nao_sso_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_nao_sso_main_conf_t  *mcf;

    cmcf = static_cast<ngx_http_core_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));

    /* private headers go in every mode, before any location is chosen */
    h = static_cast<ngx_http_handler_pt *>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers));
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_nao_sso_post_read_handler;

    h = static_cast<ngx_http_handler_pt *>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers));
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_nao_sso_access_handler;

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_nao_sso_module));
    ngx_http_nao_sso_report(cf, mcf);

    return NGX_OK;
}


static ngx_int_t
ngx_http_nao_sso_init_module(ngx_cycle_t *cycle)
{
    static bool  initialised;

    /* once per master: it is not safe to repeat while transfers run */
    if (!initialised) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "curl_global_init() failed");
            return NGX_ERROR;
        }

        initialised = true;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_nao_sso_init_process(ngx_cycle_t *cycle)
{
    ngx_http_nao_sso_main_conf_t  *mcf;

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_nao_sso_module));
    if (mcf == NULL) {
        return NGX_OK;
    }

    try {
        auto worker = std::make_unique<nao::Worker>(cycle->log);

        if (!worker->client.valid()) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "curl_multi_init() failed");
            return NGX_ERROR;
        }

        worker->secrets = mcf->state->secrets;
        if (worker->secrets.empty()) {
            worker->secrets.push_back(nao::SessionStore(mcf->zone).secret());
        }

        for (const std::string &secret : worker->secrets) {
            auto key = nao::deriveSealKey(secret);
            if (!key) {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "nao_sso: cannot derive the token key");
                return NGX_ERROR;
            }

            worker->sealKeys.push_back(std::move(*key));
        }

        nao::worker = worker.release();

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "nao_sso: worker set-up failed: %s", e.what());
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_nao_sso_exit_process(ngx_cycle_t *cycle)
{
    delete nao::worker;
    nao::worker = nullptr;
}


static ngx_int_t
ngx_http_nao_sso_post_read_handler(ngx_http_request_t *r)
{
    try {
        if (ngx_http_nao_sso_sanitize(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "nao_sso: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_nao_sso_access(ngx_http_request_t *r)
{
    ngx_http_nao_sso_loc_conf_t  *lcf;
    ngx_http_nao_sso_srv_conf_t  *sscf;
    ngx_http_nao_sso_ctx_t       *ctx;

    if (r->internal && ngx_http_nao_sso_sanitize(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lcf = static_cast<ngx_http_nao_sso_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r, ngx_http_nao_sso_module));
    sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
        ngx_http_get_module_srv_conf(r, ngx_http_nao_sso_module));

    if (lcf->mode == NGX_HTTP_NAO_SSO_OFF || !ngx_http_nao_sso_active(r, sscf))
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_nao_sso_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* still waiting for the identity provider: nothing to do again */
    if (ctx->transfer != 0 || ctx->waiter != 0 || ctx->refreshWaiter != 0
        || ctx->graphRead != 0 || ctx->poll.timer_set)
    {
        return NGX_DONE;
    }

    /* other /api/auth/ paths are nao's and need a session like any other */
    if (ngx_http_nao_sso_is_endpoint(r)) {
        ngx_int_t rc = ngx_http_nao_sso_endpoint(r, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ngx_http_nao_sso_load_session(r, sscf, ctx);

    /* NGX_DECLINED: the session ended and the request goes on without */
    if (ctx->session && lcf->tokens) {
        ngx_int_t rc = ngx_http_nao_sso_tokens(r, sscf, ctx);
        if (rc != NGX_OK && rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (ctx->session) {
        if (ngx_http_nao_sso_add_identity(r, ctx, lcf->tokens) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    if (lcf->mode == NGX_HTTP_NAO_SSO_OPTIONAL) {
        return NGX_DECLINED;
    }

    return ngx_http_nao_sso_deny(r);
}


/* no exception may unwind into nginx */
static ngx_int_t
ngx_http_nao_sso_access_handler(ngx_http_request_t *r)
{
    try {
        return ngx_http_nao_sso_access(r);

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "nao_sso: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}