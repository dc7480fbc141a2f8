#!/usr/bin/perl

# The whole Microsoft sign-in through the module: redirect to the
# authorize endpoint with PKCE, state and nonce; the callback; the
# session cookie; identity headers upstream; get-session; sign-out.

use warnings;
use strict;

use Test::More;

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

        location /vars {
            set \$who "\$nao_sso_user_id|\$nao_sso_user_email";
            set \$who "\$who|\$nao_sso_user_name|\$nao_sso_user_role";
            return 200 "\$who|\$nao_sso_tenant_id";
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(33);
nao_wait($t);

###############################################################################

# Scenario: an API client without a session.
# Expected: 401 with a JSON body naming where to sign in.

my $r = request('/reports', json => 1);
is($r->{status}, 401, 'api request without session is 401');
is(json_of($r)->{error}, 'unauthenticated', 'error is unauthenticated');
is(json_of($r)->{signInUrl}, '/api/auth/sign-in/microsoft',
    'signInUrl points at the microsoft sign-in');

# Scenario: nao's own /api/auth/ routes under "nao_sso on".
# Expected: like any other path, they need a session.

$r = request('/api/auth/sign-in/email', method => 'POST', json => 1);
is($r->{status}, 401, 'nao\'s own auth route needs a session too');

# Scenario: a browser navigation without a session.
# Expected: 302 to the sign-in page, carrying the original path and query.

$r = request('/reports/q1?year=2026', html => 1);
is($r->{status}, 302, 'navigation without session is redirected');
is($r->{headers}{location}[0],
    '/api/auth/sign-in?return_to=%2Freports%2Fq1%3Fyear%3D2026',
    'redirect keeps the original path and query');

# Scenario: the sign-in page.
# Expected: a "Sign in with Microsoft" button that keeps return_to.

$r = request('/api/auth/sign-in?return_to=/reports', html => 1);
is($r->{status}, 200, 'sign-in page served');
like($r->{body}, qr/Sign in with Microsoft/, 'sign-in page has the button');
like($r->{body}, qr{/api/auth/sign-in/microsoft\?return_to=%2Freports},
    'button keeps return_to');

# Scenario: starting the sign-in.
# Expected: 302 to the tenant's authorize endpoint with every parameter
# of the code flow with PKCE, and a binding cookie.

$r = request('/api/auth/sign-in/microsoft?return_to=/reports');
is($r->{status}, 302, 'sign-in start redirects');

my $location = $r->{headers}{location}[0] // '';
my $port = port(8081);
like($location,
    qr{^http://127\.0\.0\.1:$port/$NaoSSO::TENANT/oauth2/v2\.0/authorize\?},
    'redirect goes to the discovered authorize endpoint');

my $p = authorize_params($location);
is($p->{client_id}, $NaoSSO::CLIENT_ID, 'client_id');
is($p->{response_type}, 'code', 'response_type=code');
is($p->{redirect_uri}, 'http://localhost/api/auth/callback/microsoft',
    'redirect_uri built from scheme and host');
is($p->{scope}, "openid profile email offline_access $NaoSSO::CLIENT_ID"
    . '/.default', 'scope with the default token scope');
is($p->{code_challenge_method}, 'S256', 'PKCE S256');
like($p->{code_challenge}, qr/^[A-Za-z0-9_-]{43}$/, 'code_challenge');
like($p->{state}, qr/^[A-Za-z0-9_-]{43}$/, 'state');
like($p->{nonce}, qr/^[A-Za-z0-9_-]{43}$/, 'nonce');
like(join(' ', set_cookies($r)),
    qr/nao_sso_b_[\w-]+=[\w-]+; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax/,
    'binding cookie set');

# Scenario: the full sign-in as a browser does it.
# Expected: the callback redirects to return_to and sets the session
# cookie, HttpOnly and SameSite=Lax.

my $flow = sign_in(return_to => '/reports');
is($flow->{callback}{status}, 302, 'callback redirects');
is($flow->{callback}{headers}{location}[0], '/reports',
    'callback goes to return_to');
ok(defined $flow->{cookie}, 'session cookie set');
like(join(' ', set_cookies($flow->{callback})),
    qr/nao_sso=[\w.-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax/,
    'session cookie attributes');

my $cookie = $flow->{cookie};

# Scenario: a signed-in request proxied to nao, with spoofed headers.
# Expected: nao sees the identity from the ID token, not the client's
# X-Nao-* headers, and never sees the module's cookies.

$r = request('/whoami', json => 1, cookie => "$cookie; theme=dark",
    headers => ['X-Nao-User-Role' => 'admin', 'X-Nao-Custom' => 'x']);
my $seen = json_of($r)->{headers} // {};
is($seen->{'x-nao-user-email'}, 'ada@contoso.example', 'email upstream');
is($seen->{'x-nao-user-role'}, 'member', 'role upstream is member');
ok(!exists $seen->{'x-nao-custom'}, 'spoofed X-Nao- header removed');
is($seen->{cookie}, 'theme=dark', 'module cookie hidden from upstream');

# Scenario: variables.
# Expected: the same identity in $nao_sso_* variables.

$r = request('/vars', cookie => $cookie);
like($r->{body}, qr/^[0-9a-f-]{36}\|ada\@contoso\.example\|Ada Lovelace(?#
    )\|member\|$NaoSSO::TENANT$/, 'variables carry the identity');

# Scenario: get-session.
# Expected: the user as JSON with an ISO expiry.

$r = request('/api/auth/get-session', cookie => $cookie);
is(json_of($r)->{user}{name}, 'Ada Lovelace', 'get-session names the user');
like(json_of($r)->{expiresAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'get-session has expiresAt');

# Scenario: sign-out.
# Expected: 302 to Entra's end-session endpoint with the site as
# post_logout_redirect_uri; the old cookie no longer works.

$r = request('/api/auth/sign-out', method => 'POST', cookie => $cookie);
like($r->{headers}{location}[0],
    qr{/oauth2/v2\.0/logout(?#
        )\?post_logout_redirect_uri=http%3A%2F%2Flocalhost%2F$},
    'sign-out goes to the end-session endpoint');

$r = request('/api/auth/get-session', cookie => $cookie);
is($r->{status}, 401, 'old cookie stops working after sign-out');

###############################################################################
