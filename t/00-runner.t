#!/usr/bin/perl

# Tests for the integration test runner itself: nginx starts from an
# nginx-tests style config, answers on remapped ports, and a helper daemon
# can be started and waited for.  Passes under t/lib/Test/Nginx.pm and
# under the real nginx-tests library alike.

use warnings;
use strict;

use Test::More;

use IO::Socket::INET;

# Every .t file in this project starts with this block.  t/lib holds a
# fallback Test::Nginx; it is appended to the END of @INC so that a real
# nginx-tests library given as "prove -I /path/to/nginx-tests/lib t/" is
# found first.  "use lib" would prepend t/lib and shadow the real one.
BEGIN {
    use FindBin;
    push @INC, "$FindBin::Bin/lib";
}

use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http rewrite/)->plan(7);

# The first server uses the %%PORT_8080%% form, the second a bare port in
# 8000..8999, which write_file_expand() remaps the same way.
$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location / {
            return 200 "hello";
        }

        location = /testdir {
            return 200 "%%TESTDIR%%";
        }
    }

    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location / {
            return 200 "second";
        }
    }
}

EOF

$t->run_daemon(\&echo_daemon, port(8082));
$t->run();
$t->waitforsocket('127.0.0.1:' . port(8082))
    or die "Can't start echo daemon";

###############################################################################

like(http_get('/'), qr!^HTTP/1\.1 200 .*\x0d\x0a\x0d\x0ahello\z!s,
    'return on the first server');
like(http_head('/'), qr!^HTTP/1\.1 200 .*\x0d\x0a\x0d\x0a\z!s,
    'head has no body');
like(http_get('/', PeerAddr => '127.0.0.1:' . port(8081)), qr/second\z/,
    'second server via port()');
like(http_get('/testdir'), qr/\x0d\x0a\x0d\x0a\Q${\ $t->testdir() }\E\z/,
    'testdir expanded');

is(echo("ping\n"), "ping\n", 'echo daemon');

$t->write_file('note.txt', "written\n");
is($t->read_file('note.txt'), "written\n", 'write_file and read_file');

$t->stop();

like($t->read_file('error.log'), qr/\[notice\].*exiting/,
    'graceful stop logged');

###############################################################################

# Sends $line to the echo daemon and returns what comes back.
sub echo {
    my ($line) = @_;

    my $s = IO::Socket::INET->new(
        Proto => 'tcp',
        PeerAddr => '127.0.0.1:' . port(8082),
    ) or return "connect: $!";

    $s->print($line);
    return scalar $s->getline();
}

# Echoes the first line of each connection back, one client at a time.
sub echo_daemon {
    my ($port) = @_;

    my $server = IO::Socket::INET->new(
        Proto => 'tcp',
        LocalAddr => "127.0.0.1:$port",
        Listen => 5,
        Reuse => 1,
    ) or die "Can't create listening socket: $!\n";

    while (my $client = $server->accept()) {
        my $line = $client->getline();
        $client->print($line) if defined $line;
        $client->close();
    }
}

###############################################################################
