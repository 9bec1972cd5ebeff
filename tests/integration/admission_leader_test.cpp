// Black-box tests of leader-controlled admission (DESIGN §4–§7) with real joingate
// processes on port 0, real mTLS between them, and test backends standing in for the
// local etcd of each member (they answer joingate's probes: POST /v3/maintenance/status
// says whether the member leads, GET /version its version):
//  - the version endpoint: every field of the v1 document on the admin and inbound
//    listeners, `role` following the local etcd, `admitted_members`, and a reader that
//    understands a newer sidecar's document with fields it does not know;
//  - the inbound half: a caller older than the leader gets 412 with a JSON object and no
//    X-Server-Version, once decided and then answered from the cache; the stamp, else
//    etcd's X-Server-Version; the exact policy; observe mode;
//  - the outbound half: the local etcd's request to a refused member never reaches it;
//  - the generic profile: join routes and the version header come from [profile].
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

json::value parse_json(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    return ec ? json::value() : v;
}

// The X-Joingate-* headers a caller's sidecar stamps on its requests.
std::string stamp(const std::string& member, const std::string& version) {
    return "X-Joingate-Member: " + member + "\r\nX-Joingate-Version: " + version +
           "\r\nX-Joingate-Protocol: 1-1\r\n";
}

// Lines of a joingate's stdout that contain every needle.
std::size_t count_log_lines(const JoingateProcess& p, const std::vector<std::string>& needles) {
    std::istringstream in(p.stdout_text());
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        bool all = true;
        for (const auto& x : needles)
            all = all && line.find(x) != std::string::npos;
        n += all;
    }
    return n;
}

class Admission : public JoingateTest {
  protected:
    // One member: its local etcd (a backend), its sidecar's config and process.
    struct Member {
        std::unique_ptr<Backend> etcd;
        MemberConfig cfg;
        JoingateProcess* jg = nullptr;
    };

    // A member whose etcd says it leads (or not) at version; mode as given.
    Member make_member(const std::string& name, bool leader, const std::string& version,
                       const std::string& mode) {
        Member m;
        m.etcd = std::make_unique<Backend>();
        m.etcd->act_as_etcd3(leader, version);
        m.cfg.name = name;
        m.cfg.version = version;
        m.cfg.peer = m.etcd->url();
        m.cfg.client = m.etcd->url();
        m.cfg.mode = mode;
        return m;
    }

    // Starts every member, then gives each the inbound addresses of all as cluster.peers
    // (the ports are known only once they listen) and waits until every sidecar's view
    // names `leader` as the leader.
    bool form_cluster(std::vector<Member*> members, const std::string& leader) {
        for (auto* m : members) {
            m->jg = start_member(m->cfg);
            if (!m->jg)
                return false;
        }
        std::vector<std::string> peers;
        for (auto* m : members)
            peers.push_back(m->jg->inbound_address());
        for (auto* m : members) {
            m->cfg.cluster_peers = peers;
            if (!reload(*m->jg, m->cfg))
                return false;
        }
        for (auto* m : members) {
            bool ok = eventually(
                [&] {
                    auto doc = parse_json(version_doc(*m->jg));
                    const auto* l =
                        doc.is_object() ? doc.as_object().if_contains("leader") : nullptr;
                    return l && l->is_object() && l->as_object().contains("member") &&
                           l->as_object().at("member") == leader.c_str();
                },
                milliseconds(5000));
            if (!ok) {
                ADD_FAILURE() << m->cfg.name << " never saw " << leader << " as the leader\n"
                              << version_doc(*m->jg) << "\n"
                              << m->jg->logs();
                return false;
            }
        }
        return true;
    }

    // Waits until every member's view is complete: each sidecar reached every peer and
    // read its document.
    bool settle(const std::vector<Member*>& members) {
        for (auto* m : members) {
            std::string last;
            bool ok = eventually([&] {
                last = http_get(m->jg->admin_port, "/status").response.body;
                auto st = parse_json(last);
                if (!st.is_object() || !st.as_object().contains("cluster"))
                    return false;
                const auto* ms = st.as_object().at("cluster").as_object().if_contains("members");
                if (!ms || !ms->is_array() || ms->as_array().size() != members.size())
                    return false;
                for (const auto& e : ms->as_array())
                    if (!e.is_object() || !e.as_object().contains("reachable") ||
                        e.as_object().at("reachable") != true)
                        return false;
                return true;
            });
            if (!ok) {
                ADD_FAILURE() << m->cfg.name << ": the view never reached every member: " << last;
                return false;
            }
        }
        return true;
    }

    static std::string version_doc(const JoingateProcess& p) {
        auto x = http_get(p.admin_port, "/joingate/v1/version");
        return x.io == Io::ok ? x.response.body : std::string();
    }

    // One request on a fresh mTLS connection to an inbound listener.
    Response inbound(std::uint16_t port, const std::string& request) {
        Response r;
        auto c = tls_connect(port);
        if (!c)
            return r;
        if (!c->write(request)) {
            ADD_FAILURE() << "write failed: " << c->last_error;
            return r;
        }
        Io io = read_response(*c, r);
        EXPECT_EQ(io, Io::ok) << c->last_error;
        return r;
    }

    static double decisions_metric(const JoingateProcess& p, const std::string& side,
                                   const std::string& decision, const std::string& reason = {}) {
        std::vector<std::string> labels{"side=\"" + side + "\"", "decision=\"" + decision + "\""};
        if (!reason.empty())
            labels.push_back("reason=\"" + reason + "\"");
        return metric(p, "joingate_admission_decisions_total", labels);
    }

