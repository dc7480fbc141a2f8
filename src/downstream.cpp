/* downstream access tokens and the Graph group membership pages */

#include "downstream.h"

#include "jose.h"
#include "json.h"

namespace nao {

namespace {


constexpr std::string_view kGroupType = "#microsoft.graph.group";

bool
isLower(char c)
{
    return c >= 'a' && c <= 'z';
}

char
upper(char c)
{
    return isLower(c) ? static_cast<char>(c - 'a' + 'A') : c;
}

char
lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/* a membership entry's id when it is a group, else empty */
std::string
groupId(const json_t *entry)
{
    std::optional<std::string> type = jsonString(entry, "@odata.type");
    std::optional<std::string> id = jsonString(entry, "id");

    if (!id || (type && *type != kGroupType)) {
        return {};
    }

    /* as the ID token's "groups" are kept, so they compare equal */
    for (char &c : *id) {
        c = lower(c);
    }

    return std::move(*id);
}

}  // namespace

TokenInfo
peekAccessToken(std::string_view token)
{
    TokenInfo info;

    /* parses only: no key, no signature check */
    Result<Jws> jws = parseJws(token);

    if (!jws) {
        return info;
    }

    const json_t *payload = jws->payload.get();
    const json_t *aud = json_object_get(payload, "aud");

    if (json_is_array(aud)) {
        aud = json_array_get(aud, 0);
    }

    if (json_is_string(aud)) {
        info.audience.assign(json_string_value(aud), json_string_length(aud));
    }

    info.expires = jsonInteger(payload, "exp").value_or(0);

    return info;
}

std::string
tokenHeaderName(std::string_view name)
{
    std::string header = "X-Nao-Token-";
    bool partStart = true;

    for (char c : name) {
        if (c == '_' || c == '-') {
            header += '-';
            partStart = true;
            continue;
        }

        header += partStart ? upper(c) : c;
        partStart = false;
    }

    return header;
}

bool
validDownstreamName(std::string_view name)
{
    if (name.empty() || name.size() > kMaxDownstreamName || !isLower(name[0])) {
        return false;
    }

    for (char c : name) {
        if (!isLower(c) && !(c >= '0' && c <= '9') && c != '_') {
            return false;
        }
    }

    return true;
}

Result<GroupPage>
parseGroupPage(std::string_view body)
{
    JsonPtr json = parseJson(body);
    const json_t *value = json ? json_object_get(json.get(), "value")
                               : nullptr;

    if (!json_is_array(value)) {
        return fail("graph answer is not a membership list");
    }

    GroupPage page;
    size_t index;
    const json_t *entry;

    json_array_foreach(value, index, entry) {
        std::string id = groupId(entry);

        if (!id.empty()) {
            page.groupIds.push_back(std::move(id));
        }
    }

    page.nextLink = jsonString(json.get(), "@odata.nextLink").value_or("");

    return page;
}

std::string
graphMembersUrl(std::string_view graphBase)
{
    /* all '/' gives npos, and npos + 1 is 0: nothing is kept */
    std::string url(graphBase.substr(0, graphBase.find_last_not_of('/') + 1));

    return url + "/v1.0/me/transitiveMemberOf?$select=id&$top=999";
}

}  // namespace nao
