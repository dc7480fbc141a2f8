/* unit tests for src/licence.cpp and the Ed25519 parts of src/jose.cpp */

#include "base64url.h"
#include "jose.h"
#include "licence.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include "test_support.h"

#include <memory>
#include <string>

using namespace nao;

using test::MdCtxDeleter;

namespace {

/* 2026-01-31T00:00:00Z and 2027-01-01T00:00:00Z */
constexpr int64_t kJan31 = 1769817600;
constexpr int64_t kNewYear2027 = 1798761600;

constexpr int64_t kNow = kJan31 - 86400 * 30;

const char kHeader[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

struct BioDeleter {
    void operator()(BIO *bio) const { BIO_free(bio); }
};

struct Keys {
    PkeyPtr signer;
    std::string publicPem;
};

PkeyPtr
generateEd25519()
{
    EVP_PKEY *raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    assert_non_null(raw);

    return PkeyPtr(raw, PkeyDeleter());
}

std::string
publicPem(EVP_PKEY *key)
{
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
    assert_int_equal(PEM_write_bio_PUBKEY(bio.get(), key), 1);

    char *data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);

    return std::string(data, static_cast<size_t>(length));
}

Keys
makeKeys()
{
    Keys keys;
    keys.signer = generateEd25519();
    keys.publicPem = publicPem(keys.signer.get());

    return keys;
}

std::string
signEd25519(EVP_PKEY *key, const std::string &input)
{
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    assert_int_equal(EVP_DigestSignInit(ctx.get(), nullptr, nullptr,
        nullptr, key), 1);

    std::string signature(64, '\0');
    size_t length = signature.size();
    assert_int_equal(EVP_DigestSign(ctx.get(),
        reinterpret_cast<unsigned char *>(signature.data()), &length,
        reinterpret_cast<const unsigned char *>(input.data()),
        input.size()), 1);
    assert_int_equal(length, 64);

    return signature;
}

std::string
makeLicence(EVP_PKEY *key, const std::string &header,
    const std::string &payload)
{
    std::string input = base64urlEncode(header) + "."
        + base64urlEncode(payload);

    return input + "." + base64urlEncode(signEd25519(key, input));
}

std::string
claims(int64_t exp, const std::string &extra = "")
{
    return "{\"sub\":\"Acme Corp\",\"features\":[\"sso\",\"audit-log\"],"
        "\"exp\":" + std::to_string(exp) + extra + "}";
}

void
assertFailsWith(const Result<Licence> &result, const char *message)
{
    assert_false(result.ok());
    assert_string_equal(result.error().c_str(), message);
}

void
assertMalformed(const Result<Licence> &result)
{
    assert_false(result.ok());

    const std::string prefix = "licence is malformed";

    if (result.error().compare(0, prefix.size(), prefix) != 0) {
        fail_msg("unexpected error \"%s\"", result.error().c_str());
    }
}

void
testValidLicence(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31, ",\"nbf\":" + std::to_string(kNow - 10)));

    auto licence = verifyLicence(token, keys.publicPem, kNow);
    assert_true(licence.ok());

    assert_string_equal(licence->subject.c_str(), "Acme Corp");
    assert_int_equal(licence->features.size(), 2);
    assert_string_equal(licence->features[0].c_str(), "sso");
    assert_string_equal(licence->features[1].c_str(), "audit-log");
    assert_int_equal(licence->expires, kJan31);
    assert_int_equal(licence->notBefore, kNow - 10);
}

void
testOptionalClaimsAbsent(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string payload = "{\"features\":[],\"exp\":"
        + std::to_string(kJan31) + "}";
    std::string token = makeLicence(keys.signer.get(), "{\"alg\":\"EdDSA\"}",
        payload);

    auto licence = verifyLicence(token, keys.publicPem, kNow);
    assert_true(licence.ok());
    assert_true(licence->subject.empty());
    assert_true(licence->features.empty());
    assert_int_equal(licence->notBefore, 0);
    assert_false(licence->hasFeature("sso"));
}

void
testSurroundingWhiteSpaceIgnored(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    assert_true(verifyLicence(" \t\n" + token + "\r\n", keys.publicPem,
        kNow).ok());

    /* white space inside the token is not trimmed away */
    std::string inner = token;
    inner.insert(inner.find('.') + 1, " ");
    assertMalformed(verifyLicence(inner, keys.publicPem, kNow));
}

