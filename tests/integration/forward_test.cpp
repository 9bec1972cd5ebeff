// Black-box tests of the outbound side (DESIGN §2): the local peer's HTTP_PROXY gets
// absolute-form requests and joingate carries each one over mTLS to the member named by
// its own authority, also when one keep-alive connection carries requests for several
// members; [[outbound.route]] ports forward origin-form requests to one fixed member.
#include <gtest/gtest.h>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

using std::chrono::milliseconds;

std::string absolute_get(std::uint16_t port, std::string_view path,
                         std::string_view extra_headers = {}) {
    std::string authority = "127.0.0.1:" + std::to_string(port);
    return "GET http://" + authority + std::string(path) + " HTTP/1.1\r\nHost: " + authority +
           "\r\nUser-Agent: Go-http-client/1.1\r\n" + std::string(extra_headers) + "\r\n";
}

class ForwardProxy : public JoingateTest {
  protected:
    void SetUp() override {
        JoingateTest::SetUp();
        backend_b = std::make_unique<Backend>();
    }
    std::unique_ptr<Backend> backend_b; // the second member's peer
};

TEST_F(ForwardProxy, AbsoluteFormRequestGoesOverMutualTlsToItsAuthority) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tcp_connect(jg->outbound_port);
    ASSERT_NE(c, nullptr);
    // Sent through its own inbound listener: outbound → mTLS → inbound → backend.
    ASSERT_TRUE(c->write(
        absolute_get(jg->inbound_port, "/small?via=outbound", "X-Joingate-Member: impostor\r\n")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, Backend::small_body());

    auto seen = backend->requests_for("/small");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].target, "/small?via=outbound") << "the peer must get origin-form";
    EXPECT_FALSE(seen[0].has_header_prefix("X-Joingate-"));
    EXPECT_EQ(seen[0].header("User-Agent"), "Go-http-client/1.1");

    // The stamps were on the wire between the sidecars: the inbound side counted a
    // request, so the hop went through mTLS.
    EXPECT_GE(metric(*jg, "joingate_requests_total", {"listener=\"inbound\"", "code=\"200\""}), 1);
    EXPECT_GE(metric(*jg, "joingate_requests_total", {"listener=\"outbound\"", "code=\"200\""}), 1);
}

TEST_F(ForwardProxy, EachRequestOfOneConnectionIsRoutedByItsOwnAuthority) {
    auto* a = start_joingate();
    ASSERT_NE(a, nullptr);
    JoingateOptions ob;
    ob.name = "m1";
    ob.peer = backend_b->url();
    auto* b = start_joingate(ob);
    ASSERT_NE(b, nullptr);

    auto c = tcp_connect(a->outbound_port);
    ASSERT_NE(c, nullptr);
    struct Step {
        std::uint16_t port;
        std::string path;
    };
    // A's own inbound, then B's, then A's again: one keep-alive connection, like etcd's.
    std::vector<Step> steps = {{a->inbound_port, "/small?to=a1"},
                               {b->inbound_port, "/small?to=b1"},
                               {a->inbound_port, "/small?to=a2"},
                               {b->inbound_port, "/headers?to=b2"}};
    for (const auto& s : steps) {
        ASSERT_TRUE(c->write(absolute_get(s.port, s.path))) << s.path << ": " << c->last_error;
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << s.path << ": " << c->last_error;
        EXPECT_EQ(r.status, 200) << s.path;
        EXPECT_FALSE(r.closes()) << s.path << ": the proxy connection should stay open";
    }
    std::vector<std::string> got_a, got_b;
    for (const auto& r : backend->requests())
        got_a.push_back(r.target);
    for (const auto& r : backend_b->requests())
        got_b.push_back(r.target);
    EXPECT_EQ(got_a, (std::vector<std::string>{"/small?to=a1", "/small?to=a2"}));
    EXPECT_EQ(got_b, (std::vector<std::string>{"/small?to=b1", "/headers?to=b2"}));
    for (const auto& r : backend_b->requests())
        EXPECT_FALSE(r.has_header_prefix("X-Joingate-"));
    // A's outbound stamped its member and version on the requests: B's inbound judged
    // them as coming from m0 at 3.4.23 (DESIGN §6, §8).
    EXPECT_TRUE(b->wait_log(
        {"\"event\":\"admission\"", "\"side\":\"inbound\"", "\"caller\":\"m0\"", "3.4.23"},
        milliseconds(3000)))
        << "no admission line on m1 naming the caller m0 at 3.4.23";
}

TEST_F(ForwardProxy, OriginFormRequestIsRefusedWithJson) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tcp_connect(jg->outbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(
        "GET /small HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(jg->inbound_port) + "\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    EXPECT_TRUE(json_string(r.body, "error").has_value()) << r.body;
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(ForwardProxy, RouteForwardsOriginFormToItsPeer) {
    JoingateOptions ob;
    ob.name = "m1";
    ob.peer = backend_b->url();
    ob.outbound = false;
    auto* b = start_joingate(ob);
    ASSERT_NE(b, nullptr);
    JoingateOptions oa;
    oa.route_peers = {b->inbound_address()};
    auto* a = start_joingate(oa);
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->route_ports.size(), 1u);

    auto c = tcp_connect(a->route_ports[0]);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(c->write(get_request("/small?via=route" + std::to_string(i),
                                         "127.0.0.1:" + std::to_string(a->route_ports[0]),
                                         "X-Joingate-Version: 0.0.1\r\n")));
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, Backend::small_body());
    }
    EXPECT_EQ(backend->request_count(), 0u) << "A's own peer must not get route traffic";
    auto seen = backend_b->requests();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].target, "/small?via=route0");
    EXPECT_EQ(seen[1].target, "/small?via=route1");
    EXPECT_FALSE(seen[0].has_header_prefix("X-Joingate-"));
}

TEST_F(ForwardProxy, StreamThroughBothSidecarsFlowsAndEnds) {
    auto* a = start_joingate();
    ASSERT_NE(a, nullptr);
    auto c = tcp_connect(a->outbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(absolute_get(a->inbound_port, "/stream")));
    Response r;
    ASSERT_EQ(read_head(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
    ASSERT_EQ(r.status, 200);
    std::string data;
    for (int i = 0; i < 5; ++i) {
        std::string chunk;
        ASSERT_EQ(read_chunk(*c, chunk, milliseconds(1000)), Io::ok)
            << "chunk " << i << ": " << c->last_error;
        data += chunk;
    }
    EXPECT_EQ(data.substr(0, 6), "seq=1\n");
    c->close();
    EXPECT_TRUE(eventually([&] { return backend->open_streams() == 0; }, milliseconds(5000)))
        << "the peer's stream stayed open after the client closed the proxy connection";
}

} // namespace
} // namespace joingate::test
