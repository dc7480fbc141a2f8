/* unit tests for src/crypto.cpp */

#include "crypto.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>

using nao::constantTimeEqual;
using nao::hmacSha256;
using nao::randomBytes;
using nao::sha256;

namespace {

std::string
hex(const std::string &bytes)
{
    static const char kDigits[] = "0123456789abcdef";
    std::string out;

    for (unsigned char c : bytes) {
        out += kDigits[c >> 4];
        out += kDigits[c & 0x0f];
    }

    return out;
}

/* FIPS 180-2 appendix B.1 and the digest of nothing */
void
testSha256KnownAnswers(void **state)
{
    (void) state;

    assert_string_equal(hex(sha256("abc")).c_str(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(hex(sha256("")).c_str(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

void
testSha256HandlesBinary(void **state)
{
    (void) state;

    std::string withNul("a\0b", 3);

    assert_int_equal(sha256(withNul).size(), 32);
    assert_string_not_equal(hex(sha256(withNul)).c_str(),
        hex(sha256("a")).c_str());
}

/* RFC 4231 test cases 1, 2 and 6 */
void
testHmacRfc4231(void **state)
{
    (void) state;

    assert_string_equal(
        hex(hmacSha256(std::string(20, '\x0b'), "Hi There")).c_str(),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    assert_string_equal(
        hex(hmacSha256("Jefe", "what do ya want for nothing?")).c_str(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    std::string longKey(131, '\xaa');

    assert_string_equal(hex(hmacSha256(longKey,
        "Test Using Larger Than Block-Size Key - Hash Key First")).c_str(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

void
testHmacEmptyKeyAndData(void **state)
{
    (void) state;

    /* an empty key is still a key, not "keep the previous one" */
    assert_string_equal(hex(hmacSha256("", "")).c_str(),
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

void
testHmacDependsOnKeyAndData(void **state)
{
    (void) state;

    std::string base = hmacSha256("key", "data");

    assert_int_equal(base.size(), 32);
    assert_true(base != hmacSha256("key2", "data"));
    assert_true(base != hmacSha256("key", "data2"));
    assert_true(base == hmacSha256("key", "data"));
}

void
testRandomBytes(void **state)
{
    (void) state;

    auto first = randomBytes(32);
    auto second = randomBytes(32);

    assert_true(first.has_value());
    assert_true(second.has_value());
    assert_int_equal(first->size(), 32);

    /* a 2^-256 chance of a false failure */
    assert_true(*first != *second);

    auto none = randomBytes(0);

    assert_true(none.has_value());
    assert_true(none->empty());
}

void
testConstantTimeEqual(void **state)
{
    (void) state;

    assert_true(constantTimeEqual("", ""));
    assert_true(constantTimeEqual("secret", "secret"));
    assert_true(constantTimeEqual(std::string("a\0b", 3),
        std::string("a\0b", 3)));

    assert_false(constantTimeEqual("secret", "secreT"));
    assert_false(constantTimeEqual("secret", "Secret"));
    assert_false(constantTimeEqual("secret", "secret2"));
    assert_false(constantTimeEqual("secret", ""));
    assert_false(constantTimeEqual(std::string("a\0b", 3),
        std::string("a\0c", 3)));
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testSha256KnownAnswers),
        cmocka_unit_test(testSha256HandlesBinary),
        cmocka_unit_test(testHmacRfc4231),
        cmocka_unit_test(testHmacEmptyKeyAndData),
        cmocka_unit_test(testHmacDependsOnKeyAndData),
        cmocka_unit_test(testRandomBytes),
        cmocka_unit_test(testConstantTimeEqual),
    };

    return cmocka_run_group_tests_name("crypto", tests, nullptr, nullptr);
}
