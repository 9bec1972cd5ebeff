// The sidecar process: binds the listeners, runs one session coroutine per connection,
// owns the upstream pools, reloads on SIGHUP and drains on SIGTERM.
//  - inbound (mTLS): other members' sidecars → the local peer (why: the peer speaks plain
//    HTTP on loopback and cannot check versions or certificates itself);
//  - outbound (plain, loopback): the local peer's HTTP_PROXY → other members over mTLS;
//  - routes: fixed local ports to one remote member, for peers without HTTP_PROXY;
//  - admin: metrics, health, status, the version document. Read-only.
#include "proxy/server.hpp"

#include <malloc.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <netinet/tcp.h>

#include <list>
#include <optional>
#include <stdexcept>

#include "admission/version.hpp"
#include "metrics/metrics.hpp"
#include "proxy/control.hpp"
#include "proxy/errors.hpp"
#include "proxy/join_body.hpp"
#include "proxy/log.hpp"
#include "proxy/relay.hpp"
#include "proxy/tls.hpp"
#include "proxy/upstream.hpp"

namespace joingate::proxy {

namespace {

using Clock = std::chrono::steady_clock;

enum class Kind : std::uint8_t { inbound, outbound, route, admin };
const char* to_string(Kind k) {
    switch (k) {
    case Kind::inbound: return "inbound";
    case Kind::outbound: return "outbound";
    case Kind::route: return "route";
    case Kind::admin: return "admin";
    }
    return "?";
}

tcp::endpoint resolve_listen(const config::HostPort& hp) {
    error_code ec;
    auto addr = asio::ip::make_address(hp.host, ec);
    if (ec) {
        if (hp.host == "localhost") addr = asio::ip::address_v4::loopback();
        else if (hp.host.empty() || hp.host == "*") addr = asio::ip::address_v4::any();
        else throw std::runtime_error("listen address " + hp.text() + ": host must be an IP address");
    }
    return {addr, hp.port};
}

std::string endpoint_text(const tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

std::string_view path_of(std::string_view target) {
    auto q = target.find('?');
    return q == std::string_view::npos ? target : target.substr(0, q);
}

} // namespace

struct Server::Impl {
    Impl(std::shared_ptr<const config::Config> cfg, std::string path)
        : config_path(std::move(path)), rt(make_runtime(std::move(cfg))),
          m_inbound(metrics.listener("inbound")), m_outbound(metrics.listener("outbound")),
          m_route(metrics.listener("route")), m_admin(metrics.listener("admin")),
          control(ioc, metrics, rt) {
        Buffer::set_block_size(std::max<std::size_t>(32 * 1024, rt->config->limits.max_header_bytes + 16 * 1024));
        publish_static_metrics();
    }

    ~Impl() { *alive = false; }

    // ---- state ----
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
    std::string config_path;
    asio::io_context ioc{1};
    metrics::Metrics metrics;
    std::shared_ptr<const Runtime> rt;
    metrics::ListenerMetrics& m_inbound;
    metrics::ListenerMetrics& m_outbound;
    metrics::ListenerMetrics& m_route;
    metrics::ListenerMetrics& m_admin;
    prometheus::Gauge* member_info = nullptr;
    Control control;
    Clock::time_point started = Clock::now();

    struct Listener {
        Kind kind;
        tcp::acceptor acceptor;
        std::size_t route = 0; // index into config routes
        std::size_t active = 0;
    };
    std::list<Listener> listeners;

    // Sessions, for drain: idle ones are woken (cancelled) at once.
    struct Tracked {
        tcp::socket* sock;
        bool idle;
    };
    std::list<Tracked> sessions;
    bool draining = false;

    Pool<PlainStream> plain_pool; // inbound → the local peer
    Pool<TlsStream> tls_pool;     // outbound/routes → other members' inbound
    std::unordered_map<std::string, Clock::time_point> warned; // rate-limits upstream warnings

    // ---- metrics that describe the configuration ----
    void publish_static_metrics() {
        const auto& c = *rt->config;
        if (member_info) metrics.families().member_info.Remove(member_info);
        member_info = &metrics.families().member_info.Add(
            {{"member", c.member.name},
             {"version", control.identity()->version.empty() ? "unknown" : control.identity()->version},
             {"profile", config::to_string(c.member.profile)},
             {"mode", config::to_string(c.admission.mode)},
             {"policy", config::to_string(c.admission.policy)}});
        member_info->Set(1);
        metrics.cert_expiry.Set(static_cast<double>(rt->tls.cert_not_after));
    }

