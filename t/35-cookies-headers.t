#!/usr/bin/perl

# What clients send besides a clean sign-in: tampered and duplicated
# session cookies, spoofed X-Nao-* headers, the module's cookies on the
# way upstream, oversized headers, how a request is told to be a browser
# navigation, and the "optional" mode.

use warnings;
use strict;

use Test::More;

BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Digest::SHA qw/hmac_sha256/;
use JSON::PP;
use MIME::Base64 qw/encode_base64 decode_base64/;

use Test::Nginx;
use NaoSSO;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/);

nao_setup($t);

# a known secret, so that the test can sign a cookie as nginx does
my $SECRET = 'nao-sso-test-secret-0123456789abcdef';
$t->write_file('secret', $SECRET);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives() ]}
        nao_sso_secret_file    %%TESTDIR%%/secret;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        nao_sso on;

        proxy_set_header X-Client-Host \$http_host;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /optional/ {
            nao_sso optional;
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /off/ {
            nao_sso off;
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location /tried/ {
            root /nonexistent;
            try_files \$uri \@nao;
        }

        location \@nao {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8084%%;
        server_name  localhost;

        nao_sso on;
        underscores_in_headers on;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%;
        server_name  localhost;

        proxy_set_header X-Client-Host \$http_host;
        error_page 400 /_bad;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }

        location = /_bad {
            proxy_pass http://127.0.0.1:%%PORT_8082%%/_echo/bad;
        }

        location = /cookies {
            return 200 "[\$http_cookie][\$cookie_nao_sso][\$cookie_theme]";
        }

        location /api/auth/ {
            proxy_pass http://127.0.0.1:%%PORT_8082%%\$uri\$is_args\$args;
        }
    }
}

EOF

$t->try_run('module not loadable')->plan(93);
nao_wait($t);

###############################################################################

my $PLAIN = { PeerAddr => '127.0.0.1:' . port(8083) };
my $INVALID_LINE = qr/\[info\].*nao_sso: client sent an invalid session (?#
    )cookie/;

