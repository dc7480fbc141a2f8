/*
 * Compact JWS parsing, RSA keys from a JWK Set, RS256 and Ed25519
 * signature checks, over the OpenSSL 3 provider APIs.
 */

#include "jose.h"

#include "base64url.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <climits>

namespace nao {

namespace {

constexpr int kMinRsaBits = 2048;
constexpr size_t kEd25519SignatureSize = 64;

struct BignumDeleter {
    void operator()(BIGNUM *bn) const { BN_free(bn); }
};

struct ParamBldDeleter {
    void operator()(OSSL_PARAM_BLD *bld) const { OSSL_PARAM_BLD_free(bld); }
};

struct ParamDeleter {
    void operator()(OSSL_PARAM *params) const { OSSL_PARAM_free(params); }
};

struct PkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX *ctx) const { EVP_PKEY_CTX_free(ctx); }
};

struct MdCtxDeleter {
    void operator()(EVP_MD_CTX *ctx) const { EVP_MD_CTX_free(ctx); }
};

struct BioDeleter {
    void operator()(BIO *bio) const { BIO_free(bio); }
};

using BignumPtr = std::unique_ptr<BIGNUM, BignumDeleter>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ParamDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

/*
 * Our failures are reported as values; anything OpenSSL queued must not
 * linger for nginx to print beside an unrelated TLS error later.
 */
Error
opensslFail(std::string message)
{
    ERR_clear_error();
    return fail(std::move(message));
}

const unsigned char *
bytes(std::string_view data)
{
    return reinterpret_cast<const unsigned char *>(data.data());
}

/* a member that is absent, or a string equal to expected */
bool
absentOr(const json_t *object, const char *key, std::string_view expected)
{
    const json_t *member = json_object_get(object, key);

    if (member == nullptr) {
        return true;
    }

    auto value = jsonString(object, key);

    return value && *value == expected;
}

Result<JsonPtr>
decodeObject(std::string_view part, const char *what)
{
    auto decoded = base64urlDecode(part);

    if (!decoded) {
        return fail(std::string("jws ") + what + " is not base64url");
    }

    JsonPtr json = parseJson(*decoded);

    if (!json || !json_is_object(json.get())) {
        return fail(std::string("jws ") + what + " is not a json object");
    }

    return json;
}

Result<BignumPtr>
decodeBignum(const json_t *jwk, const char *key)
{
    auto text = jsonString(jwk, key);

    if (!text) {
        return fail(std::string("rsa jwk has no \"") + key + "\"");
    }

    auto raw = base64urlDecode(*text);

    if (!raw || raw->empty() || raw->size() > INT_MAX) {
        return fail(std::string("rsa jwk \"") + key + "\" is not base64url");
    }

    BignumPtr bn(BN_bin2bn(bytes(*raw), static_cast<int>(raw->size()),
        nullptr));

    if (!bn) {
        return opensslFail("cannot allocate a bignum");
    }

    return bn;
}

Result<PkeyPtr>
rsaFromParams(const BIGNUM *n, const BIGNUM *e)
{
    ParamBldPtr bld(OSSL_PARAM_BLD_new());

    if (!bld
        || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        return opensslFail("cannot build rsa key parameters");
    }

    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
        return opensslFail("cannot set up rsa key import");
    }

    EVP_PKEY *raw = nullptr;

    if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY,
            params.get()) != 1) {
        return opensslFail("rsa jwk cannot be imported");
    }

    return PkeyPtr(raw, PkeyDeleter());
}

Status
verifyWith(EVP_PKEY *key, const EVP_MD *md, std::string_view signingInput,
    std::string_view signature, const char *failure)
{
    MdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;

    if (!ctx
        || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1)
    {
        return opensslFail("cannot set up signature verification");
    }

    if (EVP_PKEY_is_a(key, "RSA")
        && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
    {
        return opensslFail("cannot select rsa pkcs#1 v1.5 padding");
    }

    int rc = EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(),
        bytes(signingInput), signingInput.size());

    if (rc != 1) {
        return opensslFail(failure);
    }

    return Status::success();
}

}  // namespace

