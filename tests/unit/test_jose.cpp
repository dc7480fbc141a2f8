/* unit tests for src/jose.cpp and the json helpers it stands on */

#include "base64url.h"
#include "jose.h"
#include "json.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

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

using test::assertContains;
using test::BignumDeleter;
using test::MdCtxDeleter;

namespace {

/* RFC 7515 appendix A.2: the RSA public key and the RS256 JWS */
const char kRfcModulus[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

const char kRfcExponent[] = "AQAB";

const char kRfcHeader[] = "eyJhbGciOiJSUzI1NiJ9";

const char kRfcPayload[] =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9l"
    "eGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

const char kRfcSignature[] =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5R"
    "Zmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQ"
    "jbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQB"
    "MHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqt"
    "FZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rq"
    "Vt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/* RFC 7515 appendix A.1: the same claims, HS256 */
const char kRfcHs256Jws[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9l"
    "eGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

std::string
rfcJws()
{
    return std::string(kRfcHeader) + "." + kRfcPayload + "."
        + kRfcSignature;
}

std::string
rfcJwk(const std::string &extra)
{
    return std::string("{\"kty\":\"RSA\",\"n\":\"") + kRfcModulus
        + "\",\"e\":\"" + kRfcExponent + "\"" + extra + "}";
}

std::string
b64(const std::string &text)
{
    return base64urlEncode(text);
}

PkeyPtr
importRfcKey()
{
    JsonPtr jwk = parseJson(rfcJwk(""));
    assert_non_null(jwk.get());

    auto key = importRsaJwk(jwk.get());
    assert_true(key.ok());

    return key.value();
}

PkeyPtr
generate(const char *type, size_t bits)
{
    EVP_PKEY *raw = bits == 0 ? EVP_PKEY_Q_keygen(nullptr, nullptr, type)
        : EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits);
    assert_non_null(raw);

    return PkeyPtr(raw, PkeyDeleter());
}

std::string
bignumParam(EVP_PKEY *key, const char *name)
{
    BIGNUM *raw = nullptr;
    assert_int_equal(EVP_PKEY_get_bn_param(key, name, &raw), 1);
    std::unique_ptr<BIGNUM, BignumDeleter> bn(raw);

    std::string bytes(BN_num_bytes(bn.get()), '\0');
    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char *>(bytes.data()));

    return base64urlEncode(bytes);
}

std::string
publicJwk(EVP_PKEY *key, const std::string &kid)
{
    return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"use\":\"sig\","
        "\"alg\":\"RS256\",\"n\":\""
        + bignumParam(key, OSSL_PKEY_PARAM_RSA_N) + "\",\"e\":\""
        + bignumParam(key, OSSL_PKEY_PARAM_RSA_E) + "\"}";
}

/* md is null for Ed25519, which hashes internally */
std::string
sign(EVP_PKEY *key, const EVP_MD *md, const std::string &input)
{
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    assert_int_equal(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr,
        key), 1);

    size_t length = 0;
    auto *tbs = reinterpret_cast<const unsigned char *>(input.data());
    assert_int_equal(EVP_DigestSign(ctx.get(), nullptr, &length, tbs,
        input.size()), 1);

    std::string signature(length, '\0');
    assert_int_equal(EVP_DigestSign(ctx.get(),
        reinterpret_cast<unsigned char *>(signature.data()), &length, tbs,
        input.size()), 1);
    signature.resize(length);

    return signature;
}

void
testRfc7515Rs256Verifies(void **state)
{
    (void) state;

    PkeyPtr key = importRfcKey();
    assert_int_equal(EVP_PKEY_get_bits(key.get()), 2048);

    auto jws = parseJws(rfcJws());
    assert_true(jws.ok());

    assert_string_equal(jws->alg.c_str(), "RS256");
    assert_true(jws->kid.empty());
    assert_string_equal(jsonString(jws->payload.get(), "iss")->c_str(),
        "joe");
    assert_int_equal(*jsonInteger(jws->payload.get(), "exp"), 1300819380);
    assert_string_equal(jws->signingInput.c_str(),
        (std::string(kRfcHeader) + "." + kRfcPayload).c_str());
    assert_int_equal(jws->signature.size(), 256);

    Status status = verifyRs256(key.get(), jws->signingInput,
        jws->signature);
    assert_true(status.ok());
}

