/* base64url without padding (RFC 4648 section 5) */

#include "base64url.h"

#include <array>
#include <cstdint>

namespace nao {

namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr int8_t kInvalid = -1;

using DecodeTable = std::array<int8_t, 256>;

constexpr DecodeTable
makeDecodeTable()
{
    DecodeTable table{};

    for (auto &entry : table) {
        entry = kInvalid;
    }

    for (int i = 0; i < 64; i++) {
        table[static_cast<unsigned char>(kAlphabet[i])] =
            static_cast<int8_t>(i);
    }

    return table;
}

constexpr DecodeTable kDecode = makeDecodeTable();

}  // namespace

std::string
base64urlEncode(std::string_view data)
{
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);

    size_t i = 0;

    for (; i + 3 <= data.size(); i += 3) {
        uint32_t group = static_cast<unsigned char>(data[i]) << 16
            | static_cast<unsigned char>(data[i + 1]) << 8
            | static_cast<unsigned char>(data[i + 2]);

        out += kAlphabet[(group >> 18) & 0x3f];
        out += kAlphabet[(group >> 12) & 0x3f];
        out += kAlphabet[(group >> 6) & 0x3f];
        out += kAlphabet[group & 0x3f];
    }

    size_t rest = data.size() - i;

    if (rest == 1) {
        uint32_t group = static_cast<unsigned char>(data[i]) << 16;

        out += kAlphabet[(group >> 18) & 0x3f];
        out += kAlphabet[(group >> 12) & 0x3f];

    } else if (rest == 2) {
        uint32_t group = static_cast<unsigned char>(data[i]) << 16
            | static_cast<unsigned char>(data[i + 1]) << 8;

        out += kAlphabet[(group >> 18) & 0x3f];
        out += kAlphabet[(group >> 12) & 0x3f];
        out += kAlphabet[(group >> 6) & 0x3f];
    }

    return out;
}

std::optional<std::string>
base64urlDecode(std::string_view text)
{
    if (text.size() % 4 == 1) {
        return std::nullopt;
    }

    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);

    uint32_t bits = 0;
    int count = 0;

    for (char c : text) {
        int8_t value = kDecode[static_cast<unsigned char>(c)];

        if (value == kInvalid) {
            return std::nullopt;
        }

        bits = (bits << 6) | static_cast<uint32_t>(value);
        count += 6;

        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xff);
        }
    }

    /*
     * The leftover bits must be zero: otherwise two different texts
     * would decode to the same bytes, and a signature or MAC would no
     * longer bind one exact string.
     */
    if ((bits & ((1u << count) - 1)) != 0) {
        return std::nullopt;
    }

    return out;
}

}  // namespace nao
