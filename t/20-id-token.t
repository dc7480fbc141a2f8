#!/usr/bin/perl

# The ID token checks, one sign-in per way Microsoft's answer can be
# wrong (the mock's "tamper" kinds); the signing keys: rotation, refetch
# for an unknown key id, the last good keys kept when the keys endpoint
# fails; and a discovery document that fails at first use.

use warnings;
use strict;

use Test::More;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Test::Nginx;
use NaoSSO;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/);

nao_setup($t);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives() ]}

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        nao_sso on;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(121);
nao_wait($t);

###############################################################################

# No ID or access token (a JWS starts with base64url "{") and no garbage
# token of the mock may reach the error log: for no_secrets_logged().
my @TOKENS = (qr/eyJ[\w-]+\.eyJ/, qr/not-a-jwt/);

# The module refetches the keys for an unknown key id at most once per
# 5 s (Provider::kMissRefetchInterval). A step that needs such a refetch
# waits out the window the last one opened.

my $last_miss = 0;

sub key_miss_done {
    $last_miss = time();
}

sub wait_miss_window {
    my $wait = $last_miss + 5.2 - time();
    select undef, undef, undef, $wait if $wait > 0;
}

###############################################################################

# Scenario: the first sign-in, and the discovery endpoint answers 500.
# Expected: 502 "Microsoft sign-in is unavailable", no binding cookie,
# one [error] line naming the status.

mock('config', { faults => { discovery => { status => 500, count => 1 } } });
log_since($t);

my $r = request('/api/auth/sign-in/microsoft', html => 1);
is($r->{status}, 502, 'discovery 500: sign-in start is 502');
is(title_of($r), 'Microsoft sign-in is unavailable',
    'discovery 500: page says sign-in is unavailable');
is(scalar set_cookies($r), 0, 'discovery 500: no cookie set');
ok(one_error(log_since($t), qr/nao_sso: discovery endpoint answered 500/),
    'discovery 500: one error naming the status');

# Scenario: discovery answers 200 with garbage, for an API client.
# Expected: 502 with JSON "idp_unavailable"; the log says the document
# is not JSON.

mock('config', { faults => { discovery => { body => 'garbage',
    count => 1 } } });

$r = request('/api/auth/sign-in/microsoft', json => 1);
is($r->{status}, 502, 'discovery garbage: sign-in start is 502');
is(json_of($r)->{error}, 'idp_unavailable',
    'discovery garbage: JSON error idp_unavailable');
ok(one_error(log_since($t),
    qr/nao_sso: discovery document rejected: .*not a JSON object/),
    'discovery garbage: one error, document not JSON');

# Scenario: discovery answers 200 with an HTML page (a proxy's).
# Expected: the same 502 page; not cached: the next try fetches again.

mock('config', { faults => { discovery => { body => 'html',
    content_type => 'text/html', count => 1 } } });

$r = request('/api/auth/sign-in/microsoft', html => 1);
is($r->{status}, 502, 'discovery html: sign-in start is 502');
is(title_of($r), 'Microsoft sign-in is unavailable',
    'discovery html: page says sign-in is unavailable');
ok(one_error(log_since($t), qr/nao_sso: discovery document rejected/),
    'discovery html: one error, document rejected');

# Scenario: the fault is over (count => 1 used up).
# Expected: the next try fetches discovery again and redirects to the
# authorize endpoint.

$r = request('/api/auth/sign-in/microsoft');
is($r->{status}, 302, 'discovery recovered: sign-in start redirects');
like($r->{headers}{location}[0] // '', qr{/oauth2/v2\.0/authorize\?},
    'discovery recovered: to the authorize endpoint');
is(mock_stats()->{discovery}, 4, 'discovery fetched once per attempt');

# Scenario: a good sign-in; the keys are fetched and cached.
# Expected: 302 with a session cookie.

my $flow = sign_in();
is($flow->{callback}{status}, 302, 'good token: callback redirects');
ok(defined $flow->{cookie}, 'good token: session cookie');
is(mock_stats()->{keys}, 1, 'keys fetched once');
my $good_cookie = $flow->{cookie};
log_since($t);

###############################################################################

# Scenario: each way an ID token can be wrong, one sign-in each.
# Expected: 502 "Microsoft's answer could not be verified" (a page for a
# browser, JSON "invalid_id_token" for an API client), no session cookie,
# one [error] "nao_sso: id token rejected: <reason>" that names the
# failed check, and no code, token or client secret in the log.

sub rejected {
    my ($t, $kind, $reason, %opt) = @_;

    mock('config', { tamper => $kind });
    log_since($t);

    my $f = sign_in(html => $opt{html}, json => !$opt{html});
    my $cb = $f->{callback} // {};

    is(mock_stats()->{last_tamper}, $kind, "$kind: mock sent that token");
    is($cb->{status}, 502, "$kind: callback is 502");

    if ($opt{html}) {
        is(title_of($cb), "Microsoft's answer could not be verified",
            "$kind: page says the answer could not be verified");
    } else {
        is(json_of($cb)->{error}, 'invalid_id_token',
            "$kind: JSON error invalid_id_token");
    }

    is(session_cookie($cb), undef, "$kind: no session cookie");
    ok(one_error(log_since($t), qr/nao_sso: id token rejected: $reason/),
        "$kind: one error naming the check");
    ok(no_secrets_logged($t, $f->{code}, $NaoSSO::CLIENT_SECRET, @TOKENS),
        "$kind: no code, token or secret logged");
}

