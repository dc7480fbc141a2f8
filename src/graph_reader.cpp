/*
 * Microsoft Graph's transitiveMemberOf, following @odata.nextLink.
 */

#include "graph_reader.h"

#include "downstream.h"
#include "url.h"

namespace nao {

struct GraphReader::Read {
    std::string base;
    std::string token;
    long timeoutMs = 0;
    int pages = 0;
    uint64_t transfer = 0;
    std::vector<std::string> groups;
    Done done;
};


GraphReader::GraphReader(HttpClient &client) : client_(client)
{
}


GraphReader::~GraphReader()
{
    for (auto &[id, read] : reads_) {
        client_.cancel(read->transfer);
    }
}


uint64_t
GraphReader::read(const std::string &graphBase,
    const std::string &accessToken, long timeoutMs, Done done)
{
    uint64_t id = nextId_++;
    auto owned = std::make_unique<Read>();
    Read &r = *owned;

    r.base = graphBase;
    while (!r.base.empty() && r.base.back() == '/') {
        r.base.pop_back();
    }

    r.token = accessToken;
    r.timeoutMs = timeoutMs;
    r.done = std::move(done);
    reads_.emplace(id, std::move(owned));

    if (!fetch(id, r, graphMembersUrl(r.base))) {
        reads_.erase(id);
        return 0;
    }

    return id;
}


bool
GraphReader::fetch(uint64_t id, Read &read, const std::string &url)
{
    HttpRequest request;
    request.url = url;
    request.bearer = read.token;
    request.timeoutMs = read.timeoutMs;

    read.pages++;
    read.transfer = client_.start(request, [this, id](HttpResponse &&page) {
        onPage(id, std::move(page));
    });

    return read.transfer != 0;
}


void
GraphReader::onPage(uint64_t id, HttpResponse &&response)
{
    auto it = reads_.find(id);
    if (it == reads_.end()) {
        return;
    }

    Read &read = *it->second;
    read.transfer = 0;

    if (!response.transportOk() || response.status != 200) {
        complete(id, fail("graph answered " + (response.transportOk()
                          ? "HTTP " + std::to_string(response.status)
                          : response.error)));
        return;
    }

    auto page = parseGroupPage(response.body);
    if (!page) {
        complete(id, fail(page.error()));
        return;
    }

    read.groups.insert(read.groups.end(), page->groupIds.begin(),
                       page->groupIds.end());

    if (page->nextLink.empty()) {
        complete(id, std::move(read.groups));
        return;
    }

    /* the token goes nowhere but to the configured Graph */
    if (page->nextLink.rfind(read.base + "/", 0) != 0) {
        complete(id, fail("graph sent a next page link outside \""
                          + read.base + "\""));
        return;
    }

    if (read.pages >= kMaxPages) {
        complete(id, fail("graph sent more than "
                          + std::to_string(kMaxPages) + " pages"));
        return;
    }

    if (!fetch(id, read, page->nextLink)) {
        complete(id, fail("cannot start the next graph request"));
    }
}


void
GraphReader::complete(uint64_t id, Result<std::vector<std::string>> &&result)
{
    auto it = reads_.find(id);
    if (it == reads_.end()) {
        return;
    }

    Done done = std::move(it->second->done);
    reads_.erase(it);

    if (done) {
        done(std::move(result));
    }
}


void
GraphReader::cancel(uint64_t id)
{
    auto it = reads_.find(id);
    if (it == reads_.end()) {
        return;
    }

    client_.cancel(it->second->transfer);
    reads_.erase(it);
}

}  // namespace nao
