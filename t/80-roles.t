#!/usr/bin/perl

# nao roles: the default role, role rules over Entra groups and app roles
# from nginx.conf and from the licence, which rule wins, the role kept in
# the session and shown by X-Nao-User-Role, $nao_sso_user_role and
# get-session alike; group overage read from Microsoft Graph (the mock's)
# page by page with a token of its own, a Graph failure that signs in
# with the default role and the retry at the next refresh; and the rules
# nginx refuses to start with.

use warnings;
use strict;

use Test::More;

use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw/sleep/;

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

# The mock's groups: Ada is in admins and analysts, Grace in analysts
# (and has the app role Nao.Admin), Zoe in viewers, Alan in none; Olga
# has 250 groups, admins the 231st, so Entra sends no "groups" claim.
my $ADMINS = '5e8b2c14-7a3d-4f69-b1e0-9d2c6a4f8e31';
my $ANALYSTS = 'c7d41a93-2e6f-4b58-8a0c-3f1e9d7b5c26';
my $VIEWERS = 'e2a9f6b8-1d4c-4a73-9e5b-7c0f2d8a6b49';

my $ADA = 'ada@contoso.example';
my $GRACE = 'grace@contoso.example';
my $ALAN = 'alan@contoso.example';
my $ZOE = 'zoe@contoso.example';
my $OLGA = 'olga@contoso.example';

my $GRAPH_SCOPE = 'http://127.0.0.1:' . port(8081) . '/GroupMember.Read.All';

# Licences for the second part: rules of their own, and broken ones.
licence($t, 'rules.jws', rules("$ADMINS=admin", "$VIEWERS=viewer",
    'role:Nao.Admin=viewer'));
licence($t, 'bad-guid.jws', rules('not-a-guid=admin'));
licence($t, 'bad-role.jws', rules("$ADMINS=admin", "$VIEWERS=superuser"));
licence($t, 'bad-list.jws', '--payload-json',
    qq/{"role_rules":{"group":"$ADMINS","role":"admin"}}/);

# Servers by port: 8080 no rules; 8083 default viewer; 8084 default
# admin; 8085 group rules (admins admin, analysts and viewers viewer);
# 8086 app role Nao.Admin admin and analysts viewer; 8087 a group id in
# capitals and an app role in the wrong case; 8088 the admins group
# through Graph, with a 1 s limit for each call to Microsoft; 8089 an app
# role rule only; 8090 admins admin and app role Nao.Reader viewer.

my $servers = join '',
    server(8080),
    server(8083, 'nao_sso_default_role viewer;'),
    server(8084, 'nao_sso_default_role admin;'),
    server(8085, "nao_sso_role_map $ADMINS admin;",
        "nao_sso_role_map $ANALYSTS viewer;",
        "nao_sso_role_map $VIEWERS viewer;"),
    server(8086, 'nao_sso_role_map role:Nao.Admin admin;',
        "nao_sso_role_map $ANALYSTS viewer;"),
    server(8087, 'nao_sso_role_map ' . uc($ADMINS) . ' admin;',
        'nao_sso_role_map role:nao.admin admin;'),
    server(8088, "nao_sso_role_map $ADMINS admin;",
        'nao_sso_idp_timeout 1s;'),
    server(8089, 'nao_sso_role_map role:Nao.Admin admin;'),
    server(8090, "nao_sso_role_map $ADMINS admin;",
        'nao_sso_role_map role:Nao.Reader viewer;');

$t->write_file_expand('nginx.conf', conf('licence.jws', $servers));
$t->try_run('module not loadable')->plan(67);
nao_wait($t);

my %oid = map { $_->{email} => $_->{oid} } @{ mock_users() };
my (@codes, @cookies);    # for the checks that nothing secret is logged

###############################################################################

# Scenario: no role directives; Ada (two groups) and Alan (none).
# Expected: both are members, the default; get-session, X-Nao-User-Role
# and $nao_sso_user_role say the same, and the log says so at sign-in.

log_since($t);
is(role_of(8080, $ADA), 'member member member', 'no rules: Ada is member');
like(log_since($t),
    qr/\[info\].*nao_sso: user "\Q$oid{$ADA}\E" signed in as "member"/,
    'no rules: sign-in logged with the role');