rejected($t, 'signature', qr/id token signature is invalid/, html => 1);
rejected($t, 'hs256', qr/id token alg "HS256" is not allowed/);
rejected($t, 'aud',
    qr/id token audience "[0-9a-f-]+" does not match client id/, html => 1);
rejected($t, 'iss', qr/id token issuer "[^"]+" does not match expected/);
rejected($t, 'expired', qr/id token expired at \d+/, html => 1);
rejected($t, 'nbf_future', qr/id token is not valid before \d+/);
rejected($t, 'nonce', qr/id token nonce does not match/, html => 1);
rejected($t, 'tid', qr/id token tenant "[0-9a-f-]+" does not match expected/);
rejected($t, 'crit', qr/jws header has "crit"/, html => 1);
rejected($t, 'no_oid', qr/id token has no "oid"/);
rejected($t, 'garbage', qr/jws does not have three parts/, html => 1);

# Scenario: a key id that is not in the JWKS, not even after a refetch.
# Expected: the keys are fetched once more, then the token is rejected.

wait_miss_window();
my $keys = mock_stats()->{keys};
rejected($t, 'unknown_kid', qr/id token is signed with unknown key id/);
is(mock_stats()->{keys}, $keys + 1, 'unknown_kid: keys refetched once');
key_miss_done();

# Scenario: an unsigned token ("alg":"none", no kid) and a token signed
# with a published 1024-bit key (which the module must not import).
# Expected: rejected; for the small key the reason is the key, either as
# unusable (too few bits) or as not among the usable keys.

rejected($t, 'alg_none', qr/id token alg "none" is not allowed/, html => 1);
rejected($t, 'small_key',
    qr/.*(?:unknown key id|fewer than the 2048|shorter than 2048)/);

###############################################################################

# Scenario: Microsoft rolls its keys; the next sign-in names the new kid.
# Expected: the keys are fetched again at once and the sign-in works.

wait_miss_window();
mock('rotate');
$keys = mock_stats()->{keys};
$flow = sign_in();
key_miss_done();
is($flow->{callback}{status}, 302, 'after rotation: sign-in works');
ok(defined $flow->{cookie}, 'after rotation: session cookie');
is(mock_stats()->{keys}, $keys + 1, 'after rotation: keys fetched again');
ok(!count_lines(log_since($t), qr/\[error\]/),
    'after rotation: no error logged');

# Scenario: the keys endpoint starts failing (500); no rotation.
# Expected: the cached keys still verify: the sign-in works and the keys
# endpoint is not even asked.

mock('config', { faults => { keys => { status => 500 } } });
$keys = mock_stats()->{keys};
$flow = sign_in();
is($flow->{callback}{status}, 302, 'keys endpoint down: sign-in works');
ok(defined $flow->{cookie}, 'keys endpoint down: session cookie');
is(mock_stats()->{keys}, $keys, 'keys endpoint down: cached keys used');
$good_cookie = $flow->{cookie};

# Scenario: a rotation while the keys endpoint still fails.
# Expected: the refetch is tried and fails (warned); the last good keys
# stay; the token's new kid is unknown: 502, no session; nginx keeps
# serving and earlier sessions keep working.

wait_miss_window();
mock('rotate');
log_since($t);
$flow = sign_in(html => 1);
key_miss_done();
is($flow->{callback}{status}, 502, 'rotation, keys down: callback is 502');
is(title_of($flow->{callback}), "Microsoft's answer could not be verified",
    'rotation, keys down: page says the answer could not be verified');
is($flow->{cookie}, undef, 'rotation, keys down: no session cookie');
is(mock_stats()->{keys}, $keys + 1, 'rotation, keys down: refetch tried');

my $log = log_since($t);
ok(one_error($log, qr/id token rejected: .*unknown key id/),
    'rotation, keys down: one error, unknown key id');
like(join("\n", lines_matching($log, qr/\[warn\]/)),
    qr/nao_sso: signing keys endpoint answered 500/,
    'rotation, keys down: failed refetch warned');

$r = request('/api/auth/get-session', cookie => $good_cookie);
is($r->{status}, 200, 'rotation, keys down: nginx serves earlier sessions');
$r = request('/api/auth/sign-in', html => 1);
is($r->{status}, 200, 'rotation, keys down: nginx serves pages');

# Scenario: the keys endpoint is back; Microsoft rotates again and drops
# the old key.
# Expected: the next sign-in refetches and works.

mock('config', { faults => { keys => undef } });
mock('rotate', { drop_old => 1 });
wait_miss_window();
$keys = mock_stats()->{keys};
$flow = sign_in();
key_miss_done();
is($flow->{callback}{status}, 302, 'rotation with drop_old: sign-in works');
ok(defined $flow->{cookie}, 'rotation with drop_old: session cookie');
is(mock_stats()->{keys}, $keys + 1, 'rotation with drop_old: keys fetched');

$r = request('/api/auth/get-session', cookie => $flow->{cookie});
is(json_of($r)->{user}{email}, 'ada@contoso.example',
    'rotation with drop_old: the new session works');

###############################################################################

# Scenario: the whole file.
# Expected: the client secret, the ID tokens and the codes never reached
# the error log.

ok(no_secrets_logged($t, $NaoSSO::CLIENT_SECRET, 'mock-secret-value',
    @TOKENS), 'no secret or token in the error log');

###############################################################################
