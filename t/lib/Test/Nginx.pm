package Test::Nginx;

# Fallback integration test runner for this project.
#
# The .t files are written against the Test::Nginx API of nginx's own test
# suite (lib/Test/Nginx.pm in nginx-tests).  That library is not packaged,
# so this file reimplements the part of its API and behaviour the project
# uses.  Each .t file appends t/lib to the END of @INC, so a real library
# given with "prove -I" always wins and this one is only the fallback.
#
# Where this runner knowingly differs from the real one, a comment marked
# "Differs:" says so and why; the differences only make failures clearer
# or avoid hangs, never make a test pass that the real one would fail.

use warnings;
use strict;

use parent qw/ Exporter /;

our @EXPORT = qw/ log_in log_out http http_get http_head port /;
our @EXPORT_OK = qw/
    http_gzip_request http_gzip_like http_start http_end http_content
/;
our %EXPORT_TAGS = (gzip => [qw/ http_gzip_request http_gzip_like /]);

use File::Path qw/ rmtree /;
use File::Spec;
use File::Temp qw/ tempdir /;
use IO::Socket::INET;
use POSIX qw/ WNOHANG /;
use Test::More qw//;

# Differs: the real default is ../nginx/objs/nginx (a source tree beside
# the tests); this project tests the system nginx.
our $NGINX = $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx';

# Per-process map of logical port => { port, socket }; see port().
our %ports;

# Test::Builder reads $TODO from the package that calls is(), which is
# this one when DESTROY adds its log checks.
our $TODO;

# All waits poll at this interval, in seconds.
my $TICK = 0.1;

###############################################################################

sub new {
    my ($class) = @_;

    Test::More::BAIL_OUT("no $NGINX binary found") unless -x $NGINX;

    my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1)
        or die "Can't create temp directory: $!\n";

    # _pid: forked daemons inherit this object and must not clean up.
    # _alerts: cleared by todo_alerts().
    return bless { _pid => $$, _alerts => 1, _testdir => $dir },
        ref($class) || $class || __PACKAGE__;
}

sub DESTROY {
    my ($self) = @_;

    # Reaping children below would clobber the test's exit status.
    local ($?, $@);

    return if $self->{_pid} != $$;

    # A master that crashed leaves no usable pid file; the log checks
    # below must still run and show why.
    eval { $self->stop() } or warn "Can't stop nginx: $@";
    $self->stop_daemons();

    # Only a numeric plan leaves room for the two extra checks; with
    # skip_all or done_testing they would break the count.
    $self->_check_error_log() if Test::More->builder->expected_tests;

    print $self->_error_log() if $ENV{TEST_NGINX_CATLOG};

    eval { rmtree($self->{_testdir}) } unless $ENV{TEST_NGINX_LEAVE};
}

# A crashed worker shows up as "[alert] ... exited on signal N", so any
# alert fails the test unless todo_alerts() was called.  Sanitizer reports
# are never excused.
sub _check_error_log {
    my ($self) = @_;

    my $log = $self->_error_log();
    my @alerts = $log =~ /.+\[alert\].+/g;
    my @sanitizer = $log =~ /.+Sanitizer.+/g;

    {
        local $TODO = $self->{_alerts} ? undef : 'alerts';
        Test::More::is(join("\n", @alerts), '', 'no alerts');
    }
    {
        local $TODO;
        Test::More::is(join("\n", @sanitizer), '', 'no sanitizer errors');
    }
}

# Differs: the real one dies inside DESTROY when error.log is missing,
# which surfaces only as a short test count; say what is wrong instead.
sub _error_log {
    my ($self) = @_;

    my $log = eval { $self->read_file('error.log') };
    return $log // "[alert] runner: no error.log in $self->{_testdir}\n";
}

###############################################################################
# Feature checks.  A missing feature skips the whole test file, exactly as
# the real library does, so has() must come before plan().

