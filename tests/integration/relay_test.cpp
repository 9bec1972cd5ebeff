// Black-box tests of the inbound relay (DESIGN §2, §8, §10): another member's sidecar
// talks mTLS to joingate's inbound listener, joingate relays to the local peer (here a
// test backend) and back. Covers keep-alive, large bodies in both directions, the
// X-Joingate-* headers, never-ending streams like etcd's raft streams, and what the
// client sees when the peer is down or dies mid-response.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

using std::chrono::milliseconds;

std::string post_request(std::string_view target, std::string_view body) {
    return "POST " + std::string(target) +
           " HTTP/1.1\r\nHost: m0.joingate.test:2380\r\nContent-Type: application/octet-stream\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string echo_answer(std::string_view body) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(Backend::fnv1a(body)));
    return std::to_string(body.size()) + " " + hex;
}

// A 127.0.0.1 port that nothing listens on (bound, then closed).
std::uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

class Relay : public JoingateTest {};

TEST_F(Relay, GetAndPostReachThePeerOverMutualTls) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);

    ASSERT_TRUE(c->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, Backend::small_body());
    EXPECT_EQ(r.header("X-Backend"), "joingate-test") << "response headers of the peer are relayed";

    std::string body = "raft message bytes \x01\x02\x03 and more";
    ASSERT_TRUE(c->write(post_request("/echo-size", body)));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, echo_answer(body));

    // A chunked request body, as etcd sends snapshots.
    ASSERT_TRUE(c->write("POST /echo-size HTTP/1.1\r\nHost: m0.joingate.test:2380\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, echo_answer("hello world"));

    auto seen = backend->requests();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/small");
    EXPECT_EQ(seen[1].method, "POST");
    EXPECT_EQ(seen[1].body_size, body.size());
    EXPECT_EQ(seen[2].body_size, 11u);
}

TEST_F(Relay, KeepAliveCarriesManyRequestsOnOneConnectionEachWay) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    constexpr int kRequests = 6;
    for (int i = 0; i < kRequests; ++i) {
        ASSERT_TRUE(c->write(inbound_get("/small?n=" + std::to_string(i))))
            << "request " << i << ": " << c->last_error;
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << "request " << i << ": " << c->last_error;
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, Backend::small_body());
        EXPECT_FALSE(r.closes()) << "request " << i << " answered with Connection: close";
    }
    auto seen = backend->requests();
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kRequests));
    std::set<std::uint64_t> upstream;
    for (const auto& r : seen)
        upstream.insert(r.connection);
    EXPECT_EQ(upstream.size(), 1u)
        << "sequential requests on one client connection should reuse one upstream "
           "connection; the peer saw "
        << upstream.size() << " connections for " << kRequests << " requests";
}

