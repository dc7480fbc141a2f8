#!/usr/bin/env perl
# Self-check of the test doubles in scripts/: walks mock-entra through the
# whole OIDC flow and every control knob, and pokes demo-nao's echo, so
# that the module's tests stand on a mock that behaves like Entra ID. It
# needs no nginx and no Test::Nginx. Starts its own servers on free ports
# and kills them at the end.
use strict;
use warnings;

use Crypt::JWT qw(decode_jwt);
use Digest::SHA qw(sha256);
use FindBin;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Test::More;
use Time::HiRes ();

if (grep { $_ eq '--help' } @ARGV) {
    print "Usage: perl t/05-test-doubles.t\n"
        . "Checks scripts/mock-entra and scripts/demo-nao (no nginx needed).\n";
    exit 0;
}

my $SCRIPTS   = "$FindBin::Bin/../scripts";
my $TENANT    = '6f1c2a4e-8d3b-4f5a-9c7e-2b1d0e9f8a7c';
my $CLIENT_ID = '3a8e5b2c-1f4d-4e6a-8b9c-0d7e6f5a4b3c';
my $SECRET    = 'mock-secret-value';
my $REDIRECT  = 'http://127.0.0.1:9/api/auth/callback/microsoft';
my $SCOPE     = 'openid profile email offline_access';

my $JSON = JSON::PP->new->utf8->canonical;
my $HTTP = HTTP::Tiny->new(max_redirect => 0, timeout => 10);
my (@PIDS, @PIPES);

END { kill 'TERM', @PIDS if @PIDS; }

# ---------------------------------------------------------------------------
# Plumbing

