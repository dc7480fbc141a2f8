/*
 * What the master works out from the configuration: session secrets, the
 * licence, each server's provider settings, and why SSO may be inactive.
 */

#include "ngx_http_nao_sso.h"

#include "downstream.h"

#include "licence.h"

#include <fstream>
#include <set>
#include <sstream>


static std::optional<std::string>
ngx_http_nao_sso_read_file(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t  full = *name;

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return std::nullopt;
    }

    std::ifstream in(std::string(nao::view(full)), std::ios::binary);
    if (!in) {
        return std::nullopt;
    }

    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}


char *
ngx_http_nao_sso_load_secrets(ngx_conf_t *cf,
    ngx_http_nao_sso_main_conf_t *mcf)
{
    if (mcf->secret_files == NGX_CONF_UNSET_PTR) {
        return static_cast<char *>(NGX_CONF_OK);
    }

    auto *files = static_cast<ngx_str_t *>(mcf->secret_files->elts);

    for (ngx_uint_t i = 0; i < mcf->secret_files->nelts; i++) {
        auto text = ngx_http_nao_sso_read_file(cf, &files[i]);
        if (!text) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "nao_sso_secret_file \"%V\" cannot be read",
                               &files[i]);
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        /* a trailing newline from an editor is not part of the secret */
        while (!text->empty()
               && (text->back() == '\n' || text->back() == '\r'))
        {
            text->pop_back();
        }

        if (text->size() < 32) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "nao_sso_secret_file \"%V\" holds %uz "
                               "bytes, at least 32 are needed",
                               &files[i], text->size());
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        mcf->state->secrets.push_back(std::move(*text));
    }

    return static_cast<char *>(NGX_CONF_OK);
}


char *
ngx_http_nao_sso_check_licence(ngx_conf_t *cf,
    ngx_http_nao_sso_main_conf_t *mcf)
{
    nao::MainState *state = mcf->state;

    if (mcf->licence_file.data == NULL) {
        state->licenceProblem = "licence missing (nao_sso_license not set)";
        return static_cast<char *>(NGX_CONF_OK);
    }

    if (mcf->licence_key_file.data == NULL) {
        state->licenceProblem =
            "licence key missing (nao_sso_license_key not set)";
        return static_cast<char *>(NGX_CONF_OK);
    }

    auto token = ngx_http_nao_sso_read_file(cf, &mcf->licence_file);
    if (!token) {
        state->licenceProblem = "licence file \""
            + std::string(nao::view(mcf->licence_file)) + "\" cannot be read";
        return static_cast<char *>(NGX_CONF_OK);
    }

    auto key = ngx_http_nao_sso_read_file(cf, &mcf->licence_key_file);
    if (!key) {
        state->licenceProblem = "licence key file \""
            + std::string(nao::view(mcf->licence_key_file))
            + "\" cannot be read";
        return static_cast<char *>(NGX_CONF_OK);
    }

    auto licence = nao::verifyLicence(*token, *key, ngx_time());

    /* rules that cannot be read are a configuration error, as in nginx.conf */
    if (!licence && licence.error().find("role_rules") != std::string::npos) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "nao_sso: %s",
                           licence.error().c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (!licence) {
        state->licenceProblem = licence.error();
        return static_cast<char *>(NGX_CONF_OK);
    }

    if (!licence->hasFeature("sso")) {
        state->licenceProblem = "licence lacks the \"sso\" feature";
        return static_cast<char *>(NGX_CONF_OK);
    }

    state->licenceOk = true;
    state->licenceExpires = licence->expires;
    state->licenceRules = licence->roleRules;

    return static_cast<char *>(NGX_CONF_OK);
}


static std::optional<std::string>
ngx_http_nao_sso_directive(const ngx_str_t &value)
{
    if (value.data == NULL) {
        return std::nullopt;
    }

    return std::string(nao::view(value));
}


static void
ngx_http_nao_sso_add_downstream(nao::ServerState *state, std::string name,
    std::string scope, std::string audience)
{
    nao::Downstream d;

    d.header = name.empty() ? "X-Nao-Access-Token"
                            : nao::tokenHeaderName(name);
    d.lowcase = d.header;
    ngx_strlow((u_char *) d.lowcase.data(), (u_char *) d.lowcase.data(),
               d.lowcase.size());
    d.hash = ngx_hash_key((u_char *) d.lowcase.data(), d.lowcase.size());
    d.name = std::move(name);
    d.scope = std::move(scope);
    d.audience = std::move(audience);

    state->downstream.push_back(std::move(d));
}


