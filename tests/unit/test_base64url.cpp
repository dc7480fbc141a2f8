/* unit tests for src/base64url.cpp */

#include "base64url.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>

using nao::base64urlDecode;
using nao::base64urlEncode;

namespace {

void
assertDecodesTo(const char *text, const std::string &expected)
{
    auto decoded = base64urlDecode(text);

    assert_true(decoded.has_value());
    assert_int_equal(decoded->size(), expected.size());
    assert_memory_equal(decoded->data(), expected.data(), expected.size());
}

/* RFC 4648 section 10, with the padding removed */
void
testRfc4648Vectors(void **state)
{
    (void) state;

    const char *vectors[][2] = {
        {"", ""},
        {"f", "Zg"},
        {"fo", "Zm8"},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
    };

    for (const auto &vector : vectors) {
        assert_string_equal(base64urlEncode(vector[0]).c_str(), vector[1]);
        assertDecodesTo(vector[1], vector[0]);
    }
}

void
testUrlSafeAlphabet(void **state)
{
    (void) state;

    /* these bytes need the two characters where base64url differs */
    assert_string_equal(base64urlEncode("\xfb\xef\xbe").c_str(), "----");
    assert_string_equal(base64urlEncode("\xff\xff\xff").c_str(), "____");
    assert_string_equal(base64urlEncode("\xfb\xff").c_str(), "-_8");

    assertDecodesTo("----", "\xfb\xef\xbe");
    assertDecodesTo("____", "\xff\xff\xff");
    assertDecodesTo("-_8", "\xfb\xff");
}

void
testRoundTripAllBytes(void **state)
{
    (void) state;

    std::string all;

    for (int i = 0; i < 256; i++) {
        all += static_cast<char>(i);
    }

    /* every length exercises each of the three tail shapes */
    for (size_t length = 0; length <= all.size(); length++) {
        std::string data = all.substr(all.size() - length);
        std::string text = base64urlEncode(data);

        assert_int_equal(text.size(), (length * 4 + 2) / 3);
        assert_int_equal(text.find_first_of("+/="), std::string::npos);
        assertDecodesTo(text.c_str(), data);
    }
}

void
testDecodeRejectsPadding(void **state)
{
    (void) state;

    assert_false(base64urlDecode("Zg==").has_value());
    assert_false(base64urlDecode("Zm8=").has_value());
    assert_false(base64urlDecode("Zg=").has_value());
    assert_false(base64urlDecode("=").has_value());
}

void
testDecodeRejectsForeignCharacters(void **state)
{
    (void) state;

    /* standard base64 characters are not url-safe */
    assert_false(base64urlDecode("+_8").has_value());
    assert_false(base64urlDecode("-/8").has_value());

    assert_false(base64urlDecode("Zm9v Yg").has_value());
    assert_false(base64urlDecode("Zm9v\nYg").has_value());
    assert_false(base64urlDecode(" Zm9v").has_value());
    assert_false(base64urlDecode("Zm9v.").has_value());
    assert_false(base64urlDecode(std::string("Zm\0v", 4)).has_value());
    assert_false(base64urlDecode("Zm9\xc3\xa9").has_value());
}

void
testDecodeRejectsImpossibleLength(void **state)
{
    (void) state;

    assert_false(base64urlDecode("Z").has_value());
    assert_false(base64urlDecode("Zm9vY").has_value());
    assert_false(base64urlDecode("Zm9vYmFyZ").has_value());

    /* six zero bits make no byte, yet are not a valid encoding either */
    assert_false(base64urlDecode("A").has_value());
    assert_false(base64urlDecode("Zm9vA").has_value());
}

void
testDecodeRejectsTrailingBits(void **state)
{
    (void) state;

    /* "Zg" is canonical for "f"; "Zh" carries a set bit past the byte */
    assert_false(base64urlDecode("Zh").has_value());
    assert_false(base64urlDecode("Zv").has_value());

    /* "Zm8" is canonical for "fo"; "Zm9" differs only in padding bits */
    assert_false(base64urlDecode("Zm9").has_value());
    assert_true(base64urlDecode("Zm8").has_value());
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testRfc4648Vectors),
        cmocka_unit_test(testUrlSafeAlphabet),
        cmocka_unit_test(testRoundTripAllBytes),
        cmocka_unit_test(testDecodeRejectsPadding),
        cmocka_unit_test(testDecodeRejectsForeignCharacters),
        cmocka_unit_test(testDecodeRejectsImpossibleLength),
        cmocka_unit_test(testDecodeRejectsTrailingBits),
    };

    return cmocka_run_group_tests_name("base64url", tests, nullptr,
        nullptr);
}