is(role_of(8080, $ALAN), 'member member member', 'no rules: Alan is member');

# Scenario: a client sends X-Nao-User-Role: admin itself.
# Expected: nao sees the role of the session, not the client's.

my $cookie = sign_in_cookie(port => 8080, user => $ALAN);
my $echo = json_of(request('/_echo/spoof', cookie => $cookie,
    headers => ['X-Nao-User-Role' => 'admin'])) // {};
is($echo->{headers}{'x-nao-user-role'}, 'member',
    'a client cannot set X-Nao-User-Role');
push @cookies, cookie_value($cookie);

# Scenario: nao_sso_default_role viewer (8083) and admin (8084).
# Expected: a user that no rule matches gets that role.

is(role_of(8083, $ALAN), 'viewer viewer viewer', 'default_role viewer');
is(role_of(8084, $ALAN), 'admin admin admin', 'default_role admin');

# Scenario: group rules on 8085: admins admin, analysts viewer, viewers
# viewer.
# Expected: Ada matches admin and viewer, the most privileged wins;
# Grace matches viewer only, less than the default member, and gets it;
# Zoe viewer; Alan matches nothing and keeps the default.

is(role_of(8085, $ADA), 'admin admin admin',
    'group rules: admin beats viewer');
is(role_of(8085, $GRACE), 'viewer viewer viewer',
    'group rules: a rule below the default still applies');
is(role_of(8085, $ZOE), 'viewer viewer viewer', 'group rules: viewers');
is(role_of(8085, $ALAN), 'member member member',
    'group rules: no match, default role');

# Scenario: app role rules on 8086: role:Nao.Admin admin, analysts
# viewer.
# Expected: Grace, with the app role Nao.Admin and the analysts group,
# is admin; Ada, analyst without the app role, viewer.

is(role_of(8086, $GRACE), 'admin admin admin',
    'app role rule: Nao.Admin is admin');
is(role_of(8086, $ADA), 'viewer viewer viewer',
    'app role rule: not for users without the app role');

# Scenario: 8087 maps the admins group written in capitals, and
# "role:nao.admin" where the app role is Nao.Admin.
# Expected: group ids match whatever their case; app role values are
# case-sensitive, as Entra's are, so Grace stays a member.

is(role_of(8087, $ADA), 'admin admin admin',
    'group id in capitals matches');
is(role_of(8087, $GRACE), 'member member member',
    'app role names are case-sensitive');

# Scenario: a user in the admins group signs in on 8085; then Entra
# drops the user from every group.
# Expected: the role was computed at sign-in and stays with the session;
# only a new sign-in sees the change.

mock('config', { user => { email => 'kim@contoso.example',
    name => 'Kim Park', groups => [$ADMINS] } });
$cookie = sign_in_cookie(port => 8085);
my $before = roles_seen($cookie, 8085);
mock('config', { user => { email => 'kim@contoso.example',
    name => 'Kim Park', groups => [] } });
is($before . ', then ' . roles_seen($cookie, 8085),
    'admin admin admin, then admin admin admin',
    'role kept in the session when the groups change');
is(role_of(8085), 'member member member', 'a new sign-in sees the change');
mock('config', { user => $ADA });

###############################################################################

# Scenario: Olga, with 250 groups, on 8088 (admins admin), Graph pages
# of 100 entries.
# Expected: she is admin, which needs the third page; Graph was read
# page by page, 3 pages; the Graph token came from one refresh_token
# grant for "<graph url>/GroupMember.Read.All" and no other refresh
# grant was made (the downstream token is not spent on Graph); no
# warning.

mock('config', { graph_page_size => 100 });

my $stats = mock_stats();
log_since($t);
is(role_of(8088, $OLGA), 'admin admin admin', 'overage: admin from Graph');

my $now = mock_stats();
is(delta($stats, $now, 'graph_pages') . ' ' . delta($stats, $now, 'graph'),
    '3 3', 'overage: Graph read in 3 pages');
ok($now->{last_graph_request}{has_skiptoken},
    'overage: later pages through @odata.nextLink');