void
testFeatureLookup(void **state)
{
    (void) state;

    Licence licence;
    licence.features = {"sso", "audit-log"};

    assert_true(licence.hasFeature("sso"));
    assert_true(licence.hasFeature("audit-log"));
    assert_false(licence.hasFeature("SSO"));
    assert_false(licence.hasFeature("ss"));
    assert_false(licence.hasFeature("sso "));
    assert_false(licence.hasFeature("audit"));
    assert_false(licence.hasFeature(""));
}

/* a licence with the given "role_rules" member, verified at kNow */
Result<Licence>
withRoleRules(const Keys &keys, const std::string &rules)
{
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31, ",\"role_rules\":" + rules));

    return verifyLicence(token, keys.publicPem, kNow);
}

void
testRoleRules(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    auto licence = withRoleRules(keys, "[{\"group\":"
        "\"0B8E3C2A-5D4F-4E6A-9C1B-2F7D8E9A0B1C\",\"role\":\"admin\"},"
        "{\"app_role\":\"Nao.Reader\",\"role\":\"viewer\","
        "\"note\":\"ignored\"}]");

    if (!licence) {
        fail_msg("refused: %s", licence.error().c_str());
    }

    assert_int_equal(licence->roleRules.size(), 2);

    const RoleRule &group = licence->roleRules[0];
    assert_true(group.kind == RoleRule::Kind::Group);
    assert_string_equal(group.value.c_str(),
        "0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c");
    assert_true(group.role == Role::Admin);

    const RoleRule &app = licence->roleRules[1];
    assert_true(app.kind == RoleRule::Kind::AppRole);
    assert_string_equal(app.value.c_str(), "Nao.Reader");
    assert_true(app.role == Role::Viewer);

    assert_true(withRoleRules(keys, "[]")->roleRules.empty());

    auto none = verifyLicence(makeLicence(keys.signer.get(), kHeader,
        claims(kJan31)), keys.publicPem, kNow);
    assert_true(none.ok());
    assert_true(none->roleRules.empty());
}

void
testBadRoleRules(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    const std::string good = "{\"app_role\":\"Nao.Reader\","
        "\"role\":\"viewer\"}";

    assertFailsWith(withRoleRules(keys, "[" + good
        + ",{\"app_role\":\"Nao.Boss\",\"role\":\"boss\"}]"),
        "licence role_rules[1]: invalid role \"boss\", expected admin, "
        "member or viewer");
    assertFailsWith(withRoleRules(keys, "[{\"group\":\"finance\","
        "\"role\":\"viewer\"}]"),
        "licence role_rules[0]: group \"finance\" is not an object id "
        "(a GUID)");
    assertFailsWith(withRoleRules(keys, "[{\"group\":\"role:Nao.Reader\","
        "\"role\":\"viewer\"}]"),
        "licence role_rules[0]: group \"role:Nao.Reader\" is not an "
        "object id (a GUID)");
    assertFailsWith(withRoleRules(keys, "[" + good + "," + good
        + ",\"admin\"]"), "licence role_rules[2]: not an object");
    assertFailsWith(withRoleRules(keys, "[{\"role\":\"viewer\"}]"),
        "licence role_rules[0]: needs either \"group\" or \"app_role\"");
    assertFailsWith(withRoleRules(keys, "[{\"app_role\":\"a\","
        "\"group\":\"0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c\","
        "\"role\":\"viewer\"}]"),
        "licence role_rules[0]: needs either \"group\" or \"app_role\"");
    assertFailsWith(withRoleRules(keys, "[{\"app_role\":7,"
        "\"role\":\"viewer\"}]"),
        "licence role_rules[0]: \"app_role\" is not a string");
    assertFailsWith(withRoleRules(keys, "[{\"app_role\":\"Nao Reader\","
        "\"role\":\"viewer\"}]"),
        "licence role_rules[0]: app role \"Nao Reader\" is not 1 to 120 "
        "characters without white space or control characters");
    assertFailsWith(withRoleRules(keys, "[{\"app_role\":\"a\"}]"),
        "licence role_rules[0]: \"role\" is missing or not a string");
    assertFailsWith(withRoleRules(keys, "[{\"app_role\":\"a\","
        "\"role\":2}]"),
        "licence role_rules[0]: \"role\" is missing or not a string");

    assertMalformed(withRoleRules(keys, good));
    assertMalformed(withRoleRules(keys, "null"));
}

