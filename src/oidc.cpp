/*
 * OpenID Connect against Entra ID: discovery, PKCE, the authorize and
 * end-session URLs, the code exchange and its answer, and the advice for
 * an error the IdP sends back to the callback.
 */

#include "oidc.h"

#include "base64url.h"
#include "crypto.h"
#include "json.h"
#include "url.h"

namespace nao {

namespace {

/* 32 random bytes give the 43-character verifier RFC 7636 asks for */
constexpr size_t kVerifierBytes = 32;

/* an OAuth error name as RFC 6749 shapes it; long ones are not trusted */
constexpr size_t kMaxErrorName = 64;

/* AADSTS numbers have 5 to 7 digits; more is not a code */
constexpr size_t kMaxAadstsDigits = 10;

constexpr const char *kCallbackPath = "/api/auth/callback/microsoft";

struct KnownAuthError {
    const char *code;
    const char *title;
    const char *advice;
};

const KnownAuthError kKnownAuthErrors[] = {
    {"AADSTS50105", "Your account is not assigned to nao",
        "Your Microsoft account is not assigned to nao. Ask an "
        "administrator to assign you to the nao application in Microsoft "
        "Entra ID, under Enterprise applications, then Users and groups."},
    {"AADSTS65001", "Consent is needed",
        "nao has not been granted the permissions it asks for. An "
        "administrator must grant consent for nao in Microsoft Entra ID "
        "(App registrations, then API permissions, then Grant admin "
        "consent). Then sign in again."},
    {"AADSTS53003", "Blocked by Conditional Access",
        "A Conditional Access policy of your organisation blocked this "
        "sign-in, for example because of your device, location or sign-in "
        "method. Ask your IT administrator what the policy requires."},
};

std::string_view
withoutTrailingSlash(std::string_view text)
{
    while (!text.empty() && text.back() == '/') {
        text.remove_suffix(1);
    }

    return text;
}

void
addParam(std::string *out, const char *name, std::string_view value)
{
    if (!out->empty() && out->back() != '?') {
        *out += '&';
    }

    *out += name;
    *out += '=';
    *out += urlEncode(value);
}

Status
requireEndpoint(const json_t *document, const char *name, bool required,
    std::string *out)
{
    std::optional<std::string> value = jsonString(document, name);

    if (!value || value->empty()) {
        if (!required) {
            return Status::success();
        }

        return fail(std::string("discovery document has no \"") + name
            + "\"");
    }

    Status usable = checkIdpUrl(*value);

    if (!usable) {
        return fail(std::string("discovery \"") + name + "\" is not usable: "
            + usable.error());
    }

    *out = std::move(*value);

    return Status::success();
}

/* the error name when it is made only of [a-z_], else empty */
std::string
validErrorName(std::string_view error)
{
    if (error.empty() || error.size() > kMaxErrorName) {
        return {};
    }

    for (char c : error) {
        if (!((c >= 'a' && c <= 'z') || c == '_')) {
            return {};
        }
    }

    return std::string(error);
}

/* Entra lists the AADSTS numbers in "error_codes" as well */
std::string
codeFromErrorCodes(const json_t *body)
{
    const json_t *codes = json_object_get(body, "error_codes");

    if (codes == nullptr || !json_is_array(codes)
        || json_array_size(codes) == 0)
    {
        return {};
    }

    const json_t *first = json_array_get(codes, 0);

    if (!json_is_integer(first) || json_integer_value(first) <= 0) {
        return {};
    }

    return "AADSTS" + std::to_string(json_integer_value(first));
}

std::optional<IdpError>
oauthError(const json_t *body)
{
    std::optional<std::string> error = jsonString(body, "error");

    if (!error) {
        return std::nullopt;
    }

    IdpError idpError;
    std::optional<std::string> description =
        jsonString(body, "error_description");

    idpError.error = validErrorName(*error);
    idpError.code = description ? aadstsCode(*description) : std::string();

    if (idpError.code.empty()) {
        idpError.code = codeFromErrorCodes(body);
    }

    return idpError;
}

std::string
describeIdpError(long httpStatus, const IdpError &error)
{
    std::string text = "token endpoint answered "
        + std::to_string(httpStatus) + " with error \""
        + (error.error.empty() ? "unknown" : error.error) + "\"";

    if (!error.code.empty()) {
        text += " (" + error.code + ")";
    }

    return text;
}

/* Entra sends a number; some servers send it as a string */
int64_t
expiresIn(const json_t *body)
{
    std::optional<int64_t> number = jsonInteger(body, "expires_in");

    if (number) {
        return *number > 0 ? *number : 0;
    }

    std::optional<std::string> text = jsonString(body, "expires_in");

    if (!text || text->empty() || text->size() > 9) {
        return 0;
    }

    int64_t value = 0;

    for (char c : *text) {
        if (c < '0' || c > '9') {
            return 0;
        }

        value = value * 10 + (c - '0');
    }

    return value;
}

/*
 * The answer to either grant; a refresh asks no "openid" scope, so its
 * answer may carry no id_token.
 */
/* visible ASCII only: no white space, no control character */
bool
headerSafe(std::string_view value)
{
    for (unsigned char c : value) {
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }

    return true;
}


TokenOutcome
parseTokens(long httpStatus, std::string_view body, bool needIdToken)
{
    TokenOutcome outcome;
    JsonPtr json = parseJson(body);
    bool object = json && json_is_object(json.get());

    if (object) {
        outcome.idpError = oauthError(json.get());

        if (outcome.idpError) {
            outcome.problem = describeIdpError(httpStatus, *outcome.idpError);
            return outcome;
        }
    }

    if (httpStatus != 200) {
        outcome.problem = "token endpoint answered "
            + std::to_string(httpStatus);
        return outcome;
    }

    if (!object) {
        outcome.problem = "token endpoint sent invalid JSON";
        return outcome;
    }

    TokenResponse tokens;

    tokens.idToken = jsonString(json.get(), "id_token").value_or("");
    tokens.accessToken = jsonString(json.get(), "access_token").value_or("");
    tokens.refreshToken = jsonString(json.get(), "refresh_token")
        .value_or("");
    tokens.scope = jsonString(json.get(), "scope").value_or("");
    tokens.expiresIn = expiresIn(json.get());

    if (needIdToken && tokens.idToken.empty()) {
        outcome.problem = "token endpoint answered without an id_token";
        return outcome;
    }

    if (tokens.accessToken.empty()) {
        outcome.problem = "token endpoint answered without an access_token";
        return outcome;
    }

    /* the access token becomes a request header upstream */
    if (!headerSafe(tokens.accessToken)) {
        outcome.problem = "token endpoint sent an access_token that is not "
                          "a header-safe string";
        return outcome;
    }

    outcome.tokens = std::move(tokens);

    return outcome;
}

}  // namespace

std::string
discoveryUrl(std::string_view authority, std::string_view tenant)
{
    return expectedIssuer(authority, tenant)
        + "/.well-known/openid-configuration";
}

std::string
expectedIssuer(std::string_view authority, std::string_view tenant)
{
    std::string url(withoutTrailingSlash(authority));

    url += '/';
    url += tenant;
    url += "/v2.0";

    return url;
}

Result<ProviderMetadata>
parseDiscovery(std::string_view document, std::string_view expectedIssuer)
{
    JsonPtr json = parseJson(document);

    if (!json || !json_is_object(json.get())) {
        return fail("discovery document is not a JSON object");
    }

    ProviderMetadata metadata;
    std::optional<std::string> issuer = jsonString(json.get(), "issuer");

    if (!issuer) {
        return fail("discovery document has no \"issuer\"");
    }

    if (*issuer != expectedIssuer) {
        return fail("discovery issuer \"" + logSafe(*issuer)
            + "\" does not match expected \"" + logSafe(expectedIssuer)
            + "\"");
    }

    metadata.issuer = std::move(*issuer);

    struct {
        const char *name;
        bool required;
        std::string *out;
    } endpoints[] = {
        {"authorization_endpoint", true, &metadata.authorizationEndpoint},
        {"token_endpoint", true, &metadata.tokenEndpoint},
        {"jwks_uri", true, &metadata.jwksUri},
        {"end_session_endpoint", false, &metadata.endSessionEndpoint},
    };

    for (const auto &endpoint : endpoints) {
        Status status = requireEndpoint(json.get(), endpoint.name,
            endpoint.required, endpoint.out);

        if (!status) {
            return Error{status.error()};
        }
    }

    return metadata;
}

std::optional<Pkce>
makePkce()
{
    std::optional<std::string> random = randomBytes(kVerifierBytes);

    if (!random) {
        return std::nullopt;
    }

    Pkce pkce;

    pkce.verifier = base64urlEncode(*random);
    pkce.challenge = pkceChallenge(pkce.verifier);

    return pkce;
}

std::string
pkceChallenge(std::string_view verifier)
{
    return base64urlEncode(sha256(verifier));
}

std::string
signInScope(std::string_view tokenScope)
{
    std::string scope = "openid profile email offline_access";

    if (!tokenScope.empty()) {
        scope += ' ';
        scope += tokenScope;
    }

    return scope;
}

std::string
authorizeUrl(std::string_view endpoint, const AuthorizeRequest &request)
{
    std::string url(endpoint);

    url += url.find('?') == std::string::npos ? '?' : '&';

    addParam(&url, "client_id", request.clientId);
    addParam(&url, "response_type", "code");
    addParam(&url, "redirect_uri", request.redirectUri);

    /* the callback reads the query string, never a form post */
    addParam(&url, "response_mode", "query");
    addParam(&url, "scope", request.scope);
    addParam(&url, "state", request.state);
    addParam(&url, "nonce", request.nonce);
    addParam(&url, "code_challenge", request.codeChallenge);
    addParam(&url, "code_challenge_method", "S256");

    if (!request.prompt.empty()) {
        addParam(&url, "prompt", request.prompt);
    }

    return url;
}

std::string
codeExchangeBody(const CodeExchange &exchange)
{
    std::string body;

    addParam(&body, "grant_type", "authorization_code");
    addParam(&body, "client_id", exchange.clientId);
    addParam(&body, "client_secret", exchange.clientSecret);
    addParam(&body, "code", exchange.code);
    addParam(&body, "redirect_uri", exchange.redirectUri);
    addParam(&body, "code_verifier", exchange.codeVerifier);
    addParam(&body, "scope", exchange.scope);

    return body;
}

std::string
endSessionUrl(std::string_view endpoint,
    std::string_view postLogoutRedirectUri)
{
    if (endpoint.empty()) {
        return {};
    }

    std::string url(endpoint);

    url += url.find('?') == std::string::npos ? '?' : '&';
    addParam(&url, "post_logout_redirect_uri", postLogoutRedirectUri);

    return url;
}

TokenOutcome
parseTokenResponse(long httpStatus, std::string_view body)
{
    return parseTokens(httpStatus, body, true);
}

std::string
aadstsCode(std::string_view description)
{
    constexpr std::string_view prefix = "AADSTS";
    size_t at = description.find(prefix);

    while (at != std::string_view::npos) {
        size_t start = at + prefix.size();
        size_t end = start;

        while (end < description.size() && description[end] >= '0'
            && description[end] <= '9')
        {
            end++;
        }

        if (end > start && end - start <= kMaxAadstsDigits) {
            return std::string(description.substr(at, end - at));
        }

        at = description.find(prefix, start);
    }

    return {};
}

AuthErrorAdvice
adviseOnAuthError(std::string_view error, std::string_view description)
{
    return adviseOnAuthError(error, description,
        std::string("https://<your nao address>") + kCallbackPath);
}

AuthErrorAdvice
adviseOnAuthError(std::string_view error, std::string_view description,
    std::string_view redirectUri)
{
    AuthErrorAdvice result;
    std::string name = validErrorName(error);

    result.code = aadstsCode(description);

    for (const KnownAuthError &known : kKnownAuthErrors) {
        if (result.code == known.code) {
            result.title = known.title;
            result.advice = known.advice;
            return result;
        }
    }

    if (result.code == "AADSTS50011") {
        result.title = "Redirect URI mismatch";
        result.advice = "The redirect URI nao sent is not registered for "
            "the application. In Microsoft Entra ID, open the app "
            "registration, then Authentication, and set the Web redirect "
            "URI to exactly " + std::string(redirectUri) + ".";
        return result;
    }

    if (result.code.empty()) {
        result.code = name;
    }

    if (name == "access_denied") {
        result.title = "Sign-in was declined";
        result.advice = "You or an administrator declined the permissions "
            "nao asks for. Sign in again and accept them, or ask an "
            "administrator to grant consent for nao.";
        return result;
    }

    result.title = "Microsoft sign-in failed";
    result.advice = result.code.empty()
        ? "Microsoft Entra ID stopped the sign-in. Try again; if it "
          "happens again, tell your administrator."
        : "Microsoft Entra ID stopped the sign-in with error " + result.code
          + ". Try again; if it happens again, give this code to your "
          "administrator.";

    return result;
}

std::string
refreshGrantBody(const RefreshGrant &grant)
{
    std::string body;

    addParam(&body, "grant_type", "refresh_token");
    addParam(&body, "client_id", grant.clientId);
    addParam(&body, "client_secret", grant.clientSecret);
    addParam(&body, "refresh_token", grant.refreshToken);

    /* without offline_access Entra would not hand a new refresh token */
    addParam(&body, "scope", grant.scope.empty() ? "offline_access"
        : grant.scope + " offline_access");

    return body;
}

TokenOutcome
parseRefreshResponse(long httpStatus, std::string_view body)
{
    return parseTokens(httpStatus, body, false);
}

bool
isInvalidGrant(const IdpError &error)
{
    return error.error == "invalid_grant"
        || error.error == "interaction_required";
}


bool
refreshTokenDead(const IdpError &error)
{
    static const char *const kDead[] = {
        "AADSTS70000", "AADSTS70008", "AADSTS700082", "AADSTS700084",
        "AADSTS50173", "AADSTS70043", "AADSTS50133", "AADSTS50089",
    };

    /* MFA or the like: a new interactive sign-in satisfies it */
    if (error.error == "interaction_required") {
        return true;
    }

    if (error.error != "invalid_grant") {
        return false;
    }

    /* without a code there is nothing better to go by */
    if (error.code.empty()) {
        return true;
    }

    for (const char *code : kDead) {
        if (error.code == code) {
            return true;
        }
    }

    return false;
}

}  // namespace nao
