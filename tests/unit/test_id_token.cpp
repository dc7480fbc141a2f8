/*
 * unit tests for src/id_token.cpp: every ID token check, against RS256
 * tokens signed here with a fresh key
 */

#include "base64url.h"
#include "crypto.h"
#include "oidc.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include "test_support.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <climits>
#include <memory>
#include <string>

using nao::IdTokenCheck;
using nao::Identity;
using nao::JsonPtr;
using nao::Jws;
using nao::validateIdToken;

using test::BignumDeleter;
using test::MdCtxDeleter;

namespace {

const char kClientId[] = "6731de76-14a6-49ae-97bc-6eba6914391e";
const char kTenantId[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const char kIssuer[] =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
    "/v2.0";
const char kNonce[] = "nonce-4f1c2a";
const int64_t kNow = 1796400000;

struct Keys {
    nao::PkeyPtr signing;     /* published as "key-1" */
    nao::PkeyPtr stranger;    /* published nowhere */
    nao::Jwks jwks;
};

Keys *keys;

nao::PkeyPtr
generateKey()
{
    return nao::PkeyPtr(EVP_RSA_gen(2048), nao::PkeyDeleter());
}

std::string
bnParam(EVP_PKEY *key, const char *name)
{
    BIGNUM *raw = nullptr;

    assert_int_equal(EVP_PKEY_get_bn_param(key, name, &raw), 1);

    std::unique_ptr<BIGNUM, BignumDeleter> bn(raw);
    std::string bytes(BN_num_bytes(bn.get()), '\0');

    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char *>(&bytes[0]));

    return nao::base64urlEncode(bytes);
}

/* the JWK Set a provider would publish for keys->signing */
int
setUp(void **state)
{
    (void) state;

    keys = new Keys;
    keys->signing = generateKey();
    keys->stranger = generateKey();

    if (!keys->signing || !keys->stranger) {
        return -1;
    }

    std::string document = "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\","
        "\"kid\":\"key-1\",\"n\":\""
        + bnParam(keys->signing.get(), OSSL_PKEY_PARAM_RSA_N)
        + "\",\"e\":\""
        + bnParam(keys->signing.get(), OSSL_PKEY_PARAM_RSA_E) + "\"}]}";
    auto jwks = nao::parseJwks(document);

    if (!jwks) {
        return -1;
    }

    keys->jwks = std::move(jwks.value());

    return 0;
}

int
tearDown(void **state)
{
    (void) state;

    delete keys;

    return 0;
}

std::string
rs256(EVP_PKEY *key, const std::string &input)
{
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    size_t length = 0;

    assert_int_equal(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(),
        nullptr, key), 1);
    assert_int_equal(EVP_DigestSign(ctx.get(), nullptr, &length,
        reinterpret_cast<const unsigned char *>(input.data()),
        input.size()), 1);

    std::string signature(length, '\0');

    assert_int_equal(EVP_DigestSign(ctx.get(),
        reinterpret_cast<unsigned char *>(&signature[0]), &length,
        reinterpret_cast<const unsigned char *>(input.data()),
        input.size()), 1);
    signature.resize(length);

    return signature;
}

/* the claims of a token Entra would issue for kNow */
JsonPtr
claims()
{
    json_int_t now = kNow;
    JsonPtr json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s,"
        " s:s, s:s, s:s, s:s}", "iss", kIssuer, "aud", kClientId,
        "tid", kTenantId, "iat", now - 5, "nbf", now - 5,
        "exp", now + 3600, "nonce", kNonce,
        "oid", "00000000-0000-0000-66f3-3332eca7ea81",
        "sub", "AAAAAAAAAAAAAAAA", "email", "ada@contoso.com",
        "preferred_username", "ada.l@contoso.com", "name", "Ada Lovelace",
        "ver", "2.0"));

    assert_non_null(json.get());

    return json;
}

const char kHeader[] = "{\"alg\":\"RS256\",\"kid\":\"key-1\",\"typ\":\"JWT\"}";

/* signs header and payload as given; no key means an empty signature */
std::string
compact(const std::string &header, const json_t *payload,
    EVP_PKEY *key)
{
    std::string input = nao::base64urlEncode(header) + "."
        + nao::base64urlEncode(nao::jsonDump(payload));
    std::string signature = key != nullptr ? rs256(key, input) : "";

    return input + "." + nao::base64urlEncode(signature);
}

