/*
 * unit tests for src/oidc.cpp: discovery, PKCE, and the authorize, token
 * and end-session messages
 */

#include "oidc.h"
#include "url.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include "test_support.h"

#include <string>
#include <utility>
#include <vector>

using nao::TokenOutcome;
using nao::parseDiscovery;
using nao::parseTokenResponse;
using nao::queryParam;

using test::assertContains;
using test::assertLacks;

namespace {

const char kAuthority[] = "https://login.microsoftonline.com";
const char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const char kIssuer[] =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
    "/v2.0";

/* a discovery document shaped like Entra's, one member swappable */
std::string
discovery(const char *name = "", const char *value = "")
{
    std::string base = "https://login.microsoftonline.com/";
    std::string tenant = base + kTenant;
    std::string doc = "{";
    const std::pair<const char *, std::string> members[] = {
        {"issuer", std::string(kIssuer)},
        {"authorization_endpoint", tenant + "/oauth2/v2.0/authorize"},
        {"token_endpoint", tenant + "/oauth2/v2.0/token"},
        {"jwks_uri", base + "common/discovery/v2.0/keys"},
        {"end_session_endpoint", tenant + "/oauth2/v2.0/logout"},
    };

    for (const auto &member : members) {
        std::string key = member.first;

        if (key == name && value == nullptr) {
            continue;
        }

        doc += "\"" + key + "\":\""
            + (key == name ? std::string(value) : member.second) + "\",";
    }

    return doc + "\"response_types_supported\":[\"code\"]}";
}

using FormParams = std::vector<std::pair<const char *, std::string>>;

/* each named parameter of a form body decodes to the value given */
void
assertFormParams(const std::string &body, const FormParams &expected)
{
    for (const auto &param : expected) {
        auto value = queryParam(body, param.first);

        assert_true(value.has_value());
        assert_string_equal(value->c_str(), param.second.c_str());
    }
}

/*
 * Scenario: the URLs derived from authority and tenant.
 * Expected: Entra's v2.0 shapes, with or without a trailing slash.
 */
void
testDiscoveryUrls(void **state)
{
    (void) state;

    assert_string_equal(nao::discoveryUrl(kAuthority, kTenant).c_str(),
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-"
        "2d7cd011db47/v2.0/.well-known/openid-configuration");
    assert_string_equal(nao::expectedIssuer(kAuthority, kTenant).c_str(),
        kIssuer);
    assert_string_equal(
        nao::expectedIssuer("https://login.microsoftonline.com/", kTenant)
            .c_str(), kIssuer);
}

/*
 * Scenario: a complete discovery document.
 * Expected: every endpoint is taken as given.
 */
void
testParseDiscovery(void **state)
{
    (void) state;

    auto metadata = parseDiscovery(discovery(), kIssuer);

    assert_true(metadata.ok());
    assert_string_equal(metadata->issuer.c_str(), kIssuer);
    assertContains(metadata->authorizationEndpoint, "/oauth2/v2.0/authorize");
    assertContains(metadata->tokenEndpoint, "/oauth2/v2.0/token");
    assertContains(metadata->jwksUri, "/discovery/v2.0/keys");
    assertContains(metadata->endSessionEndpoint, "/oauth2/v2.0/logout");

    metadata = parseDiscovery(discovery("end_session_endpoint", nullptr),
        kIssuer);
    assert_true(metadata.ok());
    assert_true(metadata->endSessionEndpoint.empty());
}

/*
 * Scenario: the document names another issuer, e.g. another tenant or
 * the "{tenantid}" template of a multi-tenant endpoint.
 * Expected: refused, the error naming both values.
 */
void
testDiscoveryIssuerMismatch(void **state)
{
    (void) state;

    const char *other =
        "https://login.microsoftonline.com/{tenantid}/v2.0";
    auto metadata = parseDiscovery(discovery("issuer", other), kIssuer);

    assert_false(metadata.ok());
    assertContains(metadata.error(), other);
    assertContains(metadata.error(), kIssuer);

    metadata = parseDiscovery(discovery(), std::string(kIssuer) + "/");
    assert_false(metadata.ok());

    metadata = parseDiscovery(discovery("issuer", nullptr), kIssuer);
    assert_false(metadata.ok());
    assertContains(metadata.error(), "\"issuer\"");
}

/*
 * Scenario: endpoints that are plain http to a public host, carry a
 * query, or are missing; and documents that are not JSON objects.
 * Expected: refused, naming the endpoint; http to loopback is allowed.
 */
void
testDiscoveryEndpointsChecked(void **state)
{
    (void) state;

    auto metadata = parseDiscovery(
        discovery("token_endpoint", "http://idp.example/token"), kIssuer);

    assert_false(metadata.ok());
    assertContains(metadata.error(), "token_endpoint");
    assertContains(metadata.error(), "https");

    metadata = parseDiscovery(
        discovery("jwks_uri", "https://idp.example/keys?x=1"), kIssuer);
    assert_false(metadata.ok());
    assertContains(metadata.error(), "jwks_uri");

    metadata = parseDiscovery(
        discovery("end_session_endpoint", "http://idp.example/"), kIssuer);
    assert_false(metadata.ok());
    assertContains(metadata.error(), "end_session_endpoint");

    metadata = parseDiscovery(discovery("authorization_endpoint", nullptr),
        kIssuer);
    assert_false(metadata.ok());
    assertContains(metadata.error(), "authorization_endpoint");

    metadata = parseDiscovery(
        discovery("token_endpoint", "http://127.0.0.1:8081/token"), kIssuer);
    assert_true(metadata.ok());

    assert_false(parseDiscovery("<html>", kIssuer).ok());
    assert_false(parseDiscovery("[]", kIssuer).ok());
    assert_false(parseDiscovery("", kIssuer).ok());
}

/*
 * Scenario: the verifier of RFC 7636 appendix B, and fresh pairs.
 * Expected: the RFC's challenge; fresh verifiers are 43 base64url
 * characters, differ each time and match their challenge.
 */
void
testPkce(void **state)
{
    (void) state;

    assert_string_equal(
        nao::pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
            .c_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");

    auto first = nao::makePkce();
    auto second = nao::makePkce();

    assert_true(first.has_value() && second.has_value());
    assert_int_equal(first->verifier.size(), 43);
    assert_true(first->verifier.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        == std::string::npos);
    assert_true(first->challenge == nao::pkceChallenge(first->verifier));
    assert_true(first->verifier != second->verifier);
}

/*
 * Scenario: the scope asked for at sign-in.
 * Expected: the OIDC scopes, then the token scope when there is one.
 */
void
testSignInScope(void **state)
{
    (void) state;

    assert_string_equal(nao::signInScope("api://x/user_impersonation")
        .c_str(), "openid profile email offline_access "
        "api://x/user_impersonation");
    assert_string_equal(nao::signInScope("").c_str(),
        "openid profile email offline_access");
}

/*
 * Scenario: an authorize request whose values need encoding.
 * Expected: every parameter decodes back to its value, plus the fixed
 * response_type and code_challenge_method.
 */
void
testAuthorizeUrl(void **state)
{
    (void) state;

    nao::AuthorizeRequest request;

    request.clientId = "client-1";
    request.redirectUri = "https://nao.example/api/auth/callback/microsoft";
    request.scope = "openid profile email offline_access c/.default";
    request.state = "st&ate=x";
    request.nonce = "n+o n";
    request.codeChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuxJ8mbW2E4";

    std::string endpoint = "https://login.example/t/oauth2/v2.0/authorize";
    std::string url = nao::authorizeUrl(endpoint, request);

    assert_true(url.compare(0, endpoint.size() + 1, endpoint + "?") == 0);

    std::string query = url.substr(endpoint.size() + 1);
    const std::pair<const char *, std::string> expected[] = {
        {"client_id", request.clientId},
        {"redirect_uri", request.redirectUri},
        {"scope", request.scope},
        {"state", request.state},
        {"nonce", request.nonce},
        {"code_challenge", request.codeChallenge},
        {"response_type", "code"},
        {"code_challenge_method", "S256"},
        {"response_mode", "query"},
    };

    for (const auto &param : expected) {
        auto value = queryParam(query, param.first);

        assert_true(value.has_value());
        assert_string_equal(value->c_str(), param.second.c_str());
    }

    assertLacks(query, " ");
    assertLacks(query, "st&ate");
    assert_false(queryParam(query, "prompt").has_value());

    request.prompt = "select_account";
    query = nao::authorizeUrl(endpoint, request).substr(endpoint.size() + 1);
    assert_true(queryParam(query, "prompt") == "select_account");
}

/*
 * Scenario: the code exchange body.
 * Expected: a form body holding every field, decoding back exactly.
 */
void
testCodeExchangeBody(void **state)
{
    (void) state;

    nao::CodeExchange exchange;

    exchange.clientId = "client-1";
    exchange.clientSecret = "a~b+c/d=e&f";
    exchange.code = "0.AXo&code=x";
    exchange.redirectUri = "https://nao.example/api/auth/callback/microsoft";
    exchange.codeVerifier = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk";
    exchange.scope = "openid offline_access c/.default";

    std::string body = nao::codeExchangeBody(exchange);

    assertFormParams(body, {
        {"grant_type", "authorization_code"},
        {"client_id", exchange.clientId},
        {"client_secret", exchange.clientSecret},
        {"code", exchange.code},
        {"redirect_uri", exchange.redirectUri},
        {"code_verifier", exchange.codeVerifier},
        {"scope", exchange.scope},
    });

    assert_true(body.compare(0, 29, "grant_type=authorization_code") == 0);
}

/*
 * Scenario: the end-session URL, with and without an endpoint.
 * Expected: the redirect is encoded; no endpoint gives "".
 */
void
testEndSessionUrl(void **state)
{
    (void) state;

    assert_string_equal(nao::endSessionUrl("https://idp/logout",
        "https://nao.example/login?x=1").c_str(),
        "https://idp/logout?post_logout_redirect_uri="
        "https%3A%2F%2Fnao.example%2Flogin%3Fx%3D1");
    assert_string_equal(nao::endSessionUrl("", "https://nao/").c_str(), "");
}

/*
 * Scenario: a 200 answer holding the tokens, expires_in as a number and
 * as a string.
 * Expected: the tokens are returned and there is no problem.
 */
void
testTokenResponseSuccess(void **state)
{
    (void) state;

    TokenOutcome outcome = parseTokenResponse(200,
        "{\"token_type\":\"Bearer\",\"scope\":\"c/.default\","
        "\"expires_in\":3599,\"ext_expires_in\":3599,"
        "\"access_token\":\"at\",\"refresh_token\":\"rt\","
        "\"id_token\":\"it\"}");

    assert_true(outcome.tokens.has_value());
    assert_false(outcome.idpError.has_value());
    assert_true(outcome.problem.empty());
    assert_string_equal(outcome.tokens->idToken.c_str(), "it");
    assert_string_equal(outcome.tokens->accessToken.c_str(), "at");
    assert_string_equal(outcome.tokens->refreshToken.c_str(), "rt");
    assert_string_equal(outcome.tokens->scope.c_str(), "c/.default");
    assert_int_equal(outcome.tokens->expiresIn, 3599);

    outcome = parseTokenResponse(200, "{\"access_token\":\"at\","
        "\"id_token\":\"it\",\"expires_in\":\"3600\"}");
    assert_true(outcome.tokens.has_value());
    assert_int_equal(outcome.tokens->expiresIn, 3600);
    assert_true(outcome.tokens->refreshToken.empty());
}

/*
 * Scenario: Entra's error answer to a reused authorization code.
 * Expected: the OAuth error and AADSTS code; the problem names them and
 * the status but none of the description.
 */
void
testTokenResponseEntraError(void **state)
{
    (void) state;

    TokenOutcome outcome = parseTokenResponse(400,
        "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70008: "
        "The provided authorization code or refresh token has expired due "
        "to inactivity. Trace ID: 0a1b Correlation ID: 2c3d Timestamp: "
        "2026-12-03 16:08:43Z\",\"error_codes\":[70008],"
        "\"timestamp\":\"2026-12-03 16:08:43Z\",\"trace_id\":\"0a1b\","
        "\"correlation_id\":\"2c3d\"}");

    assert_false(outcome.tokens.has_value());
    assert_true(outcome.idpError.has_value());
    assert_string_equal(outcome.idpError->error.c_str(), "invalid_grant");
    assert_string_equal(outcome.idpError->code.c_str(), "AADSTS70008");
    assertContains(outcome.problem, "400");
    assertContains(outcome.problem, "\"invalid_grant\"");
    assertContains(outcome.problem, "AADSTS70008");
    assertLacks(outcome.problem, "provided");
    assertLacks(outcome.problem, "Trace");
}

/*
 * Scenario: an error whose description names no code but whose
 * "error_codes" does, and one with neither.
 * Expected: the code from "error_codes", else an empty code.
 */
void
testTokenResponseErrorCodes(void **state)
{
    (void) state;

    TokenOutcome outcome = parseTokenResponse(401,
        "{\"error\":\"invalid_client\",\"error_description\":\"bad\","
        "\"error_codes\":[7000215]}");

    assert_true(outcome.idpError.has_value());
    assert_string_equal(outcome.idpError->code.c_str(), "AADSTS7000215");

    outcome = parseTokenResponse(400, "{\"error\":\"invalid_request\"}");
    assert_true(outcome.idpError.has_value());
    assert_string_equal(outcome.idpError->error.c_str(), "invalid_request");
    assert_true(outcome.idpError->code.empty());
}

/*
 * Scenario: a 502 HTML page, a 200 that is not JSON, a 500 JSON body
 * without an OAuth error, and other statuses.
 * Expected: only a problem, saying what happened in our words.
 */
void
testTokenResponseTransportProblems(void **state)
{
    (void) state;

    TokenOutcome outcome = parseTokenResponse(502,
        "<html><body>Bad Gateway</body></html>");

    assert_false(outcome.tokens.has_value());
    assert_false(outcome.idpError.has_value());
    assert_string_equal(outcome.problem.c_str(), "token endpoint answered 502");

    outcome = parseTokenResponse(200, "{\"id_token\":\"secret-it\"");
    assert_false(outcome.tokens.has_value());
    assert_string_equal(outcome.problem.c_str(),
        "token endpoint sent invalid JSON");

    outcome = parseTokenResponse(500,
        "{\"access_token\":\"secret-at\",\"id_token\":\"secret-it\"}");
    assert_false(outcome.tokens.has_value());
    assert_string_equal(outcome.problem.c_str(), "token endpoint answered 500");

    outcome = parseTokenResponse(201,
        "{\"access_token\":\"a\",\"id_token\":\"i\"}");
    assert_false(outcome.tokens.has_value());
    assert_false(outcome.problem.empty());
}

/*
 * Scenario: 200 answers lacking one token, and an error name that is not
 * an OAuth error token.
 * Expected: refused; nothing of the body reaches the problem.
 */
void
testTokenResponseNoLeak(void **state)
{
    (void) state;

    TokenOutcome outcome = parseTokenResponse(200,
        "{\"access_token\":\"secret-at\"}");

    assert_false(outcome.tokens.has_value());
    assertContains(outcome.problem, "id_token");
    assertLacks(outcome.problem, "secret");

    outcome = parseTokenResponse(200, "{\"id_token\":\"secret-it\","
        "\"access_token\":\"\"}");
    assert_false(outcome.tokens.has_value());
    assertContains(outcome.problem, "access_token");
    assertLacks(outcome.problem, "secret");

    outcome = parseTokenResponse(400, "{\"error\":\"Bearer secret-at\","
        "\"error_description\":\"token secret-rt AADSTS\"}");
    assert_true(outcome.idpError.has_value());
    assert_true(outcome.idpError->error.empty());
    assert_true(outcome.idpError->code.empty());
    assertLacks(outcome.problem, "secret");
}

/*
 * Scenario: a refresh grant for a downstream scope holding characters
 * that need encoding, and one with no scope.
 * Expected: every parameter decodes back; offline_access is added.
 */
void
testRefreshGrantBody(void **state)
{
    (void) state;

    nao::RefreshGrant grant;

    grant.clientId = "11111111-2222-3333-4444-555555555555";
    grant.clientSecret = "s3cr3t+/=&";
    grant.refreshToken = "0.ARo&refresh_token=x";
    grant.scope = "api://nao-downstream/.default";

    std::string body = nao::refreshGrantBody(grant);

    assertFormParams(body, {
        {"grant_type", "refresh_token"},
        {"client_id", grant.clientId},
        {"client_secret", grant.clientSecret},
        {"refresh_token", grant.refreshToken},
        {"scope", "api://nao-downstream/.default offline_access"},
    });

    assert_true(body.compare(0, 24, "grant_type=refresh_token") == 0);
    assertLacks(body, "code");

    grant.scope.clear();
    assert_string_equal(queryParam(nao::refreshGrantBody(grant), "scope")
        ->c_str(), "offline_access");
}

/*
 * Scenario: refresh answers with and without an id_token, a rotated
 * refresh token, and one lacking the access token.
 * Expected: no id_token is needed; the access token still is.
 */
void
testRefreshResponse(void **state)
{
    (void) state;

    TokenOutcome outcome = nao::parseRefreshResponse(200,
        "{\"token_type\":\"Bearer\",\"scope\":\"api://d/.default\","
        "\"expires_in\":4000,\"access_token\":\"at\","
        "\"refresh_token\":\"rt2\"}");

    assert_true(outcome.tokens.has_value());
    assert_true(outcome.problem.empty());
    assert_true(outcome.tokens->idToken.empty());
    assert_string_equal(outcome.tokens->accessToken.c_str(), "at");
    assert_string_equal(outcome.tokens->refreshToken.c_str(), "rt2");
    assert_int_equal(outcome.tokens->expiresIn, 4000);

    outcome = nao::parseRefreshResponse(200,
        "{\"access_token\":\"at\",\"id_token\":\"it\"}");
    assert_true(outcome.tokens.has_value());
    assert_string_equal(outcome.tokens->idToken.c_str(), "it");

    outcome = nao::parseRefreshResponse(200,
        "{\"id_token\":\"secret-it\",\"refresh_token\":\"secret-rt\"}");
    assert_false(outcome.tokens.has_value());
    assertContains(outcome.problem, "access_token");
    assertLacks(outcome.problem, "secret");

    /* the code exchange still insists on an id_token */
    outcome = parseTokenResponse(200, "{\"access_token\":\"at\"}");
    assert_false(outcome.tokens.has_value());
}

/*
 * Scenario: Entra refusing a refresh: an expired refresh token, MFA now
 * required, and errors that may pass.
 * Expected: only the first two say the refresh token is done for.
 */
void
testIsInvalidGrant(void **state)
{
    (void) state;

    TokenOutcome outcome = nao::parseRefreshResponse(400,
        "{\"error\":\"invalid_grant\",\"error_description\":"
        "\"AADSTS700082: The refresh token has expired due to "
        "inactivity.\",\"error_codes\":[700082]}");

    assert_true(outcome.idpError.has_value());
    assert_string_equal(outcome.idpError->code.c_str(), "AADSTS700082");
    assert_true(nao::isInvalidGrant(*outcome.idpError));

    outcome = nao::parseRefreshResponse(400,
        "{\"error\":\"interaction_required\",\"error_description\":"
        "\"AADSTS50076: you must use multi-factor authentication\","
        "\"suberror\":\"basic_action\"}");
    assert_true(outcome.idpError.has_value());
    assert_true(nao::isInvalidGrant(*outcome.idpError));

    const char *passing[] = {"temporarily_unavailable", "server_error",
        "invalid_client", "invalid_request", ""};

    for (const char *error : passing) {
        assert_false(nao::isInvalidGrant(nao::IdpError{error, ""}));
    }
}

/*
 * Scenario: a refresh answer whose access token holds a CR LF.
 * Expected: refused, since it would become a request header upstream.
 */
void
testAccessTokenHeaderSafe(void **state)
{
    (void) state;

    TokenOutcome outcome = nao::parseRefreshResponse(200,
        "{\"access_token\":\"abc\\r\\nX-Nao-User-Role: admin\","
        "\"expires_in\":3600}");
    assert_false(outcome.tokens.has_value());
    assertContains(outcome.problem, "header-safe");

    outcome = nao::parseRefreshResponse(200,
        "{\"access_token\":\"eyJ.a-b_c.d\",\"expires_in\":3600}");
    assert_true(outcome.tokens.has_value());
}

/*
 * Scenario: refusals of a refresh for one scope.
 * Expected: expired, revoked or spent refresh tokens, and MFA needed,
 * are cured by signing in again; consent for one scope and other errors
 * are not; an invalid_grant without a code counts as dead.
 */
void
testRefreshTokenDead(void **state)
{
    (void) state;

    const char *dead[] = {"AADSTS70008", "AADSTS700082", "AADSTS50173",
        "AADSTS70043", "AADSTS70000", ""};
    for (const char *code : dead) {
        assert_true(nao::refreshTokenDead({"invalid_grant", code}));
    }

    assert_false(nao::refreshTokenDead({"invalid_grant", "AADSTS65001"}));
    assert_true(nao::refreshTokenDead({"interaction_required",
                                       "AADSTS50076"}));
    assert_false(nao::refreshTokenDead({"invalid_scope", "AADSTS70011"}));
    assert_false(nao::refreshTokenDead({"temporarily_unavailable", ""}));
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testDiscoveryUrls),
        cmocka_unit_test(testParseDiscovery),
        cmocka_unit_test(testDiscoveryIssuerMismatch),
        cmocka_unit_test(testDiscoveryEndpointsChecked),
        cmocka_unit_test(testPkce),
        cmocka_unit_test(testSignInScope),
        cmocka_unit_test(testAuthorizeUrl),
        cmocka_unit_test(testCodeExchangeBody),
        cmocka_unit_test(testEndSessionUrl),
        cmocka_unit_test(testTokenResponseSuccess),
        cmocka_unit_test(testTokenResponseEntraError),
        cmocka_unit_test(testTokenResponseErrorCodes),
        cmocka_unit_test(testTokenResponseTransportProblems),
        cmocka_unit_test(testTokenResponseNoLeak),
        cmocka_unit_test(testRefreshGrantBody),
        cmocka_unit_test(testRefreshResponse),
        cmocka_unit_test(testIsInvalidGrant),
        cmocka_unit_test(testRefreshTokenDead),
        cmocka_unit_test(testAccessTokenHeaderSafe),
    };

    return cmocka_run_group_tests_name("oidc", tests, nullptr, nullptr);
}
