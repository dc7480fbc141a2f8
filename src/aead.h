/*
 * Sealed values: AES-256-GCM under keys derived with HKDF-SHA256 from a
 * configured secret. A sealed value is raw bytes:
 *
 *     0x01 | key id (4) | nonce (12) | ciphertext | tag (16)
 *
 * The version byte and key id are authenticated with the caller's
 * associated data, so the header cannot be swapped either.
 */

#ifndef NAO_SSO_AEAD_H
#define NAO_SSO_AEAD_H

#include "result.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

/* RFC 5869; nullopt when OpenSSL refuses (e.g. length over 255 * 32) */
std::optional<std::string> hkdfSha256(std::string_view secret,
    std::string_view salt, std::string_view info, size_t length);

struct SealKey {
    std::string id;     /* 4 raw bytes, derived apart from the key */
    std::string key;    /* 32 raw bytes */
};

/* the same secret always gives the same key and id */
std::optional<SealKey> deriveSealKey(std::string_view secret);

/* nullopt when the key is not a SealKey or OpenSSL fails */
std::optional<std::string> seal(const SealKey &key,
    std::string_view plaintext, std::string_view associatedData);

/*
 * The plaintext when a key in the list with the value's key id opens it,
 * so a list {new, old} still opens values sealed with the old key.
 */
Result<std::string> open(const std::vector<SealKey> &keys,
    std::string_view envelope, std::string_view associatedData);

}  // namespace nao

#endif