TEST_F(Relay, LargeBodiesPassIntactInBothDirections) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);

    // 64 MiB chunked upload, like a large snapshot: no size limit, no buffering.
    constexpr std::size_t kTotal = 64u * 1024 * 1024;
    ASSERT_TRUE(c->write("POST /echo-size HTTP/1.1\r\nHost: m0.joingate.test:2380\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"));
    std::uint64_t hash = Backend::fnv1a({});
    std::string chunk(64 * 1024 + 17, '\0');
    std::size_t sent = 0;
    for (std::uint64_t n = 0; sent < kTotal; ++n) {
        std::size_t len = std::min(chunk.size() - (n % 3) * 1000, kTotal - sent);
        for (std::size_t i = 0; i < len; ++i)
            chunk[i] = static_cast<char>((sent + i) * 31 + (sent + i) / 65537);
        std::string_view data(chunk.data(), len);
        hash = Backend::fnv1a(data, hash);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", len);
        ASSERT_TRUE(c->write(size, milliseconds(30000)) && c->write(data, milliseconds(30000)) &&
                    c->write("\r\n", milliseconds(30000)))
            << "upload stalled after " << sent << " bytes: " << c->last_error;
        sent += len;
    }
    ASSERT_TRUE(c->write("0\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*c, r, milliseconds(60000)), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    EXPECT_EQ(r.body, std::to_string(kTotal) + " " + hex) << "the peer got a different body";

    // 4 MiB download with Content-Length, on the same connection.
    ASSERT_TRUE(c->write(inbound_get("/big")));
    ASSERT_EQ(read_response(*c, r, milliseconds(60000)), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.size(), Backend::big_body().size());
    EXPECT_TRUE(r.body == Backend::big_body()) << "the 4 MiB download arrived corrupted";
}

TEST_F(Relay, JoingateHeadersAreStrippedTowardsThePeerAndStampedOnResponses) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/headers", "X-Joingate-Member: impostor\r\n"
                                                 "X-Joingate-Version: 9.9.9\r\n"
                                                 "X-Joingate-Protocol: 7-7\r\n"
                                                 "x-joingate-version: 8.8.8\r\n"
                                                 "X-Etcd-Cluster-Id: 1c45a069f3a1d796\r\n"
                                                 "X-Server-Version: 3.4.23\r\n")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);

    auto seen = backend->requests_for("/headers");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_FALSE(seen[0].has_header_prefix("X-Joingate-")) << "the peer saw X-Joingate-* headers:\n"
                                                           << r.body;
    EXPECT_EQ(seen[0].header("X-Etcd-Cluster-Id"), "1c45a069f3a1d796")
        << "etcd's own headers must pass";
    EXPECT_EQ(seen[0].header("X-Server-Version"), "3.4.23");

    EXPECT_EQ(r.header("X-Joingate-Member"), "m0");
    EXPECT_EQ(r.header("X-Joingate-Version"), "3.4.23");
    EXPECT_EQ(r.header("X-Joingate-Protocol"), "1-1");
    EXPECT_EQ(r.header_count("X-Joingate-Version"), 1u);
}

class Streaming : public JoingateTest {};

TEST_F(Streaming, NeverEndingResponseIsRelayedChunkByChunk) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/stream")));
    Response r;
    ASSERT_EQ(read_head(*c, r, milliseconds(5000)), Io::ok)
        << "no response head for a never-ending stream: " << c->last_error;
    ASSERT_EQ(r.status, 200);
    ASSERT_TRUE(r.chunked) << "the stream must stay chunked";

    // Read for ~1.2 s: the backend writes a chunk every 100 ms; a relay that buffers the
    // response (or waits for its end) delivers none of them.
    auto start = Clock::now();
    std::string data;
    while (Clock::now() - start < milliseconds(1200)) {
        std::string chunk;
        Io io = read_chunk(*c, chunk, milliseconds(1000));
        ASSERT_EQ(io, Io::ok) << "stream interrupted after " << data.size()
                              << " bytes: " << c->last_error;
        ASSERT_FALSE(chunk.empty()) << "the never-ending stream was ended";
        data += chunk;
    }
    auto received = static_cast<std::uint64_t>(std::count(data.begin(), data.end(), '\n'));
    EXPECT_GE(received, 5u) << "chunks arrived: " << data;
    EXPECT_GE(received + 5, backend->chunks_sent())
        << "the relay lags behind the peer: received " << received << ", sent "
        << backend->chunks_sent();
    EXPECT_EQ(data.substr(0, 12), "seq=1\nseq=2\n");
    EXPECT_EQ(backend->open_streams(), 1);

    // The client goes away: the peer must see its stream end (no leaked upstream stream).
    c->close();
    EXPECT_TRUE(eventually([&] { return backend->open_streams() == 0; }, milliseconds(5000)))
        << "the peer's stream stayed open after the client closed";
}