sub has {
    my ($self, @features) = @_;

    for my $feature (@features) {
        next if $self->has_module($feature);
        next if $self->has_feature($feature);
        Test::More::plan(skip_all => "no $feature available");
    }

    return $self;
}

# Regexes matched against "nginx -V" output, by the names tests use.
my %MODULE_RE = _module_regexes();

sub _without {
    my ($flag) = @_;
    return qr/\A(?!.*\Q$flag\E(?:_module)?(?!\w))/s;
}

sub _module_regexes {
    my %re;

    # Built unless configured with --without-...
    $re{$_} = _without("--without-http_$_") for qw/
        charset gzip ssi mirror userid access auth_basic autoindex geo map
        referer rewrite proxy fastcgi uwsgi scgi grpc memcached limit_conn
        limit_req empty_gif browser split_clients tunnel upstream_hash
        upstream_ip_hash upstream_least_conn upstream_least_time
        upstream_random upstream_keepalive upstream_zone upstream_sticky
    /;
    $re{"stream_$_"} = _without("--without-stream_$_") for qw/
        access geo limit_conn map pass return set split_clients
        upstream_hash upstream_least_conn upstream_least_time
        upstream_random upstream_zone
    /;
    $re{$_} = _without("--without-mail_$_") for qw/ pop3 imap smtp /;
    $re{http} = qr/\A(?!.*--without-http(?!\S))/s;
    $re{cache} = qr/\A(?!.*--without-http-cache)/s;
    $re{pcre} = qr/\A(?!.*--without-pcre)/s;

    # Built only when asked for; "=dynamic" counts as built.
    $re{$_} = qr/--with-http_${_}_module/
        for qw/ flv perl auth_request realip sub /;
    $re{stream_ssl} = qr/--with-stream_ssl_module/;
    $re{mail} = qr/--with-mail(?:=dynamic)?(?!\S)/;
    $re{stream} = qr/--with-stream(?:=dynamic)?(?!\S)/;
    $re{sni} = qr/TLS SNI support enabled/;

    return %re;
}

# Stock dynamic modules, by feature name: loaded through load_module in
# TEST_NGINX_GLOBALS counts as available.
my %DYNAMIC_SO = (
    http_geoip => 'ngx_http_geoip_module',
    image_filter => 'ngx_http_image_filter_module',
    perl => 'ngx_http_perl_module',
    xslt => 'ngx_http_xslt_filter_module',
    mail => 'ngx_mail_module',
    stream => 'ngx_stream_module',
    stream_geoip => 'ngx_stream_geoip_module',
);

# An unknown name is used as a regex itself, as the real library does:
# has('nao_sso') is therefore never true, the module's name is not in
# "nginx -V".
sub has_module {
    my ($self, $feature) = @_;

    my $re = $MODULE_RE{$feature} // $feature;
    return 1 if $self->_nginx_v() =~ $re;

    my $so = $DYNAMIC_SO{$feature} // return 0;
    my $globals = $ENV{TEST_NGINX_GLOBALS} // return 0;
    return $globals =~ /load_module\s+[^;]*\Q$so\E[-\w]*\.so\s*;/ ? 1 : 0;
}

sub has_feature {
    my ($self, $feature) = @_;

    return $^O ne 'MSWin32' if $feature =~ /^(?:symlink|unix|udp)\z/;
    return _has_socket_ssl($1) if $feature =~ /^socket_ssl(\w*)\z/;
    return $self->_has_tls_library($1, $2, $3)
        if $feature =~ /^(openssl|libressl):([0-9.]+)([a-z]*)/;
    return _has_cryptx() if $feature eq 'cryptx';
    return 0;
}

sub _has_socket_ssl {
    my ($what) = @_;

    return 0 unless eval {
        require IO::Socket::SSL;
        IO::Socket::SSL::SSL_VERIFY_NONE();
        1;
    };

    my %check = (
        '' => sub { 1 },
        _sni => sub { IO::Socket::SSL->can_client_sni() },
        _alpn => sub { IO::Socket::SSL->can_alpn() },
        _sslversion => sub { IO::Socket::SSL->can('get_sslversion') },
        _reused => sub { IO::Socket::SSL->can('get_session_reused') },
    );
    my $check = $check{$what} or return 0;
    return eval { $check->() } ? 1 : 0;
}

