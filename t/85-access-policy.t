#!/usr/bin/perl

# Who may sign in: allowed email domains, allowed groups (for a user
# with group overage, read from Microsoft Graph), no auto-create with a
# users file that is re-read when it changes; and what a refused user
# gets: a 403 that says why (a page for browsers, JSON for API clients),
# a way to sign in with another account, no session, one log line
# naming the rule and the user's object id.

use warnings;
use strict;

use Test::More;

use HTTP::Tiny;
use JSON::PP;

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

my $ADMINS = '5e8b2c14-7a3d-4f69-b1e0-9d2c6a4f8e31';
my $ANALYSTS = 'c7d41a93-2e6f-4b58-8a0c-3f1e9d7b5c26';
my $VIEWERS = 'e2a9f6b8-1d4c-4a73-9e5b-7c0f2d8a6b49';

my $ADA = 'ada@contoso.example';
my $GRACE = 'grace@contoso.example';
my $ALAN = 'alan@contoso.example';
my $ZOE = 'zoe@contoso.example';
my $OLGA = 'olga@contoso.example';

my $GRACE_OID = '1b7d4e83-5f2a-4c9e-a06d-8e3c2b1f7a94';

# The users file: Ada by email (in capitals, with a comment after it),
# Grace by object id, and a line that names nobody.
$t->write_file('users.txt', <<"EOF");
# nao accounts
  ADA\@Contoso.Example   # first of all

\U$GRACE_OID\E
alan
EOF

# nginx's workers read the users file; they may run as another user.
chmod 0755, $t->testdir();
chmod 0644, $t->testdir() . '/users.txt';

# Servers by port: 8080 domains Contoso.EXAMPLE and other.example; 8083
# domain example.com; 8084 groups admins and viewers (in capitals);
# 8085 group analysts; 8086 no auto-create, users.txt; 8087 the same
# with a users file that does not exist.

my $servers = join '',
    server(8080, 'nao_sso_allowed_domains Contoso.EXAMPLE other.example;'),
    server(8083, 'nao_sso_allowed_domains example.com;'),
    server(8084, "nao_sso_allowed_groups $ADMINS " . uc($VIEWERS) . ';'),
    server(8085, "nao_sso_allowed_groups $ANALYSTS;"),
    server(8086, 'nao_sso_auto_create off;',
        'nao_sso_users_file %%TESTDIR%%/users.txt;'),
    server(8087, 'nao_sso_auto_create off;',
        'nao_sso_users_file %%TESTDIR%%/missing-users.txt;');

$t->write_file_expand('nginx.conf', conf($servers));
$t->try_run('module not loadable')->plan(75);
nao_wait($t);

my %oid = map { $_->{email} => $_->{oid} } @{ mock_users() };
my (@codes, @cookies);    # for the checks that nothing secret is logged

mock('config', { graph_page_size => 100 });

###############################################################################

# Scenario: nao_sso_allowed_domains Contoso.EXAMPLE other.example (8080);
# Ada (ada@contoso.example) and Bob (Bob@CONTOSO.Example) sign in.
# Expected: both are let in: domains compare without case.

is(signs_in(8080, $ADA), 'signed in', 'allowed domain');
mock('config', { user => { email => 'Bob@CONTOSO.Example', name => 'Bob' } });
is(signs_in(8080), 'signed in', 'allowed domain, other case');

# Scenario: a user of a subdomain (eve@eu.contoso.example) and of a
# domain that only begins with an allowed one
# (mallory@contoso.example.evil.example).
# Expected: both are refused: the domain must be listed exactly.

mock('config', { user => { email => 'eve@eu.contoso.example',
    name => 'Eve' } });
is(refused_json(8080), '403 domain_not_allowed', 'subdomain refused');
mock('config', { user => { email => 'mallory@contoso.example.evil.example',
    name => 'Mallory' } });
is(refused_json(8080), '403 domain_not_allowed', 'longer domain refused');
mock('config', { user => $ADA });

# Scenario: Ada on 8083 (allowed domain example.com).
# Expected: refused with domain_not_allowed, page and JSON say why, the
# log names her object id and nao_sso_allowed_domains.

refusal($t, port => 8083, user => $ADA, error => 'domain_not_allowed',
    why => qr/Your email domain is not allowed/,
    rule => 'nao_sso_allowed_domains', name => 'domain');

###############################################################################

# Scenario: nao_sso_allowed_groups admins VIEWERS (8084): Ada (admins),
# Zoe (viewers, listed in capitals), Alan (no group).
# Expected: Ada and Zoe are let in; Alan refused with group_not_allowed.

is(signs_in(8084, $ADA), 'signed in', 'allowed group');
is(signs_in(8084, $ZOE), 'signed in', 'allowed group listed in capitals');

refusal($t, port => 8084, user => $ALAN, error => 'group_not_allowed',
    why => qr/not in a group that may use nao/,
    rule => 'nao_sso_allowed_groups', name => 'group');

