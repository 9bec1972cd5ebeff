// Black-box tests of what bad input gets (DESIGN §10), on the inbound (mTLS) and the
// outbound (forward proxy) listener: requests that could be smuggled or misread get 400
// and a closed connection, oversized heads 431, oversized targets 414, each with a JSON
// error object, and none of them reaches the peer.
#include <gtest/gtest.h>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

using std::chrono::milliseconds;

struct BadRequest {
    const char* name;
    int status;
    // The request; {target} is replaced by the listener's target (origin-form inbound,
    // absolute-form on the forward proxy) and {host} by a Host value.
    std::string text;
};

std::vector<BadRequest> bad_requests() {
    return {
        {"te_gzip", 400,
         "POST {target}/te-gzip HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip\r\n\r\n"
         "hello"},
        {"te_chunked_then_gzip", 400,
         "POST {target}/te-chunked-gzip HTTP/1.1\r\nHost: {host}\r\n"
         "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
        {"te_and_cl", 400,
         "POST {target}/te-cl HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"two_content_lengths", 400,
         "POST {target}/cl-cl HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
         "Content-Length: 6\r\n\r\nhello!"},
        {"obs_fold", 400,
         "GET {target}/obs-fold HTTP/1.1\r\nHost: {host}\r\nX-Folded: first\r\n  second\r\n\r\n"},
        {"no_host", 400, "GET {target}/no-host HTTP/1.1\r\nUser-Agent: test\r\n\r\n"},
        {"header_block_too_large", 431,
         "GET {target}/big-head HTTP/1.1\r\nHost: {host}\r\nX-Padding: " +
             std::string(17 * 1024, 'p') + "\r\n\r\n"},
        {"many_headers_too_large", 431,
         [] {
             std::string s = "GET {target}/many-headers HTTP/1.1\r\nHost: {host}\r\n";
             for (int i = 0; i < 400; ++i)
                 s += "X-H" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
             return s + "\r\n";
         }()},
        {"uri_too_long", 414,
         "GET {target}/long?q=" + std::string(9 * 1024, 'u') + " HTTP/1.1\r\nHost: {host}\r\n\r\n"},
    };
}

enum class Side { inbound, outbound };

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
    return s;
}

class BadInput : public JoingateTest,
                 public ::testing::WithParamInterface<std::tuple<Side, BadRequest>> {
  protected:
    // A connection to the listener under test and the request rewritten for it.
    std::unique_ptr<Conn> connect(JoingateProcess& jg, Side side) {
        if (side == Side::inbound)
            return tls_connect(jg.inbound_port);
        return tcp_connect(jg.outbound_port);
    }
    static std::string render(const std::string& text, Side side, const JoingateProcess& jg) {
        std::string authority = jg.inbound_address();
        std::string target = side == Side::inbound ? "" : "http://" + authority;
        return replace_all(replace_all(text, "{target}", target), "{host}", authority);
    }
};

TEST_P(BadInput, IsAnsweredAndClosedAndNeverReachesThePeer) {
    auto [side, bad] = GetParam();
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = connect(*jg, side);
    ASSERT_NE(c, nullptr);
    std::string request = render(bad.text, side, *jg);
    ASSERT_TRUE(c->write(request)) << c->last_error;
    Response r;
    Io io = read_response(*c, r, milliseconds(10000));
    ASSERT_EQ(io, Io::ok) << "no response to " << bad.name << ": " << to_string(io) << " "
                          << c->last_error;
    EXPECT_EQ(r.status, bad.status) << bad.name << ": " << r.body;
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    EXPECT_TRUE(json_string(r.body, "error").has_value()) << r.body;
    EXPECT_TRUE(c->wait_closed(milliseconds(3000)))
        << bad.name << ": joingate kept the connection open after a request it cannot frame";
    EXPECT_EQ(backend->request_count(), 0u)
        << bad.name << " reached the peer as "
        << (backend->request_count() ? backend->requests()[0].target : "");

    // The same listener still relays a good request (so "never reached the peer" means
    // something).
    auto good = connect(*jg, side);
    ASSERT_NE(good, nullptr);
    ASSERT_TRUE(
        good->write(render("GET {target}/small HTTP/1.1\r\nHost: {host}\r\n\r\n", side, *jg)));
    ASSERT_EQ(read_response(*good, r), Io::ok) << good->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(backend->request_count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Listeners, BadInput,
                         ::testing::Combine(::testing::Values(Side::inbound, Side::outbound),
                                            ::testing::ValuesIn(bad_requests())),
                         [](const ::testing::TestParamInfo<BadInput::ParamType>& info) {
                             return std::string(std::get<0>(info.param) == Side::inbound
                                                    ? "inbound_"
                                                    : "outbound_") +
                                    std::get<1>(info.param).name;
                         });

class Limits : public JoingateTest {};

TEST_F(Limits, HeaderBlockJustUnderTheLimitPasses) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    // ~15 KiB of headers and a 7 KiB target: under 16 KiB and 8 KiB.
    std::string target = "/headers?q=" + std::string(7 * 1024, 'u');
    std::string headers = "X-Padding: " + std::string(8 * 1024, 'p') + "\r\n";
    ASSERT_TRUE(c->write(inbound_get(target, headers)));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    auto seen = backend->requests_for("/headers");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].target, target);
    EXPECT_EQ(seen[0].header("X-Padding").value_or("").size(), 8u * 1024);
}