    metrics::ListenerMetrics& lm(Kind k) {
        switch (k) {
        case Kind::inbound: return m_inbound;
        case Kind::outbound: return m_outbound;
        case Kind::route: return m_route;
        case Kind::admin: return m_admin;
        }
        return m_admin;
    }

    // ---- listeners ----
    void bind(Kind kind, const config::HostPort& hp, std::size_t route = 0) {
        auto ep = resolve_listen(hp);
        tcp::acceptor acc(ioc);
        error_code ec;
        acc.open(ep.protocol(), ec);
        if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acc.bind(ep, ec);
        if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw std::runtime_error(std::string(to_string(kind)) + " listener " + hp.text() + ": " +
                                     ec.message());
        auto local = acc.local_endpoint(ec);
        auto& l = listeners.emplace_back(Listener{kind, std::move(acc), route, 0});
        if (kind == Kind::route) {
            log::info("listening", {{"listener", to_string(kind)},
                                    {"address", endpoint_text(local)},
                                    {"peer", rt->config->outbound.routes[route].peer.text()}});
        } else {
            log::info("listening", {{"listener", to_string(kind)}, {"address", endpoint_text(local)}});
        }
        asio::co_spawn(ioc, accept_loop(l), asio::detached);
    }

    asio::awaitable<void> accept_loop(Listener& l) {
        asio::steady_timer backoff(ioc);
        for (;;) {
            auto [ec, sock] = co_await l.acceptor.async_accept(nothrow);
            if (!l.acceptor.is_open() || draining) co_return;
            if (ec) {
                // Out of descriptors or memory: back off instead of spinning, then retry.
                log::warn("accept failed", {{"listener", to_string(l.kind)}, {"error", ec.message()}});
                backoff.expires_after(std::chrono::milliseconds(100));
                co_await backoff.async_wait(nothrow);
                continue;
            }
            auto& m = lm(l.kind);
            if (l.active >= rt->config->limits.max_connections) {
                m.connections_rejected.Increment();
                error_code ignored;
                sock.close(ignored);
                continue;
            }
            asio::co_spawn(ioc, session(l, std::move(sock)), asio::detached);
        }
    }

    // Bookkeeping for one client connection: counts, the gauge, the drain list. Sessions
    // still suspended when the process stops are destroyed with the io_context, after the
    // members they count in: `alive` tells their guards to leave those alone.
    // After a burst of connections (slow clients, a reconnect storm) is gone, give the
    // memory it used back to the system: the allocator keeps freed memory otherwise, and
    // RSS would stay at the burst's peak.
    std::size_t sessions_peak = 0;
    void after_open() { sessions_peak = std::max(sessions_peak, sessions.size()); }
    void after_close() {
        if (sessions_peak >= 256 && sessions.size() <= sessions_peak / 4) {
            ::malloc_trim(0);
            sessions_peak = sessions.size();
        }
    }

    struct SessionGuard {
        Impl& impl;
        Listener& l;
        std::list<Tracked>::iterator it;
        std::shared_ptr<bool> alive;
        SessionGuard(Impl& i, Listener& li, tcp::socket* s) : impl(i), l(li), alive(i.alive) {
            ++l.active;
            impl.lm(l.kind).connections_active.Increment();
            it = impl.sessions.insert(impl.sessions.end(), Tracked{s, false});
            impl.after_open();
        }
        ~SessionGuard() {
            if (!*alive) return;
            --l.active;
            impl.lm(l.kind).connections_active.Decrement();
            impl.sessions.erase(it);
            impl.after_close();
        }
        void idle(bool v) { it->idle = v; }
    };

