package NaoSSO;

# Helpers shared by the integration tests: the mock Entra ID and the demo
# nao upstream as daemons, a licence made for the test, the directives
# that point the module at the mock, and a small browser that follows the
# sign-in flow. They use only the public Test::Nginx API, so they work
# with the fallback runner and the real nginx-tests library alike.

use warnings;
use strict;

use Exporter qw/import/;
use FindBin;
use HTTP::Tiny;
use JSON::PP;
use Test::Nginx qw/http port/;

our @EXPORT = qw/
    nao_setup nao_directives nao_wait request sign_in sign_in_cookie
    mock mock_stats cookie_of set_cookies json_of authorize_params
    url_decode no_secrets_logged
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

    make_licence($t, %opt) unless $opt{no_licence};

    return if $opt{no_daemons};

    $t->run_daemon('perl', "$ROOT/scripts/mock-entra", '--port', port(8081),
        '--log', "$dir/mock.log", @{ $opt{mock} || [] });
    $t->run_daemon('perl', "$ROOT/scripts/demo-nao", '--port', port(8082));
}

sub make_licence {
    my ($t, %opt) = @_;
    my $dir = $t->testdir();
    my $tool = "$ROOT/scripts/make-licence";

    system('perl', $tool, 'keygen', $dir) == 0
        or die "make-licence keygen failed\n";

    my @args = ('--key', "$dir/licence-key.pem",
        '--features', $opt{features} // 'sso');
    push @args, '--exp', $opt{exp} if defined $opt{exp};
    push @args, '--days', $opt{days} if defined $opt{days};

    my $token = `perl $tool sign @args`;
    die "make-licence sign failed\n" if $? != 0;
    $t->write_file('licence.jws', $token);
}

# The http{} directives that point the module at the mock. Expanded by
# write_file_expand, so %%TESTDIR%% and %%PORT_8081%% are fine here.
sub nao_directives {
    my (%opt) = @_;

    my $s = <<"EOF";
        nao_sso_license        %%TESTDIR%%/licence.jws;
        nao_sso_license_key    %%TESTDIR%%/licence-pub.pem;
        nao_sso_client_id      $CLIENT_ID;
        nao_sso_client_secret  $CLIENT_SECRET;
        nao_sso_tenant_id      $TENANT;
        nao_sso_authority      http://127.0.0.1:%%PORT_8081%%;
        nao_sso_cookie_secure  off;
EOF
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

# One request to nginx; returns { status, headers => { lc name => [..] },
# body, raw }. Options: method, headers => [name => value, ...],
# cookie => 'a=b; c=d', body, json => 1 (sends Accept: application/json),
# html => 1 (a browser navigation).
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

    return parse_response(http($req, %{ $opt{extra} || {} }));
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

sub json_of {
    my ($r) = @_;
    return eval { decode_json($r->{body}) };
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

sub mock_stats {
    my $url = 'http://127.0.0.1:' . port(8081) . '/_mock/stats';
    my $res = HTTP::Tiny->new(timeout => 10)->get($url);
    return decode_json($res->{content});
}

# Walks the whole sign-in as a browser would. Returns a hash with
# start (nginx's 302 to Microsoft), authorize (the mock's answer),
# callback (nginx's answer to the callback), cookie ("nao_sso=..." or
# undef) and binding (the binding cookie pair).
# Options: return_to, user (email for login_hint), cookie (sent to nginx
# throughout, e.g. an older session), callback_query (a function that
# may rewrite the callback query before it is sent).
sub sign_in {
    my (%opt) = @_;
    my %flow;

    my $path = '/api/auth/sign-in/microsoft';
    $path .= '?return_to=' . $opt{return_to} if defined $opt{return_to};

    $flow{start} = request($path, cookie => $opt{cookie});
    my $authorize = $flow{start}{headers}{location}[0] // return \%flow;
    $flow{binding} = cookie_of($flow{start}, '(?:__Host-)?nao_sso_b_[\w-]+');

    $authorize .= '&login_hint=' . $opt{user} if $opt{user};
    my $res = HTTP::Tiny->new(max_redirect => 0, timeout => 20)
        ->get($authorize);
    $flow{authorize} = $res;

    my $back = $res->{headers}{location} // return \%flow;
    my ($query) = $back =~ /\?(.*)$/;
    $query = $opt{callback_query}->($query) if $opt{callback_query};

    my @cookies = grep { defined } ($opt{cookie}, $flow{binding});
    $flow{callback} = request("/api/auth/callback/microsoft?$query",
        cookie => join('; ', @cookies), html => $opt{html});
    $flow{cookie} = cookie_of($flow{callback}, '(?:__Host-)?nao_sso');

    return \%flow;
}

# Just the session cookie of a successful sign-in.
sub sign_in_cookie {
    my $flow = sign_in(@_);
    return $flow->{cookie};
}

# True when no line of the error log holds one of the given secrets.
# Only nginx's own debug lines that print the raw request before any
# module runs ("http request line", "http args", "http header") are left
# out; see README, Troubleshooting.
sub no_secrets_logged {
    my ($t, @secrets) = @_;
    my @lines = grep { !/\[debug\].* http (request line|args|header):/ }
        split /\n/, $t->read_file('error.log');

    for my $secret (grep { defined && length } @secrets) {
        return 0 if grep { index($_, $secret) >= 0 } @lines;
    }
    return 1;
}

1;
