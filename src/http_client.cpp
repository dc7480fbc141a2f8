/*
 * libcurl multi driven from outside: curl tells us which sockets and
 * which timeout it cares about; the reactor reports readiness back.
 */

#include "http_client.h"

#include <unistd.h>

namespace nao {

struct CurlEasyDeleter {
    void operator()(CURL *easy) const { curl_easy_cleanup(easy); }
};

struct CurlSlistDeleter {
    void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};

struct HttpClient::Transfer {
    uint64_t id = 0;
    std::unique_ptr<CURL, CurlEasyDeleter> easy;
    std::unique_ptr<curl_slist, CurlSlistDeleter> headers;
    std::string form;
    std::string body;
    bool tooLarge = false;
    HttpCallback callback;
};


HttpClient::HttpClient(Reactor &reactor)
    : reactor_(reactor)
{
    multi_ = curl_multi_init();
    if (multi_ == nullptr) {
        return;
    }

    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, socketCallback);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, timerCallback);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}


HttpClient::~HttpClient()
{
    for (auto &entry : transfers_) {
        curl_multi_remove_handle(multi_, entry.second->easy.get());
    }

    transfers_.clear();

    if (multi_ != nullptr) {
        curl_multi_cleanup(multi_);
    }
}


uint64_t
HttpClient::start(const HttpRequest &request, HttpCallback callback)
{
    auto transfer = std::make_unique<Transfer>();

    transfer->easy.reset(curl_easy_init());
    if (multi_ == nullptr || !transfer->easy
        || !configure(*transfer, request))
    {
        return 0;
    }

    transfer->id = nextId_++;
    transfer->callback = std::move(callback);

    if (curl_multi_add_handle(multi_, transfer->easy.get()) != CURLM_OK) {
        return 0;
    }

    uint64_t id = transfer->id;
    transfers_.emplace(id, std::move(transfer));

    return id;
}


bool
HttpClient::configure(Transfer &transfer, const HttpRequest &request)
{
    CURL *easy = transfer.easy.get();

    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, request.timeoutMs);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, request.timeoutMs);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_http_nao_sso_module");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, writeCallback);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, closeSocketCallback);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);

    transfer.headers.reset(curl_slist_append(nullptr,
                                             "Accept: application/json"));
    if (!transfer.headers) {
        return false;
    }

    if (!request.bearer.empty()) {
        std::string line = "Authorization: Bearer " + request.bearer;
        curl_slist *more = curl_slist_append(transfer.headers.get(),
                                             line.c_str());
        if (more == nullptr) {
            return false;
        }
    }

    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.headers.get());

    if (!request.form.empty()) {
        /* curl keeps a pointer to the body, so it lives in the transfer */
        transfer.form = request.form;
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer.form.c_str());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                         static_cast<long>(transfer.form.size()));
    }

    return true;
}


void
HttpClient::cancel(uint64_t id)
{
    finishing_.erase(id);

    auto it = transfers_.find(id);
    if (it == transfers_.end()) {
        return;
    }

    curl_multi_remove_handle(multi_, it->second->easy.get());
    transfers_.erase(it);
}


void
HttpClient::onSocket(int fd, bool readable, bool writable)
{
    int running = 0;
    int mask = (readable ? CURL_CSELECT_IN : 0)
               | (writable ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(multi_, fd, mask, &running);
    finishDone();
}


void
HttpClient::onTimeout()
{
    int running = 0;

    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    finishDone();
}


/*
 * Finished transfers are detached first and their callbacks run after,
 * so that a callback may start or cancel transfers freely.
 */
void
HttpClient::finishDone()
{
    std::vector<std::unique_ptr<Transfer>> done;
    std::vector<HttpResponse> responses;
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(multi_, &left)) != nullptr) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        Transfer *transfer = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &transfer);

        HttpResponse response;
        CURLcode code = msg->data.result;

        if (transfer->tooLarge) {
            response.error = "response larger than "
                             + std::to_string(kMaxBody) + " bytes";

        } else if (code != CURLE_OK) {
            response.error = curl_easy_strerror(code);

        } else {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &response.status);
            response.body = std::move(transfer->body);
        }

        curl_multi_remove_handle(multi_, msg->easy_handle);

        auto it = transfers_.find(transfer->id);
        if (it == transfers_.end()) {
            continue;
        }

        finishing_.insert(transfer->id);
        done.push_back(std::move(it->second));
        transfers_.erase(it);
        responses.push_back(std::move(response));
    }

    /* an earlier callback of this batch may have cancelled a later one */
    for (size_t i = 0; i < done.size(); i++) {
        if (finishing_.erase(done[i]->id) != 0) {
            done[i]->callback(std::move(responses[i]));
        }
    }
}


/* curl's callbacks are C: nothing may unwind through them */
int
HttpClient::socketCallback(CURL *, curl_socket_t fd, int what,
    void *client, void *) noexcept
{
    auto *self = static_cast<HttpClient *>(client);

    try {
        bool in = what == CURL_POLL_IN || what == CURL_POLL_INOUT;
        bool out = what == CURL_POLL_OUT || what == CURL_POLL_INOUT;

        /* CURL_POLL_REMOVE: neither */
        self->reactor_.watch(fd, in, out);

    } catch (...) {
        return -1;
    }

    return 0;
}


int
HttpClient::timerCallback(CURLM *, long ms, void *client) noexcept
{
    try {
        static_cast<HttpClient *>(client)->reactor_.setTimer(ms);

    } catch (...) {
        return -1;
    }

    return 0;
}


int
HttpClient::closeSocketCallback(void *client, curl_socket_t fd) noexcept
{
    static_cast<HttpClient *>(client)->reactor_.forget(fd);
    return close(fd);
}


size_t
HttpClient::writeCallback(char *data, size_t size, size_t count,
    void *transfer) noexcept
{
    auto *self = static_cast<Transfer *>(transfer);
    size_t length = size * count;

    if (self->body.size() + length > kMaxBody) {
        self->tooLarge = true;
        return 0;
    }

    try {
        self->body.append(data, length);

    } catch (...) {
        /* a short count makes curl fail the transfer */
        return 0;
    }

    return length;
}

}  // namespace nao
