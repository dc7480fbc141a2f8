/*
 * The parts of JOSE the module needs: compact JWS parsing, RSA keys from a
 * JWK Set, RS256 and EdDSA (Ed25519) signature checks.
 */

#ifndef NAO_SSO_JOSE_H
#define NAO_SSO_JOSE_H

#include "json.h"
#include "result.h"

#include <openssl/evp.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace nao {

struct PkeyDeleter {
    void operator()(EVP_PKEY *key) const { EVP_PKEY_free(key); }
};

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

struct Jws {
    std::string alg;             /* from the protected header */
    std::string kid;             /* empty when absent */
    JsonPtr header;              /* the decoded protected header */
    JsonPtr payload;             /* the decoded payload, a JSON object */
    std::string signingInput;    /* "<header b64>.<payload b64>" */
    std::string signature;       /* raw signature bytes */
};

/*
 * Splits and decodes a compact JWS. Rejects: not three parts, bad
 * base64url, a header or payload that is not a JSON object, a missing
 * "alg", and any "crit" header (no extension is understood here).
 */
Result<Jws> parseJws(std::string_view compact);

/* kid -> RSA public key, built from a JWK Set document */
struct Jwks {
    std::map<std::string, PkeyPtr> keys;
    std::map<std::string, std::string> refused;   /* kid -> why */
};

/*
 * Imports every usable signing key: kty "RSA", "use" absent or "sig",
 * "alg" absent or "RS256", a "kid", and a modulus of at least 2048 bits.
 * Other keys are skipped. Fails on a document that is not a JWK Set or
 * that holds no usable key.
 */
Result<Jwks> parseJwks(std::string_view document);

/* one RSA JWK object; enforces the 2048-bit minimum */
Result<PkeyPtr> importRsaJwk(const json_t *jwk);

/* RSASSA-PKCS1-v1_5 with SHA-256 */
Status verifyRs256(EVP_PKEY *key, std::string_view signingInput,
    std::string_view signature);

/* a PEM "PUBLIC KEY" that must be Ed25519 */
Result<PkeyPtr> loadEd25519PublicKey(std::string_view pem);

Status verifyEd25519(EVP_PKEY *key, std::string_view signingInput,
    std::string_view signature);

}  // namespace nao

#endif
