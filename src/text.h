/* small string helpers shared by the pure units */

#ifndef NAO_SSO_TEXT_H
#define NAO_SSO_TEXT_H

#include <string_view>

namespace nao {

constexpr std::string_view kWhiteSpace = " \t\r\n\f\v";

/* text without the given characters at either end */
inline std::string_view
trim(std::string_view text, std::string_view chars = kWhiteSpace)
{
    size_t start = text.find_first_not_of(chars);

    if (start == std::string_view::npos) {
        return std::string_view();
    }

    return text.substr(start, text.find_last_not_of(chars) - start + 1);
}

}  // namespace nao

#endif