TEST_F(Limits, ConfiguredHeaderLimitApplies) {
    JoingateOptions o;
    o.limits = "max_header_bytes = 4096";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/small", "X-Padding: " + std::string(5000, 'p') + "\r\n")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 431);
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Limits, SlowRequestHeadIsCutOffByTheHeaderTimeout) {
    JoingateOptions o;
    o.limits = "header_timeout = \"1s\"";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    double before = metric(*jg, "joingate_timeouts_total", {"timeout=\"header\""});
    for (bool inbound : {true, false}) {
        std::unique_ptr<Conn> c;
        if (inbound)
            c = tls_connect(jg->inbound_port);
        else
            c = tcp_connect(jg->outbound_port);
        ASSERT_NE(c, nullptr);
        // Half a request head, then nothing (a slow or stuck client).
        ASSERT_TRUE(c->write(inbound
                                 ? "GET /small HTTP/1.1\r\nHost: m0\r\n"
                                 : "GET http://" + jg->inbound_address() + "/small HTTP/1.1\r\n"));
        auto t0 = Clock::now();
        EXPECT_TRUE(c->wait_closed(milliseconds(5000)))
            << (inbound ? "inbound" : "outbound") << ": a stalled request head was not cut off";
        EXPECT_LT(Clock::now() - t0, milliseconds(3000));
    }
    EXPECT_TRUE(eventually([&] {
        return metric(*jg, "joingate_timeouts_total", {"timeout=\"header\""}) >= before + 2;
    })) << "joingate_timeouts_total{timeout=\"header\"} did not count both";
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Limits, StalledTlsHandshakeIsCutOff) {
    JoingateOptions o;
    o.limits = "handshake_timeout = \"1s\"";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    auto c = tcp_connect(jg->inbound_port); // TCP only: never sends a ClientHello
    ASSERT_NE(c, nullptr);
    auto t0 = Clock::now();
    EXPECT_TRUE(c->wait_closed(milliseconds(5000))) << "a silent client kept its connection";
    EXPECT_LT(Clock::now() - t0, milliseconds(3000));
}

TEST_F(Limits, ConnectionsOverTheListenerLimitAreClosed) {
    JoingateOptions o;
    o.limits = "max_connections = 2";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    std::vector<std::unique_ptr<TlsConn>> held;
    for (int i = 0; i < 2; ++i) {
        held.push_back(tls_connect(jg->inbound_port));
        ASSERT_NE(held.back(), nullptr);
        ASSERT_TRUE(held.back()->write(inbound_get("/small")));
        Response r;
        ASSERT_EQ(read_response(*held.back(), r), Io::ok);
        ASSERT_EQ(r.status, 200);
    }
    auto third = TcpConn::connect(jg->inbound_port);
    ASSERT_NE(third, nullptr);
    EXPECT_TRUE(third->wait_closed(milliseconds(3000)))
        << "a third connection was kept with max_connections = 2";
    EXPECT_GE(metric(*jg, "joingate_connections_rejected_total", {"listener=\"inbound\""}), 1);
    // The held connections still work, and a slot frees up when one closes.
    ASSERT_TRUE(held[0]->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*held[0], r), Io::ok) << held[0]->last_error;
    EXPECT_EQ(r.status, 200);
    held.pop_back();
    EXPECT_TRUE(eventually([&] {
        std::string err;
        auto c = TlsConn::connect(jg->inbound_port, client_tls(), &err);
        if (!c || !c->write(inbound_get("/small")))
            return false;
        Response rr;
        return read_response(*c, rr, milliseconds(2000)) == Io::ok && rr.status == 200;
    })) << "the freed slot was not reused";
}

} // namespace
} // namespace joingate::test