is(grants($stats, $now, $GRAPH_SCOPE) . ' of ' . grants($stats, $now),
    '1 of 1', 'overage: one refresh grant, for the Graph scope');
is(join("\n", lines_matching(log_since($t), qr/\[(warn|error)\]/)), '',
    'overage: no warning or error');

# Scenario: Olga on 8080 (no rules) and on 8089 (an app role rule only).
# Expected: no rule needs her groups: Graph is not asked, no Graph
# token is fetched; she gets the default role.

$stats = mock_stats();
is(role_of(8080, $OLGA), 'member member member', 'overage, no rules: member');
is(role_of(8089, $OLGA), 'member member member',
    'overage, app role rule only: member');
$now = mock_stats();
is(delta($stats, $now, 'graph') . ' ' . grants($stats, $now),
    '0 0', 'overage without group rules: no Graph, no refresh grant');

# Scenario: Graph fails while Olga signs in on 8088: HTTP 500, a garbage
# body, an answer later than nao_sso_idp_timeout (1 s).
# Expected: the sign-in completes with the default role, and one warning
# names her object id and says she signs in with the default role for
# now; no error.

graph_fails($t, { status => 500 }, 'Graph 500');
graph_fails($t, { body => 'garbage' }, 'Graph garbage');
graph_fails($t, { delay_ms => 2500, count => 1 }, 'Graph too slow');

# Scenario: Pat, in group overage, in the admins group and with the app
# role Nao.Reader, on 8090 (admins admin, role:Nao.Reader viewer): with
# Graph up, then with Graph answering 500.
# Expected: admin, from Graph; while Graph fails, the rules that need no
# groups still apply: viewer, not the default member.

mock('config', { user => { email => 'pat@contoso.example', name => 'Pat',
    groups => [$ADMINS], roles => ['Nao.Reader'],
    overage => JSON::PP::true } });
is(role_of(8090), 'admin admin admin', 'overage and app role: Graph read');
mock('config', { faults => { graph => { status => 500 } } });
is(role_of(8090), 'viewer viewer viewer',
    'overage and app role, Graph down: the app role rule applies');
mock('config', { faults => { graph => undef }, user => $ADA });

# Scenario: Graph fails at sign-in (503) while tokens live 2 s; then
# Graph is back, the token expires and the next request refreshes it.
# Expected: member at first; after the refresh the session's role is
# read again from Graph, with a new Graph token grant: get-session, the
# header and the variable say admin.

mock('config', { faults => { graph => { status => 503 } }, expires_in => 2 });
my $flow = sign_in(port => 8088, user => $OLGA);
$cookie = $flow->{cookie};
is(roles_seen($cookie, 8088), 'member member member',
    'Graph retry: member while Graph is down');
mock('config', { faults => { graph => undef }, expires_in => 3599 });
push @cookies, cookie_value($cookie);
push @codes, $flow->{code};

$stats = mock_stats();
sleep(2.2);
my $r = request('/_echo/after-expiry', cookie => $cookie, port => 8088);
is($r->{status}, 200, 'Graph retry: request after expiry passes');

my $role = wait_until(5, sub {
    my $s = json_of(request('/api/auth/get-session', cookie => $cookie,
        port => 8088)) // {};
    my $role = $s->{user}{role} // '-';
    return $role eq 'admin' ? $role : undef;
}) // 'not admin';
is($role, 'admin', 'Graph retry: role updated at the refresh');
is(roles_seen($cookie, 8088), 'admin admin admin',
    'Graph retry: header and variable follow');

$now = mock_stats();
is(grants($stats, $now, $GRAPH_SCOPE), 1,
    'Graph retry: one Graph token grant');
is(delta($stats, $now, 'graph_pages'), 3, 'Graph retry: Graph read again');

mock('config', { graph_page_size => undef });

###############################################################################

# Scenario: a licence with role_rules: admins admin, viewers viewer, app
# role Nao.Admin viewer; 8080 has no rules of its own, 8083 adds
# "analysts admin".
# Expected: on 8080 the licence rules alone: Ada admin, Zoe viewer, Grace
# viewer (her app role), Alan member. On 8083 both sets: Grace's
# analysts admin (config) beats Nao.Admin viewer (licence); Zoe stays a
# viewer, which is below 8083's default.