    // A refusal as DESIGN §6 wants it for etcd3: 412, a JSON object, no X-Server-Version.
    static void expect_refused(const Response& r, const std::string& reason) {
        EXPECT_EQ(r.status, 412) << r.body;
        EXPECT_EQ(r.header("Content-Type").value_or("").substr(0, 16), "application/json");
        EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
        auto doc = parse_json(r.body);
        ASSERT_TRUE(doc.is_object()) << "not a JSON object: " << r.body;
        const auto* err = doc.as_object().if_contains("error");
        ASSERT_TRUE(err && err->is_string()) << r.body;
        EXPECT_NE(std::string(err->as_string()).find(reason), std::string::npos)
            << "the error does not name the reason " << reason << ": " << r.body;
        EXPECT_EQ(r.header_count("X-Server-Version"), 0u)
            << "a refusal must never carry X-Server-Version";
    }
};

// ---- the version endpoint ----

// Checks the v1 document's fields and their types (DESIGN §4).
void expect_v1_document(const std::string& text, const std::string& member,
                        const std::string& version, const std::string& role,
                        const std::string& mode) {
    auto v = parse_json(text);
    ASSERT_TRUE(v.is_object()) << "not a JSON object: " << text;
    const auto& o = v.as_object();
    auto has = [&](const char* k) { return o.contains(k); };
    for (const char* k : {"api", "member", "version", "protocol", "role", "leader", "admitted",
                          "mode", "policy", "profile", "admitted_members"})
        EXPECT_TRUE(has(k)) << "missing \"" << k << "\": " << text;
    if (!has("api") || !has("protocol") || !has("leader") || !has("admitted_members"))
        return;
    EXPECT_TRUE(o.at("api").is_int64() && o.at("api").as_int64() == 1) << text;
    EXPECT_EQ(o.at("member"), member.c_str()) << text;
    EXPECT_EQ(o.at("version"), version.c_str()) << text;
    const auto& p = o.at("protocol");
    ASSERT_TRUE(p.is_object()) << text;
    EXPECT_TRUE(p.as_object().contains("min") && p.as_object().at("min").is_int64()) << text;
    EXPECT_TRUE(p.as_object().contains("max") && p.as_object().at("max").is_int64()) << text;
    EXPECT_EQ(o.at("role"), role.c_str()) << text;
    const auto& l = o.at("leader");
    EXPECT_TRUE(l.is_null() ||
                (l.is_object() && l.as_object().contains("member") &&
                 l.as_object().at("member").is_string() && l.as_object().contains("version") &&
                 l.as_object().at("version").is_string()))
        << "leader must be null or {member, version}: " << text;
    EXPECT_TRUE(o.at("admitted").is_bool()) << text;
    EXPECT_EQ(o.at("mode"), mode.c_str()) << text;
    EXPECT_EQ(o.at("policy"), "not-older-than-leader") << text;
    EXPECT_EQ(o.at("profile"), "etcd3") << text;
    ASSERT_TRUE(o.at("admitted_members").is_array()) << text;
    for (const auto& e : o.at("admitted_members").as_array()) {
        EXPECT_TRUE(e.is_object() && e.as_object().contains("member") &&
                    e.as_object().at("member").is_string() && e.as_object().contains("version") &&
                    e.as_object().at("version").is_string())
            << "admitted_members entries are {member, version}: " << text;
    }
}

bool lists(const std::string& doc_text, const std::string& member, const std::string& version) {
    auto v = parse_json(doc_text);
    if (!v.is_object() || !v.as_object().contains("admitted_members") ||
        !v.as_object().at("admitted_members").is_array())
        return false;
    for (const auto& e : v.as_object().at("admitted_members").as_array())
        if (e.is_object() && e.as_object().contains("member") &&
            e.as_object().at("member") == member.c_str() && e.as_object().contains("version") &&
            e.as_object().at("version") == version.c_str())
            return true;
    return false;
}

std::string role_of(const std::string& doc_text) {
    auto v = parse_json(doc_text);
    if (!v.is_object() || !v.as_object().contains("role") || !v.as_object().at("role").is_string())
        return "";
    return std::string(v.as_object().at("role").as_string());
}