void
testRfc7515TamperedPayloadFails(void **state)
{
    (void) state;

    PkeyPtr key = importRfcKey();

    /* "joe" becomes "Joe": one byte of the decoded payload */
    std::string payload = *base64urlDecode(kRfcPayload);
    size_t at = payload.find("joe");
    assert_true(at != std::string::npos);
    payload[at] = 'J';

    std::string compact = std::string(kRfcHeader) + "." + b64(payload) + "."
        + kRfcSignature;

    auto jws = parseJws(compact);
    assert_true(jws.ok());

    Status status = verifyRs256(key.get(), jws->signingInput,
        jws->signature);
    assert_false(status.ok());
    assert_string_equal(status.error().c_str(), "rs256 signature is invalid");
}

void
testRfc7515TamperedSignatureFails(void **state)
{
    (void) state;

    PkeyPtr key = importRfcKey();

    auto jws = parseJws(rfcJws());
    assert_true(jws.ok());

    for (size_t at : {size_t(0), size_t(128), size_t(255)}) {
        std::string signature = jws->signature;
        signature[at] = static_cast<char>(signature[at] ^ 0x01);

        assert_false(verifyRs256(key.get(), jws->signingInput,
            signature).ok());
    }

    std::string shorter = jws->signature.substr(1);
    assert_false(verifyRs256(key.get(), jws->signingInput, shorter).ok());
    assert_false(verifyRs256(key.get(), jws->signingInput, "").ok());
}

void
testRfc7515ThroughJwks(void **state)
{
    (void) state;

    std::string document = "{\"keys\":["
        + rfcJwk(",\"kid\":\"2011-04-29\",\"use\":\"sig\",\"alg\":\"RS256\"")
        + "]}";

    auto jwks = parseJwks(document);
    assert_true(jwks.ok());
    assert_int_equal(jwks->keys.size(), 1);

    auto found = jwks->keys.find("2011-04-29");
    assert_true(found != jwks->keys.end());

    auto jws = parseJws(rfcJws());
    assert_true(jws.ok());
    assert_true(verifyRs256(found->second.get(), jws->signingInput,
        jws->signature).ok());
}

void
testAlgNoneIsVisibleAndNeverVerifies(void **state)
{
    (void) state;

    PkeyPtr key = importRfcKey();
    std::string compact = b64("{\"alg\":\"none\"}") + "." + kRfcPayload
        + ".";

    auto jws = parseJws(compact);
    assert_true(jws.ok());
    assert_string_equal(jws->alg.c_str(), "none");
    assert_true(jws->signature.empty());

    assert_false(verifyRs256(key.get(), jws->signingInput,
        jws->signature).ok());
}

void
testHs256IsVisibleAndNeverVerifies(void **state)
{
    (void) state;

    PkeyPtr key = importRfcKey();

    auto jws = parseJws(kRfcHs256Jws);
    assert_true(jws.ok());
    assert_string_equal(jws->alg.c_str(), "HS256");
    assert_int_equal(jws->signature.size(), 32);

    assert_false(verifyRs256(key.get(), jws->signingInput,
        jws->signature).ok());
}

void
testCritIsRejected(void **state)
{
    (void) state;

    std::string header =
        "{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1363284000}";

    auto jws = parseJws(b64(header) + "." + kRfcPayload + "."
        + kRfcSignature);
    assert_false(jws.ok());
    assertContains(jws.error(), "\"crit\"");

    /* even an empty list: no extension is understood, so none is safe */
    jws = parseJws(b64("{\"alg\":\"RS256\",\"crit\":[]}") + "."
        + kRfcPayload + "." + kRfcSignature);
    assert_false(jws.ok());
}

