/*
 * Reads a user's group memberships from Microsoft Graph, page by page,
 * when Entra left them out of the ID token (more than 200 groups). No
 * nginx in here: the transport is the HttpClient.
 */

#ifndef NAO_SSO_GRAPH_READER_H
#define NAO_SSO_GRAPH_READER_H

#include "http_client.h"
#include "result.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nao {

class GraphReader {
public:
    using Done = std::function<void(Result<std::vector<std::string>> &&)>;

    /* 999 per page, so this admits some 100 000 memberships */
    static constexpr int kMaxPages = 100;

    explicit GraphReader(HttpClient &client);
    ~GraphReader();

    GraphReader(const GraphReader &) = delete;
    GraphReader &operator=(const GraphReader &) = delete;

    /*
     * Starts reading; done runs later from the event loop with the group
     * object ids (lowercase) or a reason fit for the log. Returns 0 when
     * nothing could start, and then done is never called.
     */
    uint64_t read(const std::string &graphBase,
        const std::string &accessToken, long timeoutMs, Done done);

    /* done is never called */
    void cancel(uint64_t id);

private:
    struct Read;

    bool fetch(uint64_t id, Read &read, const std::string &url);
    void onPage(uint64_t id, HttpResponse &&response);
    void complete(uint64_t id, Result<std::vector<std::string>> &&result);

    HttpClient &client_;
    uint64_t nextId_ = 1;
    std::map<uint64_t, std::unique_ptr<Read>> reads_;
};

}  // namespace nao

#endif