    asio::awaitable<void> session(Listener& l, tcp::socket sock) {
        auto snapshot = rt;
        tune_socket(sock);
        if (l.kind == Kind::inbound) {
            Conn<TlsStream> c(std::move(sock), snapshot->tls.server.get());
            SessionGuard g(*this, l, &c.s.socket());
            c.s.prepare();
            c.dl.arm(snapshot->config->limits.handshake_timeout);
            error_code ec;
            co_await c.s.handshake(true, ec);
            c.dl.disarm();
            if (ec) {
                m_inbound.tls_handshake_errors.Increment();
                if (c.dl.expired()) m_inbound.timeout(metrics::Timeout::handshake);
                log::debug("tls handshake failed", {{"listener", "inbound"}, {"error", ec.message()}});
                c.s.close();
                co_return;
            }
            (SSL_session_reused(c.s.ssl()) ? m_inbound.tls_handshakes_resumed : m_inbound.tls_handshakes_full)
                .Increment();
            if (!tls::peer_allowed(c.s.ssl(), snapshot->tls.allowed_peers)) {
                m_inbound.tls_handshake_errors.Increment();
                log::warn("peer certificate not in tls.allowed_peers",
                          {{"listener", "inbound"}, {"peer", tls::peer_name(c.s.ssl())}});
                c.s.close();
                co_return;
            }
            co_await serve(c, l, g, snapshot);
        } else {
            Conn<PlainStream> c(std::move(sock));
            SessionGuard g(*this, l, &c.s.socket());
            c.s.prepare();
            co_await serve(c, l, g, snapshot);
        }
    }

    // The request loop of one client connection, for every listener kind.
    template <class S>
    asio::awaitable<void> serve(Conn<S>& c, Listener& l, SessionGuard& g,
                                std::shared_ptr<const Runtime> snapshot) {
        auto& m = lm(l.kind);
        const auto& limits = snapshot->config->limits;
        http::Head req;
        for (;;) {
            if (draining) break;
            if (c.in.empty() && !c.s.has_buffered()) {
                // Idle keep-alive: hold no buffer while waiting (per-connection memory).
                c.in.release();
                g.idle(true);
                c.dl.arm(limits.idle_timeout);
                error_code ec;
                co_await c.s.wait_readable(ec);
                g.idle(false);
                if (ec) {
                    if (c.dl.expired()) m.timeout(metrics::Timeout::idle);
                    break;
                }
            }
            c.in.acquire();
            c.dl.arm(limits.header_timeout);
            http::HeadError perr{};
            auto rh = co_await read_head(
                c,
                [&](std::string_view in, http::HeadError& e) {
                    return http::parse_request(in, snapshot->limits, req, e);
                },
                perr);
            c.dl.disarm();
            if (rh == ReadHead::timed_out) {
                m.timeout(metrics::Timeout::header);
                break;
            }
            if (rh == ReadHead::closed || rh == ReadHead::error) break;
            if (rh == ReadHead::parse_error) {
                auto f = failure_for(perr);
                co_await answer_failure(c, m, f, http::describe(perr), true);
                log::debug("bad request", {{"listener", to_string(l.kind)}, {"error", http::describe(perr)}});
                break;
            }
            auto t0 = Clock::now();
            bool keep = false;
            if constexpr (std::is_same_v<S, TlsStream>) {
                keep = co_await handle_inbound(c, req, *snapshot, t0);
            } else if (l.kind == Kind::outbound) {
                keep = co_await handle_forward(c, req, *snapshot, nullptr, t0);
            } else if (l.kind == Kind::route) {
                keep = co_await handle_forward(c, req, *snapshot,
                                               &snapshot->config->outbound.routes[l.route], t0);
            } else {
                keep = co_await handle_admin(c, req, *snapshot);
            }
            if (!keep) break;
        }
        c.dl.disarm();
        c.s.close();
    }

    template <class S>
    asio::awaitable<void> answer_failure(Conn<S>& c, metrics::ListenerMetrics& m, Failure f,
                                         std::string_view detail, bool close,
                                         std::string_view extra_headers = {}) {
        render_failure(c.out, f, detail, close, 0, extra_headers);
        m.count_request(info(f).status);
        error_code ec;
        c.dl.arm(std::chrono::seconds(10));
        co_await c.s.write(c.out, {}, ec);
        c.dl.disarm();
    }

    template <class S>
    asio::awaitable<bool> answer(Conn<S>& c, metrics::ListenerMetrics& m, int status,
                                 std::string_view type, std::string_view body, const http::Head& req) {
        bool close = !req.keep_alive || draining;
        std::size_t consumed = req.size;
        bool head_only = req.method == "HEAD";
        std::string payload;
        http::write_simple_response(c.out, status, type, head_only ? std::string_view{} : body, close);
        if (head_only) { // HEAD: the Content-Length of the GET, no body
            std::string fixed;
            http::write_simple_response(fixed, status, type, body, close);
            c.out = fixed.substr(0, fixed.size() - body.size());
        }
        c.in.consume(consumed);
        m.count_request(status);
        error_code ec;
        c.dl.arm(std::chrono::seconds(10));
        co_await c.s.write(c.out, {}, ec);
        c.dl.disarm();
        co_return !ec && !close;
    }