Jws
parse(const std::string &token)
{
    auto jws = nao::parseJws(token);

    if (!jws) {
        fail_msg("parseJws: %s", jws.error().c_str());
    }

    return std::move(jws.value());
}

Jws
token(const json_t *payload, const std::string &header = kHeader)
{
    return parse(compact(header, payload, keys->signing.get()));
}

IdTokenCheck
check()
{
    IdTokenCheck c;

    c.issuer = kIssuer;
    c.clientId = kClientId;
    c.tenantId = kTenantId;
    c.nonce = kNonce;
    c.now = kNow;
    c.skew = 120;

    return c;
}

std::string
refusal(const Jws &jws, const IdTokenCheck &c = check())
{
    auto identity = validateIdToken(jws, keys->jwks, c);

    if (identity) {
        fail_msg("the token was accepted");
    }

    return identity.error();
}

void
assertRefused(const Jws &jws, const char *part,
    const IdTokenCheck &c = check())
{
    std::string error = refusal(jws, c);

    if (error.find(part) == std::string::npos) {
        fail_msg("\"%s\" does not mention \"%s\"", error.c_str(), part);
    }
}

void
assertAccepted(const Jws &jws, const IdTokenCheck &c = check())
{
    auto identity = validateIdToken(jws, keys->jwks, c);

    if (!identity) {
        fail_msg("refused: %s", identity.error().c_str());
    }
}

/* the claims with one member replaced, or removed when value is null */
JsonPtr
with(const char *name, json_t *value)
{
    JsonPtr json = claims();

    if (value == nullptr) {
        json_object_del(json.get(), name);

    } else {
        json_object_set_new(json.get(), name, value);
    }

    return json;
}

/*
 * Scenario: a token as Entra issues it.
 * Expected: accepted; the identity carries oid, sub, email, name, tid.
 */
void
testHappyPath(void **state)
{
    (void) state;

    JsonPtr payload = claims();
    auto identity = validateIdToken(token(payload.get()), keys->jwks,
        check());

    if (!identity) {
        fail_msg("refused: %s", identity.error().c_str());
    }

    assert_string_equal(identity->objectId.c_str(),
        "00000000-0000-0000-66f3-3332eca7ea81");
    assert_string_equal(identity->subject.c_str(), "AAAAAAAAAAAAAAAA");
    assert_string_equal(identity->email.c_str(), "ada@contoso.com");
    assert_string_equal(identity->name.c_str(), "Ada Lovelace");
    assert_string_equal(identity->tenantId.c_str(), kTenantId);
    assert_int_equal(identity->expires, kNow + 3600);
}

/*
 * Scenario: "none" with no signature, HS256 keyed with the public
 * modulus (the key-confusion attack), and other algorithm names.
 * Expected: all refused by name before any key is looked at.
 */
void
testRefusesOtherAlgorithms(void **state)
{
    (void) state;

    JsonPtr payload = claims();
    std::string body = nao::base64urlEncode(nao::jsonDump(payload.get()));
    std::string none = nao::base64urlEncode(
        "{\"alg\":\"none\",\"kid\":\"key-1\"}") + "." + body + ".";
    std::string hsInput = nao::base64urlEncode(
        "{\"alg\":\"HS256\",\"kid\":\"key-1\"}") + "." + body;
    std::string modulus = nao::base64urlDecode(bnParam(keys->signing.get(),
        OSSL_PKEY_PARAM_RSA_N)).value();
    std::string hs = hsInput + "."
        + nao::base64urlEncode(nao::hmacSha256(modulus, hsInput));

    assertRefused(parse(none), "alg \"none\"");
    assertRefused(parse(hs), "alg \"HS256\"");

    const char *others[] = {"RS384", "PS256", "ES256", "rs256", "EdDSA"};

    for (const char *alg : others) {
        std::string header = std::string("{\"alg\":\"") + alg
            + "\",\"kid\":\"key-1\"}";

        assertRefused(token(payload.get(), header), alg);
    }
}

/*
 * Scenario: a kid the key set does not hold, and no kid at all.
 * Expected: refused, naming the kid.
 */