# Starts a script with --port 0 and returns (pid, base URL) from the
# "... listening on URL" line it prints first.
sub start_server {
    my ($script, @args) = @_;
    my $pid = open(my $out, '-|', "$SCRIPTS/$script", '--port', 0, @args)
        or die "cannot start $script: $!";
    # keep the pipe open: closing it would wait for the server to exit
    push @PIDS, $pid;
    push @PIPES, $out;
    my $line = <$out>;
    die "$script printed nothing\n" unless defined $line;
    my ($url) = $line =~ m{listening on (http://127\.0\.0\.1:\d+)} or die "odd: $line";
    return ($pid, $url);
}

my (undef, $BASE) = start_server('mock-entra', '--log', "/tmp/mock-selfcheck.$$.log");
my $T = "$BASE/$TENANT";

sub get { my ($url, $headers) = @_; return $HTTP->get($url, { headers => $headers // {} }) }

sub post_json {
    my ($path, $data) = @_;
    my $res = $HTTP->post("$BASE$path", { content => $JSON->encode($data // {}),
        headers => { 'Content-Type' => 'application/json' } });
    return ($res, eval { $JSON->decode($res->{content}) });
}

sub mock { my ($path, $data) = @_; my (undef, $body) = post_json("/_mock/$path", $data); return $body }

sub stats { return $JSON->decode(get("$BASE/_mock/stats")->{content}) }

sub post_form {
    my ($url, $form, $headers) = @_;
    return $HTTP->post_form($url, $form, { headers => $headers // {} });
}

sub json_of { my ($res) = @_; return eval { $JSON->decode($res->{content}) } // {} }

sub b64url { (my $s = encode_base64(shift, '')) =~ tr{+/}{-_}; $s =~ s/=+$//; return $s }

sub b64url_decode { (my $s = shift) =~ tr{-_}{+/}; return decode_base64($s . '=' x ((4 - length($s) % 4) % 4)) }

sub jwt_parts {
    my ($jwt) = @_;
    my ($h, $p) = split /\./, $jwt;
    return ($JSON->decode(b64url_decode($h)), $JSON->decode(b64url_decode($p)));
}

sub query_of {
    my ($url) = @_;
    my ($query) = $url =~ /[?#](.*)\z/ or return {};
    my %q;
    for (split /&/, $query) {
        my ($k, $v) = map { s/\+/ /gr =~ s/%([0-9A-F]{2})/chr hex $1/geir } split /=/, $_, 2;
        $q{$k} = $v;
    }
    return \%q;
}

sub authorize_url {
    my (%extra) = @_;
    my %p = (client_id => $CLIENT_ID, response_type => 'code', redirect_uri => $REDIRECT,
        scope => $SCOPE, state => 'st-' . rand, nonce => 'n-' . rand,
        code_challenge_method => 'S256', %extra);
    delete $p{$_} for grep { !defined $p{$_} } keys %p;
    return "$T/oauth2/v2.0/authorize?" . $HTTP->www_form_urlencode(\%p);
}

# authorize with a fresh PKCE pair; returns (code, verifier, nonce, response)
sub get_code {
    my (%extra) = @_;
    my $verifier = b64url(join '', map { chr int rand 256 } 1 .. 32);
    my $nonce = 'nonce-' . int rand 1e9;
    my $res = get(authorize_url(code_challenge => b64url(sha256($verifier)),
        nonce => $nonce, %extra));
    my $q = query_of($res->{headers}{location} // '');
    return ($q->{code}, $verifier, $nonce, $res, $q);
}

sub redeem {
    my ($code, $verifier, %extra) = @_;
    return post_form("$T/oauth2/v2.0/token", { grant_type => 'authorization_code',
        client_id => $CLIENT_ID, client_secret => $SECRET, code => $code,
        redirect_uri => $REDIRECT, code_verifier => $verifier, %extra });
}

sub refresh {
    my ($token, %extra) = @_;
    return post_form("$T/oauth2/v2.0/token", { grant_type => 'refresh_token',
        client_id => $CLIENT_ID, client_secret => $SECRET, refresh_token => $token, %extra });
}

sub login {
    my ($code, $verifier, $nonce) = get_code(@_);
    my $res = redeem($code, $verifier);
    return (json_of($res), $nonce, $res);
}

sub jwks { return json_of(get("$T/discovery/v2.0/keys")) }

sub verify { my ($jwt) = @_; return decode_jwt(token => $jwt, kid_keys => jwks(), accepted_alg => 'RS256') }

# the Entra error shape, down to the \r\n lines
sub is_entra_error {
    my ($res, $status, $error, $code, $name) = @_;
    my $body = json_of($res);
    is($res->{status}, $status, "$name: status $status");
    is($body->{error}, $error, "$name: error $error");
    is_deeply($body->{error_codes}, [$code], "$name: error_codes [$code]");
    my $guid = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
    my $stamp = qr/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/;
    like(($body->{error_description} // ''),
        qr/\AAADSTS$code: [^\r\n]+\r\nTrace ID: $guid\r\nCorrelation ID: $guid\r\nTimestamp: $stamp\z/,
        "$name: error_description shape");
    like($body->{timestamp} // '', qr/\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\z/, "$name: timestamp");
    is($body->{error_uri}, "$BASE/error?code=$code", "$name: error_uri");
    ok($body->{trace_id} && $body->{correlation_id}, "$name: trace and correlation ids");
}

# ---------------------------------------------------------------------------
# Discovery and keys

my $disco = json_of(get("$T/v2.0/.well-known/openid-configuration"));
is($disco->{issuer}, "$T/v2.0", 'issuer');
is($disco->{authorization_endpoint}, "$T/oauth2/v2.0/authorize", 'authorization_endpoint');
is($disco->{token_endpoint}, "$T/oauth2/v2.0/token", 'token_endpoint');
is($disco->{jwks_uri}, "$T/discovery/v2.0/keys", 'jwks_uri');
is($disco->{end_session_endpoint}, "$T/oauth2/v2.0/logout", 'end_session_endpoint');
is_deeply($disco->{id_token_signing_alg_values_supported}, ['RS256'], 'RS256 only');
is_entra_error(get("$BASE/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration"),
    400, 'invalid_tenant', 90002, 'unknown tenant');

my $keys = jwks();
is(scalar @{ $keys->{keys} }, 1, 'one key at start');
my $first_kid = $keys->{keys}[0]{kid};
ok(!exists $keys->{keys}[0]{alg}, 'no alg member, as Entra');
is($keys->{keys}[0]{use}, 'sig', 'use sig');
is($keys->{keys}[0]{x5t}, $first_kid, 'x5t = kid');

# ---------------------------------------------------------------------------
# The happy path

my ($code, $verifier, $nonce, $auth_res, $q) = get_code();
is($auth_res->{status}, 302, 'authorize redirects');
like($auth_res->{headers}{location}, qr{\A\Q$REDIRECT\E\?}, 'to redirect_uri');
ok($code && $q->{state} && $q->{session_state}, 'code, state, session_state');

my $tok_res = redeem($code, $verifier);
is($tok_res->{status}, 200, 'code exchange');
my $tok = json_of($tok_res);
is($tok->{token_type}, 'Bearer', 'token_type');
is($tok->{expires_in}, 3599, 'expires_in');
ok($tok->{refresh_token}, 'refresh token (offline_access asked)');
my $id = verify($tok->{id_token});
is($id->{aud}, $CLIENT_ID, 'id_token aud');
is($id->{iss}, "$T/v2.0", 'id_token iss');
is($id->{nonce}, $nonce, 'id_token nonce');
is($id->{tid}, $TENANT, 'id_token tid');
is($id->{oid}, '0a3f6c52-8e1b-4d7a-9c25-6b4e1f8d3a70', 'Ada is the default user');
is($id->{email}, 'ada@contoso.example', 'email');
is($id->{name}, 'Ada Lovelace', 'name');
is($id->{ver}, '2.0', 'ver');
is($id->{exp} - $id->{iat}, 3600, 'id_token lifetime');
is(scalar @{ $id->{groups} }, 2, 'Ada has two groups');
my $at = verify($tok->{access_token});
is($at->{aud}, '00000003-0000-0000-c000-000000000000', 'OIDC-only scope: Graph audience');

is_entra_error(redeem($code, $verifier), 400, 'invalid_grant', 54005, 'code reuse');

# ---------------------------------------------------------------------------
# Token endpoint errors

($code, $verifier) = get_code();
is_entra_error(redeem($code, 'x' x 43), 400, 'invalid_grant', 50148, 'PKCE mismatch');
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier, redirect_uri => 'http://127.0.0.1:9/other'),
    400, 'invalid_grant', 500112, 'redirect_uri mismatch');
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier, client_secret => 'wrong'), 401, 'invalid_client', 7000215, 'wrong secret');
is_entra_error(redeem('0.Anope', 'x' x 43), 400, 'invalid_grant', 70000, 'unknown code');
is_entra_error($HTTP->get("$T/oauth2/v2.0/token"), 400, 'invalid_request', 900561, 'GET on token');

mock('config', { code_lifetime => -1 });
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier), 400, 'invalid_grant', 70008, 'expired code');
mock('config', { code_lifetime => 600 });

# HTTP Basic client authentication, RFC 6749 2.3.1
($code, $verifier) = get_code();
my $basic = 'Basic ' . encode_base64("$CLIENT_ID:$SECRET", '');
my $res = post_form("$T/oauth2/v2.0/token", { grant_type => 'authorization_code', code => $code,
    redirect_uri => $REDIRECT, code_verifier => $verifier }, { Authorization => $basic });
is($res->{status}, 200, 'Basic client auth');
is(stats()->{last_token_request}{client_auth}, 'basic', 'stats: client_auth basic');
($code, $verifier) = get_code();
$res = post_form("$T/oauth2/v2.0/token", { grant_type => 'authorization_code', code => $code,
    redirect_uri => $REDIRECT, code_verifier => $verifier, client_secret => $SECRET },
    { Authorization => $basic });
is_entra_error($res, 400, 'invalid_request', 90023, 'both Basic and body');

# scope -> access token audience
($code, $verifier) = get_code(scope => "$SCOPE api://$CLIENT_ID/user_impersonation");
$tok = json_of(redeem($code, $verifier, scope => "$SCOPE api://$CLIENT_ID/user_impersonation"));
$at = verify($tok->{access_token});
is($at->{aud}, "api://$CLIENT_ID", 'api://X/user_impersonation -> aud api://X');
is($at->{scp}, 'user_impersonation', 'scp');
($code, $verifier) = get_code(scope => 'openid profile');
$tok = json_of(redeem($code, $verifier, scope => "openid $CLIENT_ID/.default"));
is(verify($tok->{access_token})->{aud}, $CLIENT_ID, 'X/.default -> aud X');
ok(!exists $tok->{refresh_token}, 'no offline_access, no refresh token');

# ---------------------------------------------------------------------------
# Refresh: rotation, scope, revoke, expiry

($tok) = login();
my $rt1 = $tok->{refresh_token};
my $r = json_of(refresh($rt1, scope => "api://$CLIENT_ID/user_impersonation"));
ok($r->{refresh_token} && $r->{refresh_token} ne $rt1, 'refresh rotates');
is(verify($r->{access_token})->{aud}, "api://$CLIENT_ID", 'refresh scope picks aud');
ok(!exists verify($r->{id_token})->{nonce}, 'refreshed id_token has no nonce');
is_entra_error(refresh($rt1), 400, 'invalid_grant', 70008, 'rotated-away refresh token');
is_entra_error(refresh('1.Anope'), 400, 'invalid_grant', 9002313, 'unknown refresh token');
cmp_ok(mock('revoke', { user => 'ada@contoso.example' })->{revoked}, '>=', 1, 'revoke Ada');
is_entra_error(refresh($r->{refresh_token}), 400, 'invalid_grant', 50173, 'revoked refresh token');
mock('config', { refresh_token_lifetime => -1 });
($tok) = login();
is_entra_error(refresh($tok->{refresh_token}), 400, 'invalid_grant', 700082, 'expired refresh token');
mock('config', { refresh_token_lifetime => 7776000 });
($tok) = login();
cmp_ok(mock('revoke', {})->{revoked}, '>=', 1, 'revoke all');
is(mock('revoke', {})->{revoked}, 0, 'nothing left to revoke');

# ---------------------------------------------------------------------------
# Authorize: users, validation, configured errors

($tok) = login(login_hint => 'grace@contoso.example');
is(verify($tok->{id_token})->{name}, 'Grace Hopper', 'login_hint picks Grace');
($tok) = login(mock_user => 'zoe@contoso.example');
is(verify($tok->{id_token})->{name}, "Zo\x{eb} O'Brien", 'mock_user picks Zoë');
mock('config', { user => 'alan@contoso.example' });
($tok) = login();
my $alan = verify($tok->{id_token});
is($alan->{oid}, '2c9e5f14-6a3b-4d8f-b17e-9f4d3c2a8b05', 'config user Alan');
ok(!exists $alan->{groups}, 'no groups claim without groups');
mock('config', { user => { email => 'x@fabrikam.example', name => 'X', groups => ['g1'] } });
($tok) = login();
my $custom = verify($tok->{id_token});
is($custom->{preferred_username}, 'x@fabrikam.example', 'custom user object');
ok($custom->{oid}, 'custom user gets a derived oid');
my ($bad) = post_json('/_mock/config', { user => 'nobody@contoso.example' });
is($bad->{status}, 400, 'unknown built-in user refused');
($bad) = post_json('/_mock/config', { tamper => 'nonsense' });
is($bad->{status}, 400, 'unknown tamper refused');
mock('config', { user => undef });

my %bad_authorize = (
    'missing client_id'     => [{ client_id => undef }, 900144],
    'unknown client_id'     => [{ client_id => 'nope' }, 700016],
    'response_type token'   => [{ response_type => 'token' }, 700054],
    'no openid'             => [{ scope => 'profile' }, 70011],
    'no code_challenge'     => [{ code_challenge => undef }, 9002325],
    'plain PKCE'            => [{ code_challenge_method => 'plain' }, 90100],
    'no state'              => [{ state => undef }, 900144],
    'no nonce'              => [{ nonce => undef }, 900144],
    'unknown mock_user'     => [{ mock_user => 'eve@contoso.example' }, 50034],
);
for my $name (sort keys %bad_authorize) {
    my ($params, $aadsts) = @{ $bad_authorize{$name} };
    my $page = get(authorize_url(code_challenge => b64url(sha256('v' x 43)), %$params));
    is($page->{status}, 400, "authorize $name: 400");
    like($page->{content}, qr/AADSTS$aadsts:/, "authorize $name: AADSTS$aadsts");
}
mock('config', { redirect_uris => ['https://nao.example/api/auth/callback/microsoft'] });
my (undef, undef, undef, $page) = get_code();
like($page->{content}, qr/AADSTS50011:/, 'redirect_uris enforced');
mock('config', { redirect_uris => undef });

mock('config', { authorize_error => { error => 'access_denied',
    description => 'AADSTS50105: Your administrator has configured the application to block users.' } });
(undef, undef, undef, $page, $q) = get_code(state => 'xyz');
is($q->{error}, 'access_denied', 'authorize_error: error');
like($q->{error_description}, qr/\AAADSTS50105: /, 'authorize_error: description');
is($q->{state}, 'xyz', 'authorize_error: state');
mock('config', { authorize_error => undef });

(undef, undef, undef, $page, $q) = get_code(response_mode => 'form_post');
like($page->{content}, qr/<form method="POST" action="\Q$REDIRECT\E"/, 'form_post response');

# ---------------------------------------------------------------------------
# Faults

for my $endpoint (qw(discovery keys)) {
    my $url = $endpoint eq 'keys' ? "$T/discovery/v2.0/keys" : "$T/v2.0/.well-known/openid-configuration";
    mock('config', { faults => { $endpoint => { status => 503, count => 1 } } });
    is_entra_error(get($url), 503, 'temporarily_unavailable', 90033, "$endpoint 503");
    is(get($url)->{status}, 200, "$endpoint fault cleared after count");
    for my $body (qw(garbage html empty truncated_json), '{"keys":[]}') {
        mock('config', { faults => { $endpoint => { body => $body, count => 1 } } });
        my $got = get($url);
        ok(!eval { $JSON->decode($got->{content}); 1 } || $body =~ /keys/, "$endpoint body $body is broken");
    }
    # count 2: HTTP::Tiny retries an idempotent request once after a
    # short read (curl, in the module, does not)
    mock('config', { faults => { $endpoint => { body => 'truncated', count => 2 } } });
    is(get($url)->{status}, 599, "$endpoint truncated: client sees a short body");
    mock('config', { faults => { $endpoint => { delay_ms => 300, count => 1 } } });
    my $start = Time::HiRes::time();
    is(get($url)->{status}, 200, "$endpoint delayed");
    cmp_ok(Time::HiRes::time() - $start, '>=', 0.29, "$endpoint delay took effect");
}
mock('config', { faults => { authorize => { status => 500, body => 'html', count => 1 } } });
(undef, undef, undef, $page) = get_code();
is($page->{status}, 500, 'authorize fault');
($code, $verifier) = get_code();
mock('config', { faults => { token => { status => 502, body => 'html' } } });
is(redeem($code, $verifier)->{status}, 502, 'token fault');
is(redeem($code, $verifier)->{status}, 502, 'token fault stays without count');
mock('config', { faults => { token => undef } });
is(redeem($code, $verifier)->{status}, 200, 'token fault cleared by null; code was not consumed');
($tok) = login();
mock('config', { faults => { refresh => { status => 400, body => '{"error":"invalid_grant"}', count => 1 } } });
is(refresh($tok->{refresh_token})->{status}, 400, 'refresh fault');
is(refresh($tok->{refresh_token})->{status}, 200, 'refresh works after the fault');
($bad) = post_json('/_mock/config', { faults => { tokn => { status => 500 } } });
is($bad->{status}, 400, 'unknown fault endpoint refused');

# ---------------------------------------------------------------------------
# Tampering: each applies to the next id_token only

my %tamper_check = (
    signature   => sub { !eval { verify($_[0]); 1 } && $_[1]{alg} eq 'RS256' },
    alg_none    => sub { $_[1]{alg} eq 'none' && $_[0] =~ /\.\z/ },
    hs256       => sub { $_[1]{alg} eq 'HS256' && eval { decode_jwt(token => $_[0], key => $SECRET); 1 } },
    aud         => sub { $_[2]{aud} ne $CLIENT_ID && eval { verify($_[0]); 1 } },
    iss         => sub { $_[2]{iss} ne "$T/v2.0" && eval { verify($_[0]); 1 } },
    expired     => sub { $_[2]{exp} < time - 3000 },
    nbf_future  => sub { $_[2]{nbf} > time + 3000 },
    nonce       => sub { $_[2]{nonce} ne $_[3] },
    tid         => sub { $_[2]{tid} ne $TENANT && $_[2]{iss} eq "$T/v2.0" },
    crit        => sub { ref $_[1]{crit} eq 'ARRAY' },
    unknown_kid => sub { !grep { $_->{kid} eq $_[1]{kid} } @{ jwks()->{keys} } },
    small_key   => sub { my ($k) = grep { $_->{kid} eq $_[1]{kid} } @{ jwks()->{keys} };
                         $k && length(b64url_decode($k->{n})) == 128 },
    no_oid      => sub { !exists $_[2]{oid} && eval { verify($_[0]); 1 } },
);
for my $kind (sort keys %tamper_check) {
    mock('config', { tamper => $kind });
    my ($tokens, $n) = login();
    my ($header, $claims) = jwt_parts($tokens->{id_token});
    ok($tamper_check{$kind}->($tokens->{id_token}, $header, $claims, $n), "tamper $kind");
    is(stats()->{last_tamper}, $kind, "stats last_tamper $kind");
    ($tokens) = login();
    ok(eval { verify($tokens->{id_token}); 1 }, "tamper $kind applied once");
}
mock('config', { tamper => 'garbage' });
($tok) = login();
unlike($tok->{id_token}, qr/\A[^.]+\.[^.]+\.[^.]*\z/, 'tamper garbage: not a JWT');
mock('config', { tamper => { kind => 'aud' } });
login() for 1 .. 2;
is(stats()->{last_tamper}, 'aud', 'tamper object without count stays');
mock('reset');
is(mock('config', {})->{tamper}, undef, 'reset clears tamper');

# ---------------------------------------------------------------------------
# Rotation

my ($old_tokens) = login();
my $rot = mock('rotate');
isnt($rot->{kid}, $first_kid, 'rotate: new kid');
is(scalar @{ jwks()->{keys} }, 3, 'new, previous and the small_key key published');
ok(eval { verify($old_tokens->{id_token}); 1 }, 'old token still verifies');
($tok) = login();
is((jwt_parts($tok->{id_token}))[0]{kid}, $rot->{kid}, 'new tokens use the new key');
mock('rotate', { drop_old => JSON::PP::true });
ok(!eval { verify($old_tokens->{id_token}); 1 }, 'drop_old unpublishes the old key');
mock('reset', { keys => JSON::PP::true });
is(scalar @{ jwks()->{keys} }, 1, 'reset keys: one key again');

# ---------------------------------------------------------------------------
# Logout and stats

$res = get("$T/oauth2/v2.0/logout?post_logout_redirect_uri=" . $HTTP->www_form_urlencode({ u => 'http://127.0.0.1:9/bye' }) =~ s/^u=//r);
is($res->{headers}{location}, 'http://127.0.0.1:9/bye', 'logout redirects back');
like(get("$T/oauth2/v2.0/logout")->{content}, qr/signed out/, 'logout page');
login();
refresh('1.Anope', scope => 'openid');
my $s = stats();
is($s->{logout}, 2, 'stats logout');
is($s->{authorize}, 1, 'stats authorize');
is_deeply($s->{token}, { authorization_code => 1, refresh_token => 1 }, 'stats token');
is($s->{errors}, 1, 'stats errors');
is_deeply($s->{last_token_request}, { grant_type => 'refresh_token', scope => 'openid',
    client_auth => 'body', has_code_verifier => JSON::PP::false, redirect_uri => undef },
    'stats last_token_request');

# userinfo with a Graph access token
($tok) = login();
$res = get("$BASE/oidc/userinfo", { Authorization => "Bearer $tok->{access_token}" });
is(json_of($res)->{name}, 'Ada Lovelace', 'userinfo');

# ---------------------------------------------------------------------------
# Interactive mode: a user picker instead of a redirect

my ($ipid, $IBASE) = start_server('mock-entra', '--interactive');
my $picker = get("$IBASE/$TENANT/oauth2/v2.0/authorize?" . (authorize_url(
    code_challenge => b64url(sha256('v' x 43))) =~ s/.*\?//r));
is($picker->{status}, 200, 'interactive: picker page');
like($picker->{content}, qr/mock_user=grace%40contoso\.example/, 'picker links users');

# ---------------------------------------------------------------------------
# demo-nao

my (undef, $NAO) = start_server('demo-nao');
my $echo = json_of(get("$NAO/_echo/x?y=1", { 'X-Nao-User-Email' => 'ada@contoso.example' }));
is($echo->{method}, 'GET', 'echo method');
is($echo->{uri}, '/_echo/x?y=1', 'echo uri');
is($echo->{headers}{'x-nao-user-email'}, 'ada@contoso.example', 'echo header');
my $html = get("$NAO/", { 'X-Nao-User-Name' => '<b>Ada</b>', Authorization => 'Bearer 0123456789abcdef' })->{content};
like($html, qr/&lt;b&gt;Ada&lt;\/b&gt;/, 'demo-nao escapes');
unlike($html, qr/0123456789abcdef/, 'demo-nao masks the token');

my @log = do { open my $fh, '<', "/tmp/mock-selfcheck.$$.log" or die; <$fh> };
cmp_ok(scalar @log, '>', 50, 'request log written');
is_deeply([grep { /[?=]|secret/ } @log], [], 'request log has no query strings or secrets');
unlink "/tmp/mock-selfcheck.$$.log";

done_testing();
