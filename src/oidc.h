/*
 * The OpenID Connect steps against Entra ID: discovery, the authorize
 * URL with PKCE, the code exchange and the ID token checks. Pure protocol;
 * the transport lives elsewhere.
 */

#ifndef NAO_SSO_OIDC_H
#define NAO_SSO_OIDC_H

#include "jose.h"
#include "result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

/* "{authority}/{tenant}/v2.0/.well-known/openid-configuration" */
std::string discoveryUrl(std::string_view authority, std::string_view tenant);

/* "{authority}/{tenant}/v2.0" */
std::string expectedIssuer(std::string_view authority,
    std::string_view tenant);

struct ProviderMetadata {
    std::string issuer;
    std::string authorizationEndpoint;
    std::string tokenEndpoint;
    std::string jwksUri;
    std::string endSessionEndpoint;    /* may be empty */
};

/*
 * Requires "issuer" to equal expectedIssuer exactly and every endpoint
 * to pass checkIdpUrl.
 */
Result<ProviderMetadata> parseDiscovery(std::string_view document,
    std::string_view expectedIssuer);

struct Pkce {
    std::string verifier;     /* 43 base64url characters */
    std::string challenge;    /* S256 */
};

std::optional<Pkce> makePkce();
std::string pkceChallenge(std::string_view verifier);

/* "openid profile email offline_access <token scope>" */
std::string signInScope(std::string_view tokenScope);

struct AuthorizeRequest {
    std::string clientId;
    std::string redirectUri;
    std::string scope;
    std::string state;
    std::string nonce;
    std::string codeChallenge;
    std::string prompt;         /* e.g. "select_account"; may be empty */
};

/* adds response_type=code and code_challenge_method=S256 */
std::string authorizeUrl(std::string_view endpoint,
    const AuthorizeRequest &request);

struct CodeExchange {
    std::string clientId;
    std::string clientSecret;
    std::string code;
    std::string redirectUri;
    std::string codeVerifier;
    std::string scope;
};

/* an application/x-www-form-urlencoded body */
std::string codeExchangeBody(const CodeExchange &exchange);

/* "{end session endpoint}?post_logout_redirect_uri=..." */
std::string endSessionUrl(std::string_view endpoint,
    std::string_view postLogoutRedirectUri);

struct TokenResponse {
    std::string idToken;
    std::string accessToken;
    std::string refreshToken;
    std::string scope;
    int64_t expiresIn = 0;
};

/* an OAuth error as Entra sends it */
struct IdpError {
    std::string error;          /* e.g. "invalid_grant" */
    std::string code;           /* e.g. "AADSTS70008", or empty */
};

struct TokenOutcome {
    std::optional<TokenResponse> tokens;
    std::optional<IdpError> idpError;    /* set when the IdP said why */
    std::string problem;                 /* for the log when no tokens */
};

/*
 * 200 with JSON holding "id_token" and "access_token" is success; an
 * OAuth error body gives idpError; anything else (5xx, HTML, bad JSON)
 * gives only a problem. No token text ever goes into the problem.
 */
TokenOutcome parseTokenResponse(long httpStatus, std::string_view body);

struct IdTokenCheck {
    std::string issuer;
    std::string clientId;
    std::string tenantId;     /* compared with "tid" only when a GUID */
    std::string nonce;
    int64_t now = 0;
    int64_t skew = 120;
};

struct Identity {
    std::string objectId;     /* "oid" */
    std::string subject;      /* "sub" */
    std::string email;        /* "email", else "preferred_username" */
    std::string name;
    std::string tenantId;     /* "tid" */
    int64_t expires = 0;

    /* "groups": the object ids, lowercased; entries not text are skipped */
    std::vector<std::string> groups;

    /* "roles": the app role values assigned to the user, as sent */
    std::vector<std::string> appRoles;

    /*
     * Entra left the groups out, as it does past 200 of them: "groups"
     * is absent and "_claim_names" names it, or "hasgroups" is true. The
     * groups must then be read from Microsoft Graph.
     */
    bool groupOverage = false;
};

/*
 * Checks, in order: alg is RS256 (so "none" and HMAC are refused), a key
 * with the token's kid is in the set, the signature, iss, aud (a string
 * or an array holding the client id; azp must match when several), tid,
 * exp and nbf with the skew, nonce, and that oid is present. The error
 * names the failed check and both values where they are not secret.
 */
Result<Identity> validateIdToken(const Jws &token, const Jwks &keys,
    const IdTokenCheck &check);

/* "AADSTS50105" from a description, or empty */
std::string aadstsCode(std::string_view description);

struct AuthErrorAdvice {
    std::string code;       /* "AADSTS50105", or the OAuth error */
    std::string title;
    std::string advice;     /* what to do; generic when not known */
};

/*
 * For an error sent to the callback: names 50105 (not assigned), 65001
 * (consent), 53003 (Conditional Access), 50011 (redirect URI) and
 * access_denied.
 */
AuthErrorAdvice adviseOnAuthError(std::string_view error,
    std::string_view description);

/* the same, naming the exact redirect URI to register for 50011 */
AuthErrorAdvice adviseOnAuthError(std::string_view error,
    std::string_view description, std::string_view redirectUri);

struct RefreshGrant {
    std::string clientId;
    std::string clientSecret;
    std::string refreshToken;
    std::string scope;          /* the downstream resource's scope */
};

/*
 * An application/x-www-form-urlencoded refresh_token grant; the scope
 * sent is grant.scope with "offline_access" added.
 */
std::string refreshGrantBody(const RefreshGrant &grant);

/*
 * As parseTokenResponse, but only "access_token" is required: without
 * "openid" in the scope Entra sends no id_token. A new "refresh_token",
 * when sent, replaces the old one.
 */
TokenOutcome parseRefreshResponse(long httpStatus, std::string_view body);

/*
 * The refresh token alone can get no more tokens: "invalid_grant" (it
 * expired or was revoked, e.g. AADSTS70008, 50173, 70043, 700082) or
 * "interaction_required" (e.g. AADSTS50076, 50079: MFA is now needed).
 * Other errors may pass, so the grant is worth trying again.
 */
bool isInvalidGrant(const IdpError &error);

/*
 * Of those, the ones a new sign-in cures: the refresh token is dead
 * (expired, revoked, password changed, sign-in frequency) or Entra wants
 * an interactive step (MFA). Not so a scope that lacks consent
 * (AADSTS65001): signing in again would only loop. Only these end a
 * session when a named downstream token is refreshed.
 */
bool refreshTokenDead(const IdpError &error);

}  // namespace nao

#endif
