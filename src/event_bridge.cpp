/*
 * curl sockets as nginx connections. Events are level-triggered: curl
 * reads only what it needs per call, so an edge could be lost.
 */

#include "event_bridge.h"

namespace nao {

NgxReactor::NgxReactor(ngx_log_t *log)
    : log_(log)
{
    ngx_memzero(&timer_, sizeof(ngx_event_t));
    timer_.handler = onTimer;
    timer_.data = this;
    timer_.log = log;

    /* an idle client must not hold up a graceful worker shutdown */
    timer_.cancelable = 1;
}


NgxReactor::~NgxReactor()
{
    setTimer(-1);

    while (!connections_.empty()) {
        release(connections_.begin()->first, true);
    }
}


ngx_connection_t *
NgxReactor::connectionFor(int fd)
{
    auto it = connections_.find(fd);
    if (it != connections_.end()) {
        return it->second;
    }

    ngx_connection_t *c = ngx_get_connection(fd, log_);
    if (c == nullptr) {
        ngx_log_error(NGX_LOG_ALERT, log_, 0,
                      "nao_sso: no free connection for an identity "
                      "provider socket");
        return nullptr;
    }

    c->data = this;
    c->read->handler = onEvent;
    c->write->handler = onEvent;
    c->read->log = log_;
    c->write->log = log_;

    connections_.emplace(fd, c);
    return c;
}


void
NgxReactor::watch(int fd, bool readable, bool writable)
{
    if (!readable && !writable) {
        release(fd, false);
        return;
    }

    ngx_connection_t *c = connectionFor(fd);
    if (c == nullptr) {
        return;
    }

    if (readable && !c->read->active) {
        ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    } else if (!readable && c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (writable && !c->write->active) {
        ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    } else if (!writable && c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


void
NgxReactor::forget(int fd)
{
    release(fd, true);
}


/*
 * When curl is about to close the socket the kernel drops it from epoll
 * by itself, so the events are only marked inactive.
 */
void
NgxReactor::release(int fd, bool closing)
{
    auto it = connections_.find(fd);
    if (it == connections_.end()) {
        return;
    }

    ngx_connection_t *c = it->second;
    connections_.erase(it);

    if (closing) {
        c->read->active = 0;
        c->write->active = 0;

    } else {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* the fd stays curl's to close; -1 makes stale events skip it */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


void
NgxReactor::setTimer(long ms)
{
    if (timer_.timer_set) {
        ngx_del_timer(&timer_);
    }

    if (timer_.posted) {
        ngx_delete_posted_event(&timer_);
    }

    if (ms == 0) {
        ngx_post_event(&timer_, &ngx_posted_events);

    } else if (ms > 0) {
        ngx_add_timer(&timer_, (ngx_msec_t) ms);
    }
}


void
NgxReactor::onEvent(ngx_event_t *ev)
{
    auto *c = static_cast<ngx_connection_t *>(ev->data);
    auto *self = static_cast<NgxReactor *>(c->data);
    int fd = c->fd;

    /* an nginx event handler: nothing may unwind into the event loop */
    try {
        if (self->client_ != nullptr) {
            self->client_->onSocket(fd, !ev->write, ev->write);
        }

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ALERT, self->log_, 0,
                      "nao_sso: identity provider transfer: %s", e.what());
    }
}


void
NgxReactor::onTimer(ngx_event_t *ev)
{
    auto *self = static_cast<NgxReactor *>(ev->data);

    try {
        if (self->client_ != nullptr) {
            self->client_->onTimeout();
        }

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ALERT, self->log_, 0,
                      "nao_sso: identity provider timer: %s", e.what());
    }
}

}  // namespace nao
