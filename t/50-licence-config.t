#!/usr/bin/perl

# The licence gate and the fallback: when the licence or the provider
# settings do not allow SSO, nginx still starts, every request passes
# through to nao untouched and the error log says why, once. The
# AZURE_AD_* environment and the directives that override it. And the
# configuration errors that are emerg and keep nginx from starting.

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

# The environment is read when the configuration is parsed; only the
# cases below that set it on purpose may see it.
delete @ENV{qw/AZURE_AD_CLIENT_ID AZURE_AD_CLIENT_SECRET AZURE_AD_TENANT_ID
    AZURE_AD_TOKEN_SCOPE/};

my $t = Test::Nginx->new()->has(qw/http proxy/);

nao_setup($t);

my $dir = $t->testdir();
my $client = $NaoSSO::CLIENT_ID;
my $inactive = 'single sign-on is inactive, requests pass through to'
    . " nao's own login: ";

# licence.jws from nao_setup() is valid and has "sso"; these are not.
mkdir "$dir/other" or die "Can't create $dir/other: $!\n";
make_licence_keys("$dir/other");
make_licence($t, name => 'forged.jws', key => "$dir/other/licence-key.pem");
make_licence($t, name => 'expired.jws', exp => 1700000000);
make_licence($t, name => 'nosso.jws', features => 'foo');

# Scenario: no nao_sso_license, two servers with SSO on.
# Expected: nginx starts; the reason is logged once, not once per server.

my $http = http_block(nao_directives(license => undef),
    server(8080), server(8083));
$t->write_file_expand('nginx.conf', conf('%%TEST_GLOBALS%%', $http));

$t->try_run('module not loadable')->plan(42);
nao_wait($t);

inactive_case($t, $http, 'licence missing (nao_sso_license not set)',
    'no licence');

# Scenario: a client sends X-Nao-* headers while SSO is inactive.
# Expected: they are removed all the same; other headers go through.

my $r = request('/x', json => 1, headers => [
    'X-Nao-User-Email' => 'eve@evil.example', 'X-Nao-User-Role' => 'admin',
    'X-Nao-Custom' => 'x', 'X-Other' => 'kept']);
my $seen = json_of($r)->{headers} // {};
is(join(',', sort grep { /^x-nao-/ } keys %$seen), '',
    'inactive: X-Nao-* headers removed');
is($seen->{'x-other'}, 'kept', 'inactive: other headers kept');

# Scenario: a licence signed by another key.
# Expected: inactive, "licence signature is invalid".

$http = http_block(nao_directives(license => '%%TESTDIR%%/forged.jws'),
    server(8080));
start($t, $http);
inactive_case($t, $http, 'licence signature is invalid', 'forged licence');

# Scenario: a licence that expired on 2023-11-14 (--exp 1700000000).
# Expected: inactive, the message names the date.

$http = http_block(nao_directives(license => '%%TESTDIR%%/expired.jws'),
    server(8080));
start($t, $http);
inactive_case($t, $http, 'licence expired on 2023-11-14', 'expired licence');

# Scenario: a valid licence without the "sso" feature.
# Expected: inactive, the feature is named.

$http = http_block(nao_directives(license => '%%TESTDIR%%/nosso.jws'),
    server(8080));
start($t, $http);
inactive_case($t, $http, 'licence lacks the "sso" feature', 'no sso feature');

# Scenario: a good licence, no nao_sso_client_id and no AZURE_AD_CLIENT_ID.
# Expected: inactive, the reason names both ways to set it.

$http = http_block(nao_directives(client_id => undef), server(8080));
start($t, $http);
inactive_case($t, $http,
    'client id not set (nao_sso_client_id or AZURE_AD_CLIENT_ID)',
    'no client id');

# Scenario: no client id, secret or tenant directives; AZURE_AD_* in the
# environment nginx starts with, AZURE_AD_TOKEN_SCOPE included.
# Expected: SSO works from the environment; the scope is the one given.

$ENV{AZURE_AD_CLIENT_ID} = $client;
$ENV{AZURE_AD_CLIENT_SECRET} = $NaoSSO::CLIENT_SECRET;
$ENV{AZURE_AD_TENANT_ID} = $NaoSSO::TENANT;
$ENV{AZURE_AD_TOKEN_SCOPE} = "api://$client/user_impersonation";

start($t, http_block(nao_directives(client_id => undef,
    client_secret => undef, tenant_id => undef), server(8080)));