void
testJwsStructureRejected(void **state)
{
    (void) state;

    std::string h = kRfcHeader;
    std::string p = kRfcPayload;
    std::string s = kRfcSignature;

    const std::string bad[] = {
        "",
        ".",
        "..",
        h + "." + p,
        h + "." + p + "." + s + ".",
        h + "." + p + "." + s + "." + s,
        h + "=." + p + "." + s,
        h + "." + p + "." + s + "=",
        h + "." + p + "+." + s,
        "." + p + "." + s,
        h + ".." + s,
        b64("not json") + "." + p + "." + s,
        b64("[\"alg\",\"RS256\"]") + "." + p + "." + s,
        b64("\"RS256\"") + "." + p + "." + s,
        b64("{\"typ\":\"JWT\"}") + "." + p + "." + s,
        b64("{\"alg\":256}") + "." + p + "." + s,
        b64("{\"alg\":\"\"}") + "." + p + "." + s,
        b64("{\"alg\":\"RS256\",\"kid\":7}") + "." + p + "." + s,
        b64("{\"alg\":\"RS256\"} trailing") + "." + p + "." + s,
        h + "." + b64("[1,2]") + "." + s,
        h + "." + b64("\"text\"") + "." + s,
        h + "." + b64("{\"iss\":\"joe\"") + "." + s,
    };

    for (const std::string &compact : bad) {
        auto jws = parseJws(compact);

        if (jws.ok()) {
            fail_msg("accepted \"%s\"", compact.c_str());
        }

        assert_false(jws.error().empty());
    }
}

void
testDuplicateHeaderMemberRejected(void **state)
{
    (void) state;

    /* two parsers must never disagree about which "alg" counts */
    std::string header = "{\"alg\":\"RS256\",\"alg\":\"none\"}";

    auto jws = parseJws(b64(header) + "." + kRfcPayload + "."
        + kRfcSignature);
    assert_false(jws.ok());
}

void
testKidIsReturned(void **state)
{
    (void) state;

    std::string header = "{\"alg\":\"RS256\",\"kid\":\"abc-123\"}";

    auto jws = parseJws(b64(header) + "." + kRfcPayload + ".");
    assert_true(jws.ok());
    assert_string_equal(jws->kid.c_str(), "abc-123");
    assert_string_equal(jsonString(jws->header.get(), "kid")->c_str(),
        "abc-123");
}

void
testGeneratedKeySignsAndVerifies(void **state)
{
    (void) state;

    PkeyPtr signer = generate("RSA", 2048);
    std::string document = "{\"keys\":[" + publicJwk(signer.get(), "k1")
        + "]}";

    auto jwks = parseJwks(document);
    assert_true(jwks.ok());
    assert_int_equal(jwks->keys.count("k1"), 1);

    std::string header = b64("{\"alg\":\"RS256\",\"kid\":\"k1\"}");
    std::string payload = b64("{\"sub\":\"someone\",\"n\":1}");
    std::string input = header + "." + payload;
    std::string compact = input + "." + b64(sign(signer.get(),
        EVP_sha256(), input));

    auto jws = parseJws(compact);
    assert_true(jws.ok());
    assert_string_equal(jws->kid.c_str(), "k1");

    EVP_PKEY *key = jwks->keys.at("k1").get();
    assert_true(verifyRs256(key, jws->signingInput, jws->signature).ok());

    /* the RFC key did not sign this */
    PkeyPtr other = importRfcKey();
    assert_false(verifyRs256(other.get(), jws->signingInput,
        jws->signature).ok());

    /* a SHA-384 signature by the same key is not RS256 */
    std::string sha384 = sign(signer.get(), EVP_sha384(), input);
    assert_false(verifyRs256(key, input, sha384).ok());
}