void
testWrongKey(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    Keys other = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    assertFailsWith(verifyLicence(token, other.publicPem, kNow),
        "licence signature is invalid");
}

void
testTamperedPayload(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    /* a later expiry, under the original signature */
    size_t first = token.find('.');
    size_t second = token.find('.', first + 1);
    std::string forged = token.substr(0, first + 1)
        + base64urlEncode(claims(kNewYear2027 * 2)) + token.substr(second);

    assertFailsWith(verifyLicence(forged, keys.publicPem, kNow),
        "licence signature is invalid");

    std::string flipped = token;
    char &last = flipped[second - 1];
    last = last == 'A' ? 'Q' : 'A';
    assert_false(verifyLicence(flipped, keys.publicPem, kNow).ok());
}

void
testTamperedSignature(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    std::string flipped = token;
    size_t at = token.rfind('.') + 5;
    flipped[at] = flipped[at] == 'A' ? 'B' : 'A';

    assertFailsWith(verifyLicence(flipped, keys.publicPem, kNow),
        "licence signature is invalid");

    std::string stripped = token.substr(0, token.rfind('.') + 1);
    assertFailsWith(verifyLicence(stripped, keys.publicPem, kNow),
        "licence signature is invalid");
}

void
testExpired(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    assertFailsWith(verifyLicence(token, keys.publicPem, kJan31 + 3600),
        "licence expired on 2026-01-31");

    /* "exp" is the first second the licence is no longer valid */
    assertFailsWith(verifyLicence(token, keys.publicPem, kJan31),
        "licence expired on 2026-01-31");
    assert_true(verifyLicence(token, keys.publicPem, kJan31 - 1).ok());

    /* the last second of the day is still that day in UTC */
    std::string late = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31 + 86399));
    assertFailsWith(verifyLicence(late, keys.publicPem, kNewYear2027),
        "licence expired on 2026-01-31");
}

void
testNotYetValid(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string nbf = ",\"nbf\":" + std::to_string(kNewYear2027);
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kNewYear2027 + 86400 * 365, nbf));

    assertFailsWith(verifyLicence(token, keys.publicPem, kNow),
        "licence is not valid before 2027-01-01");
    assertFailsWith(verifyLicence(token, keys.publicPem, kNewYear2027 - 1),
        "licence is not valid before 2027-01-01");
    assert_true(verifyLicence(token, keys.publicPem, kNewYear2027).ok());
}

void
testMissingOrBadExp(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    const std::string payloads[] = {
        "{\"features\":[\"sso\"]}",
        "{\"features\":[\"sso\"],\"exp\":\"1798761600\"}",
        "{\"features\":[\"sso\"],\"exp\":1798761600.5}",
        "{\"features\":[\"sso\"],\"exp\":null}",
    };

    for (const std::string &payload : payloads) {
        std::string token = makeLicence(keys.signer.get(), kHeader, payload);
        auto licence = verifyLicence(token, keys.publicPem, kNow);

        assertMalformed(licence);
        assert_true(licence.error().find("\"exp\"") != std::string::npos);
    }
}

void
testBadClaimTypes(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string exp = std::to_string(kJan31);
    const std::string payloads[] = {
        "{\"exp\":" + exp + "}",
        "{\"features\":\"sso\",\"exp\":" + exp + "}",
        "{\"features\":[\"sso\",7],\"exp\":" + exp + "}",
        "{\"features\":[[\"sso\"]],\"exp\":" + exp + "}",
        "{\"features\":[],\"exp\":" + exp + ",\"nbf\":\"soon\"}",
        "{\"features\":[],\"exp\":" + exp + ",\"sub\":12}",
    };

    for (const std::string &payload : payloads) {
        std::string token = makeLicence(keys.signer.get(), kHeader, payload);

        assertMalformed(verifyLicence(token, keys.publicPem, kNow));
    }
}

void
testAlgorithmMustBeEdDsa(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    const char *headers[] = {
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"eddsa\"}",
        "{\"alg\":\"Ed25519\"}",
    };

    /* correctly signed by the right key, so only the header is wrong */
    for (const char *header : headers) {
        std::string token = makeLicence(keys.signer.get(), header,
            claims(kJan31));

        assertFailsWith(verifyLicence(token, keys.publicPem, kNow),
            "licence algorithm is not \"EdDSA\"");
    }
}