TEST_F(Admission, VersionDocumentOnAdminAndInboundFollowsTheLocalEtcd) {
    auto a = make_member("a", true, "3.4.23", "leader");
    auto b = make_member("b", false, "3.4.23", "leader");
    ASSERT_TRUE(form_cluster({&a, &b}, "a"));
    ASSERT_TRUE(settle({&a, &b}));

    auto admin_a = http_get(a.jg->admin_port, "/joingate/v1/version");
    ASSERT_EQ(admin_a.io, Io::ok) << admin_a.error;
    EXPECT_EQ(admin_a.response.status, 200);
    EXPECT_EQ(admin_a.response.header("Content-Type").value_or("").substr(0, 16),
              "application/json");
    expect_v1_document(admin_a.response.body, "a", "3.4.23", "leader", "leader");
    auto in_a = inbound(a.jg->inbound_port, inbound_get("/joingate/v1/version"));
    EXPECT_EQ(in_a.status, 200);
    expect_v1_document(in_a.body, "a", "3.4.23", "leader", "leader");
    auto in_b = inbound(b.jg->inbound_port, inbound_get("/joingate/v1/version"));
    EXPECT_EQ(in_b.status, 200);
    expect_v1_document(in_b.body, "b", "3.4.23", "follower", "leader");
    EXPECT_EQ(a.etcd->requests_for("/joingate/v1/version").size(), 0u)
        << "the version endpoint was forwarded to etcd";
    // Both sidecars name a as the leader, with its version.
    for (const auto* doc : {&admin_a.response.body, &in_b.body}) {
        auto v = parse_json(*doc);
        ASSERT_TRUE(v.is_object());
        EXPECT_EQ(v.as_object().at("leader").as_object().at("member"), "a") << *doc;
        EXPECT_EQ(v.as_object().at("leader").as_object().at("version"), "3.4.23") << *doc;
    }
    // admitted_members: the members this sidecar admitted. b's etcd talks to a's: a admits
    // b on its inbound, b admits a on its outbound.
    auto proxy = tcp_connect(b.jg->outbound_port);
    ASSERT_NE(proxy, nullptr);
    std::string to_a = a.jg->inbound_address();
    ASSERT_TRUE(
        proxy->write("GET http://" + to_a + "/small HTTP/1.1\r\nHost: " + to_a + "\r\n\r\n"));
    Response via_b;
    ASSERT_EQ(read_response(*proxy, via_b), Io::ok) << proxy->last_error;
    EXPECT_EQ(via_b.status, 200) << via_b.body;
    EXPECT_TRUE(lists(version_doc(*a.jg), "b", "3.4.23")) << version_doc(*a.jg);
    EXPECT_TRUE(lists(version_doc(*b.jg), "a", "3.4.23")) << version_doc(*b.jg);

    // A caller admitted on a's inbound is published by a.
    auto ok = inbound(a.jg->inbound_port, inbound_get("/small", stamp("m5", "3.5.0")));
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_TRUE(lists(version_doc(*a.jg), "m5", "3.5.0")) << version_doc(*a.jg);
    // ... and the other sidecar learns it from a's document.
    EXPECT_TRUE(eventually([&] { return lists(version_doc(*b.jg), "m5", "3.5.0"); }))
        << version_doc(*b.jg);

    // role follows the local etcd's maintenance status: a leader change.
    a.etcd->act_as_etcd3(false);
    b.etcd->act_as_etcd3(true);
    EXPECT_TRUE(eventually([&] { return role_of(version_doc(*a.jg)) == "follower"; }))
        << version_doc(*a.jg);
    EXPECT_TRUE(eventually([&] { return role_of(version_doc(*b.jg)) == "leader"; }))
        << version_doc(*b.jg);
    EXPECT_TRUE(eventually([&] {
        auto v = parse_json(version_doc(*a.jg));
        return v.is_object() && v.as_object().at("leader").is_object() &&
               v.as_object().at("leader").as_object().at("member") == "b";
    })) << "a's view did not follow the leader change: "
        << version_doc(*a.jg);
    EXPECT_EQ(metric(*a.jg, "joingate_member_is_leader"), 0);
    EXPECT_EQ(metric(*b.jg, "joingate_member_is_leader"), 1);
}

TEST_F(Admission, RoleIsUnknownWithoutAClientProbe) {
    MemberConfig m;
    m.peer = backend->url();
    m.mode = "observe";
    m.bootstrap = true;
    auto* jg = start_member(m);
    ASSERT_NE(jg, nullptr);
    auto doc = version_doc(*jg);
    expect_v1_document(doc, "m0", "3.4.23", "unknown", "observe");
    EXPECT_TRUE(parse_json(doc).as_object().at("leader").is_null()) << doc;
}

// A stand-in for a newer joingate's inbound listener: mTLS with the test PKI's member
// certificate (client certificates required), answering GET /joingate/v1/version with a
// fixed document and anything else with 404. With an empty document it stands in for a
// member that is not behind joingate (mTLS, but no version endpoint: 404) and answers
// anything else 200. With a `stamp` (header lines) it stands in for a sidecar in front of
// its member: anything else is answered 200 with the stamp, as a sidecar stamps the
// responses of its member.
class NewerPeer {
  public:
    explicit NewerPeer(std::string doc, std::string stamp = {})
        : doc_(std::move(doc)), stamp_(std::move(stamp)) {
        const auto& pki = test_pki();
        ctx_ = SSL_CTX_new(TLS_server_method());
        if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, pki.member.cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx_, pki.member.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_load_verify_locations(ctx_, pki.ca.c_str(), nullptr) != 1)
            throw std::runtime_error("NewerPeer: TLS setup failed");
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd_, 16) != 0)
            throw std::runtime_error("NewerPeer: listen failed");
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~NewerPeer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
        SSL_CTX_free(ctx_);
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    int answered() const { return answered_.load(); } // version requests
    int others() const { return others_.load(); }     // anything else

  private:
    void loop() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            timeval tv{2, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            serve(c);
            ::close(c);
        }
    }
    void serve(int c) {
        SSL* ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            std::string in;
            char buf[4096];
            while (in.find("\r\n\r\n") == std::string::npos && in.size() < 65536) {
                int n = SSL_read(ssl, buf, sizeof buf);
                if (n <= 0)
                    break;
                in.append(buf, static_cast<std::size_t>(n));
            }
            if (in.find("\r\n\r\n") != std::string::npos) {
                bool version = in.starts_with("GET /joingate/v1/version ");
                bool ok = version ? !doc_.empty() : (doc_.empty() || !stamp_.empty());
                std::string body = ok ? (version ? doc_ : std::string(R"({"ok":true})")) : R"({"error":"not found"})";
                std::string out =
                    std::string("HTTP/1.1 ") + (ok ? "200 OK" : "404 Not Found") +
                    "\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n" +
                    (version ? std::string() : stamp_) + "\r\n" + body;
                SSL_write(ssl, out.data(), static_cast<int>(out.size()));
                answered_ += version;
                others_ += !version;
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        ERR_clear_error();
    }

    std::string doc_;
    std::string stamp_;
    SSL_CTX* ctx_ = nullptr;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> answered_{0};
    std::atomic<int> others_{0};
    std::thread thread_;
};