Result<Jws>
parseJws(std::string_view compact)
{
    size_t first = compact.find('.');
    size_t second = first == std::string_view::npos
        ? first : compact.find('.', first + 1);

    if (second == std::string_view::npos
        || compact.find('.', second + 1) != std::string_view::npos)
    {
        return fail("jws does not have three parts");
    }

    auto header = decodeObject(compact.substr(0, first), "header");

    if (!header) {
        return fail(header.error());
    }

    if (json_object_get(header->get(), "crit") != nullptr) {
        return fail("jws header has \"crit\", which is not supported");
    }

    auto alg = jsonString(header->get(), "alg");

    if (!alg || alg->empty()) {
        return fail("jws header has no \"alg\"");
    }

    auto kid = jsonString(header->get(), "kid");

    if (!kid && json_object_get(header->get(), "kid") != nullptr) {
        return fail("jws header \"kid\" is not a string");
    }

    auto payload = decodeObject(
        compact.substr(first + 1, second - first - 1), "payload");

    if (!payload) {
        return fail(payload.error());
    }

    auto signature = base64urlDecode(compact.substr(second + 1));

    if (!signature) {
        return fail("jws signature is not base64url");
    }

    Jws jws;
    jws.alg = std::move(*alg);
    jws.kid = kid ? std::move(*kid) : std::string();
    jws.header = std::move(header.value());
    jws.payload = std::move(payload.value());
    jws.signingInput = std::string(compact.substr(0, second));
    jws.signature = std::move(*signature);

    return jws;
}

Result<Jwks>
parseJwks(std::string_view document)
{
    JsonPtr json = parseJson(document);

    if (!json || !json_is_object(json.get())) {
        return fail("jwks document is not a json object");
    }

    const json_t *keys = json_object_get(json.get(), "keys");

    if (keys == nullptr || !json_is_array(keys)) {
        return fail("jwks document has no \"keys\" array");
    }

    Jwks jwks;
    size_t index;
    const json_t *jwk;

    json_array_foreach(keys, index, jwk) {
        auto kid = jsonString(jwk, "kid");

        if (!kid || kid->empty() || jsonString(jwk, "kty") != "RSA"
            || !absentOr(jwk, "use", "sig")
            || !absentOr(jwk, "alg", "RS256"))
        {
            continue;
        }

        auto key = importRsaJwk(jwk);

        if (!key) {
            /* kept so that a token signed with it is refused by name */
            jwks.refused.emplace(std::move(*kid), key.error());
            continue;
        }

        /* a repeated kid keeps its first key, as a lookup would */
        jwks.keys.emplace(std::move(*kid), std::move(key.value()));
    }

    if (jwks.keys.empty()) {
        return fail("jwks document holds no usable rs256 signing key");
    }

    return jwks;
}

Result<PkeyPtr>
importRsaJwk(const json_t *jwk)
{
    if (jwk == nullptr || jsonString(jwk, "kty") != "RSA") {
        return fail("jwk is not an rsa key");
    }

    auto n = decodeBignum(jwk, "n");

    if (!n) {
        return fail(n.error());
    }

    auto e = decodeBignum(jwk, "e");

    if (!e) {
        return fail(e.error());
    }

    /* checked before the import so that no work is done on weak keys */
    int bits = BN_num_bits(n->get());

    if (bits < kMinRsaBits) {
        return fail("rsa key has " + std::to_string(bits)
            + " bits, fewer than the " + std::to_string(kMinRsaBits)
            + " required");
    }

    return rsaFromParams(n->get(), e->get());
}

Status
verifyRs256(EVP_PKEY *key, std::string_view signingInput,
    std::string_view signature)
{
    /* an RSA key only: a key of another type must not verify RS256 */
    if (key == nullptr || !EVP_PKEY_is_a(key, "RSA")) {
        return fail("rs256 needs an rsa key");
    }

    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
        return fail("rsa key is shorter than 2048 bits");
    }

    return verifyWith(key, EVP_sha256(), signingInput, signature,
        "rs256 signature is invalid");
}

Result<PkeyPtr>
loadEd25519PublicKey(std::string_view pem)
{
    if (pem.size() > INT_MAX) {
        return fail("public key is not a pem public key");
    }

    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));

    if (!bio) {
        return opensslFail("cannot allocate a memory bio");
    }

    PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
        PkeyDeleter());

    if (!key) {
        return opensslFail("public key is not a pem public key");
    }

    if (!EVP_PKEY_is_a(key.get(), "ED25519")) {
        return fail("public key is not an ed25519 key");
    }

    return key;
}

Status
verifyEd25519(EVP_PKEY *key, std::string_view signingInput,
    std::string_view signature)
{
    if (key == nullptr || !EVP_PKEY_is_a(key, "ED25519")) {
        return fail("eddsa needs an ed25519 key");
    }

    if (signature.size() != kEd25519SignatureSize) {
        return fail("ed25519 signature is invalid");
    }

    /* Ed25519 hashes internally: no digest, one-shot only */
    return verifyWith(key, nullptr, signingInput, signature,
        "ed25519 signature is invalid");
}

}  // namespace nao
