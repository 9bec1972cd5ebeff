// Black-box tests of joingate's TLS (DESIGN §10): the inbound listener requires a client
// certificate from tls.ca (and, with tls.allowed_peers, a matching SAN) and TLS 1.2+; the
// outbound side verifies the target's certificate against the authority it dials.
#include <gtest/gtest.h>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

using std::chrono::milliseconds;

struct Attempt {
    bool handshake = false; // the client's handshake completed
    Io io = Io::error;      // how reading the response ended
    int status = 0;         // when a response arrived
    std::string detail;
};

// Connects with o, sends GET /small and reads the answer: a refused client gets no
// response (handshake failure, alert or close), never a hang.
Attempt attempt(std::uint16_t port, const TlsOptions& o) {
    Attempt a;
    auto c = TlsConn::connect(port, o, &a.detail);
    if (!c)
        return a;
    a.handshake = true;
    if (!c->write(inbound_get("/small"))) {
        a.detail = c->last_error;
        a.io = Io::closed;
        return a;
    }
    Response r;
    a.io = read_response(*c, r, milliseconds(5000));
    a.status = r.status;
    a.detail = c->last_error;
    return a;
}

bool refused(const Attempt& a) {
    return !a.handshake || ((a.io == Io::closed || a.io == Io::error) && a.status == 0);
}

std::string describe(const Attempt& a) {
    return std::string("handshake ") + (a.handshake ? "completed" : "failed") + ", read " +
           to_string(a.io) + ", status " + std::to_string(a.status) + ": " + a.detail;
}

class Tls : public JoingateTest {
  protected:
    double handshake_errors(const JoingateProcess& p) {
        return metric(p, "joingate_tls_handshake_errors_total", {"listener=\"inbound\""});
    }
    // Asserts that o is refused by p and counted as a handshake error.
    Attempt expect_refused(JoingateProcess& p, const TlsOptions& o, std::string_view what) {
        double before = handshake_errors(p);
        auto a = attempt(p.inbound_port, o);
        EXPECT_TRUE(refused(a)) << what << " was not refused: " << describe(a);
        EXPECT_NE(a.io, Io::timeout) << what << ": joingate neither answered nor closed";
        EXPECT_TRUE(eventually([&] { return handshake_errors(p) > before; }))
            << what << ": joingate_tls_handshake_errors_total{listener=\"inbound\"} stayed at "
            << before;
        return a;
    }
};

TEST_F(Tls, ClientWithoutCertificateIsRefused) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto o = client_tls();
    o.cert.clear();
    o.key.clear();
    expect_refused(*jg, o, "a client without certificate");
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Tls, ClientWithUntrustedCertificateIsRefused) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto o = client_tls();
    o.cert = test_pki().untrusted.cert;
    o.key = test_pki().untrusted.key;
    expect_refused(*jg, o, "a client certificate from another CA");
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Tls, ClientWithExpiredCertificateIsRefused) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto o = client_tls();
    o.cert = test_pki().expired.cert;
    o.key = test_pki().expired.key;
    expect_refused(*jg, o, "an expired client certificate");
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Tls, ServerPresentsItsCertificateForItsAddress) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto o = client_tls();
    o.verify_ip.clear();
    o.verify_host = "localhost";
    o.sni = "localhost";
    auto a = attempt(jg->inbound_port, o);
    EXPECT_EQ(a.status, 200) << describe(a);
    o.verify_host = "other.example";
    auto b = attempt(jg->inbound_port, o);
    EXPECT_FALSE(b.handshake) << "the test client should have refused the wrong name";
}

TEST_F(Tls, OldProtocolVersionsAreRefused) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    for (int v : {TLS1_1_VERSION, TLS1_VERSION}) {
        auto o = client_tls();
        o.legacy = true; // let the test client offer them at all
        o.min_version = v;
        o.max_version = v;
        auto a = expect_refused(*jg, o, v == TLS1_1_VERSION ? "TLS 1.1" : "TLS 1.0");
        // The server's alert, so the client did offer the old version (not a local failure).
        EXPECT_NE(a.detail.find("protocol version"), std::string::npos) << describe(a);
    }
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Tls, Tls12AndTls13Work) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto o = client_tls();
        o.min_version = v;
        o.max_version = v;
        std::string err;
        auto c = TlsConn::connect(jg->inbound_port, o, &err);
        ASSERT_NE(c, nullptr) << "TLS version " << std::hex << v << ": " << err;
        EXPECT_EQ(c->version(), v);
        ASSERT_TRUE(c->write(inbound_get("/small")));
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
        EXPECT_EQ(r.status, 200);
    }
}

TEST_F(Tls, AllowListMismatchIsRefused) {
    JoingateOptions o;
    o.allowed_peers = {"DNS:nobody"};
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    expect_refused(*jg, client_tls(), "a CA-signed client outside tls.allowed_peers");
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Tls, AllowListMatchesTypedWildcardAndUntypedPatterns) {
    // DNS: pattern with a wildcard; untyped pattern matched against every SAN (here the
    // URI SAN); a typed pattern of the wrong type must not match a value of another type.
    struct Case {
        std::vector<std::string> patterns;
        bool admitted;
    };
    std::vector<Case> cases = {
        {{"DNS:client.*"}, true},
        {{"spiffe://joingate-test/*"}, true},
        {{"DNS:nobody", "URI:spiffe://joingate-test/client"}, true},
        {{"DNS:spiffe://joingate-test/*"}, false},
        {{"URI:client.joingate.test"}, false},
    };
    for (const auto& k : cases) {
        JoingateOptions o;
        o.allowed_peers = k.patterns;
        auto* jg = start_joingate(o);
        ASSERT_NE(jg, nullptr);
        auto a = attempt(jg->inbound_port, client_tls());
        std::string pats;
        for (const auto& p : k.patterns)
            pats += p + " ";
        if (k.admitted) {
            EXPECT_EQ(a.status, 200) << "allowed_peers = " << pats << ": " << describe(a);
        } else {
            EXPECT_TRUE(refused(a)) << "allowed_peers = " << pats << ": " << describe(a);
        }
        jg->stop();
    }
}