TEST_F(Admission, ANewerPeersDocumentWithUnknownFieldsStillBuildsTheView) {
    // What a later v1 sidecar may publish: fields this build does not know, at the top
    // level and inside the objects it does know (protocol, leader, admitted_members), and
    // a null one.
    NewerPeer newer(R"({"api":1,"member":"m-new","version":"3.6.0",)"
                    R"("protocol":{"min":1,"max":2,"preferred":2},)"
                    R"("role":"leader","leader":{"member":"m-new","version":"3.6.0","term":7},)"
                    R"("admitted":true,"mode":"both","policy":"skew","profile":"etcd3",)"
                    R"("admitted_members":[{"member":"m-old","version":"3.5.1",)"
                    R"("since":"2026-01-01T00:00:00Z"}],)"
                    R"("reason":"same_version","joingate":"9.9.9",)"
                    R"("learners":["m-7"],"raft":{"term":7,"index":1234},"zone":null})");
    MemberConfig m;
    m.name = "m1";
    m.peer = backend->url();
    m.mode = "observe";
    m.cluster_peers = {newer.address()};
    auto* jg = start_member(m);
    ASSERT_NE(jg, nullptr);

    // The view: the newer peer is reachable and leads at 3.6.0.
    EXPECT_TRUE(eventually([&] {
        auto v = parse_json(version_doc(*jg));
        return v.is_object() && v.as_object().at("leader").is_object() &&
               v.as_object().at("leader").as_object().at("member") == "m-new" &&
               v.as_object().at("leader").as_object().at("version") == "3.6.0";
    })) << version_doc(*jg)
        << "\n"
        << http_get(jg->admin_port, "/status").response.body;
    EXPECT_GT(newer.answered(), 0) << "the newer peer was never asked";
    auto st = parse_json(http_get(jg->admin_port, "/status").response.body);
    ASSERT_TRUE(st.is_object());
    const auto& members = st.as_object().at("cluster").as_object().at("members").as_array();
    ASSERT_EQ(members.size(), 1u);
    const auto& peer = members[0].as_object();
    EXPECT_EQ(peer.at("member"), "m-new");
    EXPECT_EQ(peer.at("version"), "3.6.0");
    EXPECT_EQ(peer.at("role"), "leader");
    EXPECT_TRUE(peer.at("reachable").is_bool() && peer.at("reachable").as_bool())
        << json::serialize(peer);
    EXPECT_EQ(metric(*jg, "joingate_leader_info", {"member=\"m-new\"", "version=\"3.6.0\""}), 1)
        << jg->metrics();
    // What it published is read, not only tolerated: its admitted member is learned.
    EXPECT_TRUE(eventually([&] { return lists(version_doc(*jg), "m-old", "3.5.1"); }))
        << version_doc(*jg);
}

