// The relay, used by every listener: read a request head, stream the request body to the
// upstream, read the response head, stream the response body back. Bodies move through
// one fixed buffer per side and are never held whole; chunked bodies pass verbatim, so a
// never-ending raft stream flows chunk by chunk. Shape after Beast's http_examples relay.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics/metrics.hpp"
#include "proxy/errors.hpp"
#include "proxy/http.hpp"
#include "proxy/stream.hpp"

namespace joingate::proxy {

// A connection and its per-connection state. Not movable: the deadline watches its socket.
template <class S> struct Conn {
    template <class... A> explicit Conn(A&&... a) : s(std::forward<A>(a)...), dl(s.socket()) {}
    S s;
    Deadline dl;
    Buffer in;
    std::string out;  // heads written to this connection
    std::string head; // request head built for the upstream (kept for one retry)
    http::Head resp;  // the last response head read here (its field list keeps its capacity)
    std::chrono::steady_clock::time_point idle_since{};
    bool reused = false; // taken from a pool
};

// Idle upstream connections per target. Checked for liveness when taken, aged out by time.
template <class S> class Pool {
public:
    using Ptr = std::unique_ptr<Conn<S>>;
    static constexpr std::size_t max_idle_per_target = 64;
    static constexpr std::chrono::seconds max_idle{60};
    static constexpr std::chrono::milliseconds fresh_for{50};

    Ptr take(const std::string& key) {
        auto it = idle_.find(key);
        if (it == idle_.end()) return nullptr;
        auto now = coarse_now();
        while (!it->second.empty()) {
            Ptr c = std::move(it->second.back());
            it->second.pop_back();
            // A connection back in the pool for less than fresh_for is taken without the
            // liveness peek (a system call per request under load): a peer closes an idle
            // keep-alive connection after seconds, not within milliseconds of answering,
            // and a bodiless request on a stale connection is retried once anyway.
            auto idle = now - c->idle_since;
            if (idle < max_idle && (idle < fresh_for || c->s.idle_alive())) {
                c->reused = true;
                return c;
            }
            c->s.close();
        }
        return nullptr;
    }
    void put(const std::string& key, Ptr c) {
        c->in.release();
        c->dl.disarm();
        auto& v = idle_[key];
        if (v.size() >= max_idle_per_target) {
            c->s.close();
            return;
        }
        c->idle_since = coarse_now();
        v.push_back(std::move(c));
    }
    void sweep() {
        auto now = coarse_now();
        for (auto& [k, v] : idle_) {
            std::erase_if(v, [&](Ptr& c) {
                bool old = now - c->idle_since >= max_idle || !c->s.idle_alive();
                if (old) c->s.close();
                return old;
            });
        }
    }
    void clear() {
        for (auto& [k, v] : idle_)
            for (auto& c : v) c->s.close();
        idle_.clear();
    }

private:
    std::unordered_map<std::string, std::vector<Ptr>> idle_;
};

enum class ReadHead : std::uint8_t { ok, closed, timed_out, error, parse_error };

// Reads until a complete head is parsed (request or response, by `parse`).
template <class S, class ParseFn>
asio::awaitable<ReadHead> read_head(Conn<S>& c, ParseFn&& parse, http::HeadError& perr) {
    for (;;) {
        // The deadline may fire between two reads (a slow client's byte was already
        // queued): its cancel then hit no pending read, so look at it here too.
        if (c.dl.expired()) co_return ReadHead::timed_out;
        if (!c.in.empty()) {
            auto r = parse(c.in.view(), perr);
            if (r == http::Parse::complete) co_return ReadHead::ok;
            if (r == http::Parse::error) co_return ReadHead::parse_error;
        }
        char* tail = c.in.tail();
        std::size_t room = c.in.tail_room();
        if (room == 0) {
            perr = http::HeadError::header_too_large;
            co_return ReadHead::parse_error;
        }
        error_code ec;
        std::size_t n = co_await c.s.read_some(tail, room, ec);
        if (ec) {
            if (c.dl.expired()) co_return ReadHead::timed_out;
            co_return (ec == asio::error::eof || ec == asio::error::connection_reset) && c.in.empty()
                ? ReadHead::closed
                : ReadHead::error;
        }
        c.in.commit(n);
    }
}

enum class BodyResult : std::uint8_t { ok, src_error, dst_error, bad_framing };

// Sends `head` followed by the body of the given framing read from `src` (starting with
// the bytes already in `buf`) to `dst`. Bytes after the body stay in `buf` (pipelining).
// `dechunk` decodes a chunked body (for an HTTP/1.0 client).
template <class Src, class Dst>
asio::awaitable<BodyResult> relay_body(Src& src, Buffer& buf, Dst& dst, std::string_view head,
                                       http::Framing framing, std::uint64_t length, bool dechunk,
                                       bool* dst_started = nullptr) {
    error_code ec;
    auto write = [&](std::string_view a, std::string_view b) -> asio::awaitable<bool> {
        co_await dst.write(a, b, ec);
        if (dst_started && !(a.empty() && b.empty())) *dst_started = true;
        co_return !ec;
    };
    auto fill = [&]() -> asio::awaitable<bool> {
        std::size_t n = co_await src.read_some(buf.tail(), buf.tail_room(), ec);
        if (ec) co_return false;
        buf.commit(n);
        co_return true;
    };
    switch (framing) {
    case http::Framing::none:
        co_return (co_await write(head, {})) ? BodyResult::ok : BodyResult::dst_error;
    case http::Framing::length: {
        std::uint64_t remaining = length;
        std::string_view h = head;
        for (;;) {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), remaining));
            if (n || !h.empty()) {
                if (!co_await write(h, buf.view().substr(0, n))) co_return BodyResult::dst_error;
                h = {};
                buf.consume(n);
                remaining -= n;
            }
            if (remaining == 0) co_return BodyResult::ok;
            if (!co_await fill()) co_return BodyResult::src_error;
        }
    }
    case http::Framing::chunked: {
        http::ChunkedDecoder dec;
        std::vector<http::ChunkedDecoder::Span> spans;
        std::string_view h = head;
        for (;;) {
            auto v = buf.view();
            spans.clear();
            auto r = dec.feed(v, dechunk ? &spans : nullptr);
            if (r.status == http::ChunkedDecoder::Status::error) co_return BodyResult::bad_framing;
            if (dechunk) {
                if (!h.empty() && !co_await write(h, {})) co_return BodyResult::dst_error;
                h = {};
                for (auto s : spans)
                    if (!co_await write(v.substr(s.offset, s.size), {})) co_return BodyResult::dst_error;
            } else if (r.consumed || !h.empty()) {
                if (!co_await write(h, v.substr(0, r.consumed))) co_return BodyResult::dst_error;
                h = {};
            }
            buf.consume(r.consumed);
            if (r.status == http::ChunkedDecoder::Status::done) co_return BodyResult::ok;
            if (!co_await fill()) co_return BodyResult::src_error;
        }
    }
    case http::Framing::close: {
        std::string_view h = head;
        for (;;) {
            if (!buf.empty() || !h.empty()) {
                if (!co_await write(h, buf.view())) co_return BodyResult::dst_error;
                h = {};
                buf.consume(buf.size());
            }
            if (!co_await fill()) {
                co_return (ec == asio::error::eof) ? BodyResult::ok : BodyResult::src_error;
            }
        }
    }
    }
    co_return BodyResult::ok;
}

