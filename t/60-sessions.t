#!/usr/bin/perl

# Sessions and the secrets that sign their cookies: get-session, idle
# timeout and maximum age, secure cookie names, the configured redirect
# URI, the password link, sign-out, surviving a reload, rotating
# nao_sso_secret_file, and a zone too small to use.

use warnings;
use strict;

use Test::More;

use Time::HiRes qw/sleep time/;
use Time::Local qw/timegm/;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Test::Nginx;
use NaoSSO;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/);

nao_setup($t);

$t->write_file('a.key', 'a' x 40 . "\n");
$t->write_file('b.key', 'b' x 40 . "\n");

# Servers by port: 8080 plain; 8083 idle timeout 2s; 8084 maximum age 3s;
# 8085 secure cookies; 8086 default cookies and a fixed redirect URI;
# 8087 a password login link; 8088 the same application as 8080 with its
# own discovery cache (another timeout), to see Microsoft go down; 8089
# another application (client id) sharing the zone and the secret.

my $servers = join '',
    server(8080, 'nao_sso_cookie_secure off;'),
    server(8083, 'nao_sso_cookie_secure off;',
        'nao_sso_session_idle_timeout 2s;'),
    server(8084, 'nao_sso_cookie_secure off;',
        'nao_sso_session_idle_timeout 1h;', 'nao_sso_session_max_age 3s;'),
    server(8085, 'nao_sso_cookie_secure on;'),
    server(8086, 'nao_sso_redirect_uri '
        . 'https://nao.example.com/api/auth/callback/microsoft;'),
    server(8087, 'nao_sso_cookie_secure off;',
        'nao_sso_password_login_url /login;'),
    server(8088, 'nao_sso_cookie_secure off;', 'nao_sso_idp_timeout 2s;'),
    server(8089, 'nao_sso_cookie_secure off;',
        'nao_sso_client_id 0e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b;');

$t->write_file_expand('nginx.conf', conf($servers));
$t->try_run('module not loadable')->plan(54);
nao_wait($t);

###############################################################################

# Scenario: no nao_sso_secret_file.
# Expected: a warning at start that sessions will not survive a restart.

my $warning = 'no nao_sso_secret_file, using a random secret: sessions will'
    . ' not survive a restart';
like($t->read_file('error.log'), qr/\[warn\] .*nao_sso: \Q$warning\E/,
    'no secret file: warning at start');

# Scenario: get-session without a session.
# Expected: 401 with a JSON error.

my $r = request('/api/auth/get-session');
is($r->{status}, 401, 'get-session without session is 401');
is(json_of($r)->{error}, 'unauthenticated', 'get-session error is JSON');

# Scenario: get-session after signing in.
# Expected: 200 with the user from the ID token and an ISO expiry that is
# the idle timeout (8h by default) from now.

my $flow = sign_in();
my $cookie = $flow->{cookie};

$r = request('/api/auth/get-session', cookie => $cookie);
my $now = time();
my $session = json_of($r) // {};
is($r->{status}, 200, 'get-session with session is 200');
like($session->{user}{id}, qr/^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/,
    'get-session user id');
is($session->{user}{email}, 'ada@contoso.example', 'get-session email');
is($session->{user}{name}, 'Ada Lovelace', 'get-session name');
is($session->{user}{role}, 'member', 'get-session role');
is($session->{user}{tenantId}, $NaoSSO::TENANT, 'get-session tenantId');

my $left = iso_epoch($session->{expiresAt}) - $now;
ok($left > 8 * 3600 - 5 && $left <= 8 * 3600 + 1,
    "get-session expiresAt is the idle timeout from now ($left s)");

# Scenario: GET sign-out.
# Expected: a page with a form that POSTs to sign-out; nothing is removed.

$r = request('/api/auth/sign-out', cookie => $cookie);
is($r->{status}, 200, 'GET sign-out shows a page');
like($r->{body}, qr{<form method="post" action="/api/auth/sign-out">},
    'sign-out page has a POST form');
is(request('/api/auth/get-session', cookie => $cookie)->{status}, 200,
    'GET sign-out does not sign out');

# Scenario: PUT sign-out.
# Expected: 405 naming the allowed methods.

$r = request('/api/auth/sign-out', method => 'PUT', cookie => $cookie,
    body => 'x');
is($r->{status}, 405, 'PUT sign-out is 405');
is($r->{headers}{allow}[0], 'GET, HEAD, POST', 'PUT sign-out: Allow');

# Scenario: POST sign-out.
# Expected: 302 to the end-session endpoint, the session cookie expired,
# the session gone.

$r = request('/api/auth/sign-out', method => 'POST', cookie => $cookie);
is($r->{status}, 302, 'POST sign-out redirects');
like($r->{headers}{location}[0], qr{^http://127\.0\.0\.1:\d+/
    \Q$NaoSSO::TENANT\E/oauth2/v2\.0/logout\?post_logout_redirect_uri=
    http%3A%2F%2Flocalhost%2F$}x, 'POST sign-out goes to end-session');
