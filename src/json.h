/* RAII and small typed accessors over jansson */

#ifndef NAO_SSO_JSON_H
#define NAO_SSO_JSON_H

#include <jansson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace nao {

struct JsonDeleter {
    void operator()(json_t *json) const { json_decref(json); }
};

using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

/* parses one JSON value; nullptr on any error (no partial documents) */
JsonPtr parseJson(std::string_view text);

/* a member that is a string, else nullopt */
std::optional<std::string> jsonString(const json_t *object, const char *key);

/* a member that is an integer (or a real with no fraction), else nullopt */
std::optional<int64_t> jsonInteger(const json_t *object, const char *key);

/* serialises compactly; empty string on failure */
std::string jsonDump(const json_t *json);

}  // namespace nao

#endif
