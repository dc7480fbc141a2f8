#!/usr/bin/env perl
# Self-check of the test doubles in scripts/: walks mock-entra through the
# whole OIDC flow, its Graph endpoint and every control knob, pokes
# demo-nao's echo and reads make-licence's role rules back, so that the
# module's tests stand on a mock that behaves like Entra ID. It
# needs no nginx and no Test::Nginx. Starts its own servers on free ports
# and kills them at the end.
use strict;
use warnings;

use Crypt::JWT qw(decode_jwt);
use Crypt::PK::Ed25519;
use Digest::SHA qw(sha256);
use FindBin;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Test::More;
use Time::HiRes ();

if (grep { $_ eq '--help' } @ARGV) {
    print "Usage: perl t/05-test-doubles.t\n"
        . "Checks scripts/mock-entra, scripts/demo-nao and "
        . "scripts/make-licence\n"
        . "(no nginx needed).\n";
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
    my ($url) = $line =~ m{listening on (http://127\.0\.0\.1:\d+)}
        or die "odd: $line";
    return ($pid, $url);
}

my (undef, $BASE) = start_server('mock-entra', '--log',
    "/tmp/mock-selfcheck.$$.log");
my $T = "$BASE/$TENANT";

sub get {
    my ($url, $headers) = @_;
    return $HTTP->get($url, { headers => $headers // {} });
}

sub post_json {
    my ($path, $data) = @_;
    my $res = $HTTP->post("$BASE$path", { content => $JSON->encode($data // {}),
        headers => { 'Content-Type' => 'application/json' } });
    return ($res, eval { $JSON->decode($res->{content}) });
}

sub mock {
    my ($path, $data) = @_;
    my (undef, $body) = post_json("/_mock/$path", $data);
    return $body;
}

sub stats { return $JSON->decode(get("$BASE/_mock/stats")->{content}) }

sub post_form {
    my ($url, $form, $headers) = @_;
    return $HTTP->post_form($url, $form, { headers => $headers // {} });
}

sub json_of {
    my ($res) = @_;
    return eval { $JSON->decode($res->{content}) } // {};
}

sub b64url {
    (my $s = encode_base64(shift, '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub b64url_decode {
    (my $s = shift) =~ tr{-_}{+/};
    return decode_base64($s . '=' x ((4 - length($s) % 4) % 4));
}

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
        my ($k, $v) = map { s/\+/ /gr =~ s/%([0-9A-F]{2})/chr hex $1/geir }
            split /=/, $_, 2;
        $q{$k} = $v;
    }
    return \%q;
}

sub authorize_url {
    my (%extra) = @_;
    my %p = (client_id => $CLIENT_ID, response_type => 'code',
        redirect_uri => $REDIRECT, scope => $SCOPE,
        state => 'st-' . rand, nonce => 'n-' . rand,
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
    return post_form("$T/oauth2/v2.0/token", {
        grant_type => 'authorization_code',
        client_id => $CLIENT_ID, client_secret => $SECRET, code => $code,
        redirect_uri => $REDIRECT, code_verifier => $verifier, %extra });
}

sub refresh {
    my ($token, %extra) = @_;
    return post_form("$T/oauth2/v2.0/token", { grant_type => 'refresh_token',
        client_id => $CLIENT_ID, client_secret => $SECRET,
        refresh_token => $token, %extra });
}

sub login {
    my ($code, $verifier, $nonce) = get_code(@_);
    my $res = redeem($code, $verifier);
    return (json_of($res), $nonce, $res);
}

sub jwks { return json_of(get("$T/discovery/v2.0/keys")) }

sub verify {
    my ($jwt) = @_;
    return decode_jwt(token => $jwt, kid_keys => jwks(),
        accepted_alg => 'RS256');
}

# the Entra error shape, down to the \r\n lines
sub is_entra_error {
    my ($res, $status, $error, $code, $name) = @_;
    my $body = json_of($res);
    is($res->{status}, $status, "$name: status $status");
    is($body->{error}, $error, "$name: error $error");
    is_deeply($body->{error_codes}, [$code], "$name: error_codes [$code]");
    my $guid = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
    my $stamp = qr/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/;
    my $rest = qr/Correlation ID: $guid\r\nTimestamp: $stamp\z/;
    like(($body->{error_description} // ''),
        qr/\AAADSTS$code: [^\r\n]+\r\nTrace ID: $guid\r\n$rest/,
        "$name: error_description shape");
    like($body->{timestamp} // '', qr/\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\z/,
        "$name: timestamp");
    is($body->{error_uri}, "$BASE/error?code=$code", "$name: error_uri");
    ok($body->{trace_id} && $body->{correlation_id},
        "$name: trace and correlation ids");
}

# ---------------------------------------------------------------------------
# Discovery and keys

my $disco = json_of(get("$T/v2.0/.well-known/openid-configuration"));
is($disco->{issuer}, "$T/v2.0", 'issuer');
is($disco->{authorization_endpoint}, "$T/oauth2/v2.0/authorize",
    'authorization_endpoint');
is($disco->{token_endpoint}, "$T/oauth2/v2.0/token", 'token_endpoint');
is($disco->{jwks_uri}, "$T/discovery/v2.0/keys", 'jwks_uri');
is($disco->{end_session_endpoint}, "$T/oauth2/v2.0/logout",
    'end_session_endpoint');
is_deeply($disco->{id_token_signing_alg_values_supported}, ['RS256'],
    'RS256 only');
is_entra_error(get("$BASE/00000000-0000-0000-0000-000000000000"
        . '/v2.0/.well-known/openid-configuration'),
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
is($id->{oid}, '0a3f6c52-8e1b-4d7a-9c25-6b4e1f8d3a70',
    'Ada is the default user');
is($id->{email}, 'ada@contoso.example', 'email');
is($id->{name}, 'Ada Lovelace', 'name');
is($id->{ver}, '2.0', 'ver');
is($id->{exp} - $id->{iat}, 3600, 'id_token lifetime');
is(scalar @{ $id->{groups} }, 2, 'Ada has two groups');
my $at = verify($tok->{access_token});
is($at->{aud}, '00000003-0000-0000-c000-000000000000',
    'OIDC-only scope: Graph audience');

is_entra_error(redeem($code, $verifier), 400, 'invalid_grant', 54005,
    'code reuse');

# ---------------------------------------------------------------------------
# Token endpoint errors

($code, $verifier) = get_code();
is_entra_error(redeem($code, 'x' x 43), 400, 'invalid_grant', 50148,
    'PKCE mismatch');
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier,
        redirect_uri => 'http://127.0.0.1:9/other'),
    400, 'invalid_grant', 500112, 'redirect_uri mismatch');
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier, client_secret => 'wrong'), 401,
    'invalid_client', 7000215, 'wrong secret');
is_entra_error(redeem('0.Anope', 'x' x 43), 400, 'invalid_grant', 70000,
    'unknown code');
is_entra_error($HTTP->get("$T/oauth2/v2.0/token"), 400, 'invalid_request',
    900561, 'GET on token');

mock('config', { code_lifetime => -1 });
($code, $verifier) = get_code();
is_entra_error(redeem($code, $verifier), 400, 'invalid_grant', 70008,
    'expired code');
mock('config', { code_lifetime => 600 });

# HTTP Basic client authentication, RFC 6749 2.3.1
($code, $verifier) = get_code();
my $basic = 'Basic ' . encode_base64("$CLIENT_ID:$SECRET", '');
my $res = post_form("$T/oauth2/v2.0/token",
    { grant_type => 'authorization_code', code => $code,
      redirect_uri => $REDIRECT, code_verifier => $verifier },
    { Authorization => $basic });
is($res->{status}, 200, 'Basic client auth');
is(stats()->{last_token_request}{client_auth}, 'basic',
    'stats: client_auth basic');
($code, $verifier) = get_code();
$res = post_form("$T/oauth2/v2.0/token",
    { grant_type => 'authorization_code', code => $code,
      redirect_uri => $REDIRECT, code_verifier => $verifier,
      client_secret => $SECRET },
    { Authorization => $basic });
is_entra_error($res, 400, 'invalid_request', 90023, 'both Basic and body');

# scope -> access token audience
($code, $verifier) = get_code(
    scope => "$SCOPE api://$CLIENT_ID/user_impersonation");
$tok = json_of(redeem($code, $verifier,
    scope => "$SCOPE api://$CLIENT_ID/user_impersonation"));
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
is(verify($r->{access_token})->{aud}, "api://$CLIENT_ID",
    'refresh scope picks aud');
ok(!exists verify($r->{id_token})->{nonce}, 'refreshed id_token has no nonce');
is_entra_error(refresh($rt1), 400, 'invalid_grant', 70008,
    'rotated-away refresh token');
is_entra_error(refresh('1.Anope'), 400, 'invalid_grant', 9002313,
    'unknown refresh token');
cmp_ok(mock('revoke', { user => 'ada@contoso.example' })->{revoked}, '>=', 1,
    'revoke Ada');
is_entra_error(refresh($r->{refresh_token}), 400, 'invalid_grant', 50173,
    'revoked refresh token');
mock('config', { refresh_token_lifetime => -1 });
($tok) = login();
is_entra_error(refresh($tok->{refresh_token}), 400, 'invalid_grant', 700082,
    'expired refresh token');
mock('config', { refresh_token_lifetime => 7776000 });
($tok) = login();
cmp_ok(mock('revoke', {})->{revoked}, '>=', 1, 'revoke all');
is(mock('revoke', {})->{revoked}, 0, 'nothing left to revoke');

# ---------------------------------------------------------------------------
# Refresh: the scope decides the audience, counted per scope

my $GRAPH = 'https://graph.microsoft.com';
mock('reset');
($tok) = login();
my $rt = $tok->{refresh_token};
my %aud_of_scope = (
    "openid api://$CLIENT_ID/user_impersonation" => "api://$CLIENT_ID",
    "openid offline_access $CLIENT_ID/.default"  => $CLIENT_ID,
    $CLIENT_ID                                   => $CLIENT_ID,
    "$GRAPH/GroupMember.Read.All"                => $GRAPH,
    "$BASE/GroupMember.Read.All"                 => $BASE,
);
for my $scope (sort keys %aud_of_scope) {
    my $answer = json_of(refresh($rt, scope => $scope));
    is(verify($answer->{access_token})->{aud}, $aud_of_scope{$scope},
        "refresh scope '$scope': aud");
    $rt = $answer->{refresh_token};
}
$r = json_of(refresh($rt));
is(verify($r->{access_token})->{aud}, '00000003-0000-0000-c000-000000000000',
    'no scope: the grant\'s, Graph');
$rt = $r->{refresh_token};
is_entra_error(refresh($rt,
        scope => "api://$CLIENT_ID/user_impersonation $GRAPH/User.Read"),
    400, 'invalid_scope', 28000, 'two resources in one scope');
is_deeply(stats()->{token}{refresh_by_scope},
    { (map { $_ => 1 } keys %aud_of_scope), '(none)' => 1,
      "api://$CLIENT_ID/user_impersonation $GRAPH/User.Read" => 1 },
    'stats token.refresh_by_scope');
is(stats()->{token}{refresh_token}, 7,
    'stats token.refresh_token still the total');

mock('config', { expires_in => 60 });
$r = json_of(refresh($rt));
is($r->{expires_in}, 60, 'short expires_in in the answer');
my $short = verify($r->{access_token});
is($short->{exp} - $short->{iat}, 60, 'short expires_in in the access token');
$rt = $r->{refresh_token};
mock('config', { expires_in => 3599 });

# refresh_error: the refresh token is gone until the key is cleared
my %refresh_errors = (50173 => 'invalid_grant', 70043 => 'invalid_grant',
    70008 => 'invalid_grant', 700082 => 'invalid_grant',
    65001 => 'invalid_grant',
    50076 => 'interaction_required', 50079 => 'interaction_required',
    53003 => 'invalid_grant');
for my $code (sort keys %refresh_errors) {
    mock('config', { refresh_error => { code => 0 + $code } });
    is_entra_error(refresh($rt), 400, $refresh_errors{$code}, $code,
        "refresh_error $code");
}
mock('config', { refresh_error => { code => 50076 } });
like(json_of(refresh($rt,
        scope => "api://$CLIENT_ID/user_impersonation"))->{error_description},
    qr/multi-factor authentication to access 'api:\/\/\Q$CLIENT_ID\E'/,
    'refresh_error 50076 names the resource');
mock('config', { refresh_error => { code => 50173 } });
like(json_of(refresh($rt))->{error_description},
    qr/\AAADSTS50173: The provided grant has expired due to it being revoked/,
    'refresh_error 50173 in Entra\'s words');
is_entra_error(refresh($rt, client_secret => 'wrong'), 401,
    'invalid_client', 7000215,
    'refresh_error: client authentication comes first');
mock('config', { refresh_error => { code => 90999, error => 'access_denied',
    description => 'Nope.' } });
$res = refresh($rt);
is_entra_error($res, 400, 'access_denied', 90999,
    'refresh_error with error and description');
like(json_of($res)->{error_description}, qr/\AAADSTS90999: Nope\.\r\n/,
    'refresh_error description used');
mock('config', { refresh_error => { code => 70043 },
    faults => { refresh => { status => 503, count => 1 } } });
is_entra_error(refresh($rt), 503, 'temporarily_unavailable', 90033,
    'faults.refresh before refresh_error');
is(refresh($rt)->{status}, 400, 'then refresh_error');
my ($bad) = post_json('/_mock/config', { refresh_error => { code => 'x' } });
is($bad->{status}, 400, 'refresh_error without a numeric code refused');
($bad) = post_json('/_mock/config',
    { refresh_error => { code => 70043, colour => 1 } });
is($bad->{status}, 400, 'refresh_error unknown member refused');
mock('config', { refresh_error => undef });
is(refresh($rt)->{status}, 200,
    'refresh_error cleared: the same refresh token works again');

# ---------------------------------------------------------------------------
# App roles and group overage in tokens

my $OLGA_OID = '4eb07136-8c5d-4fa1-9d30-b16f5e4c0d27';
my $ADMINS   = '5e8b2c14-7a3d-4f69-b1e0-9d2c6a4f8e31';
($tok) = login(mock_user => 'grace@contoso.example');
is_deeply(verify($tok->{id_token})->{roles}, ['Nao.Admin'],
    'Grace: roles claim');
ok(!exists verify($tok->{access_token})->{roles},
    'no app roles in a Graph access token');
$r = json_of(refresh($tok->{refresh_token},
    scope => "api://$CLIENT_ID/user_impersonation"));
is_deeply(verify($r->{access_token})->{roles}, ['Nao.Admin'],
    'app roles in the app\'s own access token');
is_deeply(verify($r->{id_token})->{roles}, ['Nao.Admin'],
    'roles in a refreshed id_token');
($tok) = login();
ok(!exists verify($tok->{id_token})->{roles}, 'Ada: no roles claim');

my ($olga_tokens) = login(mock_user => 'olga@contoso.example');
my $olga = verify($olga_tokens->{id_token});
is($olga->{oid}, $OLGA_OID, 'Olga\'s oid');
ok(!exists $olga->{groups}, 'overage: no groups claim');
is_deeply($olga->{_claim_names}, { groups => 'src1' }, 'overage: _claim_names');
is_deeply($olga->{_claim_sources}, { src1 => { endpoint =>
    "https://graph.windows.net/$TENANT/users/$OLGA_OID/getMemberObjects" } },
    'overage: _claim_sources');
ok(!exists verify($olga_tokens->{access_token})->{groups},
    'overage: none in the access token either');
my ($olga_listed) = grep { $_->{email} eq 'olga@contoso.example' }
    @{ json_of(get("$BASE/_mock/users"))->{users} };
is(scalar @{ $olga_listed->{groups} }, 250, '_mock/users: Olga has 250 groups');
is($olga_listed->{groups}[230], $ADMINS,
    '_mock/users: nao-admins at position 231');

my @many = map { sprintf('%08x-0000-4000-8000-%012x', $_, $_) } 1 .. 201;
mock('config',
    { user => { email => 'x@fabrikam.example', groups => [@many[0 .. 199]] } });
($tok) = login();
is(scalar @{ verify($tok->{id_token})->{groups} // [] }, 200,
    '200 groups still fit in the claim');
mock('config', { user => { email => 'x@fabrikam.example', groups => \@many } });
($tok) = login();
ok(verify($tok->{id_token})->{_claim_names}, '201 groups: overage');
mock('config', { user => { email => 'y@fabrikam.example', groups => [$ADMINS],
    roles => ['Nao.Viewer', 'Nao.Admin'], overage => JSON::PP::true } });
my ($forced) = login();
my $forced_id = verify($forced->{id_token});
ok(!exists $forced_id->{groups} && $forced_id->{_claim_sources},
    'overage true forces the pointer');
is_deeply($forced_id->{roles}, ['Nao.Viewer', 'Nao.Admin'],
    'custom user roles');
for my $broken ({ roles => 'Nao.Admin' }, { groups => [[]] },
        { overage => 'yes' }) {
    ($bad) = post_json('/_mock/config',
        { user => { email => 'z@fabrikam.example', %$broken } });
    is($bad->{status}, 400, 'bad user refused: ' . join(',', keys %$broken));
}

# ---------------------------------------------------------------------------
# Microsoft Graph: transitiveMemberOf with paging

my $MEMBER_OF = "$BASE/v1.0/me/transitiveMemberOf";

sub graph_get {
    my ($url, $token) = @_;
    my $res = get($url,
        defined $token ? { Authorization => "Bearer $token" } : {});
    return ($res, json_of($res));
}

# every page from URL on; (values, pages) or () when a page fails
sub graph_all {
    my ($url, $token) = @_;
    my (@values, $pages);
    while (defined $url && ++$pages <= 20) {
        my ($res, $body) = graph_get($url, $token);
        return unless $res->{status} == 200;
        push @values, @{ $body->{value} };
        $url = $body->{'@odata.nextLink'};
    }
    return (\@values, $pages);
}

sub is_graph_401 {
    my ($res, $name) = @_;
    my $body = json_of($res);
    is($res->{status}, 401, "$name: 401");
    is($body->{error}{code}, 'InvalidAuthenticationToken',
        "$name: Graph error code");
    ok(length($body->{error}{message} // ''), "$name: message");
    like($res->{headers}{'www-authenticate'} // '', qr/\ABearer /,
        "$name: WWW-Authenticate");
}

mock('config', { user => undef });
my $olga_graph = json_of(refresh($olga_tokens->{refresh_token},
    scope => "$GRAPH/GroupMember.Read.All"));
my $graph_at = $olga_graph->{access_token};
is(verify($graph_at)->{aud}, $GRAPH, 'Graph token for Olga');
my $before = stats();
my ($page1_res, $page1) = graph_get("$MEMBER_OF?\$select=id", $graph_at);
is($page1_res->{status}, 200, 'Graph: 200');
like($page1_res->{headers}{'content-type'},
    qr{\Aapplication/json;odata\.metadata=minimal},
    'Graph content type');
is($page1->{'@odata.context'}, "$BASE/v1.0/\$metadata#directoryObjects(id)",
    '@odata.context');
is(scalar @{ $page1->{value} }, 100, 'default page size 100');
is_deeply($page1->{value}[0],
    { '@odata.type' => '#microsoft.graph.directoryRole',
      id => '7f3e9a61-2c84-4d5b-a0e7-19c6b4d83f52' },
    'a directoryRole on the first page');
like($page1->{'@odata.nextLink'}, qr{\A\Q$MEMBER_OF\E\?.*\$skiptoken=[\w-]+\z},
    'nextLink on the mock');
ok(!grep({ $_->{id} eq $ADMINS } @{ $page1->{value} }),
    'nao-admins is not on the first page');

my ($all, $pages) = graph_all("$MEMBER_OF?\$select=id", $graph_at);
is($pages, 3, 'Olga: three pages of 100');
my @groups = map { $_->{id} }
    grep { $_->{'@odata.type'} eq '#microsoft.graph.group' } @$all;
is(scalar @groups, 250, 'all 250 of Olga\'s groups');
is(scalar(keys %{ { map { $_ => 1 } @groups } }), 250, 'no group twice');
is($groups[230], $ADMINS, 'nao-admins found at position 231');
is(scalar(grep { $_->{'@odata.type'} eq '#microsoft.graph.directoryRole' }
    @$all), 1, 'one directoryRole');
is_deeply([sort map { join ',', sort keys %$_ } @$all],
    [('@odata.type,id') x 251], '$select=id: only id');
is(stats()->{graph} - $before->{graph}, 4, 'stats graph counts requests');
is(stats()->{graph_pages} - $before->{graph_pages}, 4,
    'stats graph_pages counts pages');
is_deeply(stats()->{last_graph_request}, { top => undef, select => 'id',
    has_skiptoken => JSON::PP::true }, 'stats last_graph_request');

(undef, $pages) = graph_all("$MEMBER_OF?\$select=id&\$top=50", $graph_at);
is($pages, 6, '$top=50: six pages');
like((graph_get("$MEMBER_OF?\$top=50", $graph_at))[1]{'@odata.nextLink'},
    qr/\$top=50/, 'nextLink keeps $top');
mock('config', { graph_page_size => 120 });
(undef, $pages) = graph_all("$MEMBER_OF?\$top=5", $graph_at);
is($pages, 3, 'graph_page_size overrides $top');
($bad) = post_json('/_mock/config', { graph_page_size => 0 });
is($bad->{status}, 400, 'graph_page_size 0 refused');
mock('config', { graph_page_size => undef });
my ($top_res, $top_body) = graph_get("$MEMBER_OF?\$top=0", $graph_at);
is($top_res->{status}, 400, '$top=0: 400');
is($top_body->{error}{code}, 'Request_BadRequest',
    '$top=0: Request_BadRequest');
my ($skip_res, $skip_body) = graph_get("$MEMBER_OF?\$skiptoken=bm9wZQ",
    $graph_at);
is($skip_res->{status}, 400, 'forged $skiptoken: 400');
is($skip_body->{error}{code}, 'Directory_ExpiredPageToken',
    'forged $skiptoken: Directory_ExpiredPageToken');

my $full = (graph_get($MEMBER_OF, $graph_at))[1]{value};
is($full->[0]{displayName}, 'Directory Readers',
    'without $select: displayName');
is((grep { $_->{id} eq $ADMINS }
        @{ (graph_all($MEMBER_OF, $graph_at))[0] })[0]{displayName},
    'nao-admins', 'group displayName');

# the mock's base URL as the Graph resource, and Graph's app id
$r = json_of(refresh($olga_graph->{refresh_token},
    scope => "$BASE/GroupMember.Read.All"));
is(verify($r->{access_token})->{aud}, $BASE,
    'base-URL scope: aud is the base URL');
is((graph_get($MEMBER_OF, $r->{access_token}))[0]{status}, 200,
    'Graph accepts the base-URL audience');
($tok) = login();
is((graph_get($MEMBER_OF, $tok->{access_token}))[0]{status}, 200,
    'Graph accepts its app id audience');
my $ada_groups = (graph_get($MEMBER_OF, $tok->{access_token}))[1];
is(scalar @{ $ada_groups->{value} }, 3, 'Ada: a directoryRole and two groups');
ok(!exists $ada_groups->{'@odata.nextLink'}, 'one page, no nextLink');

# the custom user with forced overage, after the config moved on
is_deeply([map { $_->{id} } @{ (graph_get("$MEMBER_OF?\$select=id",
        $forced->{access_token}))[1]{value} }],
    ['7f3e9a61-2c84-4d5b-a0e7-19c6b4d83f52', $ADMINS],
    'a past custom user is still in the directory');

is_graph_401((graph_get($MEMBER_OF))[0], 'no token');
is_graph_401((graph_get($MEMBER_OF, 'not-a-jwt'))[0], 'garbage token');
is_graph_401((graph_get($MEMBER_OF, $tok->{id_token}))[0],
    'an id_token (wrong aud)');
$r = json_of(refresh($tok->{refresh_token},
    scope => "api://$CLIENT_ID/user_impersonation"));
is_graph_401((graph_get($MEMBER_OF, $r->{access_token}))[0],
    'token for the app (wrong aud)');
mock('config', { expires_in => -1 });
($tok) = login();
is_graph_401((graph_get($MEMBER_OF, $tok->{access_token}))[0], 'expired token');
mock('config', { expires_in => 3599 });
my ($head, $body) = split /\./, $graph_at;
is_graph_401((graph_get($MEMBER_OF, "$head.$body." . b64url('x' x 256)))[0],
    'bad signature');

# faults
mock('config', { faults => { graph => { status => 503, count => 1 } } });
my ($fault_res, $fault_body) = graph_get($MEMBER_OF, $graph_at);
is($fault_res->{status}, 503, 'graph fault: 503');
is($fault_body->{error}{code}, 'serviceNotAvailable',
    'graph fault: Graph\'s error shape');
is($fault_res->{headers}{'retry-after'}, 1, 'graph fault: Retry-After');
is((graph_get($MEMBER_OF, $graph_at))[0]{status}, 200,
    'graph fault cleared after count');
mock('config', { faults => { graph => { status => 200, body => 'garbage',
    count => 1 } } });
ok(!eval { $JSON->decode((graph_get($MEMBER_OF, $graph_at))[0]{content}); 1 },
    'graph fault: garbage body');
mock('config', { faults => { graph => { delay_ms => 300, count => 1 } } });
my $graph_start = Time::HiRes::time();
is((graph_get($MEMBER_OF, $graph_at))[0]{status}, 200, 'graph delayed');
cmp_ok(Time::HiRes::time() - $graph_start, '>=', 0.29,
    'graph delay took effect');
mock('reset');

# ---------------------------------------------------------------------------
# make-licence: role rules

my $LICENCE_DIR = "/tmp/licence-selfcheck.$$";
system("$SCRIPTS/make-licence", 'keygen', $LICENCE_DIR) == 0
    or die "keygen failed\n";

sub licence_payload {
    my (@args) = @_;
    open(my $out, '-|', "$SCRIPTS/make-licence", 'sign', '--key',
        "$LICENCE_DIR/licence-key.pem", @args)
        or die "make-licence: $!";
    my $jws = <$out>;
    close $out;
    return if $?;
    my ($h, $p, $sig) = split /\./, $jws =~ s/\s+\z//r;
    my $pub = Crypt::PK::Ed25519->new("$LICENCE_DIR/licence-pub.pem");
    return unless $pub->verify_message(b64url_decode($sig), "$h.$p");
    return $JSON->decode(b64url_decode($p));
}

my $licence = licence_payload('--role-rule', "$ADMINS=admin",
    '--role-rule', 'role:Nao.Admin=admin',
    '--role-rule', 'c7d41a93-2e6f-4b58-8a0c-3f1e9d7b5c26=viewer');
is_deeply($licence->{role_rules}, [{ group => $ADMINS, role => 'admin' },
    { app_role => 'Nao.Admin', role => 'admin' },
    { group => 'c7d41a93-2e6f-4b58-8a0c-3f1e9d7b5c26', role => 'viewer' }],
    '--role-rule, in order');
is_deeply($licence->{features}, ['sso'], '--role-rule keeps the other members');
$licence = licence_payload('--payload-json',
    qq({"role_rules":[{"group":"$ADMINS","role":"admin"}]}));
is_deeply($licence->{role_rules}, [{ group => $ADMINS, role => 'admin' }],
    '--payload-json role_rules');
$licence = licence_payload('--role-rule', 'role:A=viewer', '--payload-json',
    '{"role_rules":[]}');
is_deeply($licence->{role_rules}, [],
    '--payload-json replaces --role-rule rules');
# its usage text on stderr is expected; keep it out of the test output
open(my $stderr, '>&', \*STDERR) or die "dup stderr: $!";
open(STDERR, '>', '/dev/null') or die "/dev/null: $!";
my $malformed = licence_payload('--role-rule', 'no-equals-sign');
open(STDERR, '>&', $stderr) or die "restore stderr: $!";
ok(!$malformed, 'malformed --role-rule refused');
unlink glob("$LICENCE_DIR/*");
rmdir $LICENCE_DIR;

# ---------------------------------------------------------------------------
# Authorize: users, validation, configured errors

($tok) = login(login_hint => 'grace@contoso.example');
is(verify($tok->{id_token})->{name}, 'Grace Hopper', 'login_hint picks Grace');
($tok) = login(mock_user => 'zoe@contoso.example');
is(verify($tok->{id_token})->{name}, "Zo\x{eb} O'Brien",
    'mock_user picks Zoë');
mock('config', { user => 'alan@contoso.example' });
($tok) = login();
my $alan = verify($tok->{id_token});
is($alan->{oid}, '2c9e5f14-6a3b-4d8f-b17e-9f4d3c2a8b05', 'config user Alan');
ok(!exists $alan->{groups}, 'no groups claim without groups');
mock('config', { user => { email => 'x@fabrikam.example', name => 'X',
    groups => ['g1'] } });
($tok) = login();
my $custom = verify($tok->{id_token});
is($custom->{preferred_username}, 'x@fabrikam.example', 'custom user object');
ok($custom->{oid}, 'custom user gets a derived oid');
($bad) = post_json('/_mock/config', { user => 'nobody@contoso.example' });
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
    my $page = get(authorize_url(code_challenge => b64url(sha256('v' x 43)),
        %$params));
    is($page->{status}, 400, "authorize $name: 400");
    like($page->{content}, qr/AADSTS$aadsts:/,
        "authorize $name: AADSTS$aadsts");
}
mock('config',
    { redirect_uris => ['https://nao.example/api/auth/callback/microsoft'] });
my (undef, undef, undef, $page) = get_code();
like($page->{content}, qr/AADSTS50011:/, 'redirect_uris enforced');
mock('config', { redirect_uris => undef });

mock('config', { authorize_error => { error => 'access_denied',
    description => 'AADSTS50105: Your administrator has configured the '
        . 'application to block users.' } });
(undef, undef, undef, $page, $q) = get_code(state => 'xyz');
is($q->{error}, 'access_denied', 'authorize_error: error');
like($q->{error_description}, qr/\AAADSTS50105: /,
    'authorize_error: description');
is($q->{state}, 'xyz', 'authorize_error: state');
mock('config', { authorize_error => undef });

(undef, undef, undef, $page, $q) = get_code(response_mode => 'form_post');
like($page->{content}, qr/<form method="POST" action="\Q$REDIRECT\E"/,
    'form_post response');

# ---------------------------------------------------------------------------
# Faults

for my $endpoint (qw(discovery keys)) {
    my $url = $endpoint eq 'keys' ? "$T/discovery/v2.0/keys"
        : "$T/v2.0/.well-known/openid-configuration";
    mock('config',
        { faults => { $endpoint => { status => 503, count => 1 } } });
    is_entra_error(get($url), 503, 'temporarily_unavailable', 90033,
        "$endpoint 503");
    is(get($url)->{status}, 200, "$endpoint fault cleared after count");
    for my $body (qw(garbage html empty truncated_json), '{"keys":[]}') {
        mock('config',
            { faults => { $endpoint => { body => $body, count => 1 } } });
        my $got = get($url);
        ok(!eval { $JSON->decode($got->{content}); 1 } || $body =~ /keys/,
            "$endpoint body $body is broken");
    }
    # count 2: HTTP::Tiny retries an idempotent request once after a
    # short read (curl, in the module, does not)
    mock('config',
        { faults => { $endpoint => { body => 'truncated', count => 2 } } });
    is(get($url)->{status}, 599,
        "$endpoint truncated: client sees a short body");
    mock('config',
        { faults => { $endpoint => { delay_ms => 300, count => 1 } } });
    my $start = Time::HiRes::time();
    is(get($url)->{status}, 200, "$endpoint delayed");
    cmp_ok(Time::HiRes::time() - $start, '>=', 0.29,
        "$endpoint delay took effect");
}
mock('config', { faults => { authorize => { status => 500, body => 'html',
    count => 1 } } });
(undef, undef, undef, $page) = get_code();
is($page->{status}, 500, 'authorize fault');
($code, $verifier) = get_code();
mock('config', { faults => { token => { status => 502, body => 'html' } } });
is(redeem($code, $verifier)->{status}, 502, 'token fault');
is(redeem($code, $verifier)->{status}, 502, 'token fault stays without count');
mock('config', { faults => { token => undef } });
is(redeem($code, $verifier)->{status}, 200,
    'token fault cleared by null; code was not consumed');
($tok) = login();
mock('config', { faults => { refresh => { status => 400,
    body => '{"error":"invalid_grant"}', count => 1 } } });
is(refresh($tok->{refresh_token})->{status}, 400, 'refresh fault');
is(refresh($tok->{refresh_token})->{status}, 200,
    'refresh works after the fault');
($bad) = post_json('/_mock/config',
    { faults => { tokn => { status => 500 } } });
is($bad->{status}, 400, 'unknown fault endpoint refused');

# ---------------------------------------------------------------------------
# Tampering: each applies to the next id_token only

my %tamper_check = (
    signature   => sub { !eval { verify($_[0]); 1 } && $_[1]{alg} eq 'RS256' },
    alg_none    => sub { $_[1]{alg} eq 'none' && $_[0] =~ /\.\z/ },
    hs256       => sub { $_[1]{alg} eq 'HS256' && eval {
                         decode_jwt(token => $_[0], key => $SECRET); 1 } },
    aud         => sub { $_[2]{aud} ne $CLIENT_ID
                         && eval { verify($_[0]); 1 } },
    iss         => sub { $_[2]{iss} ne "$T/v2.0" && eval { verify($_[0]); 1 } },
    expired     => sub { $_[2]{exp} < time - 3000 },
    nbf_future  => sub { $_[2]{nbf} > time + 3000 },
    nonce       => sub { $_[2]{nonce} ne $_[3] },
    tid         => sub { $_[2]{tid} ne $TENANT && $_[2]{iss} eq "$T/v2.0" },
    crit        => sub { ref $_[1]{crit} eq 'ARRAY' },
    unknown_kid => sub { !grep { $_->{kid} eq $_[1]{kid} }
                         @{ jwks()->{keys} } },
    small_key   => sub { my ($k) = grep { $_->{kid} eq $_[1]{kid} }
                             @{ jwks()->{keys} };
                         $k && length(b64url_decode($k->{n})) == 128 },
    no_oid      => sub { !exists $_[2]{oid} && eval { verify($_[0]); 1 } },
);
for my $kind (sort keys %tamper_check) {
    mock('config', { tamper => $kind });
    my ($tokens, $n) = login();
    my ($header, $claims) = jwt_parts($tokens->{id_token});
    ok($tamper_check{$kind}->($tokens->{id_token}, $header, $claims, $n),
        "tamper $kind");
    is(stats()->{last_tamper}, $kind, "stats last_tamper $kind");
    ($tokens) = login();
    ok(eval { verify($tokens->{id_token}); 1 }, "tamper $kind applied once");
}
mock('config', { tamper => 'garbage' });
($tok) = login();
unlike($tok->{id_token}, qr/\A[^.]+\.[^.]+\.[^.]*\z/,
    'tamper garbage: not a JWT');
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
is(scalar @{ jwks()->{keys} }, 3,
    'new, previous and the small_key key published');
ok(eval { verify($old_tokens->{id_token}); 1 }, 'old token still verifies');
($tok) = login();
is((jwt_parts($tok->{id_token}))[0]{kid}, $rot->{kid},
    'new tokens use the new key');
mock('rotate', { drop_old => JSON::PP::true });
ok(!eval { verify($old_tokens->{id_token}); 1 },
    'drop_old unpublishes the old key');
mock('reset', { keys => JSON::PP::true });
is(scalar @{ jwks()->{keys} }, 1, 'reset keys: one key again');

# ---------------------------------------------------------------------------
# Logout and stats

$res = get("$T/oauth2/v2.0/logout?post_logout_redirect_uri="
    . $HTTP->www_form_urlencode({ u => 'http://127.0.0.1:9/bye' })
        =~ s/^u=//r);
is($res->{headers}{location}, 'http://127.0.0.1:9/bye',
    'logout redirects back');
like(get("$T/oauth2/v2.0/logout")->{content}, qr/signed out/, 'logout page');
login();
refresh('1.Anope', scope => 'openid');
my $s = stats();
is($s->{logout}, 2, 'stats logout');
is($s->{authorize}, 1, 'stats authorize');
is_deeply($s->{token}, { authorization_code => 1, refresh_token => 1,
    refresh_by_scope => { openid => 1 } }, 'stats token');
is($s->{errors}, 1, 'stats errors');
is_deeply($s->{last_token_request},
    { grant_type => 'refresh_token', scope => 'openid',
      client_auth => 'body', has_code_verifier => JSON::PP::false,
      redirect_uri => undef },
    'stats last_token_request');

# userinfo with a Graph access token
($tok) = login();
$res = get("$BASE/oidc/userinfo",
    { Authorization => "Bearer $tok->{access_token}" });
is(json_of($res)->{name}, 'Ada Lovelace', 'userinfo');

# ---------------------------------------------------------------------------
# Interactive mode: a user picker instead of a redirect

my ($ipid, $IBASE) = start_server('mock-entra', '--interactive');
my $picker = get("$IBASE/$TENANT/oauth2/v2.0/authorize?" . (authorize_url(
    code_challenge => b64url(sha256('v' x 43))) =~ s/.*\?//r));
is($picker->{status}, 200, 'interactive: picker page');
like($picker->{content}, qr/mock_user=grace%40contoso\.example/,
    'picker links users');

# ---------------------------------------------------------------------------
# demo-nao

my (undef, $NAO) = start_server('demo-nao');
my $echo = json_of(get("$NAO/_echo/x?y=1",
    { 'X-Nao-User-Email' => 'ada@contoso.example' }));
is($echo->{method}, 'GET', 'echo method');
is($echo->{uri}, '/_echo/x?y=1', 'echo uri');
is($echo->{headers}{'x-nao-user-email'}, 'ada@contoso.example', 'echo header');
my $html = get("$NAO/", { 'X-Nao-User-Name' => '<b>Ada</b>',
    Authorization => 'Bearer 0123456789abcdef' })->{content};
like($html, qr/&lt;b&gt;Ada&lt;\/b&gt;/, 'demo-nao escapes');
unlike($html, qr/0123456789abcdef/, 'demo-nao masks the token');

my @log = do { open my $fh, '<', "/tmp/mock-selfcheck.$$.log" or die; <$fh> };
cmp_ok(scalar @log, '>', 50, 'request log written');
is_deeply([grep { /[?=]|secret/ } @log], [],
    'request log has no query strings or secrets');
unlink "/tmp/mock-selfcheck.$$.log";

done_testing();
