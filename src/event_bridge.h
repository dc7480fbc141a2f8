/*
 * The bridge between libcurl and nginx's event loop: a Reactor whose
 * sockets are nginx connections and whose timer is an nginx timer.
 */

#ifndef NAO_SSO_EVENT_BRIDGE_H
#define NAO_SSO_EVENT_BRIDGE_H

#include "http_client.h"
#include "ngx.h"

#include <unordered_map>

namespace nao {

class NgxReactor : public Reactor {
public:
    explicit NgxReactor(ngx_log_t *log);
    ~NgxReactor() override;

    void attach(HttpClient *client) { client_ = client; }

    void watch(int fd, bool readable, bool writable) override;
    void forget(int fd) override;
    void setTimer(long ms) override;

private:
    static void onEvent(ngx_event_t *ev);
    static void onTimer(ngx_event_t *ev);

    ngx_connection_t *connectionFor(int fd);
    void release(int fd, bool closing);

    ngx_log_t *log_;
    HttpClient *client_ = nullptr;
    ngx_event_t timer_;
    std::unordered_map<int, ngx_connection_t *> connections_;
};

}  // namespace nao

#endif