void
testMalformedTokens(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));
    std::string crit = makeLicence(keys.signer.get(),
        "{\"alg\":\"EdDSA\",\"crit\":[\"x\"],\"x\":1}", claims(kJan31));

    const std::string bad[] = {
        "",
        "   ",
        "licence",
        "a.b",
        "a.b.c",
        token + ".extra",
        token.substr(1),
        "{\"alg\":\"EdDSA\"}." + token,
        crit,
        makeLicence(keys.signer.get(), "not json", claims(kJan31)),
        makeLicence(keys.signer.get(), kHeader, "[\"sso\"]"),
    };

    for (const std::string &text : bad) {
        assertFailsWith(verifyLicence(text, keys.publicPem, kNow),
            "licence is malformed");
    }
}

void
testBadPublicKey(void **state)
{
    (void) state;

    Keys keys = makeKeys();
    std::string token = makeLicence(keys.signer.get(), kHeader,
        claims(kJan31));

    EVP_PKEY *raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    assert_non_null(raw);
    PkeyPtr ec(raw, PkeyDeleter());

    auto wrongType = verifyLicence(token, publicPem(ec.get()), kNow);
    assert_false(wrongType.ok());
    assert_string_equal(wrongType.error().c_str(),
        "licence public key is not an ed25519 key");

    auto garbage = verifyLicence(token, "not a pem", kNow);
    assert_false(garbage.ok());
    assert_string_equal(garbage.error().c_str(),
        "licence public key is not a pem public key");

    assert_false(verifyLicence(token, "", kNow).ok());
}

void
testEd25519PemLoading(void **state)
{
    (void) state;

    PkeyPtr ed = generateEd25519();
    PkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
        PkeyDeleter());
    assert_non_null(ec.get());

    auto loaded = loadEd25519PublicKey(publicPem(ed.get()));
    assert_true(loaded.ok());
    assert_int_equal(EVP_PKEY_eq(loaded->get(), ed.get()), 1);

    auto wrongType = loadEd25519PublicKey(publicPem(ec.get()));
    assert_false(wrongType.ok());
    assert_string_equal(wrongType.error().c_str(),
        "public key is not an ed25519 key");

    assert_false(loadEd25519PublicKey("").ok());
    assert_false(loadEd25519PublicKey("-----BEGIN PUBLIC KEY-----\n"
        "bm90IGEga2V5\n-----END PUBLIC KEY-----\n").ok());
}

void
testEd25519Verify(void **state)
{
    (void) state;

    PkeyPtr ed = generateEd25519();
    PkeyPtr other = generateEd25519();
    std::string input = "a.b";
    std::string signature = signEd25519(ed.get(), input);

    assert_true(verifyEd25519(ed.get(), input, signature).ok());
    assert_false(verifyEd25519(other.get(), input, signature).ok());
    assert_false(verifyEd25519(ed.get(), "a.c", signature).ok());
    assert_false(verifyEd25519(ed.get(), input, signature.substr(1)).ok());
    assert_false(verifyEd25519(ed.get(), input, signature + "x").ok());

    signature[0] = static_cast<char>(signature[0] ^ 0x80);
    assert_false(verifyEd25519(ed.get(), input, signature).ok());
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testValidLicence),
        cmocka_unit_test(testOptionalClaimsAbsent),
        cmocka_unit_test(testSurroundingWhiteSpaceIgnored),
        cmocka_unit_test(testFeatureLookup),
        cmocka_unit_test(testRoleRules),
        cmocka_unit_test(testBadRoleRules),
        cmocka_unit_test(testWrongKey),
        cmocka_unit_test(testTamperedPayload),
        cmocka_unit_test(testTamperedSignature),
        cmocka_unit_test(testExpired),
        cmocka_unit_test(testNotYetValid),
        cmocka_unit_test(testMissingOrBadExp),
        cmocka_unit_test(testBadClaimTypes),
        cmocka_unit_test(testAlgorithmMustBeEdDsa),
        cmocka_unit_test(testMalformedTokens),
        cmocka_unit_test(testBadPublicKey),
        cmocka_unit_test(testEd25519PemLoading),
        cmocka_unit_test(testEd25519Verify),
    };

    return cmocka_run_group_tests_name("licence", tests, nullptr, nullptr);
}