sub _has_tls_library {
    my ($self, $library, $need, $patch) = @_;

    $self->_nginx_v() =~ /with $library ([0-9.]+)([a-z]*)/i or return 0;
    my @have = (split(/\./, $1), unpack('C*', $2));
    my @want = (split(/\./, $need), unpack('C*', $patch));
    return _at_least(\@have, \@want);
}

sub _has_cryptx {
    return eval {
        require Crypt::Misc;
        $Crypt::Misc::VERSION >= 0.067;
    } ? 1 : 0;
}

sub has_version {
    my ($self, $need) = @_;

    my ($have) = $self->_nginx_v() =~ m!nginx version: nginx/([0-9.]+)!;
    return _at_least([split /\./, $have // ''], [split /\./, $need]);
}

# Compares dotted versions part by part; a missing part counts as 0.
sub _at_least {
    my ($have, $want) = @_;

    for my $i (0 .. $#$want) {
        my $v = $have->[$i] || 0;
        return 0 if $want->[$i] > $v;
        return 1 if $v > $want->[$i];
    }
    return 1;
}

sub has_daemon {
    my ($self, $daemon) = @_;

    Test::More::plan(skip_all => "$daemon not found")
        unless grep { -x "$_/$daemon" } File::Spec->path();
    return $self;
}

# "nginx -V" prints to stderr, hence the shell; cached for the object.
sub _nginx_v {
    my ($self) = @_;

    $self->{_configure_args} //= `'$NGINX' -V 2>&1`;
    return $self->{_configure_args};
}

###############################################################################
# Plan and expectations.

# The two log checks DESTROY adds ("no alerts", "no sanitizer errors")
# are counted here, so plan(N) means N tests of the file's own.
sub plan {
    my ($self, $plan) = @_;

    Test::More::plan(tests => $plan + 2);
    return $self;
}

sub todo_alerts {
    my ($self) = @_;

    $self->{_alerts} = 0;
    return $self;
}

###############################################################################
# Starting and stopping nginx.

# A config nginx rejects skips the file instead of failing it; this is
# how tests probe for optional directives.  Must come before plan().
sub try_run {
    my ($self, $message) = @_;

    return $self if _without_stderr(sub { $self->run() });

    if ($ENV{TEST_NGINX_VERBOSE}) {
        log_core($_) for split /^/, $self->read_file('error.log');
    }

    Test::More::plan(skip_all => $message);
    return $self;
}

# Runs $code with stderr on the null device; true if it did not die.
sub _without_stderr {
    my ($code) = @_;

    open my $saved, '>&', \*STDERR or die "Can't dup stderr: $!\n";
    open STDERR, '>', File::Spec->devnull() or die "Can't reopen: $!\n";
    my $ok = eval { $code->(); 1 };
    open STDERR, '>&', $saved or die "Can't restore stderr: $!\n";
    return $ok;
}

# nginx must run in the foreground ("daemon off;" in the config): the
# forked child is then the master, which stop() signals and reaps.
sub run {
    my ($self, $conf) = @_;

    $self->write_file_expand('nginx.conf', _slurp($conf)) if defined $conf;

    my $pid = $self->_spawn_nginx();
    my $up = $self->waitforfile("$self->{_testdir}/nginx.pid", $pid);

    # Differs: on a timeout the real one leaves nginx running.
    _kill_and_reap($pid) if !defined $up;
    die "Can't start nginx" unless $up;

    $self->{_started} = 1;
    return $self;
}

sub _spawn_nginx {
    my ($self) = @_;

    my $pid = fork() // die "Unable to fork(): $!\n";
    return $pid if $pid;

    exec($NGINX, $self->_nginx_args());
    warn "Unable to exec(): $!\n";
    POSIX::_exit(127);
}

# A config without %%TEST_GLOBALS%% still gets the pid file and error log
# in the test directory; one with it must not get them twice.
sub _nginx_args {
    my ($self) = @_;

    my $dir = $self->{_testdir};
    my @args = ('-p', "$dir/", '-c', 'nginx.conf', '-e', 'error.log');
    return @args if defined $self->{_test_globals};
    return (@args, '-g',
        "pid $dir/nginx.pid; error_log $dir/error.log debug;");
}

# Same nginx arguments as run(), for tests that inspect the full config.
sub dump_config {
    my ($self) = @_;

    my $command = join ' ', map { "'$_'" } $NGINX, '-T', $self->_nginx_args();
    return scalar `$command 2>&1`;
}

# Differs: the real reload() only sends HUP and returns at once.  This one
# also waits (up to 5 s) until the master logs new workers or a config
# error, so a test that passes here may still race under the real
# library: synchronise explicitly after reload() where it matters.
sub reload {
    my ($self) = @_;

    return $self unless $self->{_started};

    my $seen = length $self->_error_log();
    kill 'HUP', $self->_master_pid();

    for (1 .. 50) {
        my $new = substr($self->_error_log(), $seen);
        last if $new =~ /start worker process|\[emerg\]/;
        _nap();
    }

    return $self;
}

# Graceful: QUIT lets workers finish (and log any crash) first.  Only if
# the master is still there after 90 s does it get TERM.
sub stop {
    my ($self) = @_;

    return $self unless $self->{_started};

    my $pid = $self->_master_pid();
    kill 'QUIT', $pid;
    _kill_and_reap($pid) unless _wait_gone($pid, 900);

    $self->{_started} = 0;
    return $self;
}

sub _master_pid {
    my ($self) = @_;

    my ($pid) = $self->read_file('nginx.pid') =~ /(\d+)/;
    return $pid // die "No pid in nginx.pid\n";
}

# Differs: the real one sends TERM twice and then blocks; KILL instead so
# a daemon ignoring TERM cannot hang the test.
sub stop_daemons {
    my ($self) = @_;

    while (my $pid = shift @{ $self->{_daemons} // [] }) {
        kill 'TERM', $pid;
        next if _wait_gone($pid, 50);
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }

    return $self;
}

sub _kill_and_reap {
    my ($pid) = @_;

    kill 'TERM', $pid;
    waitpid($pid, 0);
}

# True once $pid has exited (reaped if it is our child) within $ticks.
sub _wait_gone {
    my ($pid, $ticks) = @_;

    for (1 .. $ticks) {
        my $reaped = waitpid($pid, WNOHANG);
        return 1 if $reaped == $pid;
        return 1 if $reaped == -1 && !kill(0, $pid);
        _nap();
    }
    return 0;
}

sub _nap {
    select undef, undef, undef, $TICK;
}

###############################################################################
# Helper daemons and waiting for things.

# $code is a code ref run in a forked child, or a program to exec.
sub run_daemon {
    my ($self, $code, @args) = @_;

    my $pid = fork() // die "Can't fork daemon: $!\n";

    if (!$pid) {
        if (ref $code eq 'CODE') {
            $code->(@args);
            exit 0;
        }
        exec($code, @args);
        warn "Can't exec $code: $!\n";
        POSIX::_exit(127);
    }

    push @{ $self->{_daemons} }, $pid;
    return $self;
}

# 1 when $file exists, 0 if $pid exited first, undef after 5 s.
sub waitforfile {
    my ($self, $file, $pid) = @_;

    for (1 .. 50) {
        return 1 if -e $file;
        return 0 if $pid && waitpid($pid, WNOHANG) != 0 && !-e $file;
        _nap();
    }
    return undef;
}

# 1 once a TCP connect to "host:port" succeeds, undef after 5 s.
sub waitforsocket {
    my ($self, $peer) = @_;

    for (1 .. 50) {
        return 1 if IO::Socket::INET->new(Proto => 'tcp', PeerAddr => $peer);
        _nap();
    }
    return undef;
}

###############################################################################
# The test directory.

sub testdir {
    my ($self) = @_;
    return $self->{_testdir};
}

sub read_file {
    my ($self, $name) = @_;

    open my $fh, '<', "$self->{_testdir}/$name"
        or die "Can't open $name: $!";
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my ($self, $name, $content) = @_;

    open my $fh, '>', "$self->{_testdir}/$name"
        or die "Can't create $name: $!";
    binmode $fh;
    print $fh $content;
    close $fh or die "Can't write $name: $!";
    return $self;
}

# Bare "127.0.0.1:8NNN" is remapped like %%PORT_8NNN%%, so configs copied
# from nginx-tests work unchanged.
sub write_file_expand {
    my ($self, $name, $content) = @_;

    $content =~ s/%%TEST_GLOBALS%%/$self->test_globals()/ge;
    $content =~ s/%%TEST_GLOBALS_HTTP%%/$self->test_globals_http()/ge;
    $content =~ s/%%TEST_GLOBALS_STREAM%%/$self->test_globals_stream()/ge;
    $content =~ s/%%TESTDIR%%/$self->{_testdir}/g;
    $content =~ s/127\.0\.0\.1:(8\d\d\d)/'127.0.0.1:' . port($1)/ge;
    $content =~ s/%%PORT_(\d+)%%/port($1)/ge;
    $content =~ s/%%PORT_(\d+)_UDP%%/port($1, udp => 1)/ge;

    return $self->write_file($name, $content);
}

sub _slurp {
    my ($path) = @_;

    open my $fh, '<', $path or die "Can't open $path: $!";
    local $/;
    return scalar <$fh>;
}

###############################################################################
# What %%TEST_GLOBALS%% and friends expand to.  Each is computed once per
# object; expanding %%TEST_GLOBALS%% also tells run() not to add -g.

sub test_globals {
    my ($self) = @_;

    return $self->{_test_globals} //= do {
        my $dir = $self->{_testdir};
        my $s = "pid $dir/nginx.pid;\nerror_log $dir/error.log debug;\n";
        $s .= $ENV{TEST_NGINX_GLOBALS} // '';
        $s .= $self->test_globals_modules();
        $s .= $self->test_globals_perl5lib() if $s !~ /env PERL5LIB/;
        $s;
    };
}

# Stock modules this nginx was built with as dynamic, in load order.
my @STOCK_DYNAMIC = (
    [ 'http_geoip\S+=dynamic', 'ngx_http_geoip_module' ],
    [ 'image_filter\S+=dynamic', 'ngx_http_image_filter_module' ],
    [ 'perl\S+=dynamic', 'ngx_http_perl_module' ],
    [ 'xslt\S+=dynamic', 'ngx_http_xslt_filter_module' ],
    [ 'mail=dynamic', 'ngx_mail_module' ],
    [ 'stream=dynamic', 'ngx_stream_module' ],
    [ 'stream_geoip\S+=dynamic', 'ngx_stream_geoip_module' ],
);

# Differs: the real one emits load_module for every stock dynamic module
# from TEST_NGINX_MODULES or the binary's directory, whether or not the
# file is there.  A packaged nginx keeps them in --modules-path and may
# lack some (Debian without libnginx-mod-http-perl), which would stop
# every test from starting; this one looks there and skips absent files.
sub test_globals_modules {
    my ($self) = @_;

    my $dir = $self->_modules_dir();
    my $s = '';

    for my $m (@STOCK_DYNAMIC) {
        my ($flag, $name) = @$m;
        next unless $self->has_module($flag) && -e "$dir/$name.so";
        $s .= "load_module $dir/$name.so;\n";
    }
    return $s;
}

sub _modules_dir {
    my ($self) = @_;

    return File::Spec->rel2abs($ENV{TEST_NGINX_MODULES})
        if defined $ENV{TEST_NGINX_MODULES};

    my ($volume, $dir) = File::Spec->splitpath($NGINX);
    $dir = File::Spec->rel2abs(File::Spec->catpath($volume, $dir, ''));
    my @found = glob("$dir/ngx_*.so");
    return $dir if @found;

    my ($path) = $self->_nginx_v() =~ /--modules-path=(\S+)/;
    return $path // $dir;
}

# Only meaningful for an nginx built in a source tree; kept so the
# expansion matches the real library's.
sub test_globals_perl5lib {
    my ($self) = @_;

    return '' unless $self->has_module('perl');

    my ($volume, $dir) = File::Spec->splitpath($NGINX);
    my $objs = File::Spec->rel2abs(File::Spec->catpath($volume, $dir, ''));
    my $perl = "$objs/src/http/modules/perl";
    return "env PERL5LIB=$perl:$perl/blib/arch;\n";
}

# Keeps nginx's logs and temp files inside the test directory instead of
# the compiled-in system paths.
sub test_globals_http {
    my ($self) = @_;

    return $self->{_test_globals_http} //= do {
        my $dir = $self->{_testdir};
        my $s = "root $dir;\naccess_log $dir/access.log;\n"
            . "client_body_temp_path $dir/client_body_temp;\n";
        for my $m (qw/ fastcgi proxy uwsgi scgi /) {
            $s .= "${m}_temp_path $dir/${m}_temp;\n"
                if $self->has_module($m);
        }
        $s . ($ENV{TEST_NGINX_GLOBALS_HTTP} // '');
    };
}

sub test_globals_stream {
    my ($self) = @_;

    return $self->{_test_globals_stream} //=
        $ENV{TEST_NGINX_GLOBALS_STREAM} // '';
}

###############################################################################
# Ports.  port(N) maps a logical port N to a real one, the same for the
# whole process.  N itself is tried first, then random ports in N's block
# of 500.  The chosen port is held by a socket of the other protocol (UDP
# for a TCP port), which keeps parallel test files from taking it while
# leaving it free for nginx or a daemon to bind.

sub port {
    my ($num, %opts) = @_;

    $ports{$num} //= _reserve_port($num, $opts{udp});
    return $ports{$num}{socket} if $opts{socket};
    return $ports{$num}{port};
}

sub _reserve_port {
    my ($num, $udp) = @_;

    for my $try (1 .. 10) {
        my $port = $try == 1 ? $num
            : int($num / 500) * 500 + int(rand(500));
        my $lock = _bind_port($port, !$udp) or next;
        _bind_port($port, $udp) or next;
        return { port => $port, socket => $lock };
    }

    die "Port limit exceeded";
}

# A TCP socket must also be able to listen, hence Listen and Reuse.
sub _bind_port {
    my ($port, $udp) = @_;

    return IO::Socket::INET->new(
        Proto => $udp ? 'udp' : 'tcp',
        LocalAddr => "127.0.0.1:$port",
        $udp ? () : (Listen => 1, Reuse => 1),
    );
}

###############################################################################
# Logging, printed as TAP comments only with TEST_NGINX_VERBOSE.

sub log_core {
    return unless $ENV{TEST_NGINX_VERBOSE};

    my ($prefix, $msg) = @_ == 1 ? ('', @_) : @_;
    $msg //= '';
    $prefix .= ' ' if length $prefix;

    my $len = length $msg;
    $msg = substr($msg, 0, 2048) . "(...logged only 2048 of $len bytes)"
        if $len > 2048;

    # Escape bytes a terminal or the TAP parser could choke on, but keep
    # the line structure readable.
    $msg =~ s/([^\x20-\x7e\n])/sprintf('\\x%02x', ord($1))/ge;
    $msg =~ s/\n/\\x0a\n/g;
    $msg =~ s/^/# $prefix/gm;
    $msg .= "\n" unless $msg =~ /\n\z/;
    print $msg;
}

sub log_out {
    log_core('>>', @_);
}

sub log_in {
    log_core('<<', @_);
}

###############################################################################
# HTTP client.  Requests go to port(8080), or port(8443) with SSL, unless
# %extra has a PeerAddr or a ready socket; %extra is also passed to the
# socket constructor.  Options: start (return the socket after sending),
# body, sleep (seconds between request and body), aborted (send no body),
# socket, SSL.  Failures return undef.

sub http_get {
    my ($url, %extra) = @_;
    return http("GET $url HTTP/1.0\nHost: localhost\n\n", %extra);
}

sub http_head {
    my ($url, %extra) = @_;
    return http("HEAD $url HTTP/1.0\nHost: localhost\n\n", %extra);
}

sub http {
    my ($request, %extra) = @_;

    my $s = http_start($request, %extra);
    return $s if $extra{start} || !defined $s;
    return http_end($s, %extra);
}

sub http_start {
    my ($request, %extra) = @_;

    my $s = _with_timeout(sub {
        my $s = $extra{socket} || _connect(%extra);
        log_out($request);
        $s->print($request);
        select undef, undef, undef, $extra{sleep} if $extra{sleep};
        if ($extra{body} && !$extra{aborted}) {
            log_out($extra{body});
            $s->print($extra{body});
        }
        return $s;
    });

    return $s;
}

sub http_end {
    my ($s) = @_;

    my $reply = _with_timeout(sub {
        local $/;
        my $reply = $s->getline();
        $s->close();
        return $reply;
    });

    log_in($reply // '');
    return $reply;
}

sub _connect {
    my (%extra) = @_;

    my $port = port($extra{SSL} ? 8443 : 8080);
    my $s = IO::Socket::INET->new(
        Proto => 'tcp',
        PeerAddr => "127.0.0.1:$port",
        %extra,
    ) or die "Can't connect to nginx: $!\n";

    _start_ssl($s, %extra) if $extra{SSL};
    return $s;
}

sub _start_ssl {
    my ($s, %extra) = @_;

    require IO::Socket::SSL;
    no warnings 'once';
    IO::Socket::SSL->start_SSL($s,
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
        %extra,
    ) or die $IO::Socket::SSL::SSL_ERROR . "\n";
}

# Runs $code with an 8 s alarm and SIGPIPE as an error; logs and returns
# undef if it dies, so a hung or reset connection fails one test only.
sub _with_timeout {
    my ($code) = @_;

    my $result = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        local $SIG{PIPE} = sub { die "sigpipe\n" };
        alarm(8);
        my $r = $code->();
        alarm(0);
        $r;
    };
    alarm(0);

    log_in("died: $@") if $@;
    return $@ ? undef : $result;
}

###############################################################################
# Response helpers (the ":gzip" export tag and http_content).

sub http_gzip_request {
    my ($url) = @_;
    return http("GET $url HTTP/1.1\nHost: localhost\nConnection: close\n"
        . "Accept-Encoding: gzip\n\n");
}

# The body of a response, de-chunked; "[no-last-chunk]" marks a chunked
# body cut short.
sub http_content {
    my ($text) = @_;

    return undef unless defined $text;
    my ($headers, $body) = $text =~ /(.*?)\x0d\x0a?\x0d\x0a?(.*)/s
        or return undef;
    return $body unless $headers =~ /Transfer-Encoding: chunked/i;

    my ($content, $len) = ('', -1);
    while ($body =~ /\G\x0d?\x0a?([0-9a-f]+)\x0d\x0a?/gci) {
        $len = hex $1;
        $content .= substr($body, pos($body), $len);
        pos($body) += $len;
    }
    return $len == 0 ? $content : $content . '[no-last-chunk]';
}

sub http_gzip_like {
    my ($text, $re, $name) = @_;

    SKIP: {
        eval { require IO::Uncompress::Gunzip; 1 }
            or Test::More::skip('IO::Uncompress::Gunzip not installed', 1);

        my $in = http_content($text);
        my $out;
        IO::Uncompress::Gunzip::gunzip(\$in => \$out);
        Test::More->builder->like($out, $re, $name);
    }
}

1;
