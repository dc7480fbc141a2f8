/*
 * Who may sign in and with which role: the directives, and the checks a
 * verified identity goes through before it gets a session.
 */

#include "ngx_http_nao_sso.h"

#include "settings.h"
#include "text.h"
#include "url.h"

#include <fstream>
#include <sstream>

namespace nao {

bool
Policy::needsGroups() const
{
    if (!allowedGroups.empty()) {
        return true;
    }

    for (const RoleRule &rule : rules) {
        if (rule.kind == RoleRule::Kind::Group) {
            return true;
        }
    }

    return false;
}

}  // namespace nao


/* nao_sso_role_map GROUP_OBJECT_ID|role:NAME ROLE */
char *
ngx_http_nao_sso_role_map(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    auto *sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(conf);
    auto *args = static_cast<ngx_str_t *>(cf->args->elts);

    auto rule = nao::parseRoleRule(nao::view(args[1]), nao::view(args[2]));
    if (!rule) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "nao_sso_role_map: %s",
                           rule.error().c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (sscf->role_map == NGX_CONF_UNSET_PTR) {
        sscf->role_map = ngx_array_create(cf->pool, 8, sizeof(ngx_str_t));
        if (sscf->role_map == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    auto *pair = static_cast<ngx_str_t *>(
        ngx_array_push_n(sscf->role_map, 2));
    if (pair == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    pair[0] = args[1];
    pair[1] = args[2];

    return static_cast<char *>(NGX_CONF_OK);
}


/*
 * nao_sso_allowed_domains and nao_sso_allowed_groups: one or more values,
 * repeatable; group ids must be GUIDs, since Entra's "groups" claim holds
 * object ids and a display name would silently never match.
 */
char *
ngx_http_nao_sso_id_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    auto *field = reinterpret_cast<ngx_array_t **>(
        static_cast<char *>(conf) + cmd->offset);
    auto *args = static_cast<ngx_str_t *>(cf->args->elts);
    bool groups = cmd->name.len == sizeof("nao_sso_allowed_groups") - 1
                  && ngx_strncmp(cmd->name.data, "nao_sso_allowed_groups",
                                 cmd->name.len) == 0;

    if (*field == NGX_CONF_UNSET_PTR) {
        *field = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*field == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
        std::string_view value = nao::view(args[i]);

        if (groups ? !nao::isGuid(value)
                   : value.empty() || value.find('@') != value.npos)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               groups ? "\"%V\" is not a group object id "
                                        "(a GUID)"
                                      : "\"%V\" is not an email domain",
                               &args[i]);
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        auto *slot = static_cast<ngx_str_t *>(ngx_array_push(*field));
        if (slot == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        *slot = args[i];
    }

    return static_cast<char *>(NGX_CONF_OK);
}


static std::vector<std::string>
ngx_http_nao_sso_lower_list(ngx_array_t *list)
{
    std::vector<std::string> values;

    if (list == NULL) {
        return values;
    }

    auto *elts = static_cast<ngx_str_t *>(list->elts);
    for (ngx_uint_t i = 0; i < list->nelts; i++) {
        values.push_back(nao::asciiLower(nao::view(elts[i])));
    }

    return values;
}


char *
ngx_http_nao_sso_resolve_policy(ngx_conf_t *cf,
    ngx_http_nao_sso_srv_conf_t *sscf, ngx_http_nao_sso_main_conf_t *mcf)
{
    nao::Policy &policy = sscf->state->policy;

    policy.defaultRole = static_cast<nao::Role>(sscf->default_role);

    if (sscf->role_map != NULL) {
        auto *pairs = static_cast<ngx_str_t *>(sscf->role_map->elts);

        for (ngx_uint_t i = 0; i < sscf->role_map->nelts; i += 2) {
            auto rule = nao::parseRoleRule(nao::view(pairs[i]),
                                           nao::view(pairs[i + 1]));
            policy.rules.push_back(std::move(rule.value()));
        }
    }

    policy.rules.insert(policy.rules.end(), mcf->state->licenceRules.begin(),
                        mcf->state->licenceRules.end());
    policy.allowedDomains = ngx_http_nao_sso_lower_list(
        sscf->allowed_domains);
    policy.allowedGroups = ngx_http_nao_sso_lower_list(sscf->allowed_groups);
    policy.autoCreate = sscf->auto_create;
    policy.usersFile = std::string(nao::view(sscf->users_file));

    if (!policy.autoCreate && policy.usersFile.empty()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"nao_sso_auto_create off\" needs "
                           "nao_sso_users_file to list who may sign in");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    policy.graphUrl = std::string(nao::view(sscf->graph_url));
    while (!policy.graphUrl.empty() && policy.graphUrl.back() == '/') {
        policy.graphUrl.pop_back();
    }

    /* a bearer token goes there: https, or http to this machine only */
    nao::Status url = nao::checkIdpUrl(policy.graphUrl);
    if (!url) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "nao_sso_graph_url \"%V\": %s", &sscf->graph_url,
                           url.error().c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    /* the least privilege that lists a user's transitive groups */
    policy.graphScope = policy.graphUrl + "/GroupMember.Read.All";

    return static_cast<char *>(NGX_CONF_OK);
}
