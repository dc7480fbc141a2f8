/*
 * What several unit tests share: text assertions and OpenSSL deleters.
 * Include it after <cmocka.h>, whose fail_msg() it uses.
 */

#ifndef NAO_SSO_TEST_SUPPORT_H
#define NAO_SSO_TEST_SUPPORT_H

#include <openssl/bn.h>
#include <openssl/evp.h>

#include <string_view>

namespace test {

/* long texts, such as pages, are not echoed: only the part is named */
constexpr size_t kEchoLimit = 200;

inline void
assertContains(std::string_view text, std::string_view part)
{
    if (text.find(part) != std::string_view::npos) {
        return;
    }

    if (text.size() <= kEchoLimit) {
        fail_msg("\"%.*s\" does not contain \"%.*s\"", (int) text.size(),
                 text.data(), (int) part.size(), part.data());
    } else {
        fail_msg("text of %zu bytes does not contain \"%.*s\"", text.size(),
                 (int) part.size(), part.data());
    }
}

inline void
assertLacks(std::string_view text, std::string_view part)
{
    if (text.find(part) == std::string_view::npos) {
        return;
    }

    if (text.size() <= kEchoLimit) {
        fail_msg("\"%.*s\" contains \"%.*s\"", (int) text.size(),
                 text.data(), (int) part.size(), part.data());
    } else {
        fail_msg("text of %zu bytes contains \"%.*s\"", text.size(),
                 (int) part.size(), part.data());
    }
}

struct BignumDeleter {
    void operator()(BIGNUM *bn) const { BN_free(bn); }
};

struct MdCtxDeleter {
    void operator()(EVP_MD_CTX *ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace test

#endif
