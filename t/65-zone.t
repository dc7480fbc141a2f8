#!/usr/bin/perl

# The shared memory zone under pressure: anyone can start sign-ins, so a
# flood of them must never push out the sessions of signed-in users.

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
        nao_sso_zone_size      64k;

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

$t->try_run('module not loadable')->plan(6);
nao_wait($t);

###############################################################################

# Scenario: a user signs in, then 200 sign-ins are started and left
# pending, each with a 2 KB return_to, several times what a 64k zone
# holds.
# Expected: the zone drops old pending sign-ins (one warning names them),
# the user's session still works, the oldest flood sign-in is gone, and
# a new sign-in still completes.

my $cookie = sign_in_cookie();
ok(defined $cookie, 'signed in before the flood');

my $long = '/' . ('a' x 2000);
my ($first, $failed) = (undef, 0);

for my $n (1 .. 200) {
    my $r = request("/api/auth/sign-in/microsoft?return_to=$long");
    $failed++ if $r->{status} != 302;
    $first //= $r;
}

is($failed, 0, 'every flood sign-in was started');
is(request('/api/auth/get-session', cookie => $cookie)->{status}, 200,
    'the session survived the flood');

my $state = authorize_params($first->{headers}{location}[0])->{state};
my $binding = cookie_of($first, 'nao_sso_b_[\w-]+');
is(request("/api/auth/callback/microsoft?code=x&state=$state",
    cookie => $binding)->{status}, 400,
    'the oldest flood sign-in was dropped');

like($t->read_file('error.log'),
    qr/\[warn\].*zone "nao_sso" is full, dropped \d+ least recently used (?#
    )sign-ins/, 'dropping sign-ins is logged');

ok(defined sign_in_cookie(), 'a new sign-in still completes');

###############################################################################