// A target that speaks mutual TLS but has no joingate version endpoint (a member not behind
// joingate yet) is a member of unknown version, not an unreachable one: observe and
// fail = "open" forward to it, fail = "closed" refuses with version_unknown, and it is
// probed once, not on every request.
TEST_F(Admission, ATargetWithoutAVersionEndpointHasAnUnknownVersion) {
    NewerPeer plain("");
    struct Case {
        const char* mode;
        const char* fail;
        int status;
    };
    for (Case k : {Case{"observe", "closed", 200}, Case{"leader", "open", 200}, Case{"leader", "closed", 412}}) {
        SCOPED_TRACE(std::string("mode ") + k.mode + ", fail " + k.fail);
        MemberConfig m;
        m.name = "m1";
        m.peer = backend->url();
        m.mode = k.mode;
        m.fail = k.fail;
        m.bootstrap = true;
        auto* jg = start_member(m);
        ASSERT_NE(jg, nullptr);
        int probes_before = plain.answered(), others_before = plain.others();
        auto c = tcp_connect(jg->outbound_port);
        ASSERT_NE(c, nullptr);
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(c->write("GET http://" + plain.address() + "/raft/probing HTTP/1.1\r\nHost: " +
                                 plain.address() + "\r\n\r\n"));
            Response r;
            ASSERT_EQ(read_response(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
            EXPECT_EQ(r.status, k.status) << r.body;
            if (k.status == 412) {
                EXPECT_NE(r.body.find("version_unknown"), std::string::npos) << r.body;
            }
        }
        EXPECT_EQ(plain.answered() - probes_before, 1) << "probed more than once";
        EXPECT_EQ(plain.others() - others_before, k.status == 200 ? 3 : 0);
        EXPECT_EQ(metric(*jg, "joingate_upstream_errors_total", {"listener=\"outbound\"", "kind=\"connect\""}), 0);
        jg->stop();
    }
}

// ---- leader-controlled rejection, inbound ----

class LeaderGate : public Admission {
  protected:
    void SetUp() override {
        Admission::SetUp();
        a = make_member("a", true, "3.4.23", "leader");
        b = make_member("b", false, "3.4.23", "leader");
        ASSERT_TRUE(form_cluster({&a, &b}, "a"));
        ASSERT_TRUE(settle({&a, &b}));
    }
    Member a, b;
};

TEST_F(LeaderGate, RefusesAnOlderCallerOnceAndAnswersRepeatsFromTheCache) {
    std::size_t decided_before =
        count_log_lines(*a.jg, {"\"event\":\"admission\"", "\"caller\":\"m9\""});
    ASSERT_EQ(decided_before, 0u);
    // etcd retries a refused stream every ~100 ms: repeat on one connection and on new ones.
    auto c = tls_connect(a.jg->inbound_port);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c->write(inbound_get("/raft/stream/msgapp/8e9e", stamp("m9", "3.3.0"))));
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
        expect_refused(r, "older_than_leader");
    }
    for (int i = 0; i < 2; ++i)
        expect_refused(inbound(a.jg->inbound_port, inbound_get("/members", stamp("m9", "3.3.0"))),
                       "older_than_leader");
    EXPECT_EQ(a.etcd->request_count() - a.etcd->requests_for("/v3/maintenance/status").size() -
                  a.etcd->requests_for("/version").size(),
              0u)
        << "a refused request reached etcd";
    EXPECT_TRUE(a.etcd->requests_for("/members").empty());
    EXPECT_TRUE(a.etcd->requests_for("/raft/stream/msgapp/8e9e").empty());

    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "reject", "older_than_leader"), 1)
        << a.jg->metrics();
    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "refused_request", "cached"), 4)
        << a.jg->metrics();
    EXPECT_EQ(count_log_lines(*a.jg, {"\"event\":\"admission\"", "\"caller\":\"m9\""}), 1u)
        << "one decision, one log line; repeats are counted, not logged\n"
        << a.jg->stdout_text();
    EXPECT_EQ(
        count_log_lines(*a.jg, {"\"event\":\"admission\"", "\"caller\":\"m9\"",
                                "\"decision\":\"reject\"", "\"reason\":\"older_than_leader\""}),
        1u);
    // b is not the leader, but judges against the leader's version just the same.
    expect_refused(inbound(b.jg->inbound_port, inbound_get("/members", stamp("m9", "3.3.0"))),
                   "older_than_leader");
    EXPECT_TRUE(b.etcd->requests_for("/members").empty());
}

TEST_F(LeaderGate, ACallerAtTheLeadersVersionOrNewerStreams) {
    auto c = tls_connect(a.jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/stream", stamp("m5", "3.4.23"))));
    Response r;
    ASSERT_EQ(read_head(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.chunked);
    for (int i = 0; i < 3; ++i) {
        std::string chunk;
        ASSERT_EQ(read_chunk(*c, chunk, milliseconds(3000)), Io::ok) << "chunk " << i;
        EXPECT_EQ(chunk, "seq=" + std::to_string(i + 1) + "\n");
    }
    auto streams = a.etcd->requests_for("/stream");
    ASSERT_EQ(streams.size(), 1u);
    EXPECT_FALSE(streams[0].has_header_prefix("X-Joingate-"))
        << "the X-Joingate-* stamp must not reach etcd";

    auto newer = inbound(a.jg->inbound_port, inbound_get("/small", stamp("m6", "3.5.0")));
    EXPECT_EQ(newer.status, 200);
    EXPECT_EQ(newer.body, Backend::small_body());
    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "admit", "same_version"), 1) << a.jg->metrics();
    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "admit", "newer_than_leader"), 1)
        << a.jg->metrics();
}

TEST_F(LeaderGate, EtcdsServerVersionIsUsedWhenTheStampIsMissing) {
    // etcd's own raft requests carry X-Server-Version; a caller without a sidecar stamp.
    expect_refused(
        inbound(a.jg->inbound_port, inbound_get("/raft/probing", "X-Server-Version: 3.3.0\r\n")),
        "older_than_leader");
    auto ok = inbound(a.jg->inbound_port, inbound_get("/small", "X-Server-Version: 3.4.23\r\n"));
    EXPECT_EQ(ok.status, 200) << ok.body;
    // The stamp wins over X-Server-Version.
    auto stamped =
        inbound(a.jg->inbound_port,
                inbound_get("/small", stamp("m4", "3.4.23") + "X-Server-Version: 3.3.0\r\n"));
    EXPECT_EQ(stamped.status, 200) << stamped.body;
    // Neither: the version is unknown, and fail = "closed" refuses.
    expect_refused(inbound(a.jg->inbound_port, inbound_get("/members")), "version_unknown");
    EXPECT_TRUE(a.etcd->requests_for("/raft/probing").empty());
    EXPECT_TRUE(a.etcd->requests_for("/members").empty());
    EXPECT_EQ(a.etcd->requests_for("/small").size(), 2u);
}

TEST_F(LeaderGate, ExactPolicyRefusesANewerCaller) {
    a.cfg.policy = b.cfg.policy = "exact";
    ASSERT_TRUE(reload(*a.jg, a.cfg));
    ASSERT_TRUE(reload(*b.jg, b.cfg));
    expect_refused(inbound(a.jg->inbound_port, inbound_get("/members", stamp("m7", "3.4.24"))),
                   "version_mismatch");
    expect_refused(inbound(a.jg->inbound_port, inbound_get("/members", stamp("m8", "3.3.0"))),
                   "version_mismatch");
    auto same = inbound(a.jg->inbound_port, inbound_get("/small", stamp("m6", "3.4.23")));
    EXPECT_EQ(same.status, 200);
    EXPECT_TRUE(a.etcd->requests_for("/members").empty());
    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "reject", "version_mismatch"), 2)
        << a.jg->metrics();
}

