/*
 * After the ID token checks out: is this user let in, and as what?
 *
 *  1. The email domain must be allowed (nao_sso_allowed_domains).
 *  2. Without auto-create the account must be listed in the users file.
 *  3. The groups come from the ID token, or from Microsoft Graph when
 *     Entra left them out (group overage); a Graph failure still lets the
 *     user in with the default role, to be retried at the next refresh.
 *  4. A member of an allowed group, if any are listed.
 *  5. The most privileged matching role rule, else the default role.
 */

#include "ngx_http_nao_sso_flow.h"
#include "ngx_http_nao_sso_tokens.h"

#include "oidc.h"
#include "url.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace nao::flow {

namespace {

/*
 * The file is small and read only at sign-in, when it has changed: the
 * same trade auth_basic makes with its user file.
 */
const UserList *
usersList(const std::string &path, ngx_log_t *log)
{
    struct stat info;
    Worker::UsersFile &known = worker->usersFiles[path];

    if (stat(path.c_str(), &info) != 0) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "nao_sso: cannot read nao_sso_users_file \"%s\"",
                      path.c_str());
        return known.mtime >= 0 ? &known.users : nullptr;
    }

    if (info.st_mtime == known.mtime && info.st_size == known.size) {
        return &known.users;
    }

    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();

    if (!in) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "nao_sso: cannot read nao_sso_users_file \"%s\"",
                      path.c_str());
        return known.mtime >= 0 ? &known.users : nullptr;
    }

    known.users = parseUserList(text.str());
    known.mtime = info.st_mtime;
    known.size = info.st_size;

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "nao_sso: read \"%s\": %uz emails, %uz object ids, %uz "
                  "lines ignored", path.c_str(), known.users.emails.size(),
                  known.users.objectIds.size(), known.users.ignored);

    return &known.users;
}


void
refuse(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    const char *error, const std::string &message, const char *rule)
{
    ngx_http_request_t *r = ctx->request;
    const Identity &identity = *ctx->identity;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "nao_sso: sign-in of user \"%s\" refused by %s",
                  identity.objectId.c_str(), rule);

    ErrorView view;
    view.status = NGX_HTTP_FORBIDDEN;
    view.error = error;
    view.title = "You cannot sign in to nao with this account";
    view.message = message;
    view.advice = "If you have another work account, sign in with it.";
    view.actionUrl = signInUrl(ctx->pending.returnTo.empty()
                               ? "/" : ctx->pending.returnTo)
                     + "&prompt=select_account";
    view.actionLabel = "Sign in with another account";

    Reply reply = errorReply(r, view);
    reply.cookies.push_back(expiredCookie(sscf, ctx->bindingCookie));
    finish(ctx, reply);
}


/* the reason is in the log already, from usersList() */
void
listUnreadable(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf)
{
    ErrorView view;
    view.status = NGX_HTTP_SERVICE_UNAVAILABLE;
    view.error = "users_file_unreadable";
    view.title = "Sign-in cannot be checked right now";
    view.message = "nao could not read its list of accounts, so it cannot "
                   "tell whether yours may sign in.";
    view.advice = "Ask your administrator to check the nginx error log.";

    Reply reply = errorReply(ctx->request, view);
    reply.cookies.push_back(expiredCookie(sscf, ctx->bindingCookie));
    finish(ctx, reply);
}


/* step 4 and 5; known is false when Graph could not say */
void
decide(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    const std::vector<std::string> &groups, bool known)
{
    const Policy &policy = sscf->state->policy;
    const Identity &identity = *ctx->identity;

    /* onGroups() never comes here unknown when groups decide admission */
    if (!policy.allowedGroups.empty()) {
        if (!inAnyGroup(groups, policy.allowedGroups)) {
            refuse(ctx, sscf, "group_not_allowed",
                   "Your account is not in a group that may use nao.",
                   "nao_sso_allowed_groups");
            return;
        }
    }

    Role role = resolveRole(policy.defaultRole, policy.rules, groups,
                            identity.appRoles);

    createSession(ctx, sscf, identity, std::string(roleName(role)),
                  known ? "" : "g");
}


