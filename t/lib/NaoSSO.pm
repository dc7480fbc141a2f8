package NaoSSO;

# Helpers shared by the integration tests: the mock Entra ID and the demo
# nao upstream as daemons, a licence made for the test, the directives
# that point the module at the mock, starting and reloading nginx with
# another configuration, a small browser that follows the sign-in flow,
# and checks of nginx's pages and error log. They use only the public
# Test::Nginx API, so they work with the fallback runner and the real
# nginx-tests library alike.
#
# Helpers that need the Test::Nginx object take it as an argument. A
# named sub in a .t file that closed over the file's $t would keep it
# alive until global destruction, that is after Test::More has ended,
# and with it the "no alerts" checks its destructor adds.

use warnings;
use strict;

use Exporter qw/import/;
use FindBin;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw/decode_base64/;
use Test::More qw//;
use Time::HiRes qw//;
use Test::Nginx qw/http http_end port/;

our @EXPORT = qw/
    nao_setup nao_directives nao_wait make_licence make_licence_keys
    restart reload_and_wait
    request request_end approved_sign_in call_back sign_in sign_in_cookie
    mock mock_stats cookie_of set_cookies session_cookie binding_cookie
    json_of title_of authorize_params url_decode
    log_since lines_matching count_lines one_error no_secrets_logged
    jwt_claims upstream_headers requests_at_once wait_until refresh_grants
    no_secrets_logged_but_proxied none_in_module_lines cookie_value
    mock_users
/;

our $TENANT = '6f1c2a4e-8d3b-4f5a-9c7e-2b1d0e9f8a7c';
our $CLIENT_ID = '3a8e5b2c-1f4d-4e6a-8b9c-0d7e6f5a4b3c';
our $CLIENT_SECRET = 'mock-secret-value';
our $ROOT = "$FindBin::Bin/..";

my $json = JSON::PP->new->canonical;

###############################################################################

# Licence keys and a licence in the test directory; then the mock Entra ID
# on port 8081 and the demo nao on port 8082. Call before $t->run().
# Options: features => 'sso', days => 30, exp => EPOCH, no_licence => 1,
# mock => [extra mock-entra arguments], no_daemons => 1.
sub nao_setup {
    my ($t, %opt) = @_;
    my $dir = $t->testdir();

    unless ($opt{no_licence}) {
        make_licence_keys($dir);
        make_licence($t, features => $opt{features}, days => $opt{days},
            exp => $opt{exp});
    }

    return if $opt{no_daemons};

    $t->run_daemon('perl', "$ROOT/scripts/mock-entra", '--port', port(8081),
        '--log', "$dir/mock.log", @{ $opt{mock} || [] });
    $t->run_daemon('perl', "$ROOT/scripts/demo-nao", '--port', port(8082));
}

# Licence signing keys, licence-key.pem and licence-pub.pem, in $dir: the
# test directory for the licence nginx trusts, another for a forgery.
sub make_licence_keys {
    my ($dir) = @_;

    system('perl', "$ROOT/scripts/make-licence", 'keygen', $dir) == 0
        or die "make-licence keygen failed\n";
}

