/* unit tests for src/roles.cpp: role rules and the sign-in policy */

#include "roles.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

extern "C" {
#include <cmocka.h>
}

#include <string>
#include <vector>

using nao::Role;
using nao::RoleRule;
using nao::UserList;
using nao::emailDomainAllowed;
using nao::inAnyGroup;
using nao::listed;
using nao::parseRole;
using nao::parseRoleRule;
using nao::parseUserList;
using nao::resolveRole;

namespace {

const char kFinance[] = "0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c";
const char kAdmins[] = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const char kStaff[] = "11111111-2222-4333-8444-555555555555";

RoleRule
rule(const std::string &selector, const char *role)
{
    auto parsed = parseRoleRule(selector, role);

    if (!parsed) {
        fail_msg("parseRoleRule: %s", parsed.error().c_str());
    }

    return parsed.value();
}

void
assertRuleError(const std::string &selector, const char *role,
    const char *message)
{
    auto parsed = parseRoleRule(selector, role);

    assert_false(parsed.ok());
    assert_string_equal(parsed.error().c_str(), message);
}

/*
 * Scenario: the three role names, other cases, padding and strangers.
 * Expected: only the exact lowercase names parse; names round-trip.
 */
void
testRoleNames(void **state)
{
    (void) state;

    assert_true(parseRole("viewer") == Role::Viewer);
    assert_true(parseRole("member") == Role::Member);
    assert_true(parseRole("admin") == Role::Admin);

    const char *bad[] = {"Admin", "ADMIN", " admin", "admin ", "", "owner",
        "viewers"};

    for (const char *name : bad) {
        assert_false(parseRole(name).has_value());
    }

    for (Role role : {Role::Viewer, Role::Member, Role::Admin}) {
        assert_true(parseRole(nao::roleName(role)) == role);
    }

    assert_true(Role::Admin > Role::Member && Role::Member > Role::Viewer);
}

/*
 * Scenario: a group id in upper case and an app role with mixed case.
 * Expected: the group is stored lowercase, the app role as written.
 */
void
testRuleSelectors(void **state)
{
    (void) state;

    RoleRule group = rule("0B8E3C2A-5D4F-4E6A-9C1B-2F7D8E9A0B1C", "viewer");

    assert_true(group.kind == RoleRule::Kind::Group);
    assert_string_equal(group.value.c_str(), kFinance);
    assert_true(group.role == Role::Viewer);

    RoleRule app = rule("role:Nao.Admin", "admin");

    assert_true(app.kind == RoleRule::Kind::AppRole);
    assert_string_equal(app.value.c_str(), "Nao.Admin");
    assert_true(app.role == Role::Admin);

    /* "role:" followed by a GUID is still an app role */
    app = rule(std::string("role:") + kFinance, "member");
    assert_true(app.kind == RoleRule::Kind::AppRole);

    /* Entra's limit is 120 characters */
    app = rule("role:" + std::string(120, 'x'), "member");
    assert_int_equal(app.value.size(), 120);
}

/*
 * Scenario: a bad role, a selector that is neither form, and app role
 * values that are empty, too long or hold white space.
 * Expected: refused with a message that names the value.
 */
void
testRuleErrors(void **state)
{
    (void) state;

    assertRuleError(kFinance, "boss",
        "invalid role \"boss\", expected admin, member or viewer");
    assertRuleError(kFinance, "Admin",
        "invalid role \"Admin\", expected admin, member or viewer");
    assertRuleError("abc", "admin",
        "\"abc\" is not a group object id (a GUID) or \"role:NAME\"");
    assertRuleError("ROLE:Nao.Admin", "admin", "\"ROLE:Nao.Admin\" is not "
        "a group object id (a GUID) or \"role:NAME\"");
    assertRuleError("{0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c}", "admin",
        "\"{0b8e3c2a-5d4f-4e6a-9c1b-2f7d8e9a0b1c}\" is not a group object "
        "id (a GUID) or \"role:NAME\"");
    assertRuleError("", "admin",
        "\"\" is not a group object id (a GUID) or \"role:NAME\"");
    assertRuleError("role:", "admin", "app role \"\" is not 1 to 120 "
        "characters without white space or control characters");
    assertRuleError("role:Nao Admin", "admin", "app role \"Nao Admin\" is "
        "not 1 to 120 characters without white space or control "
        "characters");

    const std::string bad[] = {"role:" + std::string(121, 'x'),
        "role:a\tb", "role:a\nb", std::string("role:a\0b", 8), "role:a\x7f",
        std::string(" ") + kFinance};

    for (const std::string &selector : bad) {
        assert_false(parseRoleRule(selector, "admin").ok());
    }
}

/*
 * Scenario: a user in several groups that map to different roles.
 * Expected: the most privileged matching rule wins, whatever the order.
 */
void
testMostPrivilegedWins(void **state)
{
    (void) state;

    std::vector<RoleRule> rules = {rule(kFinance, "viewer"),
        rule(kAdmins, "admin"), rule(kStaff, "member")};
    std::vector<std::string> groups = {kStaff, kFinance, kAdmins};

    assert_true(resolveRole(Role::Viewer, rules, groups, {}) == Role::Admin);

    groups = {kFinance, kStaff};
    assert_true(resolveRole(Role::Viewer, rules, groups, {})
        == Role::Member);

    std::vector<RoleRule> reversed(rules.rbegin(), rules.rend());
    assert_true(resolveRole(Role::Viewer, reversed, groups, {})
        == Role::Member);
}

/*
 * Scenario: the default is member; finance readers map to viewer.
 * Expected: a finance reader is a viewer, below the default; anyone
 * no rule matches gets the default.
 */
void
testMatchingRuleBeatsDefault(void **state)
{
    (void) state;

    std::vector<RoleRule> rules = {rule(kFinance, "viewer")};

    assert_true(resolveRole(Role::Member, rules, {kFinance}, {})
        == Role::Viewer);
    assert_true(resolveRole(Role::Member, rules, {kStaff}, {})
        == Role::Member);
    assert_true(resolveRole(Role::Member, rules, {}, {}) == Role::Member);
    assert_true(resolveRole(Role::Admin, {}, {kFinance}, {"Nao.Admin"})
        == Role::Admin);
}

/*
 * Scenario: groups that differ from the rule only in case, and app roles
 * that differ only in case.
 * Expected: groups match without case, app roles only exactly.
 */
void
testMatchingCase(void **state)
{
    (void) state;

    std::vector<RoleRule> rules = {rule(kAdmins, "admin"),
        rule("role:Nao.Writer", "member")};

    assert_true(resolveRole(Role::Viewer, rules,
        {"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"}, {}) == Role::Admin);
    assert_true(resolveRole(Role::Viewer, rules, {}, {"Nao.Writer"})
        == Role::Member);
    assert_true(resolveRole(Role::Viewer, rules, {}, {"nao.writer"})
        == Role::Viewer);

    /* an app role named like a group id is not that group */
    assert_true(resolveRole(Role::Viewer, rules, {}, {kAdmins})
        == Role::Viewer);
    assert_true(resolveRole(Role::Viewer, rules, {"Nao.Writer"}, {})
        == Role::Viewer);
}

/*
 * Scenario: emails checked against a list of allowed domains.
 * Expected: the part after the last "@" must equal one, without case;
 * subdomains and look-alikes are refused; no list allows everyone.
 */
void
testEmailDomains(void **state)
{
    (void) state;

    std::vector<std::string> domains = {"contoso.com", "Fabrikam.co.uk"};

    assert_true(emailDomainAllowed("ada@contoso.com", domains));
    assert_true(emailDomainAllowed("Ada@CONTOSO.COM", domains));
    assert_true(emailDomainAllowed("bob@fabrikam.co.uk", domains));
    assert_true(emailDomainAllowed("\"a@b\"@contoso.com", domains));

    const char *refused[] = {"ada@eu.contoso.com", "ada@contoso.com.evil",
        "ada@xcontoso.com", "ada@contoso.co", "ada@contoso.com@evil.com",
        "contoso.com", "ada@", "", "ada@contoso.com "};

    for (const char *email : refused) {
        assert_false(emailDomainAllowed(email, domains));
    }

    assert_true(emailDomainAllowed("ada@anywhere.example", {}));
    assert_true(emailDomainAllowed("no-at-sign", {}));
}

/*
 * Scenario: a user's groups against the groups allowed to sign in.
 * Expected: any one in common, compared without case, is enough.
 */
void
testAllowedGroups(void **state)
{
    (void) state;

    std::vector<std::string> allowed = {kAdmins, kStaff};

    assert_true(inAnyGroup({kFinance, kStaff}, allowed));
    assert_true(inAnyGroup({"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"},
        allowed));
    assert_false(inAnyGroup({kFinance}, allowed));
    assert_false(inAnyGroup({}, allowed));
    assert_false(inAnyGroup({kFinance}, {}));
}

/*
 * Scenario: a list file with comments, blank lines, CRLF endings, mixed
 * case, and lines that are neither an email nor an object id.
 * Expected: emails and ids are sorted apart, lowercased; the rest counted.
 */
void
testUserList(void **state)
{
    (void) state;

    UserList list = parseUserList(
        "# finance team\n"
        "\n"
        "  Ada@Contoso.com  \r\n"
        "bob@contoso.com # until March\n"
        "c#lover@contoso.com\n"
        "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D\r\n"
        "   # indented comment\n"
        "carol\n"
        "@contoso.com\n"
        "dave@\n"
        "eve @contoso.com\n"
        "\t\r\n"
        "frank@contoso.com");

    assert_int_equal(list.emails.size(), 4);
    assert_int_equal(list.emails.count("ada@contoso.com"), 1);
    assert_int_equal(list.emails.count("bob@contoso.com"), 1);
    assert_int_equal(list.emails.count("c#lover@contoso.com"), 1);
    assert_int_equal(list.emails.count("frank@contoso.com"), 1);

    assert_int_equal(list.objectIds.size(), 1);
    assert_int_equal(list.objectIds.count(kAdmins), 1);

    assert_int_equal(list.ignored, 4);

    UserList empty = parseUserList("");
    assert_true(empty.emails.empty() && empty.objectIds.empty());
    assert_int_equal(empty.ignored, 0);
}

/*
 * Scenario: users looked up by email or object id in any case, and
 * users with neither on the list or with empty values.
 * Expected: either one on the list is enough; empty never matches.
 */
void
testListed(void **state)
{
    (void) state;

    UserList list = parseUserList("ada@contoso.com\n"
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\n");

    assert_true(listed(list, "ADA@contoso.com", ""));
    assert_true(listed(list, "someone@contoso.com",
        "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"));
    assert_true(listed(list, "", kAdmins));
    assert_false(listed(list, "bob@contoso.com", kStaff));
    assert_false(listed(list, "", ""));
    assert_false(listed(parseUserList("\n"), "", ""));
}

}  // namespace

int
main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(testRoleNames),
        cmocka_unit_test(testRuleSelectors),
        cmocka_unit_test(testRuleErrors),
        cmocka_unit_test(testMostPrivilegedWins),
        cmocka_unit_test(testMatchingRuleBeatsDefault),
        cmocka_unit_test(testMatchingCase),
        cmocka_unit_test(testEmailDomains),
        cmocka_unit_test(testAllowedGroups),
        cmocka_unit_test(testUserList),
        cmocka_unit_test(testListed),
    };

    return cmocka_run_group_tests_name("roles", tests, nullptr, nullptr);
}