void
testUnknownKeyId(void **state)
{
    (void) state;

    JsonPtr payload = claims();

    assertRefused(token(payload.get(),
        "{\"alg\":\"RS256\",\"kid\":\"rotated-2027\"}"),
        "unknown key id \"rotated-2027\"");
    assertRefused(token(payload.get(), "{\"alg\":\"RS256\"}"),
        "unknown key id \"\"");

    /* a key the set refused (too small, say) is named with the reason */
    Jws weak = token(payload.get(),
        "{\"alg\":\"RS256\",\"kid\":\"weak\"}");
    nao::Jwks withRefused;
    withRefused.keys = keys->jwks.keys;
    withRefused.refused.emplace("weak", "rsa key has 1024 bits");

    auto refused = validateIdToken(weak, withRefused, check());
    assert_false(refused.ok());
    assert_true(refused.error().find("key id \"weak\", which was refused: "
        "rsa key has 1024 bits") != std::string::npos);
}

/*
 * Scenario: signed by a key that is not published under the kid, a
 * payload swapped after signing, a signature cut short or missing, and
 * a forgery that also carries a wrong issuer.
 * Expected: refused as a bad signature, before any claim is read.
 */
void
testBadSignature(void **state)
{
    (void) state;

    JsonPtr payload = claims();
    std::string good = compact(kHeader, payload.get(), keys->signing.get());
    JsonPtr forged = with("oid", json_string("someone-else"));
    std::string forgedBody = nao::base64urlEncode(
        nao::jsonDump(forged.get()));
    size_t first = good.find('.');
    size_t second = good.find('.', first + 1);
    std::string swapped = good.substr(0, first + 1) + forgedBody
        + good.substr(second);
    std::string signature = nao::base64urlDecode(good.substr(second + 1))
        .value();
    std::string cut = good.substr(0, second + 1)
        + nao::base64urlEncode(signature.substr(1));

    assertAccepted(parse(good));
    assertRefused(parse(compact(kHeader, payload.get(),
        keys->stranger.get())), "signature is invalid");
    assertRefused(parse(swapped), "signature is invalid");
    assertRefused(parse(cut), "signature is invalid");
    assertRefused(parse(compact(kHeader, payload.get(), nullptr)),
        "signature is invalid");

    /* no claim of an unverified token is looked at, not even iss */
    payload = with("iss", json_string("https://evil.example/"));
    assertRefused(parse(compact(kHeader, payload.get(),
        keys->stranger.get())), "signature is invalid");
}

/*
 * Scenario: a token from another tenant's issuer, and one with none.
 * Expected: refused, the error naming both issuers.
 */
void
testIssuer(void **state)
{
    (void) state;

    const char *other = "https://login.microsoftonline.com/"
        "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
    JsonPtr payload = with("iss", json_string(other));
    std::string error = refusal(token(payload.get()));

    assert_true(error.find(other) != std::string::npos);
    assert_true(error.find(kIssuer) != std::string::npos);

    payload = with("iss", nullptr);
    assertRefused(token(payload.get()), "\"iss\"");
}

/*
 * Scenario: aud as a string for another client, absent, and not text.
 * Expected: refused, naming both values where there are two.
 */
void
testAudienceString(void **state)
{
    (void) state;

    JsonPtr payload = with("aud", json_string("another-client"));
    std::string error = refusal(token(payload.get()));

    assert_true(error.find("\"another-client\"") != std::string::npos);
    assert_true(error.find(kClientId) != std::string::npos);

    payload = with("aud", nullptr);
    assertRefused(token(payload.get()), "aud");

    payload = with("aud", json_integer(42));
    assertRefused(token(payload.get()), "aud");
}

/*
 * Scenario: aud as an array: just us; us and another with azp naming us,
 * missing, or naming the other; only the other; empty.
 * Expected: several audiences need azp to be our client id.
 */
void
testAudienceArray(void **state)
{
    (void) state;

    JsonPtr payload = with("aud", json_pack("[s]", kClientId));

    assertAccepted(token(payload.get()));

    payload = with("aud", json_pack("[s, s]", "api://other", kClientId));
    assertRefused(token(payload.get()), "azp");

    json_object_set_new(payload.get(), "azp", json_string(kClientId));
    assertAccepted(token(payload.get()));

    json_object_set_new(payload.get(), "azp", json_string("api://other"));
    assertRefused(token(payload.get()), "azp \"api://other\"");

    payload = with("aud", json_pack("[s]", "api://other"));
    assertRefused(token(payload.get()), "does not include client id");

    payload = with("aud", json_array());
    assertRefused(token(payload.get()), "aud");
}

/*
 * Scenario: tid of another tenant, tid missing, a GUID configured in
 * upper case, and a tenant configured as a domain name.
 * Expected: tid must equal a configured GUID (any case); a domain name
 * leaves the tenant to the issuer check.
 */