void
testWrongKeyTypesRefused(void **state)
{
    (void) state;

    PkeyPtr rsa = generate("RSA", 2048);
    PkeyPtr ed = generate("ED25519", 0);
    std::string input = "header.payload";

    std::string edSignature = sign(ed.get(), nullptr, input);
    assert_true(verifyEd25519(ed.get(), input, edSignature).ok());
    assert_false(verifyRs256(ed.get(), input, edSignature).ok());

    std::string rsaSignature = sign(rsa.get(), EVP_sha256(), input);
    assert_true(verifyRs256(rsa.get(), input, rsaSignature).ok());
    assert_false(verifyEd25519(rsa.get(), input, rsaSignature).ok());

    assert_false(verifyRs256(nullptr, input, rsaSignature).ok());
    assert_false(verifyEd25519(nullptr, input, edSignature).ok());
}

void
testSmallRsaKeySkipped(void **state)
{
    (void) state;

    PkeyPtr weak = generate("RSA", 1024);
    PkeyPtr strong = generate("RSA", 2048);

    JsonPtr weakJwk = parseJson(publicJwk(weak.get(), "weak"));
    auto imported = importRsaJwk(weakJwk.get());
    assert_false(imported.ok());
    assertContains(imported.error(), "1024");

    std::string both = "{\"keys\":[" + publicJwk(weak.get(), "weak") + ","
        + publicJwk(strong.get(), "strong") + "]}";

    auto jwks = parseJwks(both);
    assert_true(jwks.ok());
    assert_int_equal(jwks->keys.size(), 1);
    assert_int_equal(jwks->keys.count("strong"), 1);
    assert_int_equal(jwks->refused.count("weak"), 1);
    assertContains(jwks->refused.at("weak"), "1024");

    auto onlyWeak = parseJwks("{\"keys\":[" + publicJwk(weak.get(), "weak")
        + "]}");
    assert_false(onlyWeak.ok());
}

void
testUnusableKeysSkipped(void **state)
{
    (void) state;

    std::string ec = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
        "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
    std::string oct = "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"}";
    std::string okp = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

    const std::string unusable[] = {
        ec,
        oct,
        okp,
        rfcJwk(",\"kid\":\"enc\",\"use\":\"enc\""),
        rfcJwk(",\"kid\":\"rs512\",\"alg\":\"RS512\""),
        rfcJwk(",\"kid\":\"ps256\",\"alg\":\"PS256\""),
        rfcJwk(""),
        rfcJwk(",\"kid\":\"\""),
        rfcJwk(",\"kid\":42"),
        rfcJwk(",\"kid\":\"use-num\",\"use\":1"),
        "{\"kty\":\"RSA\",\"kid\":\"no-e\",\"n\":\"" + std::string(kRfcModulus)
            + "\"}",
        "{\"kty\":\"RSA\",\"kid\":\"bad-n\",\"n\":\"***\",\"e\":\"AQAB\"}",
        "\"a string\"",
        "null",
        "[]",
    };

    std::string document = "{\"keys\":[";

    for (const std::string &jwk : unusable) {
        document += jwk + ",";
    }

    auto none = parseJwks(document.substr(0, document.size() - 1) + "]}");
    assert_false(none.ok());

    document += rfcJwk(",\"kid\":\"good\"") + "]}";

    auto jwks = parseJwks(document);
    assert_true(jwks.ok());
    assert_int_equal(jwks->keys.size(), 1);
    assert_int_equal(jwks->keys.count("good"), 1);
}

void
testMalformedJwksDocuments(void **state)
{
    (void) state;

    const char *bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "null",
        "{\"keys\":{}}",
        "{\"keys\":\"none\"}",
        "{\"keys\":[]}",
        "{\"keys\":[1,\"x\",null]}",
        "{\"keys\":[]} trailing",
        "{\"keys\":[",
    };

    for (const char *document : bad) {
        auto jwks = parseJwks(document);

        if (jwks.ok()) {
            fail_msg("accepted \"%s\"", document);
        }

        assert_false(jwks.error().empty());
    }
}