    // Requests with a body we do not read (local answers) cannot keep the connection.
    static bool has_body(const http::Head& req) { return req.framing != http::Framing::none; }

    // ---- inbound: another member's sidecar → the local peer ----
    asio::awaitable<bool> handle_inbound(Conn<TlsStream>& c, http::Head& req, const Runtime& r,
                                         Clock::time_point t0) {
        auto path = path_of(req.target);
        if (path == "/joingate/v1/version" && !has_body(req) && (req.method == "GET" || req.method == "HEAD")) {
            co_return co_await answer(c, m_inbound, 200, "application/json", control.version_json(), req);
        }
        // Leader-controlled admission: the caller's version comes from its sidecar's
        // stamp (trusted: mTLS), else from the peer's own version header.
        auto id = control.identity(); // the stamp's strings live as long as this exchange
        http::Stamp stamp = id->stamp();
        if (control.profile().is_join(req.method, path)) {
            const auto& pointer = control.profile().body_version_pointer;
            if (!pointer.empty() && has_body(req)) {
                // etcd2: the joiner's sidecar wrote its version into the JoinCommand.
                std::string member(req.get("x-joingate-member")), stamped(req.get("x-joingate-version")),
                    protocol(req.get("x-joingate-protocol")), body;
                std::string header_version(control.profile().version_header.empty()
                                               ? std::string_view{}
                                               : req.get(control.profile().version_header));
                ExchangeParams p;
                auto br = co_await take_join_body(c, req, p, req.target, {}, nullptr, body);
                if (br != BodyResult::ok) co_return co_await answer_body_failure(c, m_inbound, br);
                // The body's field first, then the sidecar's stamp, then the profile's header.
                std::string version = body_version(body, pointer);
                if (version.empty()) version = stamped;
                if (version.empty()) version = header_version;
                auto d = control.judge_inbound(member, version, protocol);
                if (d.blocks()) co_return co_await refuse(c, m_inbound, d, member, version, p.client_keep_alive, 0);
                finish_join_head(p, c.head, body);
                p.response_stamp = &stamp;
                p.draining = draining;
                p.response_timeout = r.config->limits.idle_timeout;
                static const std::string local_key;
                co_return co_await forward_prepared(c, p, r, m_inbound, plain_pool, local_key,
                                                    r.config->member.peer.authority, t0, [](const http::Head&) { return std::string(); });
            }
            auto member = req.get("x-joingate-member");
            auto version = req.get("x-joingate-version");
            if (version.empty() && !control.profile().version_header.empty())
                version = req.get(control.profile().version_header);
            auto d = control.judge_inbound(member, version, req.get("x-joingate-protocol"));
            if (d.blocks())
                co_return co_await refuse(c, m_inbound, d, member, version, req.keep_alive && !has_body(req), req.size);
        }
        const auto& peer = r.config->member.peer.authority;
        static const std::string local_key;
        co_return co_await forward(c, req, r, m_inbound, plain_pool, local_key, peer, req.target, {},
                                   nullptr, &stamp, t0, [](const http::Head&) { return std::string(); });
    }

    // A refused join: the profile's status (etcd3 412, etcd2 409), a JSON object body and
    // never an X-Server-Version header (DESIGN §6). `consume` is the request's size still
    // in the buffer (0 when its head and body were already taken).
    template <class S>
    asio::awaitable<bool> refuse(Conn<S>& c, metrics::ListenerMetrics& m, const admission::Decision& d,
                                 std::string_view member, std::string_view version, bool keep_alive,
                                 std::size_t consume) {
        co_return co_await send_refusal(c, m, Control::refusal_detail(d, member, version), keep_alive,
                                        consume);
    }

    // Sends the profile's refusal with `detail` as its JSON error.
    template <class S>
    asio::awaitable<bool> send_refusal(Conn<S>& c, metrics::ListenerMetrics& m, std::string_view detail,
                                       bool keep_alive, std::size_t consume) {
        bool close = !keep_alive || draining;
        render_failure(c.out, Failure::rejected, detail, close, control.profile().reject_status);
        if (!close) c.in.consume(consume);
        m.count_request(control.profile().reject_status);
        error_code ec;
        c.dl.arm(std::chrono::seconds(10));
        co_await c.s.write(c.out, {}, ec);
        c.dl.disarm();
        co_return !ec && !close;
    }