# Scenario: Olga (250 groups, so no "groups" claim; admins is on the
# third Graph page of 100) on 8084.
# Expected: Graph is read, all 3 pages; she is let in.

my $stats = mock_stats();
is(signs_in(8084, $OLGA), 'signed in', 'overage: allowed group from Graph');
is(mock_stats()->{graph_pages} - $stats->{graph_pages}, 3,
    'overage: 3 Graph pages read');

# Scenario: Olga on 8085 (allowed group analysts, not one of hers).
# Expected: Graph is read and she is refused with group_not_allowed.

$stats = mock_stats();
log_since($t);
is(refused_json(8085, $OLGA), '403 group_not_allowed',
    'overage: not in an allowed group');
ok(one_error(log_since($t), qr/nao_sso: sign-in of user "\Q$oid{$OLGA}\E"/
    . qr/ refused by nao_sso_allowed_groups/), 'overage: refusal logged');
is(mock_stats()->{graph_pages} - $stats->{graph_pages}, 3,
    'overage: refused after reading Graph');

# Scenario: Olga on 8084 while Graph answers 500.
# Expected: her membership cannot be checked: the sign-in fails with 502
# and no session; an error names her object id; no log line claims she
# was signed in with the default role.

mock('config', { faults => { graph => { status => 500 } } });
log_since($t);
my $flow = sign_in(port => 8084, user => $OLGA, json => 1);
my $log = log_since($t);
mock('config', { faults => { graph => undef } });
push @codes, $flow->{code};

is($flow->{callback}{status}, 502, 'Graph down, allowed groups: 502');
is(session_cookie($flow->{callback}), undef,
    'Graph down, allowed groups: no session');
ok(one_error($log, qr/nao_sso: cannot check the groups of user/
    . qr/ "\Q$oid{$OLGA}\E" against nao_sso_allowed_groups/),
    'Graph down, allowed groups: error logged');
is(join("\n", lines_matching($log, qr/signing in with the default role/)),
    '', 'Graph down, allowed groups: no line says she signs in');

###############################################################################

# Scenario: nao_sso_auto_create off, users.txt lists ADA@Contoso.Example
# and Grace's object id in capitals, and "alan" (8086).
# Expected: Ada (by email) and Grace (by object id) are let in, without
# case; Alan is refused with account_not_created.

is(signs_in(8086, $ADA), 'signed in', 'users file: listed by email');
is(signs_in(8086, $GRACE), 'signed in', 'users file: listed by object id');

refusal($t, port => 8086, user => $ALAN, error => 'account_not_created',
    why =>
        qr/Your account has not been created in nao; ask an admin to add you\./,
    rule => 'nao_sso_auto_create off', name => 'account');

# Scenario: users.txt is rewritten: Alan added by email, Ada removed;
# nginx is not reloaded.
# Expected: the next sign-ins see the new file: Alan is let in, Ada is
# refused; Grace still in; nginx did not reload.

$t->write_file('users.txt', <<"EOF");
# nao accounts, as of today
$ALAN
$GRACE_OID
EOF
utime(time() + 2, time() + 2, $t->testdir() . '/users.txt');

log_since($t);
is(signs_in(8086, $ALAN), 'signed in', 'users file changed: Alan let in');
is(refused_json(8086, $ADA), '403 account_not_created',
    'users file changed: Ada refused');
is(signs_in(8086, $GRACE), 'signed in', 'users file changed: Grace still in');
is(join("\n", lines_matching(log_since($t),
    qr/reconfiguring|start worker process/)), '',
    'users file changed: without a reload');

# Scenario: no auto-create, and the users file cannot be read (8087).
# Expected: 503 users_file_unreadable, not "account not created": the
# fault is the server's; the log names the file; no session.

log_since($t);
is(refused_json(8087, $ADA), '503 users_file_unreadable',
    'users file unreadable: 503');
is(scalar lines_matching(log_since($t),
    qr/\[error\].*cannot read nao_sso_users_file ".*missing-users\.txt"/),
    1, 'users file unreadable: one error line names the file');

ok(no_secrets_logged($t, $NaoSSO::CLIENT_SECRET, @codes,
    qr/1\.A[\w-]{40}/), 'no client secret, code or refresh token logged');
ok(none_in_module_lines($t, qr/eyJ[\w-]+\.eyJ/, @cookies),
    'no token or session cookie in the module\'s log lines');

###############################################################################

# Scenario: configuration errors.
# Expected: nginx does not start; the emerg names the problem.

emerg_case($t, 'nao_sso_auto_create off;',
    qr/"nao_sso_auto_create off" needs nao_sso_users_file/,
    'auto_create off without a users file');
emerg_case($t, 'nao_sso_allowed_groups admins;',
    qr/"admins" is not a group object id \(a GUID\)/,
    'allowed_groups with a group name');
emerg_case($t, 'nao_sso_allowed_domains @contoso.example;',
    qr/"\@contoso\.example" is not an email domain/,
    'allowed_domains with an "@"');
