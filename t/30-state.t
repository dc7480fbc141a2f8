#!/usr/bin/perl

# The sign-in state and what the callback accepts: missing, unknown,
# replayed and expired states; the binding cookie that ties a sign-in to
# the browser that started it; parallel sign-ins; a callback without a
# code; return_to values that must not leave the site; errors Microsoft
# sends back to the callback.

use warnings;
use strict;

use Test::More;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Time::HiRes qw//;

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
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%;
        server_name  localhost;

        nao_sso on;
        nao_sso_signin_timeout 1s;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(92);
nao_wait($t);

###############################################################################

my $STATE_LINE = qr/\[info\].*nao_sso: sign-in state is missing, unknown, (?#
    )expired or already used/;
my $BINDING_LINE = qr/\[info\].*nao_sso: sign-in callback from a browser (?#
    )that did not start it/;

# The query with one parameter's value replaced, or removed when undef.
sub with_param {
    my ($query, $name, $value) = @_;
    my @pairs = grep { !/^\Q$name\E=/ } split /&/, $query;
    push @pairs, "$name=$value" if defined $value;
    return join '&', @pairs;
}

# A callback of $flow (call_back() options in %opt) that the module must
# refuse for its state: a 400 page that offers a new sign-in for a
# browser, JSON for an API client, one info line, no session.
sub refused_state {
    my ($t, $name, $flow, %opt) = @_;

    log_since($t);
    my $page = call_back($flow, html => 1, %opt);
    my $log = log_since($t);
    my $api = call_back($flow, json => 1, %opt);
    my $json = json_of($api) // {};

    is($page->{status}, 400, "$name: 400 for a browser");
    like($page->{body}, qr{<a class="button" (?#
        )href="/api/auth/sign-in/microsoft">Start again</a>},
        "$name: the page offers to start again");
    is(count_lines($log, $STATE_LINE), 1, "$name: one info line");
    is(join(' ', $api->{status}, $json->{error} // '',
        $json->{signInUrl} // ''),
        '400 invalid_state /api/auth/sign-in/microsoft',
        "$name: JSON for an API client");
    ok(!session_cookie($page) && !session_cookie($api),
        "$name: no session cookie");
}

###############################################################################

# Scenario: a callback without a state.
# Expected: 400 with a way to start again; nothing signed in.

my $flow = approved_sign_in();
refused_state($t, 'no state', $flow,
    query => with_param($flow->{query}, 'state'));

# Scenario: a callback whose state the module never issued, well formed
# or not.
# Expected: 400, as for a missing state.

my $unknown = $flow->{state};
$unknown =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
refused_state($t, 'unknown state', $flow,
    query => with_param($flow->{query}, 'state', $unknown));
refused_state($t, 'malformed state', $flow,
    query => with_param($flow->{query}, 'state', 'not%20a%20state'));

# Scenario: the same callback URL twice, with the binding cookie both
# times (the back button, or a leaked URL).
# Expected: the first signs in, the second is refused.

my $r = call_back($flow, html => 1);
is($r->{status}, 302, 'first use of the callback signs in');
ok(session_cookie($r), 'first use sets the session cookie');
refused_state($t, 'replayed state', $flow);

# Scenario: a server with nao_sso_signin_timeout 1s; a sign-in that
# completes at once, and one called back after 2 seconds.
# Expected: the binding cookie lives as long as the sign-in; the quick
# one signs in; the late one is refused as expired.

# start early in a second: the quick sign-in then has most of it
my $frac = Time::HiRes::time() - int(Time::HiRes::time());
Time::HiRes::sleep(1.02 - $frac) if $frac > 0.3;

$flow = approved_sign_in(port => 8083);
like(join(' ', set_cookies($flow->{start})), qr/nao_sso_b_[\w-]+=[\w-]+; (?#
    )Path=\/; Max-Age=1;/, 'short server: binding cookie lasts 1s');
$r = call_back($flow, html => 1);
is($r->{status}, 302, 'short server: a quick sign-in completes');

$flow = approved_sign_in(port => 8083);
sleep 2;
refused_state($t, 'expired state', $flow);

###############################################################################

# Scenario: the right state but no binding cookie: the callback URL was
# opened in another browser, or pushed on a victim (login CSRF).
# Expected: 400, logged as a callback from a browser that did not start
# the sign-in; no session.

$flow = approved_sign_in();
my $other = approved_sign_in();

log_since($t);
$r = call_back($flow, html => 1, cookie => undef);
my $log = log_since($t);
is($r->{status}, 400, 'no binding cookie: 400');
is(count_lines($log, $BINDING_LINE), 1, 'no binding cookie: logged');
ok(!session_cookie($r), 'no binding cookie: no session cookie');

# Scenario: the binding cookie of another sign-in, under its own name
# and under the name this sign-in's cookie has.
# Expected: 400 and logged, both ways.

$r = call_back($other, html => 1, cookie => $flow->{binding});
$log = log_since($t);
is($r->{status}, 400, 'another sign-in\'s binding cookie: 400');
is(count_lines($log, $BINDING_LINE), 1, 'another sign-in\'s cookie: logged');
ok(!session_cookie($r), 'another sign-in\'s cookie: no session cookie');

$flow = approved_sign_in();
$other = approved_sign_in();
my ($own_name) = split /=/, $flow->{binding};
my (undef, $other_value) = split /=/, $other->{binding}, 2;

$r = call_back($flow, html => 1, cookie => "$own_name=$other_value");
$log = log_since($t);
is($r->{status}, 400, 'another sign-in\'s binding value: 400');
is(count_lines($log, $BINDING_LINE), 1, 'another sign-in\'s value: logged');

# Scenario: the same, with a binding cookie that is not base64url.
# Expected: 400 and logged.

$r = call_back($other, html => 1,
    cookie => (split /=/, $other->{binding})[0] . '=%3Cgarbage%3E');
$log = log_since($t);
is($r->{status}, 400, 'garbage binding cookie: 400');
is(count_lines($log, $BINDING_LINE), 1, 'garbage binding cookie: logged');

###############################################################################

# Scenario: ten sign-ins started from one browser (ten tabs), all
# approved, then all ten callbacks at once, each carrying all ten
# binding cookies as the browser would.
# Expected: ten 302s, each with its own session cookie and expiring its
# own binding cookie; all ten sessions work.

my @flows = map { approved_sign_in(return_to => "/t$_") } 1 .. 10;
my @bindings = map { $_->{binding} // '' } @flows;
my $jar = join '; ', @bindings;

is(scalar(grep { /^nao_sso_b_[\w-]+=/ } @bindings), 10,
    'ten sign-ins started, ten binding cookies');

my @sockets = map { call_back($_, html => 1, cookie => $jar, start => 1) }
    @flows;
my @answers = map { request_end($_) } @sockets;

is(join(' ', map { $_->{status} } @answers), join(' ', (302) x 10),
    'ten parallel callbacks all redirect');
is(join(' ', map { $_->{headers}{location}[0] // '' } @answers),
    join(' ', map { "/t$_" } 1 .. 10), 'each goes to its own return_to');

my @sessions = map { cookie_of($_, 'nao_sso') } @answers;
my %distinct = map { $_ => 1 } grep { defined } @sessions;
is(scalar(keys %distinct), 10, 'ten distinct session cookies');

my $expired = grep {
    my ($name) = split /=/, $bindings[$_];
    grep { /^\Q$name\E=; .*Max-Age=0/ } set_cookies($answers[$_]);
} 0 .. 9;
is($expired, 10, 'each callback expires its own binding cookie');

my $working = grep {
    request('/api/auth/get-session', cookie => $_ // 'none')->{status} == 200
} @sessions;
is($working, 10, 'all ten sessions work');

###############################################################################

# Scenario: a callback with a valid state and binding but no code, or
# an empty one.
# Expected: 400, logged; the state is used up either way.

$flow = approved_sign_in();
log_since($t);
$r = call_back($flow, query => with_param($flow->{query}, 'code'),
    html => 1);
$log = log_since($t);
is($r->{status}, 400, 'no code: 400');
like($r->{body}, qr/Start again/, 'no code: the page offers to start again');
is(count_lines($log,
    qr/\[info\].*nao_sso: sign-in callback without a code/), 1,
    'no code: logged');
ok(!session_cookie($r), 'no code: no session cookie');

$flow = approved_sign_in();
$r = call_back($flow, query => with_param($flow->{query}, 'code', ''),
    json => 1);
is(join(' ', $r->{status}, json_of($r)->{error} // ''), '400 invalid_state',
    'empty code: 400');

###############################################################################

# Scenario: return_to values that lead off the site, sent to the
# sign-in start.
# Expected: the callback goes to "/" for each; a local path with a
# query is kept.

my %hostile = (
    '//evil.example/x' => '//evil.example/x',
    'https://evil.example/' => 'https%3A%2F%2Fevil.example%2F',
    '/\\evil.example' => '%2F%5Cevil.example',
    '/\\evil.example (raw)' => '/\\evil.example',
    '%2F%2Fevil.example' => '%2F%2Fevil.example',
    '"%2F%2Fevil.example" itself' => '%252F%252Fevil.example',
    '/%2Fevil.example' => '%2F%252Fevil.example',
    'javascript:alert(1)' => 'javascript:alert(1)',
    'empty' => '',
);

for my $name (sort keys %hostile) {
    $flow = approved_sign_in(return_to => $hostile{$name});
    $r = call_back($flow, html => 1);
    is(join(' ', $r->{status}, $r->{headers}{location}[0] // ''), '302 /',
        "return_to $name: callback goes to /");
}

$flow = approved_sign_in(return_to => '%2Freports%3Fq%3D1');
$r = call_back($flow, html => 1);
is(join(' ', $r->{status}, $r->{headers}{location}[0] // ''),
    '302 /reports?q=1', 'return_to /reports?q=1 is kept');

# Scenario: a browser navigation to "//evil.example/x" without a
# session, which would carry that path as return_to.
# Expected: the redirect to the sign-in page carries "/" instead.

$r = request('//evil.example/x', html => 1);
is(join(' ', $r->{status}, $r->{headers}{location}[0] // ''),
    '302 /api/auth/sign-in?return_to=%2F',
    'navigation to //evil.example/x: return_to is /');

###############################################################################

# Scenario: Microsoft refuses the sign-in and sends the error to the
# callback with the state (mock: authorize_error).
# Expected: 403; the page names the AADSTS code (or access_denied) and
# says what to do; one error line naming the code; no session.

my @refusals = (
    [ 'AADSTS50105', 'access_denied',
        'AADSTS50105: The signed in user \'ada@contoso.example\' is not '
        . 'assigned to a role for the application.',
        qr/<h1>Your account is not assigned to nao<\/h1>/,
        qr/Ask an administrator to assign you to the nao application in (?#
            )Microsoft Entra ID, under Enterprise applications, then Users (?#
            )and groups\./ ],
    [ 'AADSTS65001', 'consent_required',
        'AADSTS65001: The user or administrator has not consented to use '
        . 'the application.',
        qr/<h1>Consent is needed<\/h1>/,
        qr/An administrator must grant consent for nao in Microsoft Entra (?#
            )ID \(App registrations, then API permissions, then Grant admin (?#
            )consent\)\./ ],
    [ 'AADSTS53003', 'access_denied',
        'AADSTS53003: Access has been blocked by Conditional Access '
        . 'policies.',
        qr/<h1>Blocked by Conditional Access<\/h1>/,
        qr/Ask your IT administrator what the policy requires\./ ],
    [ 'AADSTS50011', 'invalid_request',
        'AADSTS50011: The redirect URI specified in the request does not '
        . 'match the redirect URIs configured for the application.',
        qr/<h1>Redirect URI mismatch<\/h1>/,
        qr{set the Web redirect URI to exactly (?#
            )http://localhost/api/auth/callback/microsoft\.} ],
    [ 'access_denied', 'access_denied', 'The user declined.',
        qr/<h1>Sign-in was declined<\/h1>/,
        qr/You or an administrator declined the permissions nao asks for\./ ],
);

for my $case (@refusals) {
    my ($code, $error, $description, $title, $advice) = @$case;

    mock('config', { authorize_error =>
        { error => $error, description => $description } });

    $flow = approved_sign_in(return_to => '%2Freports');
    log_since($t);
    $r = call_back($flow, html => 1);
    $log = log_since($t);

    is($r->{status}, 403, "$code from Microsoft: 403");
    like($r->{body}, qr{Error code: <code>\Q$code\E</code>},
        "$code from Microsoft: the page names the code");
    like($r->{body}, qr/$title.*$advice/s,
        "$code from Microsoft: the page says what to do");
    is(join("\n", map { /(nao_sso: .*?)(?:, client: .*)?$/ ? $1 : $_ }
        lines_matching($log, qr/\[error\]/)),
        "nao_sso: microsoft refused the sign-in: \"$code\"",
        "$code from Microsoft: one error line naming the code");
    ok(!session_cookie($r), "$code from Microsoft: no session cookie");
}

mock('config', { authorize_error => undef });

# Scenario: an error callback crafted by hand with a valid state, whose
# description and error carry markup.
# Expected: 403 naming the code; the markup never reaches the page.

$flow = approved_sign_in();
$r = call_back($flow, html => 1, query => 'error=access_denied'
    . '&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%20AADSTS50105'
    . "%3A%20x&state=$flow->{state}");
is($r->{status}, 403, 'crafted error: 403');
like($r->{body}, qr{Error code: <code>AADSTS50105</code>},
    'crafted error: the page names the code');
unlike($r->{body}, qr/<script|alert\(1\)/i,
    'crafted error: description text not in the page');

$flow = approved_sign_in();
$r = call_back($flow, html => 1, query => 'error=%3Cscript%3Ealert(2)'
    . '%3C%2Fscript%3E&error_description=%22%3E%3Cimg%20src%3Dx%3E'
    . "&state=$flow->{state}");
is($r->{status}, 403, 'crafted error with markup in error: 403');
unlike($r->{body}, qr/<script|alert\(2\)|<img/i,
    'crafted error: markup in error never in the page');

# Scenario: the same error to an API client.
# Expected: 403 JSON naming the code.

$flow = approved_sign_in();
$r = call_back($flow, json => 1, query => 'error=consent_required'
    . "&error_description=AADSTS65001%3A%20x&state=$flow->{state}");
my $json = json_of($r) // {};
is(join(' ', $r->{status}, $json->{error} // '', $json->{code} // ''),
    '403 sign_in_refused AADSTS65001', 'crafted error: JSON for an API client');

###############################################################################
