/*
 * An asynchronous HTTP client over libcurl's multi interface. It never
 * blocks: the sockets and the timer curl asks for are handed to a Reactor
 * (nginx's event loop in production), which calls back when they fire.
 * No nginx in here.
 */

#ifndef NAO_SSO_HTTP_CLIENT_H
#define NAO_SSO_HTTP_CLIENT_H

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace nao {

class Reactor {
public:
    virtual ~Reactor() = default;

    /* start, change or (both false) stop watching a socket */
    virtual void watch(int fd, bool readable, bool writable) = 0;

    /* the socket is about to be closed: forget it without a syscall */
    virtual void forget(int fd) = 0;

    /* call HttpClient::onTimeout after ms; 0 soon, -1 never */
    virtual void setTimer(long ms) = 0;
};

struct HttpRequest {
    std::string url;
    std::string form;             /* POSTed as urlencoded when not empty */
    std::string bearer;           /* an Authorization: Bearer token */
    long timeoutMs = 10000;
};

struct HttpResponse {
    long status = 0;              /* 0 when no HTTP answer came */
    std::string body;
    std::string error;            /* transport failure, for the log */

    bool transportOk() const { return error.empty(); }
};

using HttpCallback = std::function<void(HttpResponse &&)>;

class HttpClient {
public:
    static constexpr size_t kMaxBody = 1024 * 1024;

    explicit HttpClient(Reactor &reactor);
    ~HttpClient();

    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    bool valid() const { return multi_ != nullptr; }

    /*
     * Starts a transfer; the callback runs later from the event loop,
     * never from inside start(). Returns 0 when it cannot start, and then
     * the callback is never called.
     */
    uint64_t start(const HttpRequest &request, HttpCallback callback);

    /* drops a transfer; its callback is never called */
    void cancel(uint64_t id);

    /* from the reactor */
    void onSocket(int fd, bool readable, bool writable);
    void onTimeout();

private:
    struct Transfer;

    static int socketCallback(CURL *easy, curl_socket_t fd, int what,
        void *client, void *socketData) noexcept;
    static int timerCallback(CURLM *multi, long ms, void *client) noexcept;
    static int closeSocketCallback(void *client, curl_socket_t fd) noexcept;
    static size_t writeCallback(char *data, size_t size, size_t count,
        void *transfer) noexcept;

    bool configure(Transfer &transfer, const HttpRequest &request);
    void finishDone();

    Reactor &reactor_;
    CURLM *multi_ = nullptr;
    uint64_t nextId_ = 1;
    std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_;
    std::unordered_set<uint64_t> finishing_;
};

}  // namespace nao

#endif