    // Join bodies the profile reads or writes (etcd2's JoinCommand) are small JSON: the
    // request head is rebuilt without its framing, consumed, and the body read whole,
    // bounded to 64 KiB. finish_join_head then appends a fresh Content-Length and the body.
    static constexpr std::size_t max_join_body = 64 * 1024;

    template <class S>
    asio::awaitable<BodyResult> take_join_body(Conn<S>& c, http::Head& req, ExchangeParams& p,
                                               std::string_view path, std::string_view host,
                                               const http::Stamp* stamp, std::string& body) {
        p.is_head = false;
        p.client_minor = req.minor_version;
        p.client_keep_alive = req.keep_alive;
        const auto framing = req.framing;
        const auto length = req.content_length;
        std::erase_if(req.fields, [](const http::Field& f) {
            return http::iequals(f.name, "content-length") || http::iequals(f.name, "transfer-encoding");
        });
        http::write_request_head(c.head, req, path, host, stamp);
        c.head.resize(c.head.size() - 2); // the blank line comes after Content-Length
        c.in.consume(req.size);
        StringSink sink{{}, max_join_body};
        auto br = co_await relay_body(c.s, c.in, sink, {}, framing, length, true);
        body = std::move(sink.body);
        co_return br;
    }

    static void finish_join_head(ExchangeParams& p, std::string& head, const std::string& body) {
        head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n").append(body);
        p.head = head;
        p.framing = http::Framing::none;
        p.length = 0;
    }

    template <class S>
    asio::awaitable<bool> answer_body_failure(Conn<S>& c, metrics::ListenerMetrics& m, BodyResult br) {
        if (br == BodyResult::dst_error)
            co_await answer_failure(c, m, Failure::body_too_large, "join body over 64 KiB", true);
        else if (br == BodyResult::bad_framing)
            co_await answer_failure(c, m, Failure::bad_request, "malformed chunked request body", true);
        co_return false;
    }

    // ---- outbound / route: the local peer → another member's inbound over mTLS ----
    asio::awaitable<bool> handle_forward(Conn<PlainStream>& c, http::Head& req, const Runtime& r,
                                         const config::Route* route, Clock::time_point t0) {
        auto& m = route ? m_route : m_outbound;
        if (req.method == "CONNECT") {
            co_await answer_failure(c, m, Failure::method_not_allowed,
                                    "CONNECT is not supported; send absolute-form requests", true);
            co_return false;
        }
        http::AbsoluteTarget t;
        bool absolute = http::parse_absolute_target(req.target, t);
        if (!route && !absolute) {
            co_await answer_failure(c, m, Failure::not_proxy_request,
                                    "the forward proxy needs absolute-form targets (http://host:port/path)",
                                    has_body(req));
            if (has_body(req)) co_return false;
            c.in.consume(req.size);
            co_return req.keep_alive;
        }
        config::HostPort hp = route ? route->peer : config::HostPort{std::string(t.host), t.port};
        std::string key = route ? hp.text() : std::string(t.authority);
        std::string_view target = absolute ? t.origin : req.target;
        std::string_view host = route ? std::string_view{} : t.authority;

        // Follower-controlled: while the local member is not admitted its join traffic is
        // held up to admission.retry.hold, then answered 503 (etcd gives up after 10 s).
        if (control.follower_enforced() && !control.admitted() && control.profile().is_join(req.method, path_of(target))) {
            bool ok = co_await control.hold(r.config->admission.retry.hold);
            if (c.s.peer_gone()) co_return false; // the client left while held: drop, never forward
            if (!ok) {
                bool close = has_body(req) || !req.keep_alive || draining;
                auto retry = std::to_string(std::max<long long>(1, r.config->admission.retry.initial.count() / 1000));
                co_await answer_failure(c, m, Failure::held,
                                        "member " + r.config->member.name + " is not admitted yet (" +
                                            control.readiness_reason() + ")",
                                        close, "Retry-After: " + retry + "\r\n");
                if (!close) c.in.consume(req.size);
                co_return !close;
            }
        }
        // Leader-controlled, outbound half: the local peer may not talk to a rejected member.
        std::string probe_error, target_member, target_version;
        auto d = co_await control.judge_outbound(key, hp, &probe_error, &target_member, &target_version);
        if (!d) {
            m.upstream_error(metrics::UpstreamError::connect);
            warn_upstream(key, probe_error);
            bool close = has_body(req) || !req.keep_alive || draining;
            co_await answer_failure(c, m, Failure::upstream_unreachable, probe_error, close);
            if (!close) c.in.consume(req.size);
            co_return !close;
        }
        if (d->blocks()) {
            co_return co_await refuse(c, m, *d, target_member.empty() ? key : target_member, target_version,
                                      req.keep_alive && !has_body(req), req.size);
        }
        auto id = control.identity();
        http::Stamp stamp = id->stamp();
        const auto& pointer = control.profile().body_version_pointer;
        if (!pointer.empty() && has_body(req) && control.profile().is_join(req.method, path_of(target))) {
            // etcd2: "add a Version field to the join command" on the joiner's side.
            ExchangeParams p;
            std::string body;
            auto br = co_await take_join_body(c, req, p, target, host, &stamp, body);
            if (br != BodyResult::ok) co_return co_await answer_body_failure(c, m, br);
            if (!id->version.empty()) body = with_body_version(body, pointer, id->version);
            finish_join_head(p, c.head, body);
            p.draining = draining;
            p.response_timeout = r.config->limits.idle_timeout;
            co_return co_await forward_prepared(c, p, r, m, tls_pool, key, hp, t0,
                                                [&](const http::Head& resp) { return control.learn_target(key, resp, target_member, target_version); });
        }
        co_return co_await forward(c, req, r, m, tls_pool, key, hp, target, host, &stamp, nullptr, t0,
                                   [&](const http::Head& resp) { return control.learn_target(key, resp, target_member, target_version); });
    }

