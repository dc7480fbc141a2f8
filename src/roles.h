/*
 * Who may sign in and with which nao role: rules over Entra groups and
 * app roles, email domains and lists of users. Pure: no JSON, no nginx.
 */

#ifndef NAO_SSO_ROLES_H
#define NAO_SSO_ROLES_H

#include "result.h"

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nao {

/* nao's roles, ordered by privilege */
enum class Role { Viewer = 0, Member = 1, Admin = 2 };

/* "viewer", "member" or "admin", lowercase only */
std::optional<Role> parseRole(std::string_view name);

std::string_view roleName(Role role);

struct RoleRule {
    enum class Kind { Group, AppRole } kind;

    /* a group object id in lowercase, or an app role value as written */
    std::string value;
    Role role;
};

/*
 * selector is a group object id (a GUID, any case) or "role:NAME" for an
 * Entra app role value (1 to 120 characters, no white space or control
 * characters, case-sensitive as Entra's are); role as for parseRole.
 * Errors read e.g. 'invalid role "boss", expected admin, member or
 * viewer' or '"abc" is not a group object id (a GUID) or "role:NAME"'.
 */
Result<RoleRule> parseRoleRule(std::string_view selector,
    std::string_view role);

/*
 * The most privileged role among the rules that match the user's groups
 * (compared without case) or app roles (compared exactly); defaultRole
 * only when no rule matches. A matching rule wins even when it grants
 * less than defaultRole, so that "finance readers are viewers" holds
 * where everyone else is a member.
 */
Role resolveRole(Role defaultRole, const std::vector<RoleRule> &rules,
    const std::vector<std::string> &groups,
    const std::vector<std::string> &appRoles);

/*
 * True when domains is empty, or when the part of email after its last
 * "@" equals one of them, without case. A subdomain is not its parent:
 * "eu.contoso.com" does not match "contoso.com". Under a non-empty list
 * an email without "@" or without a domain is refused.
 */
bool emailDomainAllowed(std::string_view email,
    const std::vector<std::string> &domains);

/* true when a group is in allowed, without case; never for empty allowed */
bool inAnyGroup(const std::vector<std::string> &groups,
    const std::vector<std::string> &allowed);

struct UserList {
    std::set<std::string> emails;       /* lowercase */
    std::set<std::string> objectIds;    /* lowercase */
    size_t ignored = 0;                 /* lines that were neither */
};

/*
 * One email or user object id a line, trimmed and lowercased. "#" at the
 * start of a line or after white space begins a comment; blank lines and
 * comments are skipped. A GUID is an object id; a word with text on both
 * sides of an "@" is an email; any other line is counted as ignored.
 */
UserList parseUserList(std::string_view text);

/* true when email or objectId, without case, is on the list */
bool listed(const UserList &list, std::string_view email,
    std::string_view objectId);

/* text with ASCII capitals lowered; other bytes are kept */
std::string asciiLower(std::string_view text);

}  // namespace nao

#endif