void
testTenant(void **state)
{
    (void) state;

    const char *other = "9188040d-6c67-4c5b-b112-36a304b66dad";
    JsonPtr payload = with("tid", json_string(other));
    std::string error = refusal(token(payload.get()));

    assert_true(error.find(other) != std::string::npos);
    assert_true(error.find(kTenantId) != std::string::npos);

    IdTokenCheck domain = check();

    domain.tenantId = "contoso.onmicrosoft.com";
    assertAccepted(token(payload.get()), domain);

    payload = with("tid", nullptr);
    assertRefused(token(payload.get()), "\"tid\"");

    IdTokenCheck upper = check();

    upper.tenantId = "72F988BF-86F1-41AF-91AB-2D7CD011DB47";
    payload = claims();
    assertAccepted(token(payload.get()), upper);
}

/*
 * Scenario: exp just inside and just beyond the skew, missing, not a
 * number, and at the extremes of int64.
 * Expected: only an exp no older than the skew passes; nothing overflows.
 */
void
testExpiry(void **state)
{
    (void) state;

    JsonPtr payload = with("exp", json_integer(kNow - 121));

    assertRefused(token(payload.get()), "expired");

    payload = with("exp", json_integer(kNow - 120));
    assertAccepted(token(payload.get()));

    payload = with("exp", nullptr);
    assertRefused(token(payload.get()), "\"exp\"");

    payload = with("exp", json_string("1896400000"));
    assertRefused(token(payload.get()), "\"exp\"");

    payload = with("exp", json_integer(LLONG_MIN));
    assertRefused(token(payload.get()), "expired");

    payload = with("exp", json_integer(LLONG_MAX));
    assertAccepted(token(payload.get()));
}

/*
 * Scenario: nbf just inside and beyond the skew, far future, absent and
 * not a number.
 * Expected: a token not yet valid beyond the skew is refused.
 */
void
testNotBefore(void **state)
{
    (void) state;

    JsonPtr payload = with("nbf", json_integer(kNow + 121));

    assertRefused(token(payload.get()), "not valid before");

    payload = with("nbf", json_integer(kNow + 120));
    assertAccepted(token(payload.get()));

    payload = with("nbf", json_integer(LLONG_MAX));
    assertRefused(token(payload.get()), "not valid before");

    payload = with("nbf", nullptr);
    assertAccepted(token(payload.get()));

    payload = with("nbf", json_string("soon"));
    assertRefused(token(payload.get()), "nbf");
}

/*
 * Scenario: a nonce from another sign-in, none in the token, and no
 * nonce to compare with.
 * Expected: refused, and neither nonce value appears in the error.
 */
void
testNonce(void **state)
{
    (void) state;

    JsonPtr payload = with("nonce", json_string("replayed-nonce-77"));
    std::string error = refusal(token(payload.get()));

    assert_true(error.find("nonce") != std::string::npos);
    assert_true(error.find("replayed-nonce-77") == std::string::npos);
    assert_true(error.find(kNonce) == std::string::npos);

    payload = with("nonce", nullptr);
    assertRefused(token(payload.get()), "nonce");

    IdTokenCheck empty = check();

    empty.nonce.clear();
    payload = with("nonce", json_string(""));
    assertRefused(token(payload.get()), "nonce", empty);
}

/*
 * Scenario: no oid claim, or an empty one.
 * Expected: refused; the oid is the key a user is stored under.
 */
void
testObjectId(void **state)
{
    (void) state;

    JsonPtr payload = with("oid", nullptr);

    assertRefused(token(payload.get()), "\"oid\"");

    payload = with("oid", json_string(""));
    assertRefused(token(payload.get()), "\"oid\"");
}

/*
 * Scenario: tokens without "email", with an empty one, and with neither
 * "email" nor "preferred_username".
 * Expected: the email falls back to preferred_username, else empty.
 */
void
testEmailFallback(void **state)
{
    (void) state;

    JsonPtr payload = with("email", nullptr);
    auto identity = validateIdToken(token(payload.get()), keys->jwks,
        check());

    assert_true(identity.ok());
    assert_string_equal(identity->email.c_str(), "ada.l@contoso.com");

    payload = with("email", json_string(""));
    identity = validateIdToken(token(payload.get()), keys->jwks, check());
    assert_true(identity.ok());
    assert_string_equal(identity->email.c_str(), "ada.l@contoso.com");

    json_object_del(payload.get(), "preferred_username");
    identity = validateIdToken(token(payload.get()), keys->jwks, check());
    assert_true(identity.ok());
    assert_true(identity->email.empty());
}