    // Connects to an upstream, counting a connect timeout on the listener.
    template <class S>
    asio::awaitable<std::unique_ptr<Conn<S>>> connect(const config::HostPort& hp, const Runtime& r,
                                                      Failure& f, std::string& detail,
                                                      metrics::UpstreamError& kind,
                                                      metrics::ListenerMetrics& m) {
        auto c = co_await connect_upstream<S>(ioc, hp, r.tls.client.get(), r.config->limits.connect_timeout,
                                              f, detail, kind);
        if (!c && kind == metrics::UpstreamError::connect_timeout) m.timeout(metrics::Timeout::connect);
        co_return c;
    }

    // Forwards one request through a pooled (or new) upstream connection. A request
    // without a body that fails on a reused connection before any response byte (the
    // upstream closed it while idle) is sent once more on a fresh connection.
    template <class C, class S, class OnResponse>
    asio::awaitable<bool> forward(Conn<C>& c, http::Head& req, const Runtime& r,
                                  metrics::ListenerMetrics& m, Pool<S>& pool, const std::string& key,
                                  const config::HostPort& target, std::string_view path,
                                  std::string_view host, const http::Stamp* req_stamp,
                                  const http::Stamp* resp_stamp, Clock::time_point t0,
                                  OnResponse on_response) {
        ExchangeParams p;
        p.is_head = req.method == "HEAD";
        p.client_minor = req.minor_version;
        p.client_keep_alive = req.keep_alive;
        p.framing = req.framing;
        p.length = req.content_length;
        p.response_stamp = resp_stamp;
        p.draining = draining;
        p.response_timeout = r.config->limits.idle_timeout;
        // An HTTP/1.0 request may come without Host; it goes upstream as HTTP/1.1, which
        // needs one: the upstream's authority.
        std::string upstream_host;
        if (host.empty() && req.get("host").empty()) host = upstream_host = target.text();
        http::write_request_head(c.head, req, path, host, req_stamp);
        p.head = c.head;
        c.in.consume(req.size); // req's views are not used past this point
        co_return co_await forward_prepared(c, p, r, m, pool, key, target, t0, std::move(on_response));
    }

