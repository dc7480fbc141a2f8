/*
 * Request headers: removing the ones a client must not be able to send
 * upstream, hiding the module's cookies, adding the identity.
 *
 * Entries are removed from the headers list without moving any element:
 * headers_in keeps pointers into the list (Host, Cookie, ...), so a part
 * is split around the removed element instead.
 */

#include "ngx_http_nao_sso.h"

#include "cookie.h"

namespace {

const std::string_view kPrivatePrefix = "x-nao-";


/*
 * Empty parts break nginx's usual list walk, so none is left behind; and
 * the last part is declared full, so that ngx_list_push() starts a new
 * part instead of writing into an array that a split part shares.
 */
bool
normalize(ngx_pool_t *pool, ngx_list_t *list)
{
    ngx_list_part_t *prev = &list->part;

    for (ngx_list_part_t *part = list->part.next; part != nullptr; ) {
        ngx_list_part_t *next = part->next;

        if (part->nelts == 0) {
            prev->next = next;
        } else {
            prev = part;
        }

        part = next;
    }

    list->last = prev;

    if (list->part.nelts == 0 && list->part.next != nullptr) {
        if (list->last == list->part.next) {
            list->last = &list->part;
        }

        list->part = *list->part.next;
    }

    if (list->part.nelts == 0) {
        /* nothing is left to point into: fresh storage is safe */
        list->nalloc = 4;
        list->part.elts = ngx_palloc(pool, list->nalloc * list->size);
        list->part.next = nullptr;
        list->last = &list->part;
        return list->part.elts != nullptr;
    }

    list->nalloc = list->last->nelts;
    return true;
}


/* removes element i of part by splitting the part around it */
bool
removeAt(ngx_pool_t *pool, ngx_list_t *list, ngx_list_part_t *part,
    ngx_uint_t i)
{
    auto *elts = static_cast<u_char *>(part->elts);
    ngx_uint_t tail = part->nelts - i - 1;

    if (tail > 0) {
        auto *rest = static_cast<ngx_list_part_t *>(
            ngx_palloc(pool, sizeof(ngx_list_part_t)));
        if (rest == nullptr) {
            return false;
        }

        rest->elts = elts + (i + 1) * list->size;
        rest->nelts = tail;
        rest->next = part->next;
        part->next = rest;
    }

    part->nelts = i;
    return true;
}


/*
 * "x_nao_" too: with underscores_in_headers on, nginx passes such names,
 * and many applications read "_" and "-" in header names alike.
 */
bool
hasPrivatePrefix(const ngx_table_elt_t &h)
{
    if (h.key.len < kPrivatePrefix.size()) {
        return false;
    }

    for (size_t i = 0; i < kPrivatePrefix.size(); i++) {
        u_char ch = ngx_tolower(h.key.data[i]);

        if (ch == '_') {
            ch = '-';
        }

        if (ch != static_cast<u_char>(kPrivatePrefix[i])) {
            return false;
        }
    }

    return true;
}


/* removes every element the predicate selects; false when out of memory */
template <typename Pred>
bool
removeHeaders(ngx_http_request_t *r, Pred pred)
{
    ngx_list_t *list = &r->headers_in.headers;
    bool removed = false;

    for (ngx_list_part_t *part = &list->part; part != nullptr; ) {
        auto *h = static_cast<ngx_table_elt_t *>(part->elts);
        ngx_uint_t i;

        for (i = 0; i < part->nelts; i++) {
            if (pred(h[i])) {
                break;
            }
        }

        if (i == part->nelts) {
            part = part->next;
            continue;
        }

        if (!removeAt(r->pool, list, part, i)) {
            return false;
        }

        removed = true;
        part = part->next;
    }

    return !removed || normalize(r->pool, list);
}


/*
 * headers_in keeps its own pointers to the Cookie headers, which $cookie_*
 * and $http_cookie read: a removed one must go from there too.
 */
void
forgetCookieHeader(ngx_http_request_t *r, ngx_table_elt_t *h)
{
#if (nginx_version < 1023000)
    auto **elts = static_cast<ngx_table_elt_t **>(r->headers_in.cookies.elts);
    ngx_uint_t n = 0;

    for (ngx_uint_t i = 0; i < r->headers_in.cookies.nelts; i++) {
        if (elts[i] != h) {
            elts[n++] = elts[i];
        }
    }

    r->headers_in.cookies.nelts = n;
#else
    for (ngx_table_elt_t **p = &r->headers_in.cookie; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
#endif
}


bool
appendCookies(ngx_pool_t *pool, ngx_str_t *captured, const ngx_str_t &value)
{
    if (captured->len == 0) {
        *captured = value;
        return true;
    }

    std::string joined(nao::view(*captured));
    joined += "; ";
    joined += nao::view(value);

    *captured = nao::poolString(pool, joined);
    return captured->data != nullptr;
}


/* the identity headers; names are constant, values borrowed */
struct IdentityHeader {
    ngx_str_t key;
    const char *lowcase;
    std::string nao::SessionData::*field;
    ngx_uint_t hash;
};

IdentityHeader identityHeaders[] = {
    { ngx_string("X-Nao-User-Id"), "x-nao-user-id",
      &nao::SessionData::userId, 0 },
    { ngx_string("X-Nao-User-Email"), "x-nao-user-email",
      &nao::SessionData::email, 0 },
    { ngx_string("X-Nao-User-Name"), "x-nao-user-name",
      &nao::SessionData::name, 0 },
    { ngx_string("X-Nao-User-Role"), "x-nao-user-role",
      &nao::SessionData::role, 0 },
    { ngx_string("X-Nao-Tenant-Id"), "x-nao-tenant-id",
      &nao::SessionData::tenantId, 0 },
};


}  // namespace


ngx_int_t
ngx_http_nao_sso_strip_private_headers(ngx_http_request_t *r)
{
    return removeHeaders(r, hasPrivatePrefix) ? NGX_OK : NGX_ERROR;
}


/*
 * Takes out what a client must not hand the upstream: X-Nao-* headers and
 * the module's cookies (kept in the context). It runs before anything
 * else, and again after any internal redirect, since an error page
 * reached before the phases ran (a 400, say) skips the post-read phase.
 */
ngx_int_t
ngx_http_nao_sso_sanitize(ngx_http_request_t *r)
{
    ngx_http_nao_sso_ctx_t  *ctx;
    ngx_str_t                cookies = ngx_null_string;

    if (ngx_http_nao_sso_strip_private_headers(r) != NGX_OK
        || ngx_http_nao_sso_strip_cookies(r, &cookies) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* most requests carry none of our cookies and need no context */
    if (cookies.len != 0) {
        ctx = ngx_http_nao_sso_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->cookies = cookies;
    }

    return NGX_OK;
}


/*
 * Keeps the module's cookies in the context and takes them out of what
 * the upstream will see.
 */
ngx_int_t
ngx_http_nao_sso_strip_cookies(ngx_http_request_t *r, ngx_str_t *captured)
{
    static const std::vector<std::string_view> prefixes = {
        "nao_sso", "__Host-nao_sso"
    };

    ngx_list_t *list = &r->headers_in.headers;
    bool removed = false;

    for (ngx_list_part_t *part = &list->part; part != nullptr;
         part = part->next)
    {
        auto *h = static_cast<ngx_table_elt_t *>(part->elts);

        for (ngx_uint_t i = 0; i < part->nelts; i++) {
            if (h[i].key.len != 6
                || ngx_strncasecmp(h[i].key.data, (u_char *) "cookie", 6)
                   != 0)
            {
                continue;
            }

            /* the common case, none of ours, costs one scan */
            std::string_view value = nao::view(h[i].value);
            if (value.find("nao_sso") == std::string_view::npos) {
                continue;
            }

            std::string kept = nao::removeCookies(value, prefixes);
            if (kept == value) {
                continue;
            }

            /*
             * The replaced value's bytes stay where they are for the
             * whole request, so the usual single Cookie header is kept
             * without a copy.
             */
            if (!appendCookies(r->pool, captured, h[i].value)) {
                return NGX_ERROR;
            }

            if (!kept.empty()) {
                h[i].value = nao::poolString(r->pool, kept);
                if (h[i].value.data == nullptr) {
                    return NGX_ERROR;
                }

                continue;
            }

            /* nothing left: the header goes; the walk goes on after it */
            forgetCookieHeader(r, &h[i]);

            if (!removeAt(r->pool, list, part, i)) {
                return NGX_ERROR;
            }

            removed = true;
            break;
        }
    }

    if (removed && !normalize(r->pool, list)) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


namespace {

void
fillIdentity(ngx_table_elt_t *h, const nao::SessionData &session)
{
    ngx_uint_t n = sizeof(identityHeaders) / sizeof(identityHeaders[0]);

    for (ngx_uint_t i = 0; i < n; i++) {
        IdentityHeader &ih = identityHeaders[i];

        if (ih.hash == 0) {
            ih.hash = ngx_hash_key((u_char *) ih.lowcase, ih.key.len);
        }

        const std::string &value = session.*ih.field;

        h[i].key = ih.key;
        h[i].lowcase_key = (u_char *) ih.lowcase;
        h[i].hash = ih.hash;
        h[i].value.data = (u_char *) value.data();
        h[i].value.len = value.size();
    }
}


/* the tokens obtained, each under its downstream's header */
ngx_uint_t
fillTokens(ngx_table_elt_t *h, const ngx_http_nao_sso_ctx_t *ctx,
    const std::vector<nao::Downstream> &downstream)
{
    ngx_uint_t n = 0;

    for (size_t i = 0; i < ctx->downstream.size(); i++) {
        if (!ctx->downstream[i]) {
            continue;
        }

        const nao::Downstream &d = downstream[i];
        const std::string &value = ctx->downstream[i]->token;

        h[n].key.data = (u_char *) d.header.data();
        h[n].key.len = d.header.size();
        h[n].lowcase_key = (u_char *) d.lowcase.data();
        h[n].hash = d.hash;
        h[n].value.data = (u_char *) value.data();
        h[n].value.len = value.size();
        n++;
    }

    return n;
}

}  // namespace


/*
 * The values point into the session data and the opened tokens, which
 * the request context keeps alive for as long as the request lives.
 * After an internal redirect the access handler has sanitized the
 * headers again, so those of an earlier pass are gone.
 */
ngx_int_t
ngx_http_nao_sso_add_identity(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx, bool withTokens)
{
    ngx_list_t *list = &r->headers_in.headers;
    auto *sscf = static_cast<ngx_http_nao_sso_srv_conf_t *>(
        ngx_http_get_module_srv_conf(r, ngx_http_nao_sso_module));
    ngx_uint_t identity = sizeof(identityHeaders) / sizeof(identityHeaders[0]);
    ngx_uint_t n = identity + (withTokens ? ctx->downstream.size() : 0);

    /* one new part for all of them, instead of a push each */
    auto *h = static_cast<ngx_table_elt_t *>(
        ngx_pcalloc(r->pool, n * sizeof(ngx_table_elt_t)));
    auto *part = static_cast<ngx_list_part_t *>(
        ngx_palloc(r->pool, sizeof(ngx_list_part_t)));
    if (h == nullptr || part == nullptr) {
        return NGX_ERROR;
    }

    fillIdentity(h, *ctx->session);
    if (withTokens) {
        n = identity + fillTokens(h + identity, ctx,
                                  sscf->state->downstream);
    }

    part->elts = h;
    part->nelts = n;
    part->next = nullptr;

    if (list->part.nelts == 0) {
        list->part = *part;
        list->last = &list->part;
    } else {
        list->last->next = part;
        list->last = part;
    }

    /* the new part is full: a later push starts another */
    list->nalloc = n;

    return NGX_OK;
}


std::string_view
ngx_http_nao_sso_header(ngx_http_request_t *r, std::string_view lowcase)
{
    for (ngx_list_part_t *part = &r->headers_in.headers.part;
         part != nullptr;
         part = part->next)
    {
        auto *h = static_cast<ngx_table_elt_t *>(part->elts);

        for (ngx_uint_t i = 0; i < part->nelts; i++) {
            if (h[i].key.len == lowcase.size()
                && ngx_strncmp(h[i].lowcase_key, lowcase.data(),
                               lowcase.size()) == 0)
            {
                return nao::view(h[i].value);
            }
        }
    }

    return {};
}


/*
 * A browser navigation is sent to the sign-in page; anything else (fetch,
 * XHR, curl) gets a 401 it can act on.
 */
bool
ngx_http_nao_sso_is_navigation(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return false;
    }

    std::string_view mode = ngx_http_nao_sso_header(r, "sec-fetch-mode");
    if (!mode.empty()) {
        return mode == "navigate";
    }

    if (!ngx_http_nao_sso_header(r, "x-requested-with").empty()) {
        return false;
    }

    return ngx_http_nao_sso_header(r, "accept").find("text/html")
           != std::string_view::npos;
}


/*
 * The callback's query holds the authorization code. nginx puts the
 * request line into every error log line and the access log's $request,
 * and the URI with its arguments into its debug lines, so both are
 * masked once the module takes the callback; the context keeps the real
 * arguments. ($request_uri still has them: see README.)
 */
void
ngx_http_nao_sso_mask_callback(ngx_http_request_t *r,
    ngx_http_nao_sso_ctx_t *ctx)
{
    static ngx_str_t masked_args = ngx_string("masked");

    if (r->args.len == 0 || !ctx->args.empty()) {
        return;
    }

    ctx->args = std::string(nao::view(r->args));
    r->args = masked_args;

    std::string line(nao::view(r->method_name));
    line += " ";
    line += nao::view(r->uri);
    line += "?[masked] ";
    line += nao::view(r->http_protocol);

    ngx_str_t masked = nao::poolString(r->pool, line);
    if (masked.data != NULL) {
        r->request_line = masked;
    }
}