TEST_F(Streaming, SeveralStreamsAtOnceAllFlow) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    std::vector<std::unique_ptr<TlsConn>> conns;
    for (int i = 0; i < 3; ++i) {
        conns.push_back(tls_connect(jg->inbound_port));
        ASSERT_NE(conns.back(), nullptr);
        ASSERT_TRUE(conns.back()->write(inbound_get("/stream")));
        Response r;
        ASSERT_EQ(read_head(*conns.back(), r, milliseconds(5000)), Io::ok);
        ASSERT_EQ(r.status, 200);
    }
    EXPECT_TRUE(eventually([&] { return backend->open_streams() == 3; }, milliseconds(3000)));
    for (int round = 0; round < 3; ++round) {
        for (auto& c : conns) {
            std::string chunk;
            ASSERT_EQ(read_chunk(*c, chunk, milliseconds(1000)), Io::ok) << c->last_error;
            EXPECT_FALSE(chunk.empty());
        }
    }
    conns.clear();
    EXPECT_TRUE(eventually([&] { return backend->open_streams() == 0; }, milliseconds(5000)));
}

class Upstream : public JoingateTest {};

TEST_F(Upstream, PeerDownGives502JsonQuickly) {
    JoingateOptions o;
    o.peer = "http://127.0.0.1:" + std::to_string(closed_port());
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    double before = metric(*jg, "joingate_upstream_errors_total", {"listener=\"inbound\""});
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    auto t0 = Clock::now();
    ASSERT_TRUE(c->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*c, r, milliseconds(10000)), Io::ok) << c->last_error;
    auto took = Clock::now() - t0;
    EXPECT_TRUE(r.status == 502 || r.status == 503) << "got " << r.status;
    EXPECT_LT(took, milliseconds(1500))
        << "a refused connect must not wait for the connect timeout";
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    EXPECT_TRUE(json_string(r.body, "error").has_value()) << r.body;
    EXPECT_EQ(r.header("Content-Type").value_or("").substr(0, 16), "application/json");
    EXPECT_TRUE(eventually([&] {
        return metric(*jg, "joingate_upstream_errors_total", {"listener=\"inbound\""}) > before;
    })) << "joingate_upstream_errors_total{listener=\"inbound\"} did not grow";
}

TEST_F(Upstream, PeerDyingMidStreamEndsTheClientConnection) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    double before = metric(*jg, "joingate_upstream_errors_total", {"listener=\"inbound\""});
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/stream?abort_after=3")));
    Response r;
    ASSERT_EQ(read_head(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
    ASSERT_EQ(r.status, 200);
    Io io = Io::ok;
    std::string chunk, data;
    auto deadline = Clock::now() + milliseconds(5000);
    while (Clock::now() < deadline) {
        io = read_chunk(*c, chunk, milliseconds(5000));
        if (io != Io::ok)
            break;
        ASSERT_FALSE(chunk.empty())
            << "joingate ended the chunked body cleanly, so a truncated stream looks complete";
        data += chunk;
    }
    EXPECT_TRUE(io == Io::closed || io == Io::error)
        << "the client connection should end when the peer dies mid-stream; read: "
        << to_string(io);
    EXPECT_EQ(data, "seq=1\nseq=2\nseq=3\n");
    EXPECT_TRUE(eventually([&] {
        return metric(*jg, "joingate_upstream_errors_total", {"listener=\"inbound\""}) > before;
    })) << "joingate_upstream_errors_total{listener=\"inbound\"} did not grow";

    // joingate keeps serving.
    auto c2 = tls_connect(jg->inbound_port);
    ASSERT_NE(c2, nullptr);
    ASSERT_TRUE(c2->write(inbound_get("/small")));
    ASSERT_EQ(read_response(*c2, r), Io::ok) << c2->last_error;
    EXPECT_EQ(r.status, 200);
}

TEST_F(Upstream, PeerDyingMidBodyNeverLooksComplete) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/big?abort=1")));
    Response r;
    ASSERT_EQ(read_head(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    Io io = read_body(*c, r, milliseconds(10000));
    EXPECT_TRUE(io == Io::closed || io == Io::error)
        << "read " << r.body.size() << " bytes, then: " << to_string(io);
    EXPECT_LT(r.body.size() + c->buf_.size(), Backend::big_body().size());
}

} // namespace
} // namespace joingate::test