    // The request head for the upstream is built (p.head) and consumed from the client.
    template <class C, class S, class OnResponse>
    asio::awaitable<bool> forward_prepared(Conn<C>& c, ExchangeParams& p, const Runtime& r,
                                           metrics::ListenerMetrics& m, Pool<S>& pool,
                                           const std::string& key, const config::HostPort& target,
                                           Clock::time_point t0, OnResponse on_response) {
        const std::string& where = key.empty() ? target.text() : key;
        for (int attempt = 0; attempt < 2; ++attempt) {
            auto up = attempt == 0 ? pool.take(key) : nullptr;
            if (!up) {
                Failure f{};
                std::string detail;
                metrics::UpstreamError kind{};
                up = co_await connect<S>(target, r, f, detail, kind, m);
                if (!up) {
                    m.upstream_error(kind);
                    warn_upstream(where, detail);
                    // An unread request body leaves the connection unusable.
                    bool close = p.framing != http::Framing::none || !p.client_keep_alive || draining;
                    co_await answer_failure(c, m, f, detail, close);
                    co_return !close;
                }
            }
            Exchange x;
            bool first_response = true;
            co_await exchange(c, *up, r.limits, p,
                              [&](const http::Head& resp) -> std::string {
                                  if (first_response) {
                                      first_response = false;
                                      m.request_duration.Observe(
                                          std::chrono::duration<double>(Clock::now() - t0).count());
                                  }
                                  return on_response(resp);
                              },
                              x);
            if (x.retryable && attempt == 0) {
                up->s.close();
                continue;
            }
            if (x.upstream_error) m.upstream_error(*x.upstream_error);
            if (x.status) m.count_request(x.status);
            if (x.upstream_reusable) pool.put(key, std::move(up));
            else up->s.close();
            if (!x.response_started && x.failure == Failure::rejected) {
                // The target's own sidecar said it now runs a version the policy refuses.
                co_return co_await send_refusal(c, m, x.detail, false, 0);
            }
            if (!x.response_started && x.failure) {
                if (x.upstream_error) warn_upstream(where, x.detail);
                co_await answer_failure(c, m, *x.failure, x.detail, true);
                co_return false;
            }
            co_return x.client_keep_alive && !draining;
        }
        co_return false;
    }

    void warn_upstream(const std::string& target, const std::string& detail) {
        // etcd retries a refused peer about every 100 ms: one warning per target per 30 s,
        // the rest is in joingate_upstream_errors_total.
        auto now = Clock::now();
        auto& last = warned[target];
        if (last.time_since_epoch().count() == 0 || now - last > std::chrono::seconds(30)) {
            last = now;
            log::warn("upstream failed", {{"target", target}, {"error", detail}});
        } else {
            log::debug("upstream failed", {{"target", target}, {"error", detail}});
        }
    }

    // ---- admin ----
    std::string status_json(const Runtime& r) const {
        std::string out = "{\"member\":" + control.version_json() + "," + control.status_json();
        out += ",\"uptime_seconds\":" +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count());
        out += ",\"draining\":";
        out += draining ? "true" : "false";
        out += ",\"listeners\":[";
        bool first = true;
        for (const auto& l : listeners) {
            error_code ec;
            auto ep = l.acceptor.local_endpoint(ec);
            if (!first) out += ",";
            first = false;
            out += "{\"listener\":\"" + std::string(to_string(l.kind)) + "\",\"address\":";
            log::append_json_string(out, ec ? "" : endpoint_text(ep));
            out += ",\"connections\":" + std::to_string(l.active) + "}";
        }
        out += "],\"tls\":{\"subject\":";
        log::append_json_string(out, r.tls.cert_subject);
        out += ",\"not_after\":" + std::to_string(r.tls.cert_not_after) + "}}";
        return out;
    }

    asio::awaitable<bool> handle_admin(Conn<PlainStream>& c, http::Head& req, const Runtime& r) {
        auto path = path_of(req.target);
        if (has_body(req) || (req.method != "GET" && req.method != "HEAD")) {
            co_await answer_failure(c, m_admin, Failure::method_not_allowed,
                                    "the admin API is read-only", true, "Allow: GET, HEAD\r\n");
            co_return false;
        }
        if (path == "/metrics")
            co_return co_await answer(c, m_admin, 200, "text/plain; version=0.0.4; charset=utf-8",
                                      metrics.serialize(), req);
        if (path == "/healthz")
            co_return co_await answer(c, m_admin, 200, "application/json", "{\"status\":\"ok\"}", req);
        if (path == "/readyz") {
            if (draining)
                co_return co_await answer(c, m_admin, 503, "application/json",
                                          "{\"ready\":false,\"reason\":\"draining\"}", req);
            auto [status, body] = control.readyz_json();
            co_return co_await answer(c, m_admin, status, "application/json", body, req);
        }
        if (path == "/status")
            co_return co_await answer(c, m_admin, 200, "application/json", status_json(r), req);
        if (path == "/joingate/v1/version")
            co_return co_await answer(c, m_admin, 200, "application/json", control.version_json(), req);
        co_await answer_failure(c, m_admin, Failure::not_found, "no such admin endpoint", false);
        c.in.consume(req.size);
        co_return req.keep_alive && !draining;
    }