$servers = join '',
    server(8080),
    server(8083, "nao_sso_role_map $ANALYSTS admin;");
ok(restart($t, conf('rules.jws', $servers)), 'licence rules: nginx starts');

is(role_of(8080, $ADA), 'admin admin admin', 'licence rule: admins');
is(role_of(8080, $ZOE), 'viewer viewer viewer', 'licence rule: viewers');
is(role_of(8080, $GRACE), 'viewer viewer viewer', 'licence rule: app role');
is(role_of(8080, $ALAN), 'member member member', 'licence rules: no match');
is(role_of(8083, $GRACE), 'admin admin admin',
    'licence and config rules combine, most privileged wins');
is(role_of(8083, $ZOE), 'viewer viewer viewer',
    'licence rule still applies next to config rules');

# Scenario: Olga under the licence's admins rule (8080, no rules of its
# own).
# Expected: a licence group rule needs her groups as well: Graph is
# read, she is admin.

$stats = mock_stats();
is(role_of(8080, $OLGA), 'admin admin admin', 'licence rule through Graph');
is(grants($stats, mock_stats(), $GRAPH_SCOPE), 1,
    'licence rule through Graph: a Graph token grant');

ok(no_secrets_logged($t, $NaoSSO::CLIENT_SECRET, @codes, qr/1\.A[\w-]{40}/),
    'no client secret, code or refresh token logged');
ok(none_in_module_lines($t, qr/eyJ[\w-]+\.eyJ/, @cookies),
    'no token or session cookie in the module\'s log lines');

###############################################################################

# Scenario: configuration errors.
# Expected: nginx does not start; the emerg names the problem.

emerg_case($t, 'licence.jws', 'nao_sso_default_role boss;',
    qr/invalid value "boss"/, 'default_role boss');
emerg_case($t, 'licence.jws', 'nao_sso_role_map not-a-guid admin;',
    qr/nao_sso_role_map: "not-a-guid" is not a group object id/,
    'role_map with a bad group id');
emerg_case($t, 'licence.jws', "nao_sso_role_map $ADMINS superuser;",
    qr/nao_sso_role_map: invalid role "superuser"/, 'role_map with a bad role');
emerg_case($t, 'licence.jws', 'nao_sso_role_map role: admin;',
    qr/nao_sso_role_map: app role "" is not 1 to \d+ characters/,
    'role_map with an empty app role');
emerg_case($t, 'bad-guid.jws', '',
    qr/licence role_rules\[0\]: .*not-a-guid/, 'licence rule with a bad group');
emerg_case($t, 'bad-role.jws', '',
    qr/licence role_rules\[1\]: .*superuser/, 'licence rule with a bad role');
emerg_case($t, 'bad-list.jws', '',
    qr/nao_sso: .*"role_rules" is not an array/,
    'licence role_rules not a list');

# Scenario: "nginx -t" with the licence whose second rule is bad.
# Expected: the test fails and says why.

my $out = nginx_test($t, 'bad-role.jws', server(8080));
ok($out =~ /\[emerg\].*licence role_rules\[1\]: invalid role "superuser"/
    && $out =~ /test failed/, 'nginx -t: licence rule refused')
    or diag($out);

###############################################################################

# Signs $user (the mock's current user when undef) in on the server on
# $port: what roles_seen() says, or "no session".
sub role_of {
    my ($port, $user) = @_;

    my $flow = sign_in(port => $port, user => $user);
    push @codes, $flow->{code};
    push @cookies, cookie_value($flow->{cookie});
    return 'no session' unless defined $flow->{cookie};
    return roles_seen($flow->{cookie}, $port);
}