Identity
accepted(const json_t *payload)
{
    auto identity = validateIdToken(token(payload), keys->jwks, check());

    if (!identity) {
        fail_msg("refused: %s", identity.error().c_str());
    }

    return std::move(identity.value());
}

/*
 * Scenario: "groups" with upper-case ids and entries that are not text,
 * "roles" with app role values.
 * Expected: the group ids lowercased, non-text skipped, app roles as
 * sent; no overage.
 */
void
testGroupsAndRoles(void **state)
{
    (void) state;

    JsonPtr payload = with("groups", json_pack("[s, i, s, n, [s]]",
        "0B8E3C2A-5D4F-4E6A-9C1B-2F7D8E9A0B1C", 7,
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "nested"));

    json_object_set_new(payload.get(), "roles",
        json_pack("[s, s]", "Nao.Admin", "Nao.Reader"));

    Identity identity = accepted(payload.get());

    assert_int_equal(identity.groups.size(), 2);
    assert_string_equal(identity.groups[0].c_str(),
        "0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c");
    assert_string_equal(identity.groups[1].c_str(),
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d");
    assert_int_equal(identity.appRoles.size(), 2);
    assert_string_equal(identity.appRoles[0].c_str(), "Nao.Admin");
    assert_string_equal(identity.appRoles[1].c_str(), "Nao.Reader");
    assert_false(identity.groupOverage);

    /* claims of the wrong type are no groups, and no reason to refuse */
    payload = with("groups", json_string("0b8e3c2a"));
    json_object_set_new(payload.get(), "roles", json_integer(1));
    identity = accepted(payload.get());
    assert_true(identity.groups.empty());
    assert_true(identity.appRoles.empty());
    assert_false(identity.groupOverage);

    identity = accepted(claims().get());
    assert_true(identity.groups.empty());
    assert_true(identity.appRoles.empty());
    assert_false(identity.groupOverage);
}

/*
 * Scenario: a user in more than 200 groups: "groups" left out and
 * "_claim_names" pointing at Graph; the implicit flow's "hasgroups";
 * and look-alikes that are no overage.
 * Expected: groupOverage only for the two real signals.
 */
void
testGroupOverage(void **state)
{
    (void) state;

    JsonPtr payload = with("_claim_names",
        json_pack("{s:s}", "groups", "src1"));

    json_object_set_new(payload.get(), "_claim_sources", json_pack(
        "{s:{s:s}}", "src1", "endpoint", "https://graph.microsoft.com/v1.0"
        "/users/00000000-0000-0000-66f3-3332eca7ea81/getMemberObjects"));
    assert_true(accepted(payload.get()).groupOverage);

    payload = with("hasgroups", json_true());
    assert_true(accepted(payload.get()).groupOverage);

    payload = with("hasgroups", json_false());
    assert_false(accepted(payload.get()).groupOverage);

    payload = with("hasgroups", json_string("true"));
    assert_false(accepted(payload.get()).groupOverage);

    /* groups that are listed are the user's groups */
    payload = with("_claim_names", json_pack("{s:s}", "groups", "src1"));
    json_object_set_new(payload.get(), "groups", json_array());
    assert_false(accepted(payload.get()).groupOverage);

    payload = with("_claim_names", json_pack("{s:s}", "roles", "src1"));
    assert_false(accepted(payload.get()).groupOverage);

    payload = with("_claim_names", json_pack("[s]", "groups"));
    assert_false(accepted(payload.get()).groupOverage);
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testHappyPath),
        cmocka_unit_test(testRefusesOtherAlgorithms),
        cmocka_unit_test(testUnknownKeyId),
        cmocka_unit_test(testBadSignature),
        cmocka_unit_test(testIssuer),
        cmocka_unit_test(testAudienceString),
        cmocka_unit_test(testAudienceArray),
        cmocka_unit_test(testTenant),
        cmocka_unit_test(testExpiry),
        cmocka_unit_test(testNotBefore),
        cmocka_unit_test(testNonce),
        cmocka_unit_test(testObjectId),
        cmocka_unit_test(testEmailFallback),
        cmocka_unit_test(testGroupsAndRoles),
        cmocka_unit_test(testGroupOverage),
    };

    return cmocka_run_group_tests_name("id token", tests, setUp, tearDown);
}