sub b64url {
    my ($bytes) = @_;
    my $s = encode_base64($bytes, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# What the upstream saw: demo-nao's echo of the request headers.
sub seen {
    my ($r) = @_;
    return (json_of($r) // {})->{headers} // {};
}

# The X-Nao-* headers among them.
sub nao_headers {
    my ($seen) = @_;
    return { map { $_ => $seen->{$_} } grep { /^x-nao-/ } keys %$seen };
}

# "302 Location" or "401 error" of a request that needs a session.
sub outcome {
    my ($r) = @_;
    return "$r->{status} " . ($r->{status} == 302
        ? $r->{headers}{location}[0] // ''
        : (json_of($r) // {})->{error} // '');
}

my $cookie = sign_in_cookie(html => 1);
my ($value) = ($cookie // '') =~ /^nao_sso=(.*)$/;
my ($id, $mac) = split /\./, $value // '';

my $session = json_of(request('/api/auth/get-session', cookie => $cookie));
my %identity = (
    'x-nao-user-id' => $session->{user}{id},
    'x-nao-user-email' => 'ada@contoso.example',
    'x-nao-user-name' => 'Ada Lovelace',
    'x-nao-user-role' => 'member',
    'x-nao-tenant-id' => $NaoSSO::TENANT,
);

# The default downstream token goes up as X-Nao-Access-Token: the one the
# mock issued at sign-in for the default scope, "<client id>/.default".
my $token = nao_headers(seen(request('/reports', json => 1,
    cookie => $cookie)))->{'x-nao-access-token'} // '';
my ($payload) = $token =~ /^[\w-]+\.([\w-]+)\.[\w-]+$/;
$payload =~ tr/-_/+\// if defined $payload;
is(eval { JSON::PP->new->decode(decode_base64($payload // '')) }->{aud},
    $NaoSSO::CLIENT_ID, 'the upstream gets the default access token');
$identity{'x-nao-access-token'} = $token;

###############################################################################

# Scenario: the session cookie re-signed by the test with nginx's secret
# (the control for the cookie signed with another secret below).
# Expected: accepted, so the test signs exactly as nginx does.

my $resigned = "$id." . b64url(hmac_sha256($id, $SECRET));
my $r = request('/reports', json => 1, cookie => "nao_sso=$resigned");
is(nao_headers(seen($r))->{'x-nao-user-email'}, 'ada@contoso.example',
    'cookie signed with the same secret is accepted');

# Scenario: tampered session cookies, from an API client and from a
# browser.
# Expected: no session: 401 JSON and 302 to the sign-in page; one info
# line each; no crash.

sub flip {
    my ($s, $at) = @_;
    substr($s, $at, 1) = substr($s, $at, 1) eq 'A' ? 'B' : 'A';
    return $s;
}

my @tampered = (
    [ 'MAC changed', $id . '.' . flip($mac, 5) ],
    [ 'id changed', flip($id, 5) . ".$mac" ],
    [ 'truncated', substr($value, 0, -6) ],
    [ 'MAC missing', "$id." ],
    [ 'no dot', $id ],
    [ 'garbage', 'garbage!*()@x' ],
    [ 'empty value', '' ],
    [ 'two dots', "$id.$mac." ],
    [ 'dot dot', "$id..$mac" ],
    [ 'signed with another secret',
        "$id." . b64url(hmac_sha256($id, 'another-nginx-another-secret-xyz')) ],
    [ '8 KB value', ('A' x 8000) . ".$mac" ],
);

for my $case (@tampered) {
    my ($name, $bad) = @$case;

    log_since($t);
    $r = request('/reports', json => 1, cookie => "nao_sso=$bad");
    my $log = log_since($t);

    is(outcome($r), '401 unauthenticated', "$name: API request is 401");
    is(count_lines($log, $INVALID_LINE), 1, "$name: logged as invalid");

    $r = request('/reports', html => 1, cookie => "nao_sso=$bad");
    is(outcome($r), '302 /api/auth/sign-in?return_to=%2Freports',
        "$name: navigation goes to the sign-in page");
}

###############################################################################

# Scenario: the session cookie among thirty others.
# Expected: signed in; the others reach the upstream in their order.

my @before = map { "c$_=v$_" } 1 .. 15;
my @after = map { "d$_=w$_" } 1 .. 15;

$r = request('/reports', json => 1,
    cookie => join('; ', @before, $cookie, @after));
is(nao_headers(seen($r))->{'x-nao-user-email'}, 'ada@contoso.example',
    'valid cookie among many: signed in');
is(seen($r)->{cookie}, join('; ', @before, @after),
    'valid cookie among many: the others kept in order');

# Scenario: the session cookie name twice, in one Cookie header or in
# two.
# Expected: the first one counts.

$r = request('/reports', json => 1, cookie => "$cookie; nao_sso=bad.bad");
is($r->{status}, 200, 'duplicate name, valid first: signed in');

$r = request('/reports', json => 1, cookie => "nao_sso=bad.bad; $cookie");
is(outcome($r), '401 unauthenticated', 'duplicate name, bad first: 401');

$r = request('/reports', json => 1,
    headers => [ Cookie => $cookie, Cookie => 'nao_sso=bad.bad' ]);
is($r->{status}, 200, 'two Cookie headers, valid first: signed in');

$r = request('/reports', json => 1,
    headers => [ Cookie => 'nao_sso=bad.bad', Cookie => $cookie ]);
is(outcome($r), '401 unauthenticated', 'two Cookie headers, bad first: 401');

###############################################################################

# Scenario: spoofed identity headers without a session.
# Expected: they grant nothing: 401.

$r = request('/reports', json => 1, headers => [
    'X-Nao-User-Id' => $session->{user}{id},
    'X-Nao-User-Email' => 'ada@contoso.example',
    'X-Nao-Tenant-Id' => $NaoSSO::TENANT,
]);
is(outcome($r), '401 unauthenticated', 'spoofed identity alone is 401');

# Forty X-Nao-* headers (the identity ones in odd cases among them)
# interleaved with forty others and Host, then one last ordinary header:
# more than nginx's first part of the header list holds.

my @spoofs = ('X-Nao-User-Id', 'x-nao-user-email', 'X-NAO-TENANT-ID',
    'X-Nao-Anything', 'X-Nao-User-Role', 'x-Nao-User-Name',
    'X-Nao-Access-Token', 'x-nao-token-graph');
my (@headers, %others);

for my $i (1 .. 40) {
    my $other = $i == 7 ? 'X-Naomi' : $i == 8 ? 'X-Nao' : "X-Other-$i";
    push @headers, "$other: other $i";
    $others{ lc $other } = "other $i";
    push @headers, ($spoofs[$i - 1] // "X-Nao-Spoof-$i") . ": spoof $i";
    push @headers, 'Host: localhost' if $i == 25;
}
push @headers, 'Accept: application/json', 'X-Last: end';
$others{'x-last'} = 'end';

sub spoofed {
    my ($path, %opt) = @_;
    my @h = @headers;
    splice @h, 31, 0, "Cookie: $opt{cookie}" if defined $opt{cookie};

    my $raw = http(join("\r\n", "GET $path HTTP/1.0", @h) . "\r\n\r\n",
        %{ $opt{extra} || {} });
    return seen(NaoSSO::parse_response($raw));
}

sub others_of {
    my ($seen) = @_;
    return { map { $_ => $seen->{$_} } keys %others };
}

# Scenario: the spoofed request with a session.
# Expected: the upstream sees exactly one of each identity header, with
# the session's values, no other X-Nao-*, every other header intact,
# Host as proxy_pass sets it and the client's Host as $http_host.

my $seen = spoofed('/reports', cookie => "theme=dark; $cookie");
is_deeply(nao_headers($seen), \%identity,
    'with session: only the identity headers, once each');
is_deeply(others_of($seen), \%others,
    'with session: other headers intact, the last one too');
is(join(' ', $seen->{host} // '', $seen->{'x-client-host'} // ''),
    '127.0.0.1:' . port(8082) . ' localhost', 'with session: Host handled');
is($seen->{cookie}, 'theme=dark', 'with session: session cookie hidden');

# Scenario: the spoofed request without a session in an optional
# location, with a session there, with one in a location with
# "nao_sso off", and in a server without nao_sso.
# Expected: no client X-Nao-* header ever reaches the upstream; identity
# only with the session in the optional location; the rest intact.

$seen = spoofed('/optional/x');
is_deeply(nao_headers($seen), {}, 'optional, no session: no X-Nao-*');
is_deeply(others_of($seen), \%others, 'optional, no session: others intact');

$seen = spoofed('/optional/x', cookie => $cookie);
is_deeply(nao_headers($seen), \%identity,
    'optional, with session: only the identity headers');

$seen = spoofed('/off/x', cookie => "$cookie; theme=dark");
is_deeply(nao_headers($seen), {}, 'nao_sso off: no X-Nao-*');
is_deeply(others_of($seen), \%others, 'nao_sso off: others intact');
is($seen->{cookie}, 'theme=dark', 'nao_sso off: session cookie hidden');

$seen = spoofed('/x', extra => $PLAIN);
is_deeply(nao_headers($seen), {}, 'server without nao_sso: no X-Nao-*');
is_deeply(others_of($seen), \%others,
    'server without nao_sso: others intact');
is($seen->{'x-client-host'}, 'localhost',
    'server without nao_sso: $http_host intact');

# Scenario: a request whose only headers are twenty-five X-Nao-* and
# the session cookie, so that nothing is left of the list but what the
# module adds; the same without the cookie where nao_sso is not used.
# Expected: exactly the identity headers; nothing at all.

my @only = map { "X-Nao-Only-$_: spoof" } 1 .. 25;
my $raw = http(join("\r\n", 'GET /_echo/only HTTP/1.0', @only[0 .. 11],
    "Cookie: $cookie", @only[12 .. 24]) . "\r\n\r\n");
$seen = seen(NaoSSO::parse_response($raw));
is_deeply(nao_headers($seen), \%identity,
    'only X-Nao-* and the session cookie: the identity headers alone');
ok(!exists $seen->{cookie}, 'only X-Nao-* and the session cookie: no Cookie');

$raw = http(join("\r\n", 'GET /_echo/only HTTP/1.0', @only) . "\r\n\r\n",
    %$PLAIN);
$seen = seen(NaoSSO::parse_response($raw));
is_deeply(nao_headers($seen), {}, 'only X-Nao-* headers: none upstream');

# Scenario: a signed-in request with spoofed headers that try_files
# sends on to a named location (an internal redirect: the access phase
# runs twice).
# Expected: still exactly one of each identity header.

$seen = seen(request('/tried/x', json => 1, cookie => $cookie,
    headers => [ 'X-Nao-User-Email' => 'evil@example.com' ]));
is_deeply(nao_headers($seen), \%identity,
    'after an internal redirect: the identity headers once each');

# Scenario: a server with "underscores_in_headers on" and identity
# headers spelt with underscores, which many upstreams (CGI-style
# frameworks, Perl's HTTP::Headers, as in demo-nao) read as the dashed
# X-Nao-* names.
# Expected: they never reach the upstream; it sees only the identity.

$seen = seen(request('/reports', json => 1, cookie => $cookie, port => 8084,
    headers => [
        'X_Nao_User_Id' => 'spoof', 'x_nao_user_email' => 'evil@example.com',
        'X_NAO_USER_ROLE' => 'admin', 'X-Nao_Tenant_Id' => 'spoof',
        'X_Nao-Anything' => 'spoof' ]));
is_deeply(nao_headers($seen), \%identity,
    'underscores_in_headers: X_Nao_* spellings removed')
    or diag(explain(nao_headers($seen)));

###############################################################################

# Scenario: what the upstream sees of the Cookie header.
# Expected: the module's cookies (session and binding) never; a header
# left empty is not sent; the other cookies in their order.

$seen = seen(request('/reports', json => 1, cookie => $cookie));
ok(!exists $seen->{cookie}, 'only the session cookie: no Cookie upstream');

$seen = seen(request('/reports', json => 1,
    cookie => "$cookie; nao_sso_b_AbC-12_x=binding"));
ok(!exists $seen->{cookie}, 'session and binding cookies: no Cookie');

$seen = seen(request('/reports', json => 1,
    cookie => "a=1; $cookie; b=2; nao_sso_b_AbC-12_x=binding; c=3"));
is($seen->{cookie}, 'a=1; b=2; c=3', 'mixed: the others kept in order');

$seen = seen(request('/reports', json => 1,
    cookie => "theme=nao_sso_dark; $cookie; x=nao_sso"));
is($seen->{cookie}, 'theme=nao_sso_dark; x=nao_sso',
    'cookies whose values mention nao_sso are kept');

$seen = seen(request('/reports', json => 1,
    headers => [ Cookie => 'a=1', Cookie => $cookie, Cookie => 'b=2' ]));
is_deeply($seen->{cookie}, [ 'a=1', 'b=2' ],
    'three Cookie headers: the module\'s one dropped, the others kept');

###############################################################################

# Scenario: headers too large for nginx's buffers (9000 bytes), then an
# ordinary request.
# Expected: nginx refuses cleanly with 400 (494 inside nginx); the next
# request works.

$r = request('/reports', json => 1, cookie => $cookie,
    headers => [ 'X-Nao-Long' => 'x' x 9000 ]);
like($r->{status}, qr/^(?:400|494)$/, '9000-byte X-Nao- header refused');
$r = request('/reports', json => 1, cookie => $cookie);
is($r->{status}, 200, 'next request works');

$r = request('/reports', json => 1,
    cookie => "$cookie; pad=" . ('y' x 9000));
like($r->{status}, qr/^(?:400|494)$/, '9000-byte Cookie refused');
$r = request('/reports', json => 1, cookie => $cookie);
is($r->{status}, 200, 'next request works again');

# Scenario: a long X-Nao- header that fits.
# Expected: removed; the request goes on signed in.

$seen = seen(request('/reports', json => 1, cookie => $cookie,
    headers => [ 'X-Nao-Long' => 'x' x 7000 ]));
is_deeply(nao_headers($seen), \%identity, '7000-byte X-Nao- header removed');

###############################################################################

# Scenario: requests without a session told apart as browser
# navigations (302 to the sign-in page) or not (401).
# Expected: Sec-Fetch-Mode decides when present; else X-Requested-With
# means not; else Accept with text/html means a navigation. Only GET and
# HEAD navigate.

my $SIGN_IN = '302 /api/auth/sign-in?return_to=%2Freports%3Fa%3D1';
my $HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

my @navigation = (
    [ 'Sec-Fetch-Mode navigate', 'GET',
        [ 'Sec-Fetch-Mode' => 'navigate' ], $SIGN_IN ],
    [ 'Sec-Fetch-Mode navigate with X-Requested-With', 'GET',
        [ 'Sec-Fetch-Mode' => 'navigate', 'X-Requested-With' => 'x' ],
        $SIGN_IN ],
    [ 'Sec-Fetch-Mode cors, Accept text/html', 'GET',
        [ 'Sec-Fetch-Mode' => 'cors', Accept => $HTML ],
        '401 unauthenticated' ],
    [ 'Sec-Fetch-Mode no-cors, Accept text/html', 'GET',
        [ 'Sec-Fetch-Mode' => 'no-cors', Accept => $HTML ],
        '401 unauthenticated' ],
    [ 'X-Requested-With, Accept text/html', 'GET',
        [ 'X-Requested-With' => 'XMLHttpRequest', Accept => $HTML ],
        '401 unauthenticated' ],
    [ 'browser Accept, no Sec-Fetch', 'GET', [ Accept => $HTML ],
        $SIGN_IN ],
    [ 'Accept */*', 'GET', [ Accept => '*/*' ], '401 unauthenticated' ],
    [ 'Accept application/json', 'GET', [ Accept => 'application/json' ],
        '401 unauthenticated' ],
    [ 'no Accept', 'GET', [], '401 unauthenticated' ],
    [ 'HEAD navigation', 'HEAD',
        [ 'Sec-Fetch-Mode' => 'navigate', Accept => $HTML ], $SIGN_IN ],
    [ 'POST form from a navigation', 'POST',
        [ 'Sec-Fetch-Mode' => 'navigate', Accept => $HTML,
          'Content-Type' => 'application/x-www-form-urlencoded' ],
        '401 unauthenticated' ],
    [ 'POST JSON', 'POST',
        [ Accept => 'application/json',
          'Content-Type' => 'application/json' ],
        '401 unauthenticated' ],
);

for my $case (@navigation) {
    my ($name, $method, $headers, $expected) = @$case;

    $r = request('/reports?a=1', method => $method, headers => $headers,
        $method eq 'POST' ? (body => 'x=1') : ());
    is(outcome($r), $expected, "$name: $expected");
}

# Scenario: POST with the session.
# Expected: passes through, body intact.

$r = request('/reports', method => 'POST', json => 1, cookie => $cookie,
    body => 'x=1', headers => [ 'Content-Type' => 'text/plain' ]);
is(join(' ', $r->{status}, (json_of($r) // {})->{body} // ''), '200 x=1',
    'POST with a session reaches the upstream');

###############################################################################

# Scenario: "nao_sso optional" without a session, as an API client, as
# a browser, and with a bad cookie; then with a session.
# Expected: without a valid session the request goes on to the
# upstream without identity; with one, with it.

$r = request('/optional/x', json => 1);
is(join(' ', $r->{status}, keys %{ nao_headers(seen($r)) }), '200',
    'optional, no session: upstream, no identity');

$r = request('/_echo/x', html => 1);
is($r->{status}, 302, 'control: a navigation elsewhere is redirected');

$r = request('/optional/x', html => 1);
is($r->{status}, 200, 'optional, browser without session: not redirected');

$r = request('/optional/x', json => 1, cookie => 'nao_sso=bad.bad');
is(join(' ', $r->{status}, keys %{ nao_headers(seen($r)) }), '200',
    'optional, bad cookie: upstream, no identity');

$r = request('/optional/x', json => 1, cookie => $cookie);
is_deeply(nao_headers(seen($r)), \%identity,
    'optional, with session: identity headers');

# Scenario: a request nginx rejects before any phase runs (a bad Host)
# carries a spoofed X-Nao- header and a module cookie; error_page sends
# it on to the upstream through an internal redirect.
# Expected: the upstream still sees neither.

$r = request('/x', port => 8083, headers => [
    'X-Nao-User-Id' => 'spoof', 'Cookie' => 'nao_sso=abc; theme=dark',
    'Host' => 'bad/host']);
my $bad = json_of($r) // {};
is($r->{status}, 400, 'bad host: error page served');
is(join(' ', grep { /^x-nao-/ } sort keys %{ $bad->{headers} || {} })
    . '|' . ($bad->{headers}{cookie} // ''), '|theme=dark',
    'bad host: no X-Nao- header and no module cookie upstream');

# Scenario: $http_cookie and $cookie_* after the module's cookies went.
# Expected: neither shows them, whether the Cookie header held only ours
# or others too.

is(request('/cookies', port => 8083, cookie => 'nao_sso=abc')->{body},
    '[][][]', 'only our cookie: $http_cookie and $cookie_nao_sso empty');
is(request('/cookies', port => 8083,
    cookie => 'nao_sso=abc; theme=dark')->{body}, '[theme=dark][][dark]',
    'mixed cookies: only the others are visible');

# Scenario: the callback path where the module does not serve it (a
# server without nao_sso: nao's own login handles it).
# Expected: the query reaches the upstream untouched.

$r = request('/api/auth/callback/microsoft?code=abc&state=xyz', json => 1,
    port => 8083);
is((json_of($r) // {})->{uri},
    '/api/auth/callback/microsoft?code=abc&state=xyz',
    'callback query passed through where the module is off');

###############################################################################