TEST_F(LeaderGate, ObserveModeAnswersAndCountsWouldReject) {
    a.cfg.mode = "observe";
    ASSERT_TRUE(reload(*a.jg, a.cfg));
    for (int i = 0; i < 2; ++i) {
        auto r = inbound(a.jg->inbound_port, inbound_get("/small", stamp("m9", "3.3.0")));
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.body, Backend::small_body());
    }
    EXPECT_EQ(a.etcd->requests_for("/small").size(), 2u);
    EXPECT_GE(decisions_metric(*a.jg, "inbound", "would_reject", "older_than_leader"), 1)
        << a.jg->metrics();
    EXPECT_EQ(decisions_metric(*a.jg, "inbound", "reject"), 0) << a.jg->metrics();
    EXPECT_TRUE(a.jg->wait_log(
        {"\"event\":\"admission\"", "\"caller\":\"m9\"", "\"decision\":\"would_reject\""},
        milliseconds(2000)))
        << a.jg->stdout_text();
    // Not admitted for real: observe mode does not publish it.
    EXPECT_FALSE(lists(version_doc(*a.jg), "m9", "3.3.0")) << version_doc(*a.jg);
}

TEST_F(LeaderGate, ARefusedRequestWithABodyStillGetsTheRefusal) {
    // A refused member's etcd sends raft messages (small bodies) and snapshots (large,
    // chunked): either way it must read 412, not a reset connection.
    auto c = tls_connect(a.jg->inbound_port);
    ASSERT_NE(c, nullptr);
    std::string raft(300, 'r');
    ASSERT_TRUE(c->write("POST /raft HTTP/1.1\r\nHost: a:2380\r\n" + stamp("m9", "3.3.0") +
                         "Content-Type: application/protobuf\r\nContent-Length: " +
                         std::to_string(raft.size()) + "\r\n\r\n" + raft));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    expect_refused(r, "older_than_leader");

    c = tls_connect(a.jg->inbound_port);
    ASSERT_NE(c, nullptr);
    std::string chunk(64 * 1024, 's');
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    std::string head = "POST /raft/snapshot HTTP/1.1\r\nHost: a:2380\r\n" + stamp("m9", "3.3.0") +
                       "Transfer-Encoding: chunked\r\n\r\n";
    // Like etcd, the body is still being written when the answer comes.
    std::string body;
    for (int i = 0; i < 16; ++i)
        body += size + chunk + "\r\n";
    body += "0\r\n\r\n";
    bool written = c->write(head + body, milliseconds(5000));
    Response s;
    Io io = read_response(*c, s);
    EXPECT_EQ(io, Io::ok) << "the refusal of a 1 MiB snapshot was lost ("
                          << (written ? "body written" : "body write failed: " + c->last_error)
                          << "; read: " << to_string(io) << " " << c->last_error << ")";
    if (io == Io::ok)
        expect_refused(s, "older_than_leader");
    EXPECT_TRUE(a.etcd->requests_for("/raft").empty());
    EXPECT_TRUE(a.etcd->requests_for("/raft/snapshot").empty());
}

// ---- leader-controlled rejection, outbound ----

