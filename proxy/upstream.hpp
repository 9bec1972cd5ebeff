// Opening connections to upstreams (the local peer in plain HTTP, other members over
// mTLS) and one-shot requests for the control plane (local probes, the cluster view).
// The relay's pooled connections and the probes share this code.
#pragma once

#include <boost/asio/io_context.hpp>

#include <netinet/tcp.h>

#include <memory>
#include <string>

#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "proxy/errors.hpp"
#include "proxy/relay.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls.hpp"

namespace joingate::proxy {

inline void tune_socket(tcp::socket& s) {
    error_code ec;
    s.set_option(tcp::no_delay(true), ec);
    s.set_option(asio::socket_base::keep_alive(true), ec);
    int fd = s.native_handle();
    int idle = 30, intvl = 10, cnt = 3; // a dead peer is noticed within about a minute
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

inline bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// One attempt of connect_upstream; `resume` offers the target's last session ticket.
template <class S>
asio::awaitable<std::unique_ptr<Conn<S>>> connect_once(asio::io_context& ioc, const config::HostPort& hp,
                                                       SSL_CTX* client_ctx, std::chrono::milliseconds timeout,
                                                       Failure& f, std::string& detail,
                                                       metrics::UpstreamError& kind, bool resume, bool& offered) {
    std::vector<tcp::endpoint> eps;
    if (is_ip_literal(hp.host)) {
        eps.emplace_back(asio::ip::make_address(hp.host), hp.port);
    } else {
        tcp::resolver res(ioc);
        auto [rec, results] = co_await res.async_resolve(hp.host, std::to_string(hp.port), nothrow);
        if (rec) {
            f = Failure::upstream_unreachable;
            detail = "cannot resolve " + hp.text() + ": " + rec.message();
            kind = metrics::UpstreamError::resolve;
            co_return nullptr;
        }
        for (const auto& e : results) eps.push_back(e.endpoint());
    }
    std::unique_ptr<Conn<S>> conn;
    if constexpr (std::is_same_v<S, TlsStream>)
        conn = std::make_unique<Conn<S>>(tcp::socket(ioc), client_ctx);
    else
        conn = std::make_unique<Conn<S>>(tcp::socket(ioc));
    conn->dl.arm(timeout);
    error_code cec = asio::error::host_not_found;
    for (const auto& ep : eps) {
        error_code ignored;
        conn->s.socket().close(ignored);
        auto [e] = co_await conn->s.socket().async_connect(ep, nothrow);
        cec = e;
        if (!e || conn->dl.expired()) break;
    }
    if (cec) {
        conn->dl.disarm();
        if (conn->dl.expired()) {
            f = Failure::upstream_timeout;
            detail = "connect to " + hp.text() + " timed out";
            kind = metrics::UpstreamError::connect_timeout;
        } else {
            f = Failure::upstream_unreachable;
            detail = "connect to " + hp.text() + ": " + cec.message();
            kind = metrics::UpstreamError::connect;
        }
        co_return nullptr;
    }
    tune_socket(conn->s.socket());
    conn->s.prepare();
    if constexpr (std::is_same_v<S, TlsStream>) {
        error_code ec;
        tls::set_target(conn->s.ssl(), hp.host);
        offered = tls::resume_for(conn->s.ssl(), hp.text(), resume);
        co_await conn->s.handshake(false, ec);
        if (ec) {
            conn->dl.disarm();
            bool timed_out = conn->dl.expired();
            long vr = SSL_get_verify_result(conn->s.ssl());
            f = timed_out ? Failure::upstream_timeout : Failure::upstream_tls;
            detail = "TLS with " + hp.text() + ": " +
                     (vr != X509_V_OK ? std::string(X509_verify_cert_error_string(vr))
                      : timed_out     ? std::string("handshake timed out")
                                      : ec.message());
            kind = metrics::UpstreamError::tls;
            co_return nullptr;
        }
    }
    conn->dl.disarm();
    co_return conn;
}

// Connects (and for TlsStream handshakes, verifying the server's name or IP) within
// `timeout`. On failure returns null with the failure, a detail and the metric kind. A TLS
// handshake that fails while offering a session ticket is tried once more without it (and
// the ticket is forgotten): a server may refuse resumption outright instead of falling
// back to a full handshake.
template <class S>
asio::awaitable<std::unique_ptr<Conn<S>>> connect_upstream(asio::io_context& ioc, const config::HostPort& hp,
                                                           SSL_CTX* client_ctx, std::chrono::milliseconds timeout,
                                                           Failure& f, std::string& detail,
                                                           metrics::UpstreamError& kind) {
    bool offered = false;
    auto conn = co_await connect_once<S>(ioc, hp, client_ctx, timeout, f, detail, kind, true, offered);
    if (!conn && offered && f == Failure::upstream_tls)
        conn = co_await connect_once<S>(ioc, hp, client_ctx, timeout, f, detail, kind, false, offered);
    co_return conn;
}

// Collects a response body into a string, refusing more than `limit` bytes.
struct StringSink {
    std::string body;
    std::size_t limit;
    asio::awaitable<void> write(std::string_view a, std::string_view b, error_code& ec) {
        if (body.size() + a.size() + b.size() > limit) {
            ec = asio::error::message_size;
            co_return;
        }
        body.append(a).append(b);
        ec = {};
    }
};

struct FetchResult {
    int status = 0;        // 0 when no response
    std::string body;
    std::string error;     // why there is no response
};

// One request on a fresh connection (Connection: close), the whole exchange bounded by
// `timeout` and the response body by `limit`. For probes and the cluster view, not the
// data path.
template <class S>
asio::awaitable<FetchResult> fetch(asio::io_context& ioc, const config::HostPort& hp, SSL_CTX* client_ctx,
                                   std::string_view method, std::string_view path, std::string_view body,
                                   std::chrono::milliseconds timeout, std::size_t limit = 1 << 20,
                                   std::string_view extra_headers = {}) {
    FetchResult r;
    Failure f{};
    metrics::UpstreamError kind{};
    auto conn = co_await connect_upstream<S>(ioc, hp, client_ctx, timeout, f, r.error, kind);
    if (!conn) co_return r;
    conn->dl.arm(timeout);
    std::string req;
    req.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(hp.text());
    req.append("\r\nAccept: application/json\r\nConnection: close\r\n").append(extra_headers);
    if (!body.empty() || method == "POST" || method == "PUT")
        req.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
    req.append("\r\n");
    error_code ec;
    co_await conn->s.write(req, body, ec);
    if (ec) {
        r.error = "sending to " + hp.text() + ": " + (conn->dl.expired() ? "timed out" : ec.message());
        conn->s.close();
        co_return r;
    }
    conn->in.acquire();
    http::HeadError perr{};
    http::Head head;
    auto rh = co_await read_head(
        *conn, [&](std::string_view in, http::HeadError& e) {
            return http::parse_response(in, http::Limits{}, method, head, e);
        },
        perr);
    if (rh != ReadHead::ok) {
        r.error = "reading from " + hp.text() + ": " +
                  (rh == ReadHead::parse_error ? http::describe(perr)
                   : rh == ReadHead::timed_out ? "timed out"
                                               : "connection closed");
        conn->s.close();
        co_return r;
    }
    conn->in.consume(head.size);
    StringSink sink{{}, limit};
    auto br = co_await relay_body(conn->s, conn->in, sink, {}, head.framing, head.content_length, true);
    conn->dl.disarm();
    conn->s.close();
    if (br != BodyResult::ok) {
        r.error = "reading the body from " + hp.text() + ": " +
                  (br == BodyResult::dst_error ? "larger than the limit" : "broken");
        co_return r;
    }
    r.status = head.status;
    r.body = std::move(sink.body);
    co_return r;
}

} // namespace joingate::proxy