void
testImportRsaJwkRejects(void **state)
{
    (void) state;

    assert_false(importRsaJwk(nullptr).ok());

    const std::string bad[] = {
        "{\"kty\":\"EC\"}",
        "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
        "{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}",
        "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
        "{\"kty\":\"RSA\",\"n\":\"" + std::string(kRfcModulus)
            + "=\",\"e\":\"AQAB\"}",
        "{\"kty\":\"RSA\",\"n\":\"" + std::string(kRfcModulus)
            + "\",\"e\":65537}",
    };

    for (const std::string &text : bad) {
        JsonPtr jwk = parseJson(text);
        assert_non_null(jwk.get());

        if (importRsaJwk(jwk.get()).ok()) {
            fail_msg("imported \"%s\"", text.c_str());
        }
    }
}

void
testJsonAccessors(void **state)
{
    (void) state;

    JsonPtr json = parseJson("{\"s\":\"text\",\"i\":42,\"neg\":-7,"
        "\"r\":1.5e3,\"f\":1.5,\"big\":1e300,\"b\":true,\"n\":null,"
        "\"z\":\"a\\u00e9\"}");
    assert_non_null(json.get());

    assert_string_equal(jsonString(json.get(), "s")->c_str(), "text");
    assert_false(jsonString(json.get(), "i").has_value());
    assert_false(jsonString(json.get(), "missing").has_value());
    assert_string_equal(jsonString(json.get(), "z")->c_str(), "a\xc3\xa9");

    assert_int_equal(*jsonInteger(json.get(), "i"), 42);
    assert_int_equal(*jsonInteger(json.get(), "neg"), -7);
    assert_int_equal(*jsonInteger(json.get(), "r"), 1500);
    assert_false(jsonInteger(json.get(), "f").has_value());
    assert_false(jsonInteger(json.get(), "big").has_value());
    assert_false(jsonInteger(json.get(), "b").has_value());
    assert_false(jsonInteger(json.get(), "n").has_value());
    assert_false(jsonInteger(json.get(), "s").has_value());

    JsonPtr array = parseJson("[1]");
    assert_false(jsonInteger(array.get(), "0").has_value());
    assert_false(jsonString(nullptr, "s").has_value());

    assert_null(parseJson("{\"a\":1} {\"b\":2}").get());
    assert_null(parseJson("{\"a\":1,\"a\":2}").get());
    assert_non_null(parseJson("\"bare\"").get());

    assert_string_equal(jsonDump(json.get()).substr(0, 15).c_str(),
        "{\"s\":\"text\",\"i\"");
    assert_string_equal(jsonDump(parseJson("[1, 2]").get()).c_str(),
        "[1,2]");
    assert_true(jsonDump(nullptr).empty());
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testRfc7515Rs256Verifies),
        cmocka_unit_test(testRfc7515TamperedPayloadFails),
        cmocka_unit_test(testRfc7515TamperedSignatureFails),
        cmocka_unit_test(testRfc7515ThroughJwks),
        cmocka_unit_test(testAlgNoneIsVisibleAndNeverVerifies),
        cmocka_unit_test(testHs256IsVisibleAndNeverVerifies),
        cmocka_unit_test(testCritIsRejected),
        cmocka_unit_test(testJwsStructureRejected),
        cmocka_unit_test(testDuplicateHeaderMemberRejected),
        cmocka_unit_test(testKidIsReturned),
        cmocka_unit_test(testGeneratedKeySignsAndVerifies),
        cmocka_unit_test(testWrongKeyTypesRefused),
        cmocka_unit_test(testSmallRsaKeySkipped),
        cmocka_unit_test(testUnusableKeysSkipped),
        cmocka_unit_test(testMalformedJwksDocuments),
        cmocka_unit_test(testImportRsaJwkRejects),
        cmocka_unit_test(testJsonAccessors),
    };

    return cmocka_run_group_tests_name("jose", tests, nullptr, nullptr);
}
