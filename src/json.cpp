/* RAII and small typed accessors over jansson */

#include "json.h"

#include <cmath>

namespace nao {

JsonPtr
parseJson(std::string_view text)
{
    json_error_t error;

    /*
     * Duplicate keys are refused: a token whose claims read differently
     * to two parsers must not be accepted by either.
     */
    size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;

    return JsonPtr(json_loadb(text.data(), text.size(), flags, &error));
}

std::optional<std::string>
jsonString(const json_t *object, const char *key)
{
    if (object == nullptr || !json_is_object(object)) {
        return std::nullopt;
    }

    const json_t *member = json_object_get(object, key);

    if (member == nullptr || !json_is_string(member)) {
        return std::nullopt;
    }

    return std::string(json_string_value(member),
        json_string_length(member));
}

std::optional<int64_t>
jsonInteger(const json_t *object, const char *key)
{
    if (object == nullptr || !json_is_object(object)) {
        return std::nullopt;
    }

    const json_t *member = json_object_get(object, key);

    if (member == nullptr) {
        return std::nullopt;
    }

    if (json_is_integer(member)) {
        return static_cast<int64_t>(json_integer_value(member));
    }

    if (!json_is_real(member)) {
        return std::nullopt;
    }

    double value = json_real_value(member);

    /* 2^63 is exact as a double; the range is [-2^63, 2^63) */
    constexpr double kLimit = 9223372036854775808.0;

    if (!std::isfinite(value) || std::trunc(value) != value
        || value < -kLimit || value >= kLimit)
    {
        return std::nullopt;
    }

    return static_cast<int64_t>(value);
}

std::string
jsonDump(const json_t *json)
{
    if (json == nullptr) {
        return std::string();
    }

    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;

    size_t size = json_dumpb(json, nullptr, 0, flags);

    if (size == 0) {
        return std::string();
    }

    std::string out(size, '\0');

    if (json_dumpb(json, out.data(), out.size(), flags) != size) {
        return std::string();
    }

    return out;
}

}  // namespace nao
