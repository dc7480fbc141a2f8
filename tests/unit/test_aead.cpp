/* unit tests for src/aead.cpp: HKDF and the sealed value envelope */

#include "aead.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>
#include <vector>

using nao::SealKey;
using nao::deriveSealKey;
using nao::hkdfSha256;
using nao::open;
using nao::seal;

namespace {

/* version, key id, nonce; then the ciphertext and a 16-byte tag */
constexpr size_t kOverhead = 1 + 4 + 12 + 16;

const char kAd[] = "nao_sso_session";

std::string
counting(unsigned char from, size_t count)
{
    std::string out;

    for (size_t i = 0; i < count; i++) {
        out += static_cast<char>(from + i);
    }

    return out;
}

SealKey
keyFor(const char *secret)
{
    std::optional<SealKey> key = deriveSealKey(secret);

    assert_true(key.has_value());

    return *key;
}

std::string
sealed(const SealKey &key, std::string_view plaintext)
{
    std::optional<std::string> envelope = seal(key, plaintext, kAd);

    assert_true(envelope.has_value());

    return *envelope;
}

void
assertOpenFails(const std::vector<SealKey> &keys, std::string_view envelope,
    const char *ad, const char *error)
{
    nao::Result<std::string> opened = open(keys, envelope, ad);

    assert_false(opened.ok());
    assert_string_equal(opened.error().c_str(), error);
}

/* RFC 5869 appendix A.1 (basic, SHA-256), and the output cap */
void
testHkdfRfc5869(void **state)
{
    (void) state;

    std::optional<std::string> okm = hkdfSha256(std::string(22, '\x0b'),
        counting(0x00, 13), counting(0xf0, 10), 42);

    const char expected[] =
        "\x3c\xb2\x5f\x25\xfa\xac\xd5\x7a\x90\x43\x4f\x64\xd0\x36\x2f\x2a"
        "\x2d\x2d\x0a\x90\xcf\x1a\x5a\x4c\x5d\xb0\x2d\x56\xec\xc4\xc5\xbf"
        "\x34\x00\x72\x08\xd5\xb8\x87\x18\x58\x65";

    assert_true(okm.has_value());
    assert_int_equal(okm->size(), 42);
    assert_memory_equal(okm->data(), expected, 42);

    /* RFC 5869 caps the output at 255 hash lengths */
    assert_true(hkdfSha256("s", "", "", 255 * 32).has_value());
    assert_false(hkdfSha256("s", "", "", 255 * 32 + 1).has_value());
}

/*
 * Scenario: the same secret twice, and two secrets.
 * Expected: the same key and id; the other secret gives another id; the
 * id is not a prefix of the key; an empty secret gives no key.
 */
void
testDeriveSealKey(void **state)
{
    (void) state;

    SealKey first = keyFor("first secret");
    SealKey again = keyFor("first secret");
    SealKey second = keyFor("second secret");

    assert_int_equal(first.id.size(), 4);
    assert_int_equal(first.key.size(), 32);
    assert_true(first.id == again.id);
    assert_true(first.key == again.key);
    assert_true(first.id != second.id);
    assert_true(first.key != second.key);
    assert_true(first.key.compare(0, 4, first.id) != 0);
    assert_false(deriveSealKey("").has_value());
}

/*
 * Scenario: seal then open, with text holding a NUL, and with nothing.
 * Expected: the same bytes back; the envelope is the overhead longer.
 */
void
testRoundTrip(void **state)
{
    (void) state;

    SealKey key = keyFor("secret");
    const std::string texts[] = {std::string("refresh\0token", 13), ""};

    for (const std::string &text : texts) {
        std::string envelope = sealed(key, text);
        nao::Result<std::string> opened = open({key}, envelope, kAd);

        assert_int_equal(envelope.size(), text.size() + kOverhead);
        assert_int_equal(envelope[0], 0x01);
        assert_memory_equal(envelope.data() + 1, key.id.data(), 4);
        assert_true(opened.ok());
        assert_true(opened.value() == text);
    }
}

/*
 * Scenario: the same text sealed twice.
 * Expected: different nonces, so different envelopes; both open.
 */
void
testNonceDiffers(void **state)
{
    (void) state;

    SealKey key = keyFor("secret");
    std::string one = sealed(key, "same text");
    std::string two = sealed(key, "same text");

    assert_true(one.substr(5, 12) != two.substr(5, 12));
    assert_true(one != two);
    assert_true(open({key}, one, kAd).ok());
    assert_true(open({key}, two, kAd).ok());
}

/*
 * Scenario: each byte of an envelope flipped in turn, and the envelope
 * cut short at every length.
 * Expected: every one refused; none opens.
 */
void
testTamperingFails(void **state)
{
    (void) state;

    SealKey key = keyFor("secret");
    std::string envelope = sealed(key, "some token text");

    for (size_t i = 0; i < envelope.size(); i++) {
        std::string changed = envelope;

        changed[i] = static_cast<char>(changed[i] ^ 0x01);
        assert_false(open({key}, changed, kAd).ok());
    }

    for (size_t length = 0; length < envelope.size(); length++) {
        assert_false(open({key}, envelope.substr(0, length), kAd).ok());
    }

    assertOpenFails({key}, envelope.substr(0, kOverhead - 1), kAd,
        "sealed value is malformed");
    assertOpenFails({key}, "", kAd, "sealed value is malformed");
}

/*
 * Scenario: a key that claims the sealing key's id but is another key,
 * and a list without the sealing key's id.
 * Expected: failed authentication, then an unknown key.
 */
void
testWrongKey(void **state)
{
    (void) state;

    SealKey key = keyFor("secret");
    SealKey forged = keyFor("other secret");
    std::string envelope = sealed(key, "text");

    forged.id = key.id;
    assertOpenFails({forged}, envelope, kAd,
        "sealed value failed authentication");
    assertOpenFails({keyFor("other secret")}, envelope, kAd,
        "sealed value names an unknown key");
    assertOpenFails({}, envelope, kAd, "sealed value names an unknown key");
}

/*
 * Scenario: opening with other associated data than sealed with.
 * Expected: failed authentication.
 */
void
testWrongAssociatedData(void **state)
{
    (void) state;

    SealKey key = keyFor("secret");
    std::string envelope = sealed(key, "text");

    assertOpenFails({key}, envelope, "nao_sso_other",
        "sealed value failed authentication");
    assertOpenFails({key}, envelope, "", "sealed value failed authentication");
}

/*
 * Scenario: a value sealed with the old key, opened while the list is
 * {new, old}; a key of the wrong size.
 * Expected: it opens; the bad key seals nothing and is passed over.
 */
void
testRotation(void **state)
{
    (void) state;

    SealKey fresh = keyFor("new secret");
    SealKey old = keyFor("old secret");
    std::string envelope = sealed(old, "kept across rotation");
    nao::Result<std::string> opened = open({fresh, old}, envelope, kAd);

    assert_true(opened.ok());
    assert_string_equal(opened.value().c_str(), "kept across rotation");

    SealKey shortKey{old.id, old.key.substr(0, 16)};

    assert_false(seal(shortKey, "text", kAd).has_value());
    assertOpenFails({shortKey}, envelope, kAd,
        "sealed value names an unknown key");
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testHkdfRfc5869),
        cmocka_unit_test(testDeriveSealKey),
        cmocka_unit_test(testRoundTrip),
        cmocka_unit_test(testNonceDiffers),
        cmocka_unit_test(testTamperingFails),
        cmocka_unit_test(testWrongKey),
        cmocka_unit_test(testWrongAssociatedData),
        cmocka_unit_test(testRotation),
    };

    return cmocka_run_group_tests_name("aead", tests, nullptr, nullptr);
}