my $flow = sign_in();
my $p = authorize_params($flow->{start}{headers}{location}[0] // '');
is($p->{client_id}, $client, 'env: client_id from AZURE_AD_CLIENT_ID');
is($p->{scope}, "openid profile email offline_access "
    . "api://$client/user_impersonation", 'env: AZURE_AD_TOKEN_SCOPE used');
is($flow->{callback}{status}, 302, 'env: callback redirects');
is(json_of(request('/api/auth/get-session', cookie => $flow->{cookie}))
    ->{user}{email}, 'ada@contoso.example', 'env: signed in');

# Scenario: AZURE_AD_CLIENT_ID is wrong, nao_sso_client_id is right, and
# no AZURE_AD_TOKEN_SCOPE.
# Expected: the directive wins, also in the default scope, and sign-in
# works.

$ENV{AZURE_AD_CLIENT_ID} = '00000000-0000-0000-0000-000000000000';
delete $ENV{AZURE_AD_TOKEN_SCOPE};

start($t, http_block(nao_directives(client_secret => undef,
    tenant_id => undef), server(8080)));

$flow = sign_in();
$p = authorize_params($flow->{start}{headers}{location}[0] // '');
is($p->{client_id}, $client, 'directive overrides AZURE_AD_CLIENT_ID');
like($p->{scope}, qr{ \Q$client\E/\.default$},
    'default scope ends with the client id and /.default');
ok(defined $flow->{cookie}, 'sign-in with the directive client id works');

delete @ENV{qw/AZURE_AD_CLIENT_ID AZURE_AD_CLIENT_SECRET AZURE_AD_TENANT_ID/};

# Scenario: configuration errors.
# Expected: each is an emerg naming the problem, and nginx does not start.

$t->write_file('short.key', '0123456789');

emerg_case($t, server(8080, 'nao_sso_authority http://example.com;'),
    qr/nao_sso: nao_sso_authority is not usable: /
        . qr/URL must be https, or http to a loopback host/,
    'non-loopback http authority');
emerg_case($t,
    '    nao_sso_secret_file %%TESTDIR%%/short.key;' . server(8080),
    qr/nao_sso_secret_file "[^"]*short\.key" holds 10 bytes, /
        . qr/at least 32 are needed/,
    '10-byte secret file');
emerg_case($t,
    '    nao_sso_secret_file %%TESTDIR%%/missing.key;' . server(8080),
    qr/nao_sso_secret_file "[^"]*missing\.key" cannot be read/,
    'missing secret file');
emerg_case($t, '    nao_sso maybe;' . server(8080), qr/invalid value "maybe"/,
    'invalid nao_sso value');

###############################################################################

# An SSO-inactive configuration that nginx runs: requests pass through,
# and the error log of this start and "nginx -t" give exactly $reason.
sub inactive_case {
    my ($t, $http, $reason, $name) = @_;

    is(passes('/x'), '200 /x', "$name: request passes through");
    is(passes('/api/auth/sign-in'), '200 /api/auth/sign-in',
        "$name: sign-in page comes from nao");
    is(reasons(log_since($t)), $reason, "$name: logged once");

    my $out = nginx_test($t, $http);
    like($out, qr/test is successful/, "$name: nginx -t is successful");
    is(reasons($out), $reason, "$name: nginx -t says why, once");
}

# "STATUS URI" as nao echoed it; "STATUS -" when nao did not answer.
sub passes {
    my ($path) = @_;

    my $r = request($path, json => 1);
    my $echo = json_of($r) // {};
    return "$r->{status} " . ($echo->{uri} // '-');
}

# The reasons for inactive SSO in $log, one a line.
sub reasons {
    my ($log) = @_;

    return join "\n", $log =~ /\Q$inactive\E(.*)$/mg;
}

# nginx must refuse to start with this http{} body, with an emerg.
sub emerg_case {
    my ($t, $servers, $re, $name) = @_;

    my $started = start($t, http_block(nao_directives(), $servers));
    ok(!$started, "$name: nginx does not start");

    my $emergs = join "\n", lines_matching(log_since($t), qr/\[emerg\]/);
    like($emergs, qr/$re/, "$name: emerg logged");
}

###############################################################################

# Stops the running nginx and starts another with this http{} body;
# true if it started.
sub start {
    my ($t, $http) = @_;
    return restart($t, conf('%%TEST_GLOBALS%%', $http));
}

# What "nginx -t" prints for the same http{} body.
sub nginx_test {
    my ($t, $http) = @_;

    my $globals = ($ENV{TEST_NGINX_GLOBALS} // '')
        . "\npid $dir/check.pid;\nerror_log $dir/check.log;\n";
    $t->write_file_expand('check.conf', conf($globals, $http));

    my $command = "'$Test::Nginx::NGINX' -p '$dir/' -c check.conf"
        . " -e '$dir/t.log' -t";
    return scalar `$command 2>&1`;
}

###############################################################################

sub conf {
    my ($globals, $http) = @_;

    return <<"EOF";

$globals

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

$http
}

EOF
}

sub http_block {
    return join "\n", @_;
}

sub server {
    my ($port, $extra) = @_;
    $extra //= '';

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