/* the default token first, then the named ones in their order */
static void
ngx_http_nao_sso_list_downstream(ngx_http_nao_sso_srv_conf_t *sscf)
{
    nao::ServerState *state = sscf->state;

    ngx_http_nao_sso_add_downstream(state, "", state->settings.tokenScope,
        std::string(nao::view(sscf->token_audience)));

    if (sscf->downstream == NULL) {
        return;
    }

    auto *values = static_cast<ngx_str_t *>(sscf->downstream->elts);

    for (ngx_uint_t i = 0; i < sscf->downstream->nelts; i += 3) {
        ngx_http_nao_sso_add_downstream(state,
            std::string(nao::view(values[i])),
            std::string(nao::view(values[i + 1])),
            std::string(nao::view(values[i + 2])));
    }
}


/* nao_sso_downstream NAME SCOPE [audience=VALUE] */
char *
ngx_http_nao_sso_downstream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    auto *sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(conf);
    auto *args = static_cast<ngx_str_t *>(cf->args->elts);
    ngx_str_t audience = ngx_null_string;

    if (!nao::validDownstreamName(nao::view(args[1]))) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "nao_sso_downstream name \"%V\" must be 1 to 32 "
                           "lowercase letters, digits or \"_\", starting "
                           "with a letter", &args[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(args[3].data, "audience=", 9) != 0
            || args[3].len == 9)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"audience=VALUE\"", &args[3]);
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        audience.data = args[3].data + 9;
        audience.len = args[3].len - 9;
    }

    if (sscf->downstream == NGX_CONF_UNSET_PTR) {
        sscf->downstream = ngx_array_create(cf->pool, 6, sizeof(ngx_str_t));
        if (sscf->downstream == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    auto *known = static_cast<ngx_str_t *>(sscf->downstream->elts);
    for (ngx_uint_t i = 0; i < sscf->downstream->nelts; i += 3) {
        if (nao::view(known[i]) == nao::view(args[1])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "nao_sso_downstream \"%V\" is duplicate",
                               &args[1]);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    auto *triple = static_cast<ngx_str_t *>(
        ngx_array_push_n(sscf->downstream, 3));
    if (triple == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    triple[0] = args[1];
    triple[1] = args[2];
    triple[2] = audience;

    return static_cast<char *>(NGX_CONF_OK);
}


char *
ngx_http_nao_sso_resolve(ngx_conf_t *cf, ngx_http_nao_sso_srv_conf_t *sscf,
    ngx_http_nao_sso_main_conf_t *mcf)
{
    nao::DirectiveValues  values;
    nao::ServerState     *state = sscf->state;

    values.clientId = ngx_http_nao_sso_directive(sscf->client_id);
    values.clientSecret = ngx_http_nao_sso_directive(sscf->client_secret);
    values.tenantId = ngx_http_nao_sso_directive(sscf->tenant_id);
    values.tokenScope = ngx_http_nao_sso_directive(sscf->token_scope);
    values.authority = ngx_http_nao_sso_directive(sscf->authority);

    state->settings = nao::resolveSettings(values, nao::processEnv);

    nao::Status checked = nao::checkSettings(state->settings);
    if (!checked) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "nao_sso: %s",
                           checked.error().c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (sscf->redirect_uri.data != NULL) {
        std::string_view uri = nao::view(sscf->redirect_uri);

        if (uri.rfind("https://", 0) != 0 && uri.rfind("http://", 0) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "nao_sso_redirect_uri \"%V\" is not an "
                               "absolute http or https URL",
                               &sscf->redirect_uri);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    state->problems = nao::missingSettings(state->settings);
    if (!mcf->state->licenceOk) {
        state->problems.push_back(mcf->state->licenceProblem);
    }

    state->providerKey = state->settings.authority + "|"
                         + state->settings.tenantId + "|"
                         + std::to_string(sscf->timeout);
    state->sessionScope = state->settings.authority + "|"
                          + state->settings.tenantId + "|"
                          + state->settings.clientId;
    state->sessionCookie = sscf->cookie_secure ? "__Host-nao_sso"
                                               : "nao_sso";
    state->bindingPrefix = state->sessionCookie + "_b_";

    ngx_http_nao_sso_list_downstream(sscf);

    return static_cast<char *>(NGX_CONF_OK);
}


/* each distinct reason once per configuration load, nginx -t included */
void
ngx_http_nao_sso_report(ngx_conf_t *cf, ngx_http_nao_sso_main_conf_t *mcf)
{
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_core_srv_conf_t    **cscf;
    ngx_http_nao_sso_srv_conf_t  *sscf;
    std::set<std::string>         said;

    if (!mcf->used) {
        return;
    }

    cmcf = static_cast<ngx_http_core_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));
    cscf = static_cast<ngx_http_core_srv_conf_t **>(cmcf->servers.elts);

    for (ngx_uint_t s = 0; s < cmcf->servers.nelts; s++) {
        sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
            cscf[s]->ctx->srv_conf[ngx_http_nao_sso_module.ctx_index]);

        for (const std::string &problem : sscf->state->problems) {
            if (!said.insert(problem).second) {
                continue;
            }

            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "nao_sso: single sign-on is inactive, requests "
                          "pass through to nao's own login: %s",
                          problem.c_str());
        }
    }

    if (mcf->state->secrets.empty()) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "nao_sso: no nao_sso_secret_file, using a random "
                      "secret: sessions will not survive a restart and "
                      "several nginx nodes need a shared secret");
    }
}