    // ---- signals: reload and drain ----
    asio::awaitable<void> signals() {
        asio::signal_set set(ioc, SIGHUP, SIGTERM, SIGINT);
        for (;;) {
            auto [ec, sig] = co_await set.async_wait(nothrow);
            if (ec) co_return;
            if (sig == SIGHUP) {
                reload();
            } else {
                co_await drain();
                co_return;
            }
        }
    }

    void reload() {
        auto res = config::load_file(config_path);
        if (res.errors.empty() && res.config) res.errors = config::check_reload(*rt->config, *res.config);
        if (!res.errors.empty()) {
            metrics.reload_failure.Increment();
            for (const auto& e : res.errors)
                log::error("config reload failed, keeping the running config", {{"error", e.text()}});
            return;
        }
        try {
            rt = make_runtime(res.config);
        } catch (const std::exception& e) {
            metrics.reload_failure.Increment();
            log::error("config reload failed, keeping the running config", {{"error", e.what()}});
            return;
        }
        for (const auto& w : res.warnings) log::warn("config", {{"warning", w.text()}});
        log::configure(rt->config->log.format, rt->config->log.level);
        control.reconfigured();
        publish_static_metrics();
        metrics.reload_success.Increment();
        log::info("config reloaded", {{"file", config_path}, {"cert_not_after", rt->tls.cert_not_after}});
    }

    asio::awaitable<void> drain() {
        draining = true;
        log::info("draining", {{"timeout_ms", static_cast<long long>(rt->config->limits.drain_timeout.count())},
                               {"connections", static_cast<long long>(sessions.size())}});
        for (auto& l : listeners) {
            error_code ec;
            l.acceptor.close(ec);
        }
        for (auto& s : sessions) {
            error_code ec;
            if (s.idle) s.sock->cancel(ec);
        }
        plain_pool.clear();
        tls_pool.clear();
        auto deadline = Clock::now() + rt->config->limits.drain_timeout;
        asio::steady_timer t(ioc);
        while (!sessions.empty() && Clock::now() < deadline) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(nothrow);
            for (auto& s : sessions) {
                error_code ec;
                if (s.idle) s.sock->cancel(ec);
            }
        }
        log::info("stopped", {{"open_connections", static_cast<long long>(sessions.size())}});
        ioc.stop();
    }

    asio::awaitable<void> housekeeping() {
        asio::steady_timer t(ioc);
        for (;;) {
            t.expires_after(std::chrono::seconds(15));
            auto [ec] = co_await t.async_wait(nothrow);
            if (ec || draining) co_return;
            plain_pool.sweep();
            tls_pool.sweep();
        }
    }
};

Server::Server(std::shared_ptr<const config::Config> cfg, std::string config_path)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(config_path))) {}

Server::~Server() = default;

int Server::run() {
    auto& i = *impl_;
    const auto& c = *i.rt->config;
    log::info("starting", {{"version", JOINGATE_VERSION},
                           {"member", c.member.name},
                           {"member_version", i.control.identity()->version.empty() ? "auto" : i.control.identity()->version},
                           {"profile", config::to_string(c.member.profile)},
                           {"mode", config::to_string(c.admission.mode)},
                           {"policy", config::to_string(c.admission.policy)},
                           {"config", i.config_path}});
    i.bind(Kind::inbound, c.inbound.listen);
    if (c.outbound.listen) i.bind(Kind::outbound, *c.outbound.listen);
    for (std::size_t r = 0; r < c.outbound.routes.size(); ++r) i.bind(Kind::route, c.outbound.routes[r].listen, r);
    i.bind(Kind::admin, c.admin.listen);
    asio::co_spawn(i.ioc, i.signals(), asio::detached);
    asio::co_spawn(i.ioc, i.housekeeping(), asio::detached);
    i.control.start();
    i.ioc.run();
    return i.control.exit_requested() ? 1 : 0;
}

} // namespace joingate::proxy
