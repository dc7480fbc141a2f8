/* AES-256-GCM sealed values under HKDF-SHA256 derived keys */

#include "aead.h"

#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <climits>
#include <memory>

namespace nao {

namespace {

constexpr char kVersion = 0x01;
constexpr size_t kIdBytes = 4;
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kHeaderBytes = 1 + kIdBytes;

constexpr std::string_view kSalt = "nao_sso token sealing";
constexpr std::string_view kKeyInfo = "nao_sso aes-256-gcm key v1";
constexpr std::string_view kIdInfo = "nao_sso key id v1";

struct KdfDeleter {
    void operator()(EVP_KDF *kdf) const { EVP_KDF_free(kdf); }
};

struct KdfCtxDeleter {
    void operator()(EVP_KDF_CTX *ctx) const { EVP_KDF_CTX_free(ctx); }
};

struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX *ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

using KdfPtr = std::unique_ptr<EVP_KDF, KdfDeleter>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

/*
 * OpenSSL's parameters and updates want a non-null pointer even for no
 * bytes; they only read through it.
 */
unsigned char *
octets(std::string_view data)
{
    static unsigned char empty = 0;

    if (data.empty()) {
        return &empty;
    }

    return reinterpret_cast<unsigned char *>(const_cast<char *>(data.data()));
}

struct GcmInput {
    std::string_view key;
    std::string_view nonce;
    std::string_view associatedData;
    std::string_view text;
};

/*
 * One pass of GCM either way: sealing writes *tag, opening checks it.
 * The key and nonce sizes are the caller's to check.
 */
bool
runGcm(bool sealing, const GcmInput &in, std::string *out, std::string *tag)
{
    if (in.text.size() > INT_MAX || in.associatedData.size() > INT_MAX) {
        return false;
    }

    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int enc = sealing ? 1 : 0;
    int length = 0;
    unsigned char last[kTagBytes];

    out->assign(in.text.size(), '\0');
    tag->resize(kTagBytes);

    bool ok = ctx
        && EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
            octets(in.key), octets(in.nonce), enc) == 1
        && EVP_CipherUpdate(ctx.get(), nullptr, &length,
            octets(in.associatedData),
            static_cast<int>(in.associatedData.size())) == 1
        && EVP_CipherUpdate(ctx.get(), octets(*out), &length,
            octets(in.text), static_cast<int>(in.text.size())) == 1
        && (sealing || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
            kTagBytes, tag->data()) == 1)
        && EVP_CipherFinal_ex(ctx.get(), last, &length) == 1
        && (!sealing || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
            kTagBytes, tag->data()) == 1);

    if (!ok) {
        ERR_clear_error();
        out->clear();
    }

    return ok;
}

bool
usable(const SealKey &key)
{
    return key.id.size() == kIdBytes && key.key.size() == kKeyBytes;
}

}  // namespace

std::optional<std::string>
hkdfSha256(std::string_view secret, std::string_view salt,
    std::string_view info, size_t length)
{
    KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
    KdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);

    if (!ctx) {
        ERR_clear_error();
        return std::nullopt;
    }

    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
            octets(secret), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
            octets(salt), salt.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
            octets(info), info.size()),
        OSSL_PARAM_construct_end(),
    };

    std::string out(length, '\0');

    if (EVP_KDF_derive(ctx.get(), octets(out), length, params) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }

    return out;
}

std::optional<SealKey>
deriveSealKey(std::string_view secret)
{
    /* an empty secret would give a key anyone can derive */
    if (secret.empty()) {
        return std::nullopt;
    }

    std::optional<std::string> key =
        hkdfSha256(secret, kSalt, kKeyInfo, kKeyBytes);
    std::optional<std::string> id =
        hkdfSha256(secret, kSalt, kIdInfo, kIdBytes);

    if (!key || !id) {
        return std::nullopt;
    }

    return SealKey{std::move(*id), std::move(*key)};
}

std::optional<std::string>
seal(const SealKey &key, std::string_view plaintext,
    std::string_view associatedData)
{
    std::optional<std::string> nonce = randomBytes(kNonceBytes);

    if (!usable(key) || !nonce) {
        return std::nullopt;
    }

    std::string envelope = kVersion + key.id;
    std::string authenticated = envelope + std::string(associatedData);
    std::string ciphertext;
    std::string tag;

    if (!runGcm(true, {key.key, *nonce, authenticated, plaintext},
            &ciphertext, &tag))
    {
        return std::nullopt;
    }

    envelope += *nonce;
    envelope += ciphertext;
    envelope += tag;

    return envelope;
}

Result<std::string>
open(const std::vector<SealKey> &keys, std::string_view envelope,
    std::string_view associatedData)
{
    if (envelope.size() < kHeaderBytes + kNonceBytes + kTagBytes
        || envelope[0] != kVersion)
    {
        return fail("sealed value is malformed");
    }

    std::string_view id = envelope.substr(1, kIdBytes);
    std::string_view nonce = envelope.substr(kHeaderBytes, kNonceBytes);
    std::string_view ciphertext = envelope.substr(kHeaderBytes + kNonceBytes,
        envelope.size() - kHeaderBytes - kNonceBytes - kTagBytes);
    std::string tag(envelope.substr(envelope.size() - kTagBytes));
    std::string authenticated(envelope.substr(0, kHeaderBytes));

    authenticated += associatedData;

    /* ids are 4 bytes, so two keys may share one: try each that does */
    bool known = false;
    std::string plaintext;

    for (const SealKey &key : keys) {
        if (!usable(key) || key.id != id) {
            continue;
        }

        known = true;

        if (runGcm(false, {key.key, nonce, authenticated, ciphertext},
                &plaintext, &tag))
        {
            return plaintext;
        }
    }

    if (!known) {
        return fail("sealed value names an unknown key");
    }

    return fail("sealed value failed authentication");
}

}  // namespace nao