like(join(' ', set_cookies($r)), qr/(?:^| )nao_sso=; Path=\/; Max-Age=0;/,
    'POST sign-out expires the session cookie');
is(request('/api/auth/get-session', cookie => $cookie)->{status}, 401,
    'old cookie is 401 after sign-out');

# Scenario: POST sign-out while Microsoft's discovery fails (8088 has not
# fetched it yet); the session is from 8080, the same application.
# Expected: signed out locally all the same: 302 to /, cookie expired,
# session gone, and a warning.

$cookie = sign_in_cookie();
mock('config', { faults => { discovery => { status => 500 } } });
$r = request('/api/auth/sign-out', method => 'POST', cookie => $cookie,
    port => 8088);
mock('config', { faults => { discovery => undef } });
is($r->{status} . ' ' . ($r->{headers}{location}[0] // ''), '302 /',
    'sign-out with the IdP down redirects to /');
like(join(' ', set_cookies($r)), qr/(?:^| )nao_sso=; Path=\/; Max-Age=0;/,
    'sign-out with the IdP down expires the cookie');
is(request('/api/auth/get-session', cookie => $cookie)->{status}, 401,
    'sign-out with the IdP down removes the session');
like($t->read_file('error.log'), qr/\[warn\].*signing out locally only/,
    'sign-out with the IdP down is logged');

# Scenario: a session signed in to 8080's application, presented to
# 8089, a server for another application in the same nginx.
# Expected: no session there (401), one info line; still valid at 8080.

$cookie = sign_in_cookie();
is(request('/api/auth/get-session', cookie => $cookie, port => 8089)
    ->{status}, 401, 'session refused by another application');
is(request('/api/auth/get-session', cookie => $cookie)->{status}, 200,
    'session still valid for its own application');

# Scenario: nao_sso_cookie_secure on.
# Expected: __Host- cookie names, Secure, Path=/; a client that sends
# them back is signed in.

my $secure = qr/; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure/;

$flow = sign_in(port => 8085);
like(join(' ', set_cookies($flow->{start})),
    qr/__Host-nao_sso_b_[\w-]+=[\w-]+$secure/, 'secure: binding cookie');
like(join(' ', set_cookies($flow->{callback} // {})),
    qr/__Host-nao_sso=[\w.-]+$secure/, 'secure: session cookie');
like($flow->{cookie} // '', qr/^__Host-nao_sso=/, 'secure: cookie name');
is(json_of(request('/api/auth/get-session', cookie => $flow->{cookie},
    port => 8085))->{user}{email}, 'ada@contoso.example',
    'secure: signed in with the __Host- cookies');

# Scenario: no nao_sso_cookie_secure at all (8086).
# Expected: secure cookies are the default.

$r = request('/api/auth/sign-in/microsoft', port => 8086);
like(join(' ', set_cookies($r)),
    qr/^__Host-nao_sso_b_[\w-]+=[\w-]+; .*; Secure$/,
    'secure cookies by default');

# Scenario: nao_sso_redirect_uri set (8086).
# Expected: the authorize request carries it; sign-out sends Microsoft
# back to that site's root.

my $p = authorize_params($r->{headers}{location}[0] // '');
is($p->{redirect_uri}, 'https://nao.example.com/api/auth/callback/microsoft',
    'redirect_uri from nao_sso_redirect_uri');

$r = request('/api/auth/sign-out', method => 'POST', port => 8086);
$p = authorize_params($r->{headers}{location}[0] // '');
is($p->{post_logout_redirect_uri}, 'https://nao.example.com/',
    'post_logout_redirect_uri from nao_sso_redirect_uri');

# Scenario: nao_sso_password_login_url /login (8087), and without it.
# Expected: the sign-in page links to /login; without it no such link.

$r = request('/api/auth/sign-in', html => 1, port => 8087);
like($r->{body}, qr{<a href="/login">Sign in with email and password</a>},
    'sign-in page links to the password login');

$r = request('/api/auth/sign-in', html => 1);
like($r->{body}, qr/Sign in with Microsoft/, 'sign-in page without link');
unlike($r->{body}, qr/email and password/, 'no password link by default');

# Scenario: idle timeout 2s (8083), used every half second for 4 s, then
# left idle for 3 s; at the same time maximum age 3s with idle 1h
# (8084), used all along.
# Expected: the first lives while used and dies when idle; the second
# lives for less than its 3 s whatever the use: alive before 2 s, gone
# after 3 s (nginx counts whole seconds).

my $idle = sign_in_cookie(port => 8083);
my $before = time();
my $aged = sign_in_cookie(port => 8084);
my $after = time();
my (@idle, @alive, @dead);

for (1 .. 8) {
    sleep(0.5);
    push @idle, session_status($idle, 8083);

    my $status = session_status($aged, 8084);
    my $at = time();
    push @alive, $status if $at - $before < 1.9;
    push @dead, $status if $at - $after > 3.1;
}

is("@idle", '200 200 200 200 200 200 200 200',
    'idle timeout: a session in use lives on');
like("@alive", qr/^200 200( 200)*$/, 'maximum age: alive at first');
like("@dead", qr/^401( 401)*$/, 'maximum age: gone after 3 s of use');

sleep(3);
is(session_status($idle, 8083), 401, 'idle timeout: idle 3 s, gone');

# Scenario: a reload with no secret file.
# Expected: the session survives (zone and random secret are kept); a
# restart does not keep it.

$cookie = sign_in_cookie();
ok(reload_and_wait($t), 'reloaded');
is(session_status($cookie), 200, 'session survives a reload');

start($t, $servers);
is(session_status($cookie), 401, 'session does not survive a restart');

# Scenario: nao_sso_secret_file a.key.
# Expected: no random-secret warning; sessions work.

my $secret_a = secret_files('a.key');
my $secret_ba = secret_files('b.key', 'a.key');
my $secret_b = secret_files('b.key');

start($t, $secret_a . $servers);
unlike(join("\n", lines_matching(log_since($t), qr/\[warn\]/)),
    qr/no nao_sso_secret_file/, 'secret file: no warning');

my $cookie_a = sign_in_cookie();
is(session_status($cookie_a), 200, 'signed with A');

# Scenario: rotation, "nao_sso_secret_file b.key a.key;" and a reload.
# Expected: the old cookie still verifies with A; a new one works.

reconfigure($t, $secret_ba . $servers);
is(session_status($cookie_a), 200, 'B A: cookie signed with A works');

my $cookie_b = sign_in_cookie();
is(session_status($cookie_b), 200, 'B A: new sign-in works');

# Scenario: back to "nao_sso_secret_file a.key;".
# Expected: the new cookie was signed with B: A alone refuses it.

reconfigure($t, $secret_a . $servers);
is(session_status($cookie_b), 401, 'A only: cookie signed with B refused');
is(session_status($cookie_a), 200, 'A only: cookie signed with A works');

# Scenario: "nao_sso_secret_file b.key;" only.
# Expected: the cookie signed with A stops working; B's still works.

reconfigure($t, $secret_b . $servers);
is(session_status($cookie_a), 401, 'B only: cookie signed with A refused');
is(session_status($cookie_b), 200, 'B only: cookie signed with B works');

# Scenario: a second secret file that does not exist.
# Expected: emerg, as for the first: every file given is read.

ok(!start($t, secret_files('a.key', 'missing.key') . $servers),
    'missing second secret file: nginx does not start');
like(emergs($t), qr/nao_sso_secret_file "[^"]*missing\.key" cannot be read/,
    'missing second secret file: emerg logged');

# Scenario: nao_sso_zone_size 1k.
# Expected: emerg, nginx does not start.

ok(!start($t, "    nao_sso_zone_size 1k;\n" . $servers),
    'zone 1k: nginx does not start');
like(emergs($t), qr/nao_sso_zone_size "1024" is too small/,
    'zone 1k: emerg logged');

###############################################################################

# The status of get-session with $cookie on the server on $port.
sub session_status {
    my ($cookie, $port) = @_;

    return request('/api/auth/get-session', cookie => $cookie,
        port => $port)->{status};
}

sub secret_files {
    return '    nao_sso_secret_file '
        . join(' ', map { "%%TESTDIR%%/$_" } @_) . ";\n";
}

# The emerg lines of the error log since the last start.
sub emergs {
    my ($t) = @_;
    return join "\n", lines_matching(log_since($t), qr/\[emerg\]/);
}

sub iso_epoch {
    my ($iso) = @_;

    my @f = ($iso // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/
        or return 0;
    return timegm($f[5], $f[4], $f[3], $f[2], $f[1] - 1, $f[0]);
}

###############################################################################

# Stops the running nginx and starts another with this http{} body;
# true if it started.
sub start {
    my ($t, $http) = @_;
    return restart($t, conf($http));
}

# Rewrites the configuration and reloads; the checks that follow fail
# if nginx does not take it.
sub reconfigure {
    my ($t, $http) = @_;

    $t->write_file_expand('nginx.conf', conf($http));
    reload_and_wait($t) or diag('reload did not complete');
}

###############################################################################

# The whole configuration: the module's http{} settings, then $http.
sub conf {
    my ($http) = @_;

    return <<"EOF";

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives(cookie_secure => undef) ]}

$http
}

EOF
}

sub server {
    my ($port, @directives) = @_;
    my $extra = join "\n", map { "        $_" } @directives;

    return <<"EOF";
    server {
        listen       127.0.0.1:%%PORT_$port%%;
        server_name  localhost;

        nao_sso on;
$extra

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

EOF
}

###############################################################################
