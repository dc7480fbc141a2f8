#!/usr/bin/perl

# An identity provider that is down, slow or talks garbage: the token
# endpoint's failures, an unreachable authority, a timeout; and the
# event loop around a slow sign-in: other requests go on, a client that
# hangs up, a reload while a sign-in waits.

use warnings;
use strict;

use Test::More;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Test::Nginx;
use NaoSSO;

use IO::Select;
use Time::HiRes qw/ time sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy rewrite/);

nao_setup($t);

# 8080: the site; 8083: the same with a 1 s IdP timeout; 8084: an
# authority on a port where nothing listens (8089).

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives() ]}

    log_format status  '\$status \$uri';

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        nao_sso on;
        access_log %%TESTDIR%%/status.log status;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /ping {
            return 200 pong;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%;
        server_name  localhost;

        nao_sso on;
        nao_sso_idp_timeout 1s;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8084%%;
        server_name  localhost;

        nao_sso on;
        nao_sso_authority http://127.0.0.1:%%PORT_8089%%;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /ping {
            return 200 pong;
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(76);
nao_wait($t);

###############################################################################

sub token_fault {
    my (%fault) = @_;
    mock('config', { faults => { token => { %fault, count => 1 } } });
}

# Up to $seconds for $cond to hold; returns its last value.
sub eventually {
    my ($seconds, $cond) = @_;
    my $until = time() + $seconds;
    my $ok;

    until (($ok = $cond->()) || time() > $until) {
        sleep 0.05;
    }
    return $ok;
}

###############################################################################

# Scenario: the token endpoint fails in one way or another while a
# browser completes its sign-in.
# Expected: 502 with a page, no session cookie, one [error] line that
# says what went wrong, and neither the code nor the client secret in
# the log.

sub token_failure {
    my ($t, $name, $fault, $title, $reason) = @_;

    token_fault(%$fault);
    my $flow = approved_sign_in();
    log_since($t);

    my $r = call_back($flow, html => 1);
    is($r->{status}, 502, "$name: callback is 502");
    like(title_of($r) // '', $title, "$name: page title");
    is(session_cookie($r), undef, "$name: no session cookie");
    ok(one_error(log_since($t), $reason), "$name: one error naming it");
    ok(no_secrets_logged($t, $flow->{code}, $NaoSSO::CLIENT_SECRET),
        "$name: no code or secret logged");
    return $r;
}

my $unavailable = qr/^Microsoft sign-in is unavailable$/;

# a 500 as Entra sends it: JSON "temporarily_unavailable", AADSTS90033;
# either of the two pages for a failed IdP, naming the code

my $r = token_failure($t, 'token 500', { status => 500 },
    qr/^Microsoft (sign-in is unavailable|refused to complete the sign-in)$/,
    qr/nao_sso: token endpoint.*(500|temporarily_unavailable)/);
like($r->{body}, qr/AADSTS90033/, 'token 500: page names the code');

token_failure($t, 'token garbage', { body => 'garbage' }, $unavailable,
    qr/nao_sso: token endpoint sent invalid JSON/);
token_failure($t, 'token html', { status => 503, body => 'html' },
    $unavailable, qr/nao_sso: token endpoint answered 503/);
token_failure($t, 'token empty', { body => 'empty' }, $unavailable,
    qr/nao_sso: token endpoint sent invalid JSON/);
token_failure($t, 'token truncated', { body => 'truncated' }, $unavailable,
    qr/nao_sso: token endpoint: .*partial/i);
token_failure($t, 'token truncated json', { body => 'truncated_json' },
    $unavailable, qr/nao_sso: token endpoint sent invalid JSON/);

# Scenario: Entra refuses the code (invalid_grant, AADSTS70008), as the
# JSON error Entra sends with a 400.
# Expected: 502 "Microsoft refused to complete the sign-in" naming the
# AADSTS code; the log names the error and the code.

my $entra = '{"error":"invalid_grant","error_description":"AADSTS70008: '
    . 'The provided authorization code or refresh token has expired due '
    . 'to inactivity. Send a new interactive authorization request for '
    . 'this user and resource.\r\nTrace ID: 0b6c3f1e-2a4d-4e8b-9c1f-'
    . '7d2e5a4b3c10\r\nCorrelation ID: 5f4e3d2c-1b0a-4c9d-8e7f-6a5b4c3d'
    . '2e1f\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[70008],'
    . '"timestamp":"2026-01-01 00:00:00Z","trace_id":"0b6c3f1e-2a4d-4e8b-'
    . '9c1f-7d2e5a4b3c10","correlation_id":"5f4e3d2c-1b0a-4c9d-8e7f-'
    . '6a5b4c3d2e1f","error_uri":"https://login.microsoftonline.com/'
    . 'error?code=70008"}';

$r = token_failure($t, 'token invalid_grant',
    { status => 400, body => $entra },
    qr/^Microsoft refused to complete the sign-in$/,
    qr/token endpoint refused the code: "invalid_grant" \(AADSTS70008\)/);
like($r->{body}, qr/AADSTS70008/, 'token invalid_grant: page names the code');

# Scenario: the same refusal for real: the code expired at the mock
# before nginx redeemed it; an API client.
# Expected: 502 JSON "token_exchange_failed" with code AADSTS70008.

mock('config', { code_lifetime => -1 });
my $flow = approved_sign_in();
mock('config', { code_lifetime => 600 });
log_since($t);

$r = call_back($flow, json => 1);
is($r->{status}, 502, 'expired code: callback is 502');
is(json_of($r)->{error}, 'token_exchange_failed',
    'expired code: JSON error token_exchange_failed');
is(json_of($r)->{code}, 'AADSTS70008', 'expired code: JSON names the code');
is(session_cookie($r), undef, 'expired code: no session cookie');
ok(one_error(log_since($t),
    qr/refused the code: "invalid_grant" \(AADSTS70008\)/),
    'expired code: one error naming the code');

###############################################################################

# Scenario: the authority is a port where nothing listens. nginx was
# started like that (discovery is lazy).
# Expected: nginx serves; starting a sign-in answers 502 "Microsoft
# sign-in is unavailable" at once; one [error] line.

$r = request('/ping', port => 8084);
is($r->{body}, 'pong', 'idp down: nginx started and serves');

$r = request('/api/auth/sign-in', html => 1, port => 8084);
is($r->{status}, 200, 'idp down: sign-in page served');

my $t0 = time();
$r = request('/api/auth/sign-in/microsoft', html => 1, port => 8084);
my $took = time() - $t0;

is($r->{status}, 502, 'idp down: sign-in start is 502');
like(title_of($r) // '', $unavailable, 'idp down: page title');
cmp_ok($took, '<', 1.5, 'idp down: answered quickly');
ok(one_error(log_since($t), qr/nao_sso: discovery fetch failed: /),
    'idp down: one error, discovery fetch failed');

# Scenario: the token endpoint takes 3 s; the server's IdP timeout is 1 s.
# Expected: 502 "Microsoft sign-in is unavailable" after about 1 s;
# one [error] line for the timeout.

token_fault(delay_ms => 3000);
$flow = approved_sign_in(port => 8083);
log_since($t);

$t0 = time();
$r = call_back($flow, html => 1);
$took = time() - $t0;

is($r->{status}, 502, 'slow idp: callback is 502');
like(title_of($r) // '', $unavailable, 'slow idp: page title');
cmp_ok($took, '>', 0.8, 'slow idp: waited for the timeout');
cmp_ok($took, '<', 2.5, 'slow idp: gave up after the timeout');
is(session_cookie($r), undef, 'slow idp: no session cookie');
ok(one_error(log_since($t),
    qr/nao_sso: (token endpoint: .*time|.*did not answer in time)/i),
    'slow idp: one error, timeout');

###############################################################################

# Scenario: one worker; a callback waits 3 s for the token endpoint;
# meanwhile another request and another sign-in arrive.
# Expected: both answered at once while the callback still waits; the
# callback then completes with 302 and a session.

token_fault(delay_ms => 3000);
$flow = approved_sign_in();

$t0 = time();
my $s = call_back($flow, html => 1, start => 1);

$r = request('/ping');
$took = time() - $t0;
is($r->{body}, 'pong', 'event loop: other request answered');
cmp_ok($took, '<', 0.5, 'event loop: other request answered at once');

$r = request('/api/auth/sign-in/microsoft');
$took = time() - $t0;
is($r->{status}, 302, 'event loop: another sign-in starts');
cmp_ok($took, '<', 0.8, 'event loop: another sign-in starts at once');

ok($s && !IO::Select->new($s)->can_read(0),
    'event loop: the callback is still waiting');

$r = request_end($s);
$took = time() - $t0;
is($r->{status}, 302, 'event loop: callback completes');
ok(defined session_cookie($r), 'event loop: session cookie');
cmp_ok($took, '>', 2.5, 'event loop: callback waited for the token');

###############################################################################

# Scenario: the client hangs up 0.3 s into a callback that waits 2 s.
# Expected: the request ends as closed by the client (499), nothing
# crashes, nginx keeps serving and the next sign-in works.

token_fault(delay_ms => 2000);
$flow = approved_sign_in();
log_since($t);

$s = call_back($flow, html => 1, start => 1);
sleep 0.3;
$s->close() if $s;

ok(eventually(3, sub {
    $t->read_file('status.log') =~ m{^499 /api/auth/callback/microsoft$}m
}), 'client gone: request logged as 499');

$r = request('/ping');
is($r->{body}, 'pong', 'client gone: nginx serves');

$r = sign_in(html => 1)->{callback};
is($r->{status}, 302, 'client gone: next sign-in works');
my $cookie = session_cookie($r);
ok(defined $cookie, 'client gone: next sign-in has a session');

my $log = log_since($t);
like($log, qr/client prematurely closed connection/,
    'client gone: error log says the client closed');
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/,
    'client gone: no crash or alert');

###############################################################################

# Scenario: nginx reloads 0.3 s into a callback that waits 2 s.
# Expected: the old worker finishes the callback: 302 and a session; the
# new worker accepts that session, and the one from before the reload
# (the zone survives a reload).

token_fault(delay_ms => 2000);
$flow = approved_sign_in();

my ($old) = ($t->read_file('error.log') =~ /.*start worker process (\d+)/s);

$s = call_back($flow, html => 1, start => 1);
sleep 0.3;

ok(reload_and_wait($t, keep_old => 1), 'reload: new worker started');

$r = request_end($s);
is($r->{status}, 302, 'reload: pending callback completes');
my $fresh = session_cookie($r);
ok(defined $fresh, 'reload: pending callback sets a session');

ok(defined $old && eventually(5, sub { !kill(0, $old) }),
    'reload: old worker exited');

$r = request('/api/auth/get-session', cookie => $fresh);
is(json_of($r)->{user}{email}, 'ada@contoso.example',
    'reload: session from the pending callback works');
$r = request('/api/auth/get-session', cookie => $cookie);
is($r->{status}, 200, 'reload: session from before the reload works');

###############################################################################

# Scenario: the whole file.
# Expected: no worker crashed and the client secret never reached the log.

$log = $t->read_file('error.log');
unlike($log, qr/exited on signal/, 'no worker crashed');
ok(no_secrets_logged($t, $NaoSSO::CLIENT_SECRET), 'client secret not logged');

###############################################################################