TEST_F(LeaderGate, TheLocalEtcdsRequestToARefusedMemberNeverReachesIt) {
    // c: a member whose sidecar declares 3.3.0 (and admits itself: it knows no cluster).
    auto c = make_member("c", false, "3.3.0", "observe");
    c.cfg.bootstrap = true;
    c.jg = start_member(c.cfg);
    ASSERT_NE(c.jg, nullptr);

    auto proxy = tcp_connect(a.jg->outbound_port);
    ASSERT_NE(proxy, nullptr);
    std::string target = c.jg->inbound_address();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(proxy->write("GET http://" + target +
                                 "/raft/stream/message/1 HTTP/1.1\r\nHost: " + target +
                                 "\r\nX-Server-Version: 3.4.23\r\n\r\n"));
        Response r;
        ASSERT_EQ(read_response(*proxy, r), Io::ok) << proxy->last_error;
        expect_refused(r, "older_than_leader");
    }
    EXPECT_EQ(c.etcd->requests_for("/raft/stream/message/1").size(), 0u)
        << "the refused member's etcd got the request";
    EXPECT_EQ(decisions_metric(*a.jg, "outbound", "reject", "older_than_leader"), 1)
        << a.jg->metrics();
    EXPECT_EQ(decisions_metric(*a.jg, "outbound", "refused_request", "cached"), 2)
        << a.jg->metrics();
    EXPECT_EQ(count_log_lines(*a.jg, {"\"event\":\"admission\"", "\"side\":\"outbound\"",
                                      "\"decision\":\"reject\""}),
              1u)
        << a.jg->stdout_text();

    // The same connection to an admitted member (b, 3.4.23) goes through.
    std::string to_b = b.jg->inbound_address();
    ASSERT_TRUE(
        proxy->write("GET http://" + to_b + "/small HTTP/1.1\r\nHost: " + to_b + "\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*proxy, r), Io::ok) << proxy->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, Backend::small_body());
    EXPECT_EQ(b.etcd->requests_for("/small").size(), 1u);
}

TEST_F(LeaderGate, AnOutboundRefusalNamesTheRefusedMemberAndItsVersion) {
    // What etcd logs is the refusal's error text: it should say whom joingate refused and
    // at which version, as the inbound refusal does ("member m9 at version 3.3.0").
    auto c = make_member("c", false, "3.3.0", "observe");
    c.cfg.bootstrap = true;
    c.jg = start_member(c.cfg);
    ASSERT_NE(c.jg, nullptr);
    std::string target = c.jg->inbound_address();
    auto proxy = tcp_connect(a.jg->outbound_port);
    ASSERT_NE(proxy, nullptr);
    ASSERT_TRUE(proxy->write("GET http://" + target + "/raft/probing HTTP/1.1\r\nHost: " + target +
                             "\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*proxy, r), Io::ok) << proxy->last_error;
    expect_refused(r, "older_than_leader");
    EXPECT_NE(r.body.find("member c at version 3.3.0"), std::string::npos)
        << "the refusal names the target's address and no version: " << r.body;
}

// A request is judged with the target's version known when it leaves; the target's
// sidecar stamps its member's version on the response. When that stamp differs (the
// target restarted at another version in between), the request is judged again, and a
// refused answer is not relayed: a raft stream must not be established with a member
// that is now refused. The next request is refused before it leaves.
TEST_F(LeaderGate, AResponseStampedWithARefusedVersionIsJudgedAgainAndNotRelayed) {
    const std::string doc = R"({"api":1,"member":"t","version":"3.4.23",)"
                            R"("protocol":{"min":1,"max":1,"preferred":1},"role":"follower",)"
                            R"("leader":null,"admitted":true,"mode":"leader",)"
                            R"("policy":"not-older-than-leader","profile":"etcd3",)"
                            R"("admitted_members":[],"reason":"same_version","joingate":"0.1.0"})";
    NewerPeer restarted(doc, stamp("t", "3.3.0"));
    NewerPeer same(doc, stamp("t", "3.4.23"));
    auto proxy = tcp_connect(a.jg->outbound_port);
    ASSERT_NE(proxy, nullptr);
    auto get = [&](const NewerPeer& target, Response& r) {
        std::string t = target.address();
        return proxy->write("GET http://" + t + "/raft/stream/msgappv2/a HTTP/1.1\r\nHost: " + t +
                            "\r\nX-Server-Version: 3.4.23\r\n\r\n") &&
               read_response(*proxy, r, milliseconds(5000)) == Io::ok;
    };

    // Control: the stamp says what the version document said — relayed.
    Response r;
    ASSERT_TRUE(get(same, r)) << proxy->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"ok":true})");

    // The document said 3.4.23 (admitted), the response says 3.3.0 (older than the leader).
    ASSERT_TRUE(get(restarted, r)) << proxy->last_error;
    expect_refused(r, "older_than_leader");
    EXPECT_NE(r.body.find("member t at version 3.3.0"), std::string::npos) << r.body;
    EXPECT_EQ(restarted.others(), 1) << "the request reached the target";
    EXPECT_EQ(decisions_metric(*a.jg, "outbound", "reject", "older_than_leader"), 1)
        << a.jg->metrics();

    // Known now: the next request to it is refused before it leaves.
    proxy = tcp_connect(a.jg->outbound_port); // the refusal closed the connection
    ASSERT_NE(proxy, nullptr);
    ASSERT_TRUE(get(restarted, r)) << proxy->last_error;
    expect_refused(r, "older_than_leader");
    EXPECT_EQ(restarted.others(), 1) << "a refused request reached the target";
    EXPECT_EQ(restarted.answered(), 1) << "the target's version document was asked again";
}

// ---- the generic profile ----

TEST_F(Admission, GenericProfileJudgesOnlyItsJoinRoutesWithItsVersionHeader) {
    // A peer that is not etcd: its joins are POST /cluster/join..., its version travels
    // in X-App-Version, and GET /node/state says {"role":"primary"} on the leader.
    Member g;
    g.etcd = std::make_unique<Backend>();
    g.etcd->answer("GET", "/node/state", 200, R"({"role":"primary","term":3})");
    g.etcd->answer("POST", "/cluster/join", 200, R"({"joined":true})");
    g.etcd->answer("POST", "/cluster/join/m9", 200, R"({"joined":true})");
    g.cfg.name = "g0";
    g.cfg.peer = g.etcd->url();
    g.cfg.profile = "generic";
    g.cfg.mode = "leader";
    g.cfg.tail = "[profile]\n"
                 "version_header = \"X-App-Version\"\n"
                 "leader_probe_url = \"" +
                 g.etcd->url() +
                 "/node/state\"\n"
                 "leader_probe_pointer = \"/role\"\n"
                 "leader_probe_expected = \"primary\"\n"
                 "[[profile.join_routes]]\n"
                 "method = \"POST\"\n"
                 "prefix = \"/cluster/join\"\n";
    ASSERT_TRUE(form_cluster({&g}, "g0"));
    auto doc = parse_json(version_doc(*g.jg));
    ASSERT_TRUE(doc.is_object());
    EXPECT_EQ(doc.as_object().at("profile"), "generic");
    EXPECT_EQ(doc.as_object().at("role"), "leader");

    auto post = [&](const std::string& path, const std::string& headers) {
        return inbound(g.jg->inbound_port,
                       "POST " + path + " HTTP/1.1\r\nHost: g0:2380\r\nContent-Length: 2\r\n" +
                           headers + "\r\n{}");
    };
    // A join route, version from the configured header.
    expect_refused(post("/cluster/join", "X-App-Version: 3.3.0\r\n"), "older_than_leader");
    expect_refused(post("/cluster/join/m9", "X-App-Version: 3.3.0\r\n"), "older_than_leader");
    EXPECT_TRUE(g.etcd->requests_for("/cluster/join").empty());
    auto ok = post("/cluster/join", "X-App-Version: 3.4.23\r\n");
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(g.etcd->requests_for("/cluster/join").size(), 1u);
    // etcd's header means nothing to this profile: the version is unknown (fail closed).
    expect_refused(post("/cluster/join/m9", "X-Server-Version: 3.4.23\r\n"), "version_unknown");
    EXPECT_TRUE(g.etcd->requests_for("/cluster/join/m9").empty());
    // Not a join route: another method on the prefix, or another path, passes unjudged.
    double judged = decisions_metric(*g.jg, "inbound", "reject") +
                    decisions_metric(*g.jg, "inbound", "admit") +
                    decisions_metric(*g.jg, "inbound", "refused_request");
    auto get = inbound(g.jg->inbound_port,
                       get_request("/cluster/join", "g0:2380", "X-App-Version: 3.3.0\r\n"));
    EXPECT_EQ(get.status, 404) << "GET /cluster/join is not a join route: the peer answers";
    auto other = post("/echo-size", "X-App-Version: 3.3.0\r\n");
    EXPECT_EQ(other.status, 200) << other.body;
    EXPECT_EQ(other.body.substr(0, 2), "2 ") << other.body;
    EXPECT_EQ(g.etcd->requests_for("/cluster/join").size(), 2u);
    EXPECT_EQ(g.etcd->requests_for("/echo-size").size(), 1u);
    EXPECT_EQ(decisions_metric(*g.jg, "inbound", "reject") +
                  decisions_metric(*g.jg, "inbound", "admit") +
                  decisions_metric(*g.jg, "inbound", "refused_request"),
              judged)
        << "a request off the join routes was judged\n"
        << g.jg->metrics();
}

TEST_F(Admission, GenericProfileReadsAndWritesTheVersionInTheJoinBody) {
    // body_version_pointer: the joiner's sidecar writes its version into the join body,
    // the leader's reads it there; version_header stays the fallback for callers whose
    // body does not carry one (DESIGN §6: the stamp, else the profile's header).
    Member g;
    g.etcd = std::make_unique<Backend>();
    g.etcd->answer("GET", "/node/state", 200, R"({"role":"primary"})");
    g.etcd->answer("POST", "/cluster/join", 200, R"({"joined":true})");
    g.cfg.name = "g0";
    g.cfg.peer = g.etcd->url();
    g.cfg.profile = "generic";
    g.cfg.mode = "leader";
    g.cfg.tail = "[profile]\n"
                 "version_header = \"X-App-Version\"\n"
                 "body_version_pointer = \"/meta/version\"\n"
                 "leader_probe_url = \"" +
                 g.etcd->url() +
                 "/node/state\"\n"
                 "leader_probe_pointer = \"/role\"\n"
                 "leader_probe_expected = \"primary\"\n"
                 "[[profile.join_routes]]\n"
                 "method = \"POST\"\n"
                 "prefix = \"/cluster/join\"\n";
    ASSERT_TRUE(form_cluster({&g}, "g0"));
    auto post = [&](const std::string& body, const std::string& headers) {
        return inbound(g.jg->inbound_port,
                       "POST /cluster/join HTTP/1.1\r\nHost: g0:2380\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n" + headers + "\r\n" + body);
    };
    expect_refused(post(R"({"name":"j1","meta":{"version":"3.3.0"}})", ""), "older_than_leader");
    EXPECT_TRUE(g.etcd->requests_for("/cluster/join").empty());
    auto ok = post(R"({"name":"j2","meta":{"version":"3.4.23"}})", "");
    EXPECT_EQ(ok.status, 200) << ok.body;
    ASSERT_EQ(g.etcd->requests_for("/cluster/join").size(), 1u);
    EXPECT_EQ(g.etcd->requests_for("/cluster/join")[0].body,
              R"({"name":"j2","meta":{"version":"3.4.23"}})");

    // The joiner's side: through the outbound listener the sidecar writes its own version.
    std::string self = g.jg->inbound_address();
    std::string body = R"({"name":"g0","meta":{"zone":"b"}})";
    auto proxy = tcp_connect(g.jg->outbound_port);
    ASSERT_NE(proxy, nullptr);
    ASSERT_TRUE(proxy->write("POST http://" + self + "/cluster/join HTTP/1.1\r\nHost: " + self +
                             "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                             body));
    Response via;
    ASSERT_EQ(read_response(*proxy, via), Io::ok) << proxy->last_error;
    EXPECT_EQ(via.status, 200) << via.body;
    auto joins = g.etcd->requests_for("/cluster/join");
    ASSERT_EQ(joins.size(), 2u);
    auto written = parse_json(joins[1].body);
    ASSERT_TRUE(written.is_object()) << joins[1].body;
    EXPECT_EQ(written.as_object().at("meta").as_object().at("version"), "3.4.23") << joins[1].body;
    EXPECT_EQ(written.as_object().at("meta").as_object().at("zone"), "b") << joins[1].body;
    EXPECT_EQ(*joins[1].header("Content-Length"), std::to_string(joins[1].body.size()));

    // A body without a version: the configured header is the fallback.
    auto by_header = post(R"({"name":"j3"})", "X-App-Version: 3.4.23\r\n");
    EXPECT_EQ(by_header.status, 200)
        << "a join body without a version ignored X-App-Version: " << by_header.body;
}

} // namespace
} // namespace joingate::test