class OutboundTls : public JoingateTest {
  protected:
    void SetUp() override {
        JoingateTest::SetUp();
        backend_b = std::make_unique<Backend>();
    }
    // Starts member B with the given server certificate and asks A's forward proxy for
    // http://<host>:<B's inbound>/small.
    Response through_a(const CertFiles& b_cert, std::string_view host, JoingateProcess** a_out) {
        Response r;
        JoingateOptions ob;
        ob.name = "m1";
        ob.peer = backend_b->url();
        ob.cert = b_cert.cert;
        ob.key = b_cert.key;
        auto* b = start_joingate(ob);
        auto* a = start_joingate();
        *a_out = a;
        if (!a || !b)
            return r;
        auto c = tcp_connect(a->outbound_port);
        if (!c)
            return r;
        std::string authority = std::string(host) + ":" + std::to_string(b->inbound_port);
        c->write("GET http://" + authority + "/small HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
        Io io = read_response(*c, r, milliseconds(10000));
        EXPECT_EQ(io, Io::ok) << c->last_error;
        return r;
    }
    std::unique_ptr<Backend> backend_b;
};

TEST_F(OutboundTls, TargetWithMatchingCertificateWorks) {
    JoingateProcess* a = nullptr;
    auto r = through_a(test_pki().member, "127.0.0.1", &a);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(backend_b->request_count(), 1u);
}

TEST_F(OutboundTls, TargetNameIsVerifiedForDnsNamesToo) {
    JoingateProcess* a = nullptr;
    auto r = through_a(test_pki().member, "localhost", &a);
    EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(OutboundTls, TargetWhoseCertificateDoesNotNameItIsRefused) {
    JoingateProcess* a = nullptr;
    auto r = through_a(test_pki().wrong_san, "127.0.0.1", &a);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    EXPECT_TRUE(json_string(r.body, "error").has_value()) << r.body;
    EXPECT_EQ(backend_b->request_count(), 0u)
        << "a request went to a member whose certificate does not name 127.0.0.1";
    EXPECT_GE(metric(*a, "joingate_upstream_errors_total", {"listener=\"outbound\""}), 1);
}

TEST_F(OutboundTls, TargetWithWrongDnsNameIsRefused) {
    JoingateProcess* a = nullptr;
    auto r = through_a(test_pki().wrong_san, "localhost", &a);
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(backend_b->request_count(), 0u);
}

TEST_F(OutboundTls, TargetWithUntrustedCertificateIsRefused) {
    JoingateProcess* a = nullptr;
    auto r = through_a(test_pki().untrusted, "127.0.0.1", &a);
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(backend_b->request_count(), 0u);
}

// A second connection from A to the same member resumes the TLS session that the first one
// got a ticket for (no full handshake); the resumed connection still carries the client
// identity, so the member's allow-list applies to it as to the first.
TEST_F(OutboundTls, ASecondConnectionToTheSameMemberResumesTheSession) {
    JoingateOptions ob;
    ob.name = "m1";
    ob.peer = backend_b->url();
    ob.allowed_peers = {"DNS:member.*", "DNS:localhost", "IP:127.0.0.1"};
    auto* b = start_joingate(ob);
    auto* a = start_joingate();
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    std::string authority = "127.0.0.1:" + std::to_string(b->inbound_port);
    auto handshakes = [&](const char* resumed) {
        return metric(*b, "joingate_tls_handshakes_total",
                      {"listener=\"inbound\"", std::string("resumed=\"") + resumed + "\""});
    };
    // A stream keeps A's first connection to B busy, so the next request needs another.
    auto c1 = tcp_connect(a->outbound_port);
    ASSERT_NE(c1, nullptr);
    ASSERT_TRUE(c1->write("GET http://" + authority + "/stream HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"));
    Response head;
    ASSERT_EQ(read_head(*c1, head, milliseconds(5000)), Io::ok) << c1->last_error;
    ASSERT_EQ(head.status, 200);
    std::string chunk;
    ASSERT_EQ(read_chunk(*c1, chunk, milliseconds(2000)), Io::ok);
    // A's first connection to B (the version probe of a target never seen, DESIGN §6) was
    // a full handshake; the stream's connection may already have resumed it.
    EXPECT_EQ(handshakes("false"), 1);
    double resumed = handshakes("true");

    auto c2 = tcp_connect(a->outbound_port);
    ASSERT_NE(c2, nullptr);
    ASSERT_TRUE(c2->write("GET http://" + authority + "/small HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*c2, r, milliseconds(5000)), Io::ok) << c2->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(handshakes("true"), resumed + 1) << "the new connection did not resume";
    EXPECT_EQ(handshakes("false"), 1) << "the new connection did a full handshake";
    EXPECT_EQ(backend_b->request_count(), 2u);
}

} // namespace
} // namespace joingate::test