# A licence in the test directory. Options: name => 'licence.jws', key
# (the signing key; the test directory's licence-key.pem), features =>
# 'sso', exp => EPOCH, days => N.
sub make_licence {
    my ($t, %opt) = @_;
    my $key = $opt{key} // $t->testdir() . '/licence-key.pem';

    my @args = ('--key', $key, '--features', $opt{features} // 'sso');
    push @args, '--exp', $opt{exp} if defined $opt{exp};
    push @args, '--days', $opt{days} if defined $opt{days};

    open my $fh, '-|', 'perl', "$ROOT/scripts/make-licence", 'sign', @args
        or die "Can't run make-licence: $!\n";
    my $token = do { local $/; <$fh> };
    close $fh or die "make-licence sign failed\n";

    $t->write_file($opt{name} // 'licence.jws', $token);
}

# The http{} directives that point the module at the mock. Expanded by
# write_file_expand, so %%TESTDIR%% and %%PORT_8081%% are fine here.
# An option named after a directive (license, license_key, client_id,
# client_secret, tenant_id, authority, cookie_secure) gives its value;
# undef leaves the directive out.
sub nao_directives {
    my (%opt) = @_;
    my @directives = (
        license => '%%TESTDIR%%/licence.jws',
        license_key => '%%TESTDIR%%/licence-pub.pem',
        client_id => $CLIENT_ID,
        client_secret => $CLIENT_SECRET,
        tenant_id => $TENANT,
        authority => 'http://127.0.0.1:%%PORT_8081%%',
        cookie_secure => 'off',
    );
    my $s = '';

    while (my ($name, $value) = splice(@directives, 0, 2)) {
        $value = $opt{$name} if exists $opt{$name};
        $s .= sprintf("        %-22s %s;\n", "nao_sso_$name", $value)
            if defined $value;
    }
    return $s;
}

# Waits for the daemons after $t->run().
sub nao_wait {
    my ($t) = @_;

    $t->waitforsocket('127.0.0.1:' . port(8081))
        or die "mock-entra did not start\n";
    $t->waitforsocket('127.0.0.1:' . port(8082))
        or die "demo-nao did not start\n";
}

###############################################################################

# For files that try one configuration after another: stops nginx and
# starts it again with $conf as nginx.conf (expanded). What nginx prints
# to stderr when it refuses a configuration goes to stderr.log in the
# test directory instead of the test output; the [emerg] is in the
# error log as well, where the next log_since() begins with this start.
# True if nginx started.
sub restart {
    my ($t, $conf) = @_;

    $t->stop();
    $t->write_file_expand('nginx.conf', $conf);
    log_since($t);

    my $file = $t->testdir() . '/stderr.log';
    open my $stderr, '>&', \*STDERR or die "Can't dup stderr: $!\n";
    open STDERR, '>>', $file or die "Can't open $file: $!\n";
    my $started = eval { $t->run(); 1 };
    open STDERR, '>&', $stderr or die "Can't restore stderr: $!\n";

    return $started;
}

# Reloads nginx and waits until new workers run: the real Test::Nginx's
# reload() only sends HUP. It also waits until every old worker has
# gone, so that no request reaches one with the old configuration;
# keep_old => 1 skips that, for an old worker that still has a request
# to finish. False on an [emerg] or after 5 s.
sub reload_and_wait {
    my ($t, %opt) = @_;

    my $log = $t->read_file('error.log');
    my %old = map { $_ => 1 } $log =~ /start worker process (\d+)/g;
    my $from = length $log;

    $t->reload();

    for (1 .. 50) {
        my $new = substr($t->read_file('error.log'), $from);
        return 0 if $new =~ /\[emerg\]/;

        my @started = grep { !$old{$_} }
            $new =~ /start worker process (\d+)/g;
        my @running = grep { kill(0, $_) || !$!{ESRCH} } keys %old;
        return 1 if @started && ($opt{keep_old} || !@running);

        select undef, undef, undef, 0.1;
    }

    return 0;
}

###############################################################################

# One request to nginx; returns { status, headers => { lc name => [..] },
# body, raw }. Options: method, headers => [name => value, ...],
# cookie => 'a=b; c=d', body, json => 1 (sends Accept: application/json),
# html => 1 (a browser navigation), port => N (to the server on logical
# port N, not 8080), start => 1 (returns the socket once the request is
# sent, as http() does; request_end() reads the answer).
sub request {
    my ($path, %opt) = @_;
    my $method = $opt{method} // 'GET';
    my @headers = @{ $opt{headers} || [] };

    push @headers, 'Cookie', $opt{cookie} if defined $opt{cookie};
    push @headers, 'Accept', 'application/json' if $opt{json};
    push @headers, 'Accept', 'text/html', 'Sec-Fetch-Mode', 'navigate'
        if $opt{html};

    my $body = $opt{body} // '';
    push @headers, 'Content-Length', length($body)
        if length($body) || $method eq 'POST';

    my $req = "$method $path HTTP/1.0\r\nHost: localhost\r\n";
    while (my ($name, $value) = splice(@headers, 0, 2)) {
        $req .= "$name: $value\r\n";
    }
    $req .= "\r\n$body";

    my @peer = defined $opt{port}
        ? (PeerAddr => '127.0.0.1:' . port($opt{port})) : ();

    return http($req, @peer, start => 1) if $opt{start};
    return parse_response(http($req, @peer));
}

# The answer to a request() sent with start => 1, from its socket.
sub request_end {
    my ($s) = @_;
    return parse_response(defined $s ? http_end($s) : undef);
}

sub parse_response {
    my ($raw) = @_;
    my %r = (raw => $raw // '', status => 0, headers => {}, body => '');

    return \%r unless defined $raw && length $raw;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my @lines = split /\r\n/, $head;
    my $status = shift @lines;

    ($r{status}) = $status =~ m{^HTTP/\S+ (\d+)};
    for my $line (@lines) {
        my ($name, $value) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        push @{ $r{headers}{ lc $name } }, $value;
    }
    $r{body} = $body // '';

    return \%r;
}

# All Set-Cookie values of a response.
sub set_cookies {
    my ($r) = @_;
    return @{ $r->{headers}{'set-cookie'} || [] };
}

# "name=value" of the first Set-Cookie whose name matches the regex.
sub cookie_of {
    my ($r, $name) = @_;

    for my $c (set_cookies($r)) {
        my ($pair) = split /;/, $c;
        return $pair if $pair =~ /^$name=/;
    }
    return undef;
}

# The session cookie a response sets, "nao_sso=..." or
# "__Host-nao_sso=...", or undef.
sub session_cookie {
    my ($r) = @_;
    return cookie_of($r, '(?:__Host-)?nao_sso');
}

# The binding cookie a sign-in start sets, or undef. Its name holds the
# first characters of the state, which are base64url: "-" included.
sub binding_cookie {
    my ($r) = @_;
    return cookie_of($r, '(?:__Host-)?nao_sso_b_[\w-]+');
}

sub json_of {
    my ($r) = @_;
    return eval { decode_json($r->{body}) };
}

# The <title> of one of the module's pages, entities decoded, or undef.
sub title_of {
    my ($r) = @_;
    my ($title) = ($r->{body} // '') =~ m{<title>(.*?)</title>}s;

    return undef unless defined $title;
    $title =~ s/&#39;/'/g;
    $title =~ s/&quot;/"/g;
    $title =~ s/&lt;/</g;
    $title =~ s/&gt;/>/g;
    $title =~ s/&amp;/&/g;
    return $title;
}

sub url_decode {
    my ($s) = @_;
    $s =~ s/\+/ /g;
    $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    return $s;
}

# The query parameters of a URL as a hash.
sub authorize_params {
    my ($url) = @_;
    my ($query) = $url =~ /\?(.*)$/;
    my %p;

    for my $pair (split /&/, $query // '') {
        my ($k, $v) = split /=/, $pair, 2;
        $p{ url_decode($k) } = url_decode($v // '');
    }
    return \%p;
}

###############################################################################

# The mock's control API: mock('config', {...}), mock('rotate'), ...
sub mock {
    my ($what, $data) = @_;
    my $url = 'http://127.0.0.1:' . port(8081) . "/_mock/$what";

    my $res = HTTP::Tiny->new(timeout => 10)->post($url, {
        headers => { 'Content-Type' => 'application/json' },
        content => $json->encode($data // {}),
    });
    die "mock $what failed: $res->{status}\n" unless $res->{success};

    return eval { decode_json($res->{content}) };
}

# The mock's users, built-in and configured, with their object ids.
sub mock_users {
    my $url = 'http://127.0.0.1:' . port(8081) . '/_mock/users';
    my $res = HTTP::Tiny->new(timeout => 10)->get($url);
    return (eval { decode_json($res->{content}) } // {})->{users} // [];
}

sub mock_stats {
    my $url = 'http://127.0.0.1:' . port(8081) . '/_mock/stats';
    my $res = HTTP::Tiny->new(timeout => 10)->get($url);
    return decode_json($res->{content});
}

# How many refresh_token grants the mock has seen, failed ones included:
# all of them, or those whose scope parameter names $scope (nginx adds
# offline_access to it).
sub refresh_grants {
    my ($scope) = @_;
    my $token = mock_stats()->{token};

    return $token->{refresh_token} // 0 unless defined $scope;

    my $by_scope = $token->{refresh_by_scope} // {};
    my $n = 0;
    for my $sent (keys %$by_scope) {
        $n += $by_scope->{$sent} if grep { $_ eq $scope } split / /, $sent;
    }
    return $n;
}

# A sign-in started as a browser does it and approved by the mock, but
# not called back yet. Returns a hash with port, start (nginx's 302 to
# Microsoft), binding (the binding cookie pair), state, authorize (the
# mock's answer), query (of the callback URL the mock redirects to, or
# undef) and code.
# Options: return_to (sent as given), user (email for login_hint),
# cookie (sent to nginx, e.g. an older session), port (the server's
# logical port).
sub approved_sign_in {
    my (%opt) = @_;
    my %flow = (port => $opt{port});

    my $path = '/api/auth/sign-in/microsoft';
    $path .= '?return_to=' . $opt{return_to} if defined $opt{return_to};

    $flow{start} = request($path, cookie => $opt{cookie}, port => $opt{port});
    my $authorize = $flow{start}{headers}{location}[0] // return \%flow;
    $flow{binding} = binding_cookie($flow{start});
    $flow{state} = authorize_params($authorize)->{state};

    $authorize .= '&login_hint=' . $opt{user} if $opt{user};
    $flow{authorize} = HTTP::Tiny->new(max_redirect => 0, timeout => 20)
        ->get($authorize);

    ($flow{query}) = ($flow{authorize}{headers}{location} // '')
        =~ /\?(.*)$/ or return \%flow;
    $flow{code} = authorize_params("?$flow{query}")->{code};

    return \%flow;
}

# The callback of an approved sign-in to the server it started on, by
# default as its browser sends it: the mock's query and the binding
# cookie. Options: query (another query), cookie (the whole Cookie
# header instead; undef sends none), and request()'s others.
sub call_back {
    my ($flow, %opt) = @_;
    my $query = exists $opt{query} ? delete $opt{query} : $flow->{query};
    my $cookie = exists $opt{cookie} ? delete $opt{cookie}
        : $flow->{binding};

    return request('/api/auth/callback/microsoft?' . ($query // ''),
        port => $flow->{port}, %opt, cookie => $cookie);
}

# Walks the whole sign-in as a browser would: approved_sign_in(), then
# the callback. Returns approved_sign_in()'s hash with callback (nginx's
# answer to the callback) and cookie ("nao_sso=..." or undef) added.
# Options: approved_sign_in()'s, whose cookie is also sent with the
# callback; html => 1 or json => 1 for the callback; callback_query (a
# function that may rewrite the callback query before it is sent).
sub sign_in {
    my (%opt) = @_;
    my $flow = approved_sign_in(%opt);
    my $query = $flow->{query} // return $flow;

    $query = $opt{callback_query}->($query) if $opt{callback_query};
    my @cookies = grep { defined } ($opt{cookie}, $flow->{binding});

    $flow->{callback} = call_back($flow, query => $query,
        cookie => join('; ', @cookies), html => $opt{html},
        json => $opt{json});
    $flow->{cookie} = session_cookie($flow->{callback});

    return $flow;
}

# $n requests to nginx, each on its own connection, all sent before any
# answer is read; their answers in order (status 0 for one that failed).
# Options: request()'s.
sub requests_at_once {
    my ($n, $path, %opt) = @_;
    my @sockets = map { request($path, %opt, start => 1) } 1 .. $n;

    return map { request_end($_) } @sockets;
}

# The request headers demo-nao received, as it echoes them for /_echo/
# paths and JSON requests: { lc name => value, or [values] when repeated };
# {} when the answer is not its echo.
sub upstream_headers {
    my ($r) = @_;
    my $echo = json_of($r);

    return {} unless ref $echo eq 'HASH' && ref $echo->{headers} eq 'HASH';
    return $echo->{headers};
}

# The claims of a JWT, read without checking its signature; {} when it
# is none.
sub jwt_claims {
    my ($jwt) = @_;
    my (undef, $payload) = split /\./, $jwt // '';

    return {} unless defined $payload && $payload =~ /^[\w-]+$/;
    $payload =~ tr{-_}{+/};
    $payload .= '=' x ((4 - length($payload) % 4) % 4);
    my $claims = eval { decode_json(decode_base64($payload)) };
    return ref $claims eq 'HASH' ? $claims : {};
}

# Just the session cookie of a successful sign-in.
sub sign_in_cookie {
    my $flow = sign_in(@_);
    return $flow->{cookie};
}

###############################################################################

my %log_seen;    # test directory => how much of its error.log was seen

# The error log written since the last call (or the last restart()): the
# log grows all along, and each step of a test looks only at what it
# added.
sub log_since {
    my ($t) = @_;
    my $dir = $t->testdir();
    my $log = $t->read_file('error.log');
    my $new = substr($log, $log_seen{$dir} // 0);

    $log_seen{$dir} = length $log;
    return $new;
}

# The lines of $text that match $re, e.g. qr/\[emerg\]/.
sub lines_matching {
    my ($text, $re) = @_;
    return grep { /$re/ } split /\n/, $text // '';
}

# How many lines of $text match $re.
sub count_lines {
    my @lines = lines_matching(@_);
    return scalar @lines;
}

# True when $text has exactly one [error] line and it matches $re; else
# the [error] lines are shown as a diagnostic.
sub one_error {
    my ($text, $re) = @_;
    my @errors = lines_matching($text, qr/\[error\]/);

    return 1 if @errors == 1 && $errors[0] =~ $re;
    Test::More::diag("[error] lines: "
        . (@errors ? join("\n", @errors) : 'none'));
    return 0;
}

# Up to $seconds (checking every 50 ms) for $cond to return true; its
# last value. For what happens in the background, e.g. a refresh that a
# request started; never for timing how fast something is.
sub wait_until {
    my ($seconds, $cond) = @_;
    my $until = Time::HiRes::time() + $seconds;
    my $ok;

    until (($ok = $cond->()) || Time::HiRes::time() > $until) {
        Time::HiRes::sleep(0.05);
    }
    return $ok;
}

# True when no line of the error log holds one of the given secrets: a
# string, or a regex for a kind of secret (a token, say). Only nginx's
# own debug lines that print the raw request before any module runs
# ("http request line", "http args", "http header") are left out; see
# README, Troubleshooting.
sub no_secrets_logged {
    my ($t, @secrets) = @_;
    my @lines = grep { !/\[debug\].* http (request line|args|header):/ }
        split /\n/, $t->read_file('error.log');

    for my $secret (grep { defined && length } @secrets) {
        my $found = ref $secret eq 'Regexp'
            ? grep { /$secret/ } @lines
            : grep { index($_, $secret) >= 0 } @lines;
        return 0 if $found;
    }
    return 1;
}

# no_secrets_logged() for a file whose requests go upstream with tokens
# and come back with cookies: at debug level nginx itself prints the
# request the proxy module sends ("http proxy header:", the whole request
# over several lines, and each header), the values of variables in
# proxy_set_header ("http script var:") and the response header it sends
# the client ("*N HTTP/1.1 302 ...", Set-Cookie included). Those entries
# are left aside, as no_secrets_logged() leaves aside the raw request;
# every other entry, continuation lines included, must hold no secret.
sub no_secrets_logged_but_proxied {
    my ($t, @secrets) = @_;
    my $nginx = join '|', 'request line', 'args', 'header', 'proxy header',
        'script var';
    my @entries = grep {
            !/^[^\n]*\[debug\].* http (?:$nginx):/
            && !/^[^\n]*\[debug\] \d+#\d+: \*\d+ HTTP\/1\.[01] \d{3} /
        } split /\n(?=\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[)/,
        $t->read_file('error.log');

    for my $secret (grep { defined && length } @secrets) {
        my $found = ref $secret eq 'Regexp'
            ? grep { /$secret/ } @entries
            : grep { index($_, $secret) >= 0 } @entries;
        return 0 if $found;
    }
    return 1;
}

# True when no line the module wrote, and no line above debug level,
# holds one of the secrets (strings or regexes). nginx's own debug dumps
# of the headers it sends (the proxied X-Nao-Access-Token, Set-Cookie)
# are not the module's.
sub none_in_module_lines {
    my ($t, @secrets) = @_;
    my @lines = grep {
            /^\d{4}\/\d\d\/\d\d [\d:]+ \[(?!debug\])/ || /nao_sso:/
        } split /\n/, $t->read_file('error.log');

    for my $secret (grep { defined && length } @secrets) {
        my @found = ref $secret eq 'Regexp' ? grep { /$secret/ } @lines
            : grep { index($_, $secret) >= 0 } @lines;
        return 0 if @found;
    }
    return 1;
}

# The value of a "name=value" cookie pair; undef for undef.
sub cookie_value {
    my ($pair) = @_;
    return defined $pair ? (split /=/, $pair, 2)[1] : undef;
}

1;
