/* role rules and sign-in policy over the identity an ID token gives */

#include "roles.h"

#include "settings.h"
#include "text.h"
#include "url.h"

#include <algorithm>

namespace nao {

namespace {

constexpr std::string_view kAppRolePrefix = "role:";

/* Entra's limit on an app role value */
constexpr size_t kAppRoleMax = 120;

bool
equalNoCase(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && asciiLower(a) == asciiLower(b);
}

bool
containsNoCase(const std::vector<std::string> &values,
    std::string_view wanted)
{
    return std::any_of(values.begin(), values.end(),
        [wanted](const std::string &value) {
            return equalNoCase(value, wanted);
        });
}

bool
isSpaceOrControl(char c)
{
    unsigned char byte = static_cast<unsigned char>(c);

    return byte <= ' ' || byte == 0x7f;
}

bool
isAppRoleValue(std::string_view value)
{
    return !value.empty() && value.size() <= kAppRoleMax
        && std::none_of(value.begin(), value.end(), isSpaceOrControl);
}

bool
matches(const RoleRule &rule, const std::vector<std::string> &groups,
    const std::vector<std::string> &appRoles)
{
    if (rule.kind == RoleRule::Kind::Group) {
        return containsNoCase(groups, rule.value);
    }

    return std::find(appRoles.begin(), appRoles.end(), rule.value)
        != appRoles.end();
}

bool
isEmail(std::string_view text)
{
    size_t at = text.rfind('@');

    return at != std::string_view::npos && at > 0 && at + 1 < text.size()
        && std::none_of(text.begin(), text.end(), isSpaceOrControl);
}

/* the line without a comment: "#" at its start or after white space */
std::string_view
withoutComment(std::string_view line)
{
    for (size_t i = 0; i < line.size(); i++) {
        if (line[i] == '#' && (i == 0 || isSpaceOrControl(line[i - 1]))) {
            return line.substr(0, i);
        }
    }

    return line;
}

void
addUser(UserList &list, std::string_view line)
{
    std::string entry = asciiLower(trim(withoutComment(line)));

    if (entry.empty()) {
        return;
    }

    if (isGuid(entry)) {
        list.objectIds.insert(std::move(entry));

    } else if (isEmail(entry)) {
        list.emails.insert(std::move(entry));

    } else {
        list.ignored++;
    }
}

}  // namespace

std::optional<Role>
parseRole(std::string_view name)
{
    if (name == "viewer") {
        return Role::Viewer;
    }

    if (name == "member") {
        return Role::Member;
    }

    if (name == "admin") {
        return Role::Admin;
    }

    return std::nullopt;
}

std::string_view
roleName(Role role)
{
    switch (role) {
    case Role::Viewer:
        return "viewer";
    case Role::Member:
        return "member";
    case Role::Admin:
        return "admin";
    }

    return "viewer";
}

Result<RoleRule>
parseRoleRule(std::string_view selector, std::string_view role)
{
    RoleRule rule;

    if (isGuid(selector)) {
        rule.kind = RoleRule::Kind::Group;
        rule.value = asciiLower(selector);

    } else if (selector.substr(0, kAppRolePrefix.size()) == kAppRolePrefix) {
        std::string_view value = selector.substr(kAppRolePrefix.size());

        if (!isAppRoleValue(value)) {
            return fail("app role \"" + logSafe(value) + "\" is not 1 to "
                + std::to_string(kAppRoleMax) + " characters without white "
                "space or control characters");
        }

        rule.kind = RoleRule::Kind::AppRole;
        rule.value = std::string(value);

    } else {
        return fail("\"" + logSafe(selector) + "\" is not a group object id "
            "(a GUID) or \"role:NAME\"");
    }

    std::optional<Role> parsed = parseRole(role);

    if (!parsed) {
        return fail("invalid role \"" + logSafe(role)
            + "\", expected admin, member or viewer");
    }

    rule.role = *parsed;

    return rule;
}

Role
resolveRole(Role defaultRole, const std::vector<RoleRule> &rules,
    const std::vector<std::string> &groups,
    const std::vector<std::string> &appRoles)
{
    std::optional<Role> best;

    for (const RoleRule &rule : rules) {
        if (matches(rule, groups, appRoles)
            && (!best || rule.role > *best))
        {
            best = rule.role;
        }
    }

    return best.value_or(defaultRole);
}

bool
emailDomainAllowed(std::string_view email,
    const std::vector<std::string> &domains)
{
    if (domains.empty()) {
        return true;
    }

    size_t at = email.rfind('@');

    if (at == std::string_view::npos || at + 1 == email.size()) {
        return false;
    }

    return containsNoCase(domains, email.substr(at + 1));
}

bool
inAnyGroup(const std::vector<std::string> &groups,
    const std::vector<std::string> &allowed)
{
    return std::any_of(groups.begin(), groups.end(),
        [&allowed](const std::string &group) {
            return containsNoCase(allowed, group);
        });
}

UserList
parseUserList(std::string_view text)
{
    UserList list;

    while (!text.empty()) {
        size_t end = text.find('\n');

        addUser(list, text.substr(0, end));

        if (end == std::string_view::npos) {
            break;
        }

        text.remove_prefix(end + 1);
    }

    return list;
}

bool
listed(const UserList &list, std::string_view email,
    std::string_view objectId)
{
    return (!email.empty() && list.emails.count(asciiLower(email)) != 0)
        || (!objectId.empty()
            && list.objectIds.count(asciiLower(objectId)) != 0);
}

std::string
asciiLower(std::string_view text)
{
    std::string lower(text);

    for (char &c : lower) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }

    return lower;
}

}  // namespace nao
