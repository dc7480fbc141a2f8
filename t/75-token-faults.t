#!/usr/bin/perl

# Downstream tokens when Entra says no or is out: a refresh token it
# refuses (invalid_grant AADSTS70008, 50173, 70043, a revoked one;
# interaction_required AADSTS50076) ends the session, for a named token
# obtained on first use, for an expired default token, for a burst of
# requests waiting on one refresh and for a refresh ahead of expiry; a
# transient failure (500, garbage, a timeout) lets a still-valid token
# serve and backs off for 10 s, and with an expired token answers 503
# with Retry-After, for a burst too, without ever reaching nao.

use warnings;
use strict;

use Test::More;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Test::Nginx;
use NaoSSO;

use List::Util qw/max/;
use Time::HiRes qw/sleep time/;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/);

nao_setup($t);

my $DEFAULT_SCOPE = "$NaoSSO::CLIENT_ID/.default";
my $GRAPH_SCOPE = 'https://graph.microsoft.com/User.Read';

# 8080: the default token only; 8083: a named Graph token as well, which
# a session obtains on its first request there. Both give Entra 1 s.

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives() ]}
    nao_sso_idp_timeout 1s;

    log_format upstream  '\$request_uri \$status \$upstream_addr';
    access_log %%TESTDIR%%/access.log upstream;

    server {
        listen       127.0.0.1:%%PORT_8080%% reuseport;
        server_name  localhost;

        nao_sso on;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%;
        server_name  localhost;

        nao_sso on;
        nao_sso_downstream graph $GRAPH_SCOPE;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /optional/ {
            nao_sso optional;
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(133);
nao_wait($t);

###############################################################################

# The sessions the file needs a clock for sign in at the start: those
# for a still-valid token first, with tokens of 30 s, so that they are
# inside the refresh window (the second 15 s) later on; those for an
# expired token next, with tokens of 2 s. Every later sign-in and every
# refresh hands out tokens of an hour.

mock('config', { expires_in => 30 });
my %valid = map { $_ => sign_in_cookie() } qw/500 garbage timeout gone/;
my $valid_signed = time();
my %valid_token = map { $_ => token_of(request("/_echo/valid-$_",
    cookie => $valid{$_})) } keys %valid;

mock('config', { expires_in => 2 });
my %expired = map { $_ => sign_in_cookie() }
    qw/500 garbage timeout burst gone_api gone_html gone_burst/;
my $expired_signed = time();

mock('config', { expires_in => 3600 });

###############################################################################

# Scenario: Entra refuses the refresh token when a session first needs
# its Graph token at 8083: AADSTS70008, 50173 and 70043 (invalid_grant)
# and 50076 (interaction_required), to a browser and to an API client.
# Expected: a browser is sent to sign in again, back to where it was; an
# API client gets 401 "session_expired"; either way the session cookie
# is expired, nao is not reached, one error line names the user and the
# AADSTS code, and the cookie is dead afterwards.

for my $case ([70008, 'html'], [70008, 'json'], [50173, 'html'],
    [50173, 'json'], [70043, 'html'], [70043, 'json'],
    [50076, 'json', 'interaction_required'])
{
    my ($code, $kind, $error) = @$case;
    session_ends($t, "named $code $kind", sign_in_cookie(port => 8083),
        code => $code, kind => $kind, error => $error, port => 8083);
}

# Scenario: where nao_sso is optional (8083 /optional/), Entra refuses
# the refresh token when the session first needs its Graph token.
# Expected: the request goes on to nao as an anonymous one (no identity,
# no token), and the session is gone.

{
    my $cookie = sign_in_cookie(port => 8083);
    mock('config', { refresh_error => { code => 70008 } });
    my $r = request('/optional/reports', cookie => $cookie, json => 1,
        port => 8083);
    mock('config', { refresh_error => undef });

    my $seen = (json_of($r) // {})->{headers} // {};
    is($r->{status}, 200, 'optional, refresh token gone: nao is reached');
    is(join(',', sort grep { /^x-nao-/ } keys %$seen), '',
        'optional, refresh token gone: as an anonymous request');
    is(request('/api/auth/get-session', cookie => $cookie, port => 8083)
        ->{status}, 401, 'optional, refresh token gone: the session ended');
}

# Scenario: Entra refuses the named Graph token for lack of consent
# (invalid_grant, AADSTS65001) when a session first needs it at 8083.
# Expected: the session lives on (signing in again would not help and
# would loop); the request gets 503 token_unavailable; one error line
# names the scope and the code; once consent is there, it works.

{
    my $cookie = sign_in_cookie(port => 8083);
    mock('config', { refresh_error => { code => 65001 } });
    log_since($t);
    my $r = request('/consent', cookie => $cookie, json => 1,
        port => 8083);
    my $log = log_since($t);
    mock('config', { refresh_error => undef });

    is($r->{status} . ' ' . ((json_of($r) // {})->{error} // '-'),
        '503 token_unavailable', 'consent missing: 503, not signed out');
    is(scalar lines_matching($log,
        qr/\[error\].*Entra refused a token for ".*" to user ".*": \S+ /
        . qr/\(AADSTS65001\); check that scope's permission/), 1,
        'consent missing: one error line names the scope and code');
    is(request('/api/auth/get-session', cookie => $cookie, port => 8083)
        ->{status}, 200, 'consent missing: the session lives on');

    my $later = wait_until(15, sub {
        request('/consent', cookie => $cookie, json => 1,
            port => 8083)->{status} == 200 });
    ok($later, 'consent granted: the token comes after the backoff');
}

# Scenario: alan signs in at 8083 and an administrator revokes his
# sessions at Entra (the mock's revoke: his refresh tokens are no
# longer honoured); then his first request at 8083, an API one.
# Expected: Entra answers AADSTS50173 by itself; the session ends as
# above.

my $alan = sign_in_cookie(port => 8083, user => 'alan@contoso.example');
ok(mock('revoke', { user => 'alan@contoso.example' })->{revoked} >= 1,
    'revoked: the mock revoked his refresh token');
session_ends($t, 'revoked', $alan, code => 50173, kind => 'json',
    port => 8083, configured => 0);

###############################################################################

# Scenario: the same refusal (AADSTS70008) for the default token, which
# has expired, at 8080.
# Expected: the same answers.

wait_until(5, sub { time() > $expired_signed + 3 });

session_ends($t, 'expired html', $expired{gone_html}, code => 70008,
    kind => 'html');
session_ends($t, 'expired json', $expired{gone_api}, code => 70008,
    kind => 'json');

# Scenario: ten API requests at once of a session whose token has
# expired, while the one refresh they wait for is refused (AADSTS70008)
# after 0.5 s.
# Expected: one grant; every request gets 401 "session_expired" and the
# session cookie expired, whichever request ran the refresh; none
# reaches nao.

mock('config', { refresh_error => { code => 70008 },
    faults => { refresh => { delay_ms => 500, count => 1 } } });
my $gone_grants = refresh_grants();

my @gone = requests_at_once(10, '/_echo/gone-burst',
    cookie => $expired{gone_burst}, json => 1);
mock('config', { refresh_error => undef });

is(refresh_grants() - $gone_grants, 1, 'refused burst: one refresh grant');
is(join(' ', map { $_->{status} } @gone), join(' ', (401) x 10),
    'refused burst: all 401');
is(join(' ', map { (json_of($_) // {})->{error} // 'none' } @gone),
    join(' ', ('session_expired') x 10),
    'refused burst: all session_expired');
is(scalar(grep { join(' ', set_cookies($_)) =~ /(?:^| )nao_sso=;/ } @gone),
    10, 'refused burst: all expire the cookie');
is(upstream_of($t, '/_echo/gone-burst'), '-',
    'refused burst: nao not reached');

###############################################################################

# Scenario: the token has expired and the refresh fails for a while: a
# 500 as Entra sends it, a garbage body, an answer later than the 1 s
# nginx gives Entra. An API request, then a navigation.
# Expected: 503 with Retry-After: 10, JSON "token_unavailable" for the
# API request and a page for the navigation; nao is not reached; the
# refresh was tried, and its failure is one error line.

my $log_500 = token_unavailable($t, '500', $expired{500}, { status => 500 },
    qr/.*AADSTS90033/);
token_unavailable($t, 'garbage', $expired{garbage}, { body => 'garbage' },
    qr/.*JSON/i);
token_unavailable($t, 'timeout', $expired{timeout}, { delay_ms => 1500 },
    qr/.*(time|Timeout)/);

# Scenario: the error line of the refresh that Entra answered with 500.
# Expected: it names Entra's code once.

my ($line_500) = lines_matching($log_500,
    qr/\[error\].*refreshing the token for/);
is(scalar(() = ($line_500 // '') =~ /AADSTS90033/g), 1,
    'expired, 500: the error line names the code once');

# Scenario: ten API requests at once of a session whose token has
# expired, while the one refresh they wait for fails after 0.5 s.
# Expected: one grant; all get 503 with Retry-After; none reaches nao.

mock('config',
    { faults => { refresh => { status => 500, delay_ms => 500 } } });
my $grants = refresh_grants();
log_since($t);

my @burst = requests_at_once(10, '/_echo/burst', cookie => $expired{burst},
    json => 1);
mock('config', { faults => { refresh => undef } });

is(join(' ', map { $_->{status} } @burst), join(' ', (503) x 10),
    'burst: all 503');
is(scalar(grep { ($_->{headers}{'retry-after'}[0] // '') eq '10' } @burst),
    10, 'burst: all with Retry-After');
is(refresh_grants() - $grants, 1, 'burst: one refresh grant');
is(upstream_of($t, '/_echo/burst'), '-', 'burst: nao not reached');

###############################################################################

# Scenario: the sessions signed in with tokens of 30 s, now in the second
# half of that, inside the refresh window; the refresh fails with a 500,
# garbage or a timeout.
# Expected: the request is proxied with the still-valid token; the
# refresh was tried once and its failure logged as one error line that
# says it is retried in 10 s.

sleep(max(0, $valid_signed + 15.2 - time()));

mock('config', { faults => { refresh => { status => 500 } } });
token_still_served($t, '500', $valid{500}, $valid_token{500},
    qr/.*AADSTS90033/);
my $failed_500 = time();

# Scenario: the session whose refresh answered 500 just now, five more
# requests, the 500 still on.
# Expected: served with the valid token and no new grant: backoff.

$grants = refresh_grants();
my @more = map { request("/_echo/backoff-$_", cookie => $valid{500}) } 1 .. 5;
is(scalar(grep { token_of($_) eq $valid_token{500} } @more), 5,
    'backoff: the valid token served');
is(grants_within(1, $grants), 0, 'backoff: no new refresh attempt');
mock('config', { faults => { refresh => undef } });

mock('config', { faults => { refresh => { body => 'garbage' } } });
token_still_served($t, 'garbage', $valid{garbage}, $valid_token{garbage},
    qr/.*JSON/i);
mock('config', { faults => { refresh => undef } });

mock('config', { faults => { refresh => { delay_ms => 1500, count => 1 } } });
token_still_served($t, 'timeout', $valid{timeout}, $valid_token{timeout},
    qr/.*(time|Timeout)/);

# Scenario: Entra refuses the refresh token (AADSTS70043) in a refresh
# ahead of expiry.
# Expected: the request in hand is proxied with the valid token; one
# error line names the code; the session has ended after that.

mock('config', { refresh_error => { code => 70043 } });
log_since($t);
my $r = request('/_echo/ahead-gone', cookie => $valid{gone});
my $log = '';
wait_until(3, sub { ($log .= log_since($t)) =~ /Entra refused/ });
mock('config', { refresh_error => undef });

is(token_of($r), $valid_token{gone}, 'refused ahead: request served');
ok(one_error($log, refused('[^"]+', 'invalid_grant', 70043)),
    'refused ahead: one error naming the code');
ok(wait_until(2, sub {
    request('/api/auth/get-session', cookie => $valid{gone})->{status} == 401
}), 'refused ahead: the session has ended');

# Scenario: the session whose refresh answered 500, some seconds later
# (still within 10 s of the failure).
# Expected: still no new attempt.

$grants = refresh_grants();
$r = request('/_echo/backoff-later', cookie => $valid{500});
is(token_of($r), $valid_token{500}, 'backoff later: the valid token served');
is(grants_within(1, $grants), 0, 'backoff later: no new attempt');

# Scenario: the same session once the 10 s backoff is over; Entra is
# fine again.
# Expected: one new refresh, and then the new token.

sleep(max(0, $failed_500 + 10.5 - time()));

$grants = refresh_grants();
my $new = '';
wait_until(3, sub {
    $new = token_of(request('/_echo/after-backoff', cookie => $valid{500}));
    $new ne $valid_token{500};
});
ok($new ne '' && $new ne $valid_token{500}, 'after backoff: a new token');
is(refresh_grants() - $grants, 1, 'after backoff: one refresh');

# Scenario: the session whose expired token could not be refreshed (500)
# once Entra is fine again and Retry-After has passed.
# Expected: proxied with a new token.

$r = request('/_echo/recovered', cookie => $expired{500});
is($r->{status}, 200, 'expired, Entra back: proxied');
ok(token_of($r) ne '', 'expired, Entra back: with a token');

###############################################################################

# Scenario: the whole file.
# Expected: no access or ID token (a JWT), no refresh token of the mock
# ("1.A..."), no cookie or client secret in the log, leaving aside
# nginx's own debug entries of what is proxied; no worker crashed.

ok(no_secrets_logged_but_proxied($t, $NaoSSO::CLIENT_SECRET,
    map({ cookie_value($_) } values %valid, values %expired, $alan),
    qr/eyJ[\w-]+\.eyJ/, qr/1\.A[\w-]{40}/),
    'no token, cookie or secret logged');
unlike($t->read_file('error.log'), qr/exited on signal/, 'no worker crashed');

###############################################################################

sub token_of {
    my ($r) = @_;
    return upstream_headers($r)->{'x-nao-access-token'} // '';
}

# How many refresh grants the mock has seen since it had $before, once
# they change or $seconds have passed: for a refresh that must not start
# in the background.
sub grants_within {
    my ($seconds, $before) = @_;
    my $grants;

    wait_until($seconds, sub { ($grants = refresh_grants()) != $before });
    return $grants - $before;
}

# The error line of a refresh token Entra refused; $user is a regex.
sub refused {
    my ($user, $error, $code) = @_;
    my $what = qr/Entra refused the refresh token of user "$user"/;

    return qr/nao_sso: $what: "$error" \(AADSTS$code\), the session ends$/;
}

# The error line of a refresh of the default token that failed for a
# reason matching $reason.
sub refresh_failed {
    my ($reason) = @_;
    my $what = qr/refreshing the token for "\Q$DEFAULT_SCOPE\E" failed:/;

    return qr/nao_sso: $what $reason.*, retrying in 10 s$/;
}

# The upstream address the access log has for $uri, "-" when nao was not
# asked; undef when the request is not in the log.
sub upstream_of {
    my ($t, $uri) = @_;
    my $addr;

    wait_until(2, sub {
        ($addr) = $t->read_file('access.log') =~ /^\Q$uri\E \d+ (\S+)$/m;
        defined $addr;
    });
    return $addr;
}

# A session whose refresh token Entra refuses on this request.
# Options: code (AADSTS), error (invalid_grant), kind (html or json), port,
# configured => 0 (Entra refuses it by itself: no refresh_error).
sub session_ends {
    my ($t, $name, $cookie, %o) = @_;
    my $error = $o{error} // 'invalid_grant';
    my $path = "/reports/$o{code}/$o{kind}?port=" . ($o{port} // 8080)
        . "&q=a%20b";

    my $user = (json_of(request('/api/auth/get-session', cookie => $cookie,
        port => $o{port})) // {})->{user}{id} // 'none';

    mock('config', { refresh_error => { code => $o{code} } })
        if $o{configured} // 1;
    log_since($t);
    my $r = request($path, cookie => $cookie, port => $o{port},
        $o{kind} => 1);
    my $log = log_since($t);
    mock('config', { refresh_error => undef });

    if ($o{kind} eq 'html') {
        my $location = $r->{headers}{location}[0] // '';
        is($r->{status}, 302, "$name: redirect");
        ok($location =~ m{^/api/auth/sign-in\?return_to=}
            && authorize_params($location)->{return_to} eq $path,
            "$name: to sign in, back to the page");
    } else {
        is($r->{status}, 401, "$name: 401");
        is((json_of($r) // {})->{error}, 'session_expired',
            "$name: JSON session_expired");
    }

    like(join(' ', set_cookies($r)),
        qr/(?:^| )nao_sso=;[^,]*(?:Max-Age=0|expires=Thu, 01 Jan 1970)/i,
        "$name: session cookie expired");
    ok(one_error($log, refused(quotemeta $user, $error, $o{code})),
        "$name: one error naming the code");
    is(request('/api/auth/get-session', cookie => $cookie, port => $o{port})
        ->{status}, 401, "$name: the cookie is dead");
    is(upstream_of($t, $path), '-', "$name: nao not reached");
}

# A session whose token has expired; the refresh fails with $fault (on
# until this returns).
sub token_unavailable {
    my ($t, $name, $cookie, $fault, $reason) = @_;

    mock('config', { faults => { refresh => $fault } });
    my $grants = refresh_grants();
    log_since($t);

    my $r = request("/_echo/unavailable-$name", cookie => $cookie,
        json => 1);
    my $log = log_since($t);
    my $page = request("/unavailable-$name", cookie => $cookie, html => 1);
    my $tried = refresh_grants() - $grants;

    mock('config', { faults => { refresh => undef } });

    is($r->{status}, 503, "expired, $name: 503");
    is($r->{headers}{'retry-after'}[0], '10', "expired, $name: Retry-After");
    is((json_of($r) // {})->{error}, 'token_unavailable',
        "expired, $name: JSON token_unavailable");
    ok(one_error($log, refresh_failed($reason)),
        "expired, $name: one error for the failed refresh");
    cmp_ok($tried, '>=', 1, "expired, $name: the refresh was tried");
    is(upstream_of($t, "/_echo/unavailable-$name"), '-',
        "expired, $name: nao not reached");

    is($page->{status}, 503, "expired, $name: navigation 503");
    is(title_of($page), 'Your data access could not be renewed',
        "expired, $name: navigation gets a page");
    is($page->{headers}{'retry-after'}[0], '10',
        "expired, $name: navigation Retry-After");
    is(upstream_of($t, "/unavailable-$name"), '-',
        "expired, $name: navigation, nao not reached");

    return $log;
}

# A session whose token is valid but inside the refresh window; the
# refresh fails in the background.
sub token_still_served {
    my ($t, $name, $cookie, $token, $reason) = @_;
    my $grants = refresh_grants();
    log_since($t);

    my $r = request("/_echo/still-$name", cookie => $cookie);
    my $log = '';
    wait_until(4, sub { ($log .= log_since($t)) =~ /retrying in/ });

    is($r->{status}, 200, "valid, $name: proxied");
    is(token_of($r), $token, "valid, $name: with the valid token");
    ok(one_error($log, refresh_failed($reason)),
        "valid, $name: one error, retried in 10 s");
    is(refresh_grants() - $grants, 1, "valid, $name: one refresh tried");
}

###############################################################################
