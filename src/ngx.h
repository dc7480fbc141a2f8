/*
 * The only header that includes nginx. C++ files that talk to nginx
 * include this one; the pure units never do.
 */

#ifndef NAO_SSO_NGX_H
#define NAO_SSO_NGX_H

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
}

#include <string>
#include <string_view>

namespace nao {

inline std::string_view
view(const ngx_str_t &s)
{
    return std::string_view(reinterpret_cast<const char *>(s.data), s.len);
}

/* copies into the pool; a null data pointer on allocation failure */
inline ngx_str_t
poolString(ngx_pool_t *pool, std::string_view text)
{
    ngx_str_t  s;

    s.len = text.size();
    s.data = static_cast<u_char *>(ngx_pnalloc(pool, text.size() + 1));

    if (s.data != nullptr) {
        ngx_memcpy(s.data, text.data(), text.size());
        s.data[text.size()] = '\0';
    }

    return s;
}

}  // namespace nao

#endif