void
onGroups(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    Result<std::vector<std::string>> &&groups)
{
    ngx_log_t *log = ctx->request->connection->log;
    const std::string &user = ctx->identity->objectId;

    if (groups) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "nao_sso: graph lists %uz groups", groups->size());
        decide(ctx, sscf, groups.value(), true);
        return;
    }

    /* membership decides admission: no guessing */
    if (!sscf->state->policy.allowedGroups.empty()) {
        failIdp(ctx, "cannot check the groups of user \"" + user
                + "\" against nao_sso_allowed_groups: Microsoft Graph: "
                + groups.error(), ctx->pending.returnTo);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "nao_sso: cannot read the groups of user \"%s\" from "
                  "Microsoft Graph: %s; signing in with the default role "
                  "for now", user.c_str(), groups.error().c_str());
    decide(ctx, sscf, {}, false);
}


void
onGraphDeadline(ngx_event_t *ev)
{
    auto *ctx = static_cast<ngx_http_nao_sso_ctx_t *>(ev->data);
    auto *sscf = serverConf(ctx->request);

    worker->client.cancel(ctx->transfer);
    worker->graph.cancel(ctx->graphRead);
    ctx->graphRead = 0;
    resumed(ctx);

    guard(ctx, [ctx, sscf] {
        onGroups(ctx, sscf, fail("no answer in time"));
    });
}


void
readGroups(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    const std::string &graphToken)
{
    const Policy &policy = sscf->state->policy;

    ctx->graphRead = worker->graph.read(policy.graphUrl, graphToken,
        sscf->timeout,
        [ctx, sscf](Result<std::vector<std::string>> &&groups) {
            ctx->graphRead = 0;
            resumed(ctx);
            guard(ctx, [&] { onGroups(ctx, sscf, std::move(groups)); });
        });

    if (ctx->graphRead == 0) {
        onGroups(ctx, sscf, fail("cannot start the graph request"));
        return;
    }

    await(ctx, sscf, onGraphDeadline);
}


void
onGraphToken(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    HttpResponse &&response)
{
    TokenOutcome outcome = refreshOutcome(response);

    /* the problem names Entra's error and AADSTS code, if any */
    if (!outcome.tokens) {
        onGroups(ctx, sscf, fail("no Graph token: " + outcome.problem));
        return;
    }

    /* Entra rotated it: the session keeps the newest */
    if (!outcome.tokens->refreshToken.empty()) {
        ctx->tokens->refreshToken = outcome.tokens->refreshToken;
    }

    readGroups(ctx, sscf, outcome.tokens->accessToken);
}


/* a token for Graph alone: the downstream token is never spent on it */
void
fetchGraphToken(ngx_http_nao_sso_ctx_t *ctx,
    ngx_http_nao_sso_srv_conf_t *sscf)
{
    if (ctx->tokens->refreshToken.empty()) {
        onGroups(ctx, sscf, fail("Entra issued no refresh token to get a "
                                 "Graph token with"));
        return;
    }

    HttpRequest request = refreshRequest(sscf,
        providerFor(sscf)->metadata()->tokenEndpoint,
        ctx->tokens->refreshToken, sscf->state->policy.graphScope);

    ctx->transfer = worker->client.start(request,
        [ctx, sscf](HttpResponse &&response) {
            resumed(ctx);
            guard(ctx, [&] { onGraphToken(ctx, sscf, std::move(response)); });
        });

    if (ctx->transfer == 0) {
        onGroups(ctx, sscf, fail("cannot start the Graph token request"));
        return;
    }

    await(ctx, sscf, onGraphDeadline);
}

}  // namespace


void
admit(ngx_http_nao_sso_ctx_t *ctx, ngx_http_nao_sso_srv_conf_t *sscf,
    Identity &&identity)
{
    const Policy &policy = sscf->state->policy;

    ctx->identity = std::move(identity);

    if (!emailDomainAllowed(ctx->identity->email, policy.allowedDomains)) {
        refuse(ctx, sscf, "domain_not_allowed",
               "Your email domain is not allowed to sign in to nao.",
               "nao_sso_allowed_domains");
        return;
    }

    if (!policy.autoCreate) {
        const UserList *users = usersList(policy.usersFile,
                                          ctx->request->connection->log);

        if (users == nullptr) {
            listUnreadable(ctx, sscf);
            return;
        }

        if (!listed(*users, ctx->identity->email, ctx->identity->objectId))
        {
            refuse(ctx, sscf, "account_not_created",
                   "Your account has not been created in nao; ask an "
                   "admin to add you.", "nao_sso_auto_create off");
            return;
        }
    }

    if (ctx->identity->groupOverage && policy.needsGroups()) {
        fetchGraphToken(ctx, sscf);
        return;
    }

    decide(ctx, sscf, ctx->identity->groups, true);
}

}  // namespace nao::flow
