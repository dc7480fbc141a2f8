/* hashing, MACs and randomness over OpenSSL 3 */

#ifndef NAO_SSO_CRYPTO_H
#define NAO_SSO_CRYPTO_H

#include <optional>
#include <string>
#include <string_view>

namespace nao {

/* cryptographically strong bytes; nullopt when RAND_bytes() fails */
std::optional<std::string> randomBytes(size_t length);

/* 32 raw bytes */
std::string sha256(std::string_view data);

/* 32 raw bytes; empty string when the MAC cannot be computed */
std::string hmacSha256(std::string_view key, std::string_view data);

/* compares without an early exit; lengths are not secret */
bool constantTimeEqual(std::string_view a, std::string_view b);

}  // namespace nao

#endif
