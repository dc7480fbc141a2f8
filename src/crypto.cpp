/* hashing, MACs and randomness over OpenSSL 3 */

#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>
#include <memory>

namespace nao {

namespace {

struct MacDeleter {
    void operator()(EVP_MAC *mac) const { EVP_MAC_free(mac); }
};

struct MacCtxDeleter {
    void operator()(EVP_MAC_CTX *ctx) const { EVP_MAC_CTX_free(ctx); }
};

using MacPtr = std::unique_ptr<EVP_MAC, MacDeleter>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

const unsigned char *
bytes(std::string_view data)
{
    /*
     * OpenSSL reads a null key as "keep the current key", so an empty
     * view must still point somewhere.
     */
    static const unsigned char kEmpty = 0;

    if (data.empty()) {
        return &kEmpty;
    }

    return reinterpret_cast<const unsigned char *>(data.data());
}

}  // namespace

std::optional<std::string>
randomBytes(size_t length)
{
    if (length > INT_MAX) {
        return std::nullopt;
    }

    std::string out(length, '\0');

    if (length == 0) {
        return out;
    }

    auto *buffer = reinterpret_cast<unsigned char *>(out.data());

    if (RAND_bytes(buffer, static_cast<int>(length)) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }

    return out;
}

std::string
sha256(std::string_view data)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;

    if (EVP_Digest(bytes(data), data.size(), digest, &length, EVP_sha256(),
            nullptr) != 1) {
        /* only when the default provider is missing or out of memory */
        ERR_clear_error();
        return std::string();
    }

    return std::string(reinterpret_cast<char *>(digest), length);
}

std::string
hmacSha256(std::string_view key, std::string_view data)
{
    MacPtr mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
    MacCtxPtr ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);

    if (!ctx) {
        ERR_clear_error();
        return std::string();
    }

    char digestName[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digestName,
            0),
        OSSL_PARAM_construct_end(),
    };

    unsigned char out[EVP_MAX_MD_SIZE];
    size_t length = 0;

    if (EVP_MAC_init(ctx.get(), bytes(key), key.size(), params) != 1
        || EVP_MAC_update(ctx.get(), bytes(data), data.size()) != 1
        || EVP_MAC_final(ctx.get(), out, &length, sizeof(out)) != 1)
    {
        ERR_clear_error();
        return std::string();
    }

    return std::string(reinterpret_cast<char *>(out), length);
}

bool
constantTimeEqual(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }

    return CRYPTO_memcmp(bytes(a), bytes(b), a.size()) == 0;
}

}  // namespace nao