// What one request/response exchange came to.
struct Exchange {
    int status = 0;                   // response status sent to the client (0 = none)
    bool client_keep_alive = false;   // the client connection may carry another request
    bool upstream_reusable = false;   // the upstream connection may go back to the pool
    bool response_started = false;    // bytes of a response were sent to the client
    bool retryable = false;           // failed on a reused connection before anything was sent
    std::optional<Failure> failure;   // to answer when !response_started
    std::string detail;
    std::optional<metrics::UpstreamError> upstream_error;
};

struct ExchangeParams {
    std::string_view head; // the request head to send upstream, already rewritten
    bool is_head = false;  // HEAD request: the response has no body
    int client_minor = 1;
    bool client_keep_alive = true;
    http::Framing framing = http::Framing::none;
    std::uint64_t length = 0;
    const http::Stamp* response_stamp = nullptr;
    bool draining = false;
    std::chrono::milliseconds response_timeout{300000};
};

// Relays one request (its head already consumed from `client.in`, rewritten in p.head)
// and its response. `on_response` sees the upstream's response head before it is rewritten;
// when it returns a non-empty refusal, the response is not relayed (x.failure = rejected).
template <class C, class U, class OnResponse>
asio::awaitable<void> exchange(Conn<C>& client, Conn<U>& up, const http::Limits& limits,
                               const ExchangeParams& p, OnResponse&& on_response, Exchange& x) {
    const bool is_head = p.is_head;
    const int client_minor = p.client_minor;
    const bool client_keep = p.client_keep_alive;
    const http::Framing req_framing = p.framing;
    const std::uint64_t req_length = p.length;
    up.in.acquire();

    // 1. request head and body
    bool up_written = false;
    client.dl.arm(p.response_timeout); // a stalled request body is bounded by the idle timeout
    auto br = co_await relay_body(client.s, client.in, up.s, p.head, req_framing, req_length, false,
                                  &up_written);
    client.dl.disarm();
    if (br == BodyResult::bad_framing) {
        x.failure = Failure::bad_request;
        x.detail = "malformed chunked request body";
        co_return;
    }
    if (br == BodyResult::src_error) {
        x.client_keep_alive = false; // client went away mid-body; nothing to answer
        x.response_started = true;
        co_return;
    }
    if (br == BodyResult::dst_error) {
        x.retryable = up.reused && req_framing == http::Framing::none;
        x.failure = Failure::upstream_closed;
        x.detail = "connection to the upstream failed while sending the request";
        x.upstream_error = metrics::UpstreamError::closed;
        co_return;
    }

    // 2. response head (forwarding any 1xx interim responses)
    http::Head& resp = up.resp;
    for (;;) {
        up.dl.arm(p.response_timeout);
        http::HeadError perr{};
        auto rh = co_await read_head(
            up,
            [&](std::string_view in, http::HeadError& e) {
                return http::parse_response(in, limits, is_head ? "HEAD" : "GET", resp, e);
            },
            perr);
        up.dl.disarm();
        if (rh != ReadHead::ok) {
            x.retryable = up.reused && rh == ReadHead::closed && req_framing == http::Framing::none;
            x.failure = rh == ReadHead::parse_error ? Failure::upstream_bad_response
                                                    : Failure::upstream_closed;
            x.detail = rh == ReadHead::parse_error ? http::describe(perr)
                       : rh == ReadHead::timed_out ? "no response head in time"
                                                   : "upstream closed the connection before responding";
            x.upstream_error = rh == ReadHead::parse_error ? metrics::UpstreamError::bad_response
                                                           : metrics::UpstreamError::closed;
            co_return;
        }
        if (resp.status >= 100 && resp.status < 200) {
            if (resp.status == 101) {
                x.failure = Failure::upstream_bad_response;
                x.detail = "unexpected protocol switch";
                x.upstream_error = metrics::UpstreamError::bad_response;
                co_return;
            }
            http::write_response_head(client.out, resp, false, false, nullptr);
            up.in.consume(resp.size);
            error_code ec;
            co_await client.s.write(client.out, {}, ec);
            x.response_started = true;
            if (ec) co_return;
            continue;
        }
        break;
    }
    if (std::string refusal = on_response(resp); !refusal.empty()) {
        x.failure = Failure::rejected;
        x.detail = std::move(refusal);
        x.upstream_reusable = false; // its response body is not read
        co_return;
    }

    // 3. response head and body to the client
    const bool dechunk = resp.framing == http::Framing::chunked && client_minor == 0;
    const bool close_client = !client_keep || resp.framing == http::Framing::close || dechunk ||
                              p.draining;
    http::write_response_head(client.out, resp, close_client, dechunk, p.response_stamp);
    x.status = resp.status;
    const bool up_keep = resp.keep_alive;
    const http::Framing resp_framing = resp.framing;
    up.in.consume(resp.size);
    bool started = false;
    br = co_await relay_body(up.s, up.in, client.s, client.out, resp_framing, resp.content_length,
                             dechunk, &started);
    x.response_started = true;
    if (br != BodyResult::ok) {
        // Mid-body failure: the only honest signal left is closing the client connection.
        if (br == BodyResult::src_error || br == BodyResult::bad_framing)
            x.upstream_error = br == BodyResult::bad_framing ? metrics::UpstreamError::bad_response
                                                             : metrics::UpstreamError::closed;
        x.client_keep_alive = false;
        x.upstream_reusable = false;
        co_return;
    }
    x.client_keep_alive = !close_client;
    x.upstream_reusable = up_keep && resp_framing != http::Framing::close && up.in.empty();
}

} // namespace joingate::proxy