# "get-session header variable": the role get-session shows, the
# X-Nao-User-Role nao receives and $nao_sso_user_role, sent to nao as
# X-Var-Role.
sub roles_seen {
    my ($cookie, $port) = @_;

    my $session = json_of(request('/api/auth/get-session', cookie => $cookie,
        port => $port)) // {};
    my $echo = json_of(request('/_echo/role', cookie => $cookie,
        port => $port)) // {};

    return join ' ', map { $_ // '-' } $session->{user}{role},
        $echo->{headers}{'x-nao-user-role'}, $echo->{headers}{'x-var-role'};
}

# Olga signs in on 8088 while Graph has this fault.
sub graph_fails {
    my ($t, $fault, $name) = @_;

    mock('config', { faults => { graph => $fault } });
    log_since($t);

    my $flow = sign_in(port => 8088, user => $OLGA);
    my $log = log_since($t);
    mock('config', { faults => { graph => undef } });

    is(defined $flow->{cookie} ? roles_seen($flow->{cookie}, 8088) : 'none',
        'member member member', "$name: signed in with the default role");

    my @warn = lines_matching($log, qr/\[warn\]/);
    my $re = qr/nao_sso: cannot read the groups of user "\Q$oid{$OLGA}\E"/
        . qr/ from Microsoft Graph: .+; signing in with the default role/
        . qr/ for now, /;
    ok(@warn == 1 && $warn[0] =~ $re, "$name: one warning")
        or diag(join("\n", @warn));
    is(join("\n", lines_matching($log, qr/\[error\]/)), '', "$name: no error");
}

sub delta {
    my ($before, $after, $key) = @_;
    return ($after->{$key} // 0) - ($before->{$key} // 0);
}

# How many more refresh_token grants the mock saw: all of them, or those
# whose scope parameter names $scope (the module adds offline_access).
sub grants {
    my ($before, $after, $scope) = @_;

    return ($after->{token}{refresh_token} // 0)
        - ($before->{token}{refresh_token} // 0) unless defined $scope;

    my $count = 0;
    for my $stats ([$after, 1], [$before, -1]) {
        my $by = $stats->[0]{token}{refresh_by_scope} // {};
        $count += $stats->[1] * $by->{$_}
            for grep { grep { $_ eq $scope } split / / } keys %$by;
    }
    return $count;
}

# A licence signed with the test key, with these make-licence options.
sub licence {
    my ($t, $name, @options) = @_;

    my @args = ('sign', '--key', $t->testdir() . '/licence-key.pem',
        @options);
    open my $fh, '-|', 'perl', "$NaoSSO::ROOT/scripts/make-licence", @args
        or die "Can't run make-licence: $!\n";
    my $token = do { local $/; <$fh> };
    close $fh or die "make-licence sign failed\n";

    $t->write_file($name, $token);
}

sub rules {
    return map { ('--role-rule', $_) } @_;
}

# What "nginx -t" prints for a configuration with this licence and these
# servers.
sub nginx_test {
    my ($t, $licence, $servers) = @_;
    my $dir = $t->testdir();

    my $conf = conf($licence, $servers);
    my $globals = ($ENV{TEST_NGINX_GLOBALS} // '')
        . "\npid $dir/check.pid;\nerror_log $dir/check.log;\n";
    $conf =~ s/%%TEST_GLOBALS%%/$globals/;
    $t->write_file_expand('check.conf', $conf);

    my $command = "'$Test::Nginx::NGINX' -p '$dir/' -c check.conf"
        . " -e '$dir/check.log' -t";
    return scalar `$command 2>&1`;
}

# nginx must refuse to start with this licence and these server
# directives, with an emerg.
sub emerg_case {
    my ($t, $licence, $directive, $re, $name) = @_;

    my $started = restart($t, conf($licence,
        server(8080, $directive eq '' ? () : $directive)));
    ok(!$started, "$name: nginx does not start");

    my $emergs = join "\n", lines_matching(log_since($t), qr/\[emerg\]/);
    like($emergs, $re, "$name: emerg logged");
}

###############################################################################

# The whole configuration, with this licence file.
sub conf {
    my ($licence, $http) = @_;

    return <<"EOF";

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives(license => "%%TESTDIR%%/$licence") ]}
        nao_sso_graph_url      http://127.0.0.1:%%PORT_8081%%;

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
            proxy_set_header X-Var-Role \$nao_sso_user_role;
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

EOF
}

###############################################################################