emerg_case($t, 'nao_sso_auto_create maybe;', qr/invalid value "maybe"/,
    'auto_create maybe');

###############################################################################

# Signs $user (the mock's current user when undef) in on $port: "signed
# in" when get-session then shows the user, else what happened.
sub signs_in {
    my ($port, $user) = @_;

    my $flow = sign_in(port => $port, user => $user);
    push @codes, $flow->{code};
    push @cookies, cookie_value($flow->{cookie});

    my $status = $flow->{callback}{status} // 0;
    return "callback $status" unless defined $flow->{cookie};

    my $session = json_of(request('/api/auth/get-session',
        cookie => $flow->{cookie}, port => $port)) // {};
    return defined $session->{user}{id} ? 'signed in' : 'no session';
}

# "STATUS ERROR" of an API client's sign-in callback on $port.
sub refused_json {
    my ($port, $user) = @_;

    my $flow = sign_in(port => $port, user => $user, json => 1);
    push @codes, $flow->{code};

    my $r = $flow->{callback} // {};
    return ($r->{status} // 0) . ' ' . ((json_of($r) // {})->{error} // '-')
        . (defined session_cookie($r) ? ' with a session' : '');
}

# Every part of a refusal, for a browser and for an API client.
# Options: port, user, error (the slug), why (the page's reason), rule
# (as the log names it), name.
sub refusal {
    my ($t, %a) = @_;
    my $name = $a{name};
    my $oid = $oid{ $a{user} };
    my $again = '/api/auth/sign-in/microsoft?return_to=%2Freports%2Fq1'
        . '&prompt=select_account';

    # a browser
    log_since($t);
    my $flow = sign_in(port => $a{port}, user => $a{user},
        return_to => '/reports/q1', html => 1);
    my $r = $flow->{callback} // {};
    my $log = log_since($t);
    push @codes, $flow->{code};

    is($r->{status}, 403, "$name: 403");
    like($r->{headers}{'content-type'}[0] // '', qr{^text/html},
        "$name: a page for a browser");
    like($r->{body}, $a{why}, "$name: the page says why");

    my $label = qr{\s*Sign in with another account\s*};
    my ($href) = $r->{body} =~ m{<a [^>]*href="([^"]*)"[^>]*>$label</a>};
    is(html_decode($href), $again,
        "$name: sign in with another account, same return_to");

    is(session_cookie($r), undef, "$name: no session cookie");
    my $binding = (split /=/, $flow->{binding} // '=')[0];
    like(join("\n", set_cookies($r)), qr/^\Q$binding\E=; .*Max-Age=0/m,
        "$name: binding cookie expired");

    my @errors = lines_matching($log, qr/\[error\]/);
    my $re = qr/nao_sso: sign-in of user "\Q$oid\E" refused by \Q$a{rule}\E,/;
    ok(@errors == 1 && $errors[0] =~ $re, "$name: one error line")
        or diag(join("\n", @errors));
    unlike(join("\n", @errors), qr/\Q$a{user}\E|eyJ/i,
        "$name: the log line has no email, no token");

    # the browser follows "Sign in with another account"
    my $start = request($again, port => $a{port});
    my $authorize = $start->{headers}{location}[0] // '';
    is(authorize_params($authorize)->{prompt}, 'select_account',
        "$name: the next sign-in asks to pick an account");
    HTTP::Tiny->new(max_redirect => 0, timeout => 10)->get($authorize)
        if $authorize =~ m{^http://127\.0\.0\.1:};
    is((mock_stats()->{last_authorize} // {})->{prompt}, 'select_account',
        "$name: Microsoft got prompt=select_account");

    # an API client
    $flow = sign_in(port => $a{port}, user => $a{user},
        return_to => '/reports/q1', json => 1);
    $r = $flow->{callback} // {};
    my $json = json_of($r) // {};
    push @codes, $flow->{code};

    is("$r->{status} " . ($json->{error} // '-'), "403 $a{error}",
        "$name: JSON for an API client");
    like($json->{message} // '', $a{why}, "$name: the JSON says why");
    is($json->{signInUrl}, $again, "$name: JSON names the other sign-in");
    is(session_cookie($r), undef, "$name: no session for the API client");
}

sub html_decode {
    my ($s) = @_;
    return undef unless defined $s;
    $s =~ s/&#39;/'/g;
    $s =~ s/&quot;/"/g;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&amp;/&/g;
    return $s;
}

# nginx must refuse to start with this server directive, with an emerg.
sub emerg_case {
    my ($t, $directive, $re, $name) = @_;

    ok(!restart($t, conf(server(8080, $directive))),
        "$name: nginx does not start");

    my $emergs = join "\n", lines_matching(log_since($t), qr/\[emerg\]/);
    like($emergs, $re, "$name: emerg logged");
}

###############################################################################

sub conf {
    my ($http) = @_;

    return <<"EOF";

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

@{[ nao_directives() ]}
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
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }

EOF
}

###############################################################################