void *
ngx_http_nao_sso_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_nao_sso_srv_conf_t  *sscf;

    sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_nao_sso_srv_conf_t)));
    if (sscf == NULL) {
        return NULL;
    }

    sscf->cookie_secure = NGX_CONF_UNSET;
    sscf->idle_timeout = NGX_CONF_UNSET;
    sscf->max_age = NGX_CONF_UNSET;
    sscf->timeout = NGX_CONF_UNSET_MSEC;
    sscf->signin_timeout = NGX_CONF_UNSET;
    sscf->refresh_ahead = NGX_CONF_UNSET;
    sscf->downstream = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    sscf->default_role = NGX_CONF_UNSET_UINT;
    sscf->role_map = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    sscf->allowed_domains = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    sscf->allowed_groups = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    sscf->auto_create = NGX_CONF_UNSET;

    return sscf;
}


static void
ngx_http_nao_sso_merge_str(ngx_str_t *conf, const ngx_str_t &prev)
{
    /* unset stays NULL so that the environment can fill it in */
    if (conf->data == NULL) {
        *conf = prev;
    }
}


char *
ngx_http_nao_sso_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    auto *prev = static_cast<ngx_http_nao_sso_srv_conf_t *>(parent);
    auto *conf = static_cast<ngx_http_nao_sso_srv_conf_t *>(child);
    ngx_http_nao_sso_main_conf_t  *mcf;

    ngx_http_nao_sso_merge_str(&conf->client_id, prev->client_id);
    ngx_http_nao_sso_merge_str(&conf->client_secret, prev->client_secret);
    ngx_http_nao_sso_merge_str(&conf->tenant_id, prev->tenant_id);
    ngx_http_nao_sso_merge_str(&conf->token_scope, prev->token_scope);
    ngx_http_nao_sso_merge_str(&conf->authority, prev->authority);
    ngx_http_nao_sso_merge_str(&conf->redirect_uri, prev->redirect_uri);
    ngx_http_nao_sso_merge_str(&conf->password_login_url,
                               prev->password_login_url);
    ngx_http_nao_sso_merge_str(&conf->token_audience, prev->token_audience);
    ngx_http_nao_sso_merge_str(&conf->users_file, prev->users_file);
    ngx_conf_merge_str_value(conf->graph_url, prev->graph_url,
                             "https://graph.microsoft.com");

    ngx_conf_merge_value(conf->cookie_secure, prev->cookie_secure, 1);
    ngx_conf_merge_sec_value(conf->idle_timeout, prev->idle_timeout,
                             8 * 3600);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 7 * 86400);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 10000);
    ngx_conf_merge_sec_value(conf->signin_timeout, prev->signin_timeout, 600);
    ngx_conf_merge_sec_value(conf->refresh_ahead, prev->refresh_ahead, 300);
    ngx_conf_merge_ptr_value(conf->downstream, prev->downstream, NULL);
    ngx_conf_merge_uint_value(conf->default_role, prev->default_role, 1);
    ngx_conf_merge_ptr_value(conf->role_map, prev->role_map, NULL);
    ngx_conf_merge_ptr_value(conf->allowed_domains, prev->allowed_domains,
                             NULL);
    ngx_conf_merge_ptr_value(conf->allowed_groups, prev->allowed_groups,
                             NULL);
    ngx_conf_merge_value(conf->auto_create, prev->auto_create, 1);

    conf->state = ngx_http_nao_sso_pool_new<nao::ServerState>(cf->pool);
    if (conf->state == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    mcf = static_cast<ngx_http_nao_sso_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_nao_sso_module));

    if (ngx_http_nao_sso_resolve(cf, conf, mcf) != NGX_CONF_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return ngx_http_nao_sso_resolve_policy(cf, conf, mcf);
}
