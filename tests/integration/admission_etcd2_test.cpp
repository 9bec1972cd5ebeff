// Black-box tests of the etcd2 profile (DESIGN §7): the proposal's own protocol, etcd
// 0.4's internal `PUT /join` with a JSON JoinCommand. The joiner's sidecar writes
// "version" into the body on its way out; the leader's sidecar reads it and refuses an
// older joiner with 409 Conflict.
//
// etcd 0.4 is not packaged anywhere any more, so the test backends are STAND-INS for
// etcd 0.4 peers: they answer the leader probe (GET /v2/stats/self, "state") and
// PUT /join the way etcd 0.4 does, and record what reaches them. Versions are etcd 0.4's
// internal protocol versions: bare integers ("2" means 2.0.0).
#include <gtest/gtest.h>

#include <boost/json.hpp>

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

// What etcd 0.4's peer sends to join: the JoinCommand (server/join_command.go).
std::string join_command(const std::string& name) {
    return R"({"minVersion":1,"maxVersion":2,"name":")" + name +
           R"(","raftURL":"http://10.0.0.13:7001","etcdURL":"http://10.0.0.13:4001"})";
}

std::string put_join(const std::string& authority, const std::string& body,
                     const std::string& extra_headers = {}) {
    return "PUT http://" + authority + "/join HTTP/1.1\r\nHost: " + authority +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n" + extra_headers + "\r\n" + body;
}

class Etcd2 : public JoingateTest {
  protected:
    void SetUp() override {
        JoingateTest::SetUp();
        // The leader: its stand-in etcd 0.4 says StateLeader and accepts joins.
        leader_etcd = std::make_unique<Backend>();
        leader_etcd->act_as_etcd2(true);
        leader_etcd->answer("PUT", "/join", 200, "1", "text/plain");
        leader_cfg.name = "m1";
        leader_cfg.version = "2";
        leader_cfg.profile = "etcd2";
        leader_cfg.peer = leader_etcd->url();
        leader_cfg.client = leader_etcd->url();
        leader_cfg.mode = "leader";
        leader = start_member(leader_cfg);
        ASSERT_NE(leader, nullptr);
        leader_cfg.cluster_peers = {leader->inbound_address()};
        ASSERT_TRUE(reload(*leader, leader_cfg));
        ASSERT_TRUE(eventually([&] { return leader_known(*leader); }))
            << "the leader never saw itself lead\n"
            << leader->logs();
    }

    // A joining member's sidecar: etcd2 profile, its view of the cluster is the leader.
    JoingateProcess* start_joiner(const std::string& name, const std::string& version) {
        MemberConfig j;
        j.name = name;
        j.version = version;
        j.profile = "etcd2";
        j.peer = backend->url();
        j.mode = "leader"; // no follower-side hold here: the leader's sidecar decides
        j.cluster_peers = {leader->inbound_address()};
        auto* p = start_member(j);
        if (p && !eventually([&] { return leader_known(*p); })) {
            ADD_FAILURE() << name << " never learned the leader\n" << p->logs();
            return nullptr;
        }
        return p;
    }

    static bool leader_known(const JoingateProcess& p) {
        auto v = parse_json(http_get(p.admin_port, "/joingate/v1/version").response.body);
        if (!v.is_object())
            return false;
        const auto* l = v.as_object().if_contains("leader");
        return l && l->is_object() && l->as_object().at("member") == "m1";
    }

    Response via(JoingateProcess& joiner, const std::string& request) {
        Response r;
        auto c = tcp_connect(joiner.outbound_port);
        if (!c)
            return r;
        EXPECT_TRUE(c->write(request)) << c->last_error;
        EXPECT_EQ(read_response(*c, r), Io::ok) << c->last_error;
        return r;
    }

    static void expect_conflict(const Response& r) {
        EXPECT_EQ(r.status, 409) << r.body;
        EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
        auto v = parse_json(r.body);
        EXPECT_TRUE(v.is_object() && v.as_object().contains("error")) << r.body;
    }

    std::unique_ptr<Backend> leader_etcd;
    MemberConfig leader_cfg;
    JoingateProcess* leader = nullptr;
};

TEST_F(Etcd2, TheJoinersSidecarWritesItsVersionIntoTheJoinCommand) {
    auto* joiner = start_joiner("m3", "2");
    ASSERT_NE(joiner, nullptr);
    std::string body = join_command("m3");
    auto c = tcp_connect(joiner->outbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(put_join(leader->inbound_address(), body)));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "1");

    auto joins = leader_etcd->requests_for("/join");
    ASSERT_EQ(joins.size(), 1u);
    const auto& got = joins[0];
    EXPECT_EQ(got.method, "PUT");
    EXPECT_FALSE(got.has_header_prefix("X-Joingate-")) << "the stamp must not reach etcd";
    EXPECT_FALSE(got.chunked);
    ASSERT_TRUE(got.header("Content-Length").has_value());
    EXPECT_EQ(*got.header("Content-Length"), std::to_string(got.body.size()))
        << "Content-Length does not match the rewritten body: " << got.body;
    EXPECT_EQ(got.body_size, got.body.size());
    auto doc = parse_json(got.body);
    ASSERT_TRUE(doc.is_object()) << "not a JSON object: " << got.body;
    const auto& o = doc.as_object();
    EXPECT_EQ(o.at("version"), "2.0.0") << got.body;
    // Every field of the JoinCommand is kept as sent.
    auto sent = parse_json(body).as_object();
    for (const auto& [k, v] : sent)
        EXPECT_EQ(o.contains(k) ? o.at(k) : json::value(), v) << "field " << k << ": " << got.body;
    EXPECT_EQ(o.size(), sent.size() + 1) << got.body;

    // The proxy connection stays in step: a second request on it works.
    ASSERT_TRUE(c->write(put_join(leader->inbound_address(), join_command("m3"))));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(leader_etcd->requests_for("/join").size(), 2u);
    // The leader's sidecar admitted m3 at 2.0.0 and says so.
    EXPECT_TRUE(
        leader->wait_log({"\"event\":\"admission\"", "\"caller\":\"m3\"", "\"decision\":\"admit\""},
                         milliseconds(2000)))
        << leader->stdout_text();
}

TEST_F(Etcd2, AnOlderJoinerIsRefusedWith409) {
    auto* joiner = start_joiner("m4", "1");
    ASSERT_NE(joiner, nullptr);
    expect_conflict(via(*joiner, put_join(leader->inbound_address(), join_command("m4"))));
    EXPECT_TRUE(leader_etcd->requests_for("/join").empty()) << "the refused join reached etcd";
    EXPECT_EQ(metric(*leader, "joingate_admission_decisions_total",
                     {"side=\"inbound\"", "decision=\"reject\"", "reason=\"older_than_leader\""}),
              1)
        << leader->metrics();
    // Only PUT /join is join traffic in this profile: the old member's other requests pass.
    auto other =
        via(*joiner, "GET http://" + leader->inbound_address() +
                         "/small HTTP/1.1\r\nHost: " + leader->inbound_address() + "\r\n\r\n");
    EXPECT_EQ(other.status, 200) << other.body;

    // Straight to the leader's inbound, as any mTLS caller: the version in the body.
    auto c = tls_connect(leader->inbound_port);
    ASSERT_NE(c, nullptr);
    std::string body = R"({"name":"m5","raftURL":"http://10.0.0.15:7001","version":"1"})";
    ASSERT_TRUE(c->write("PUT /join HTTP/1.1\r\nHost: m1:7001\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    expect_conflict(r);
    // No version anywhere: unknown, and fail = "closed" refuses.
    c = tls_connect(leader->inbound_port);
    ASSERT_NE(c, nullptr);
    body = R"({"name":"m6","raftURL":"http://10.0.0.16:7001"})";
    ASSERT_TRUE(c->write("PUT /join HTTP/1.1\r\nHost: m1:7001\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    expect_conflict(r);
    EXPECT_NE(r.body.find("version_unknown"), std::string::npos) << r.body;
    // At the leader's version, in the body: admitted.
    c = tls_connect(leader->inbound_port);
    ASSERT_NE(c, nullptr);
    body = R"({"name":"m7","raftURL":"http://10.0.0.17:7001","version":"2"})";
    ASSERT_TRUE(c->write("PUT /join HTTP/1.1\r\nHost: m1:7001\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(leader_etcd->requests_for("/join").size(), 1u);
}

TEST_F(Etcd2, AJoinBodyOver64KiBIsRefusedWith413) {
    auto* joiner = start_joiner("m3", "2");
    ASSERT_NE(joiner, nullptr);
    std::string big = R"({"name":"m3","raftURL":"http://10.0.0.13:7001","pad":")" +
                      std::string(70 * 1024, 'x') + "\"}";
    auto r = via(*joiner, put_join(leader->inbound_address(), big));
    EXPECT_EQ(r.status, 413) << r.body;
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    // Straight to the leader's inbound too.
    auto c = tls_connect(leader->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write("PUT /join HTTP/1.1\r\nHost: m1:7001\r\nContent-Length: " +
                         std::to_string(big.size()) + "\r\n\r\n" + big));
    Response direct;
    ASSERT_EQ(read_response(*c, direct), Io::ok) << c->last_error;
    EXPECT_EQ(direct.status, 413) << direct.body;
    EXPECT_TRUE(leader_etcd->requests_for("/join").empty());

    // Under the bound (chunked, as a Go client may send it) it is read whole and passes.
    std::string fits = R"({"name":"m3","raftURL":"http://10.0.0.13:7001","pad":")" +
                       std::string(60 * 1024, 'y') + "\"}";
    std::string chunked;
    for (std::size_t i = 0; i < fits.size(); i += 16384) {
        std::string part = fits.substr(i, 16384);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        chunked += size + part + "\r\n";
    }
    chunked += "0\r\n\r\n";
    std::string authority = leader->inbound_address();
    auto ok = via(*joiner, "PUT http://" + authority + "/join HTTP/1.1\r\nHost: " + authority +
                               "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked);
    EXPECT_EQ(ok.status, 200) << ok.body;
    auto joins = leader_etcd->requests_for("/join");
    ASSERT_EQ(joins.size(), 1u);
    auto doc = parse_json(joins[0].body);
    ASSERT_TRUE(doc.is_object());
    EXPECT_EQ(doc.as_object().at("version"), "2.0.0");
    EXPECT_EQ(doc.as_object().at("pad").as_string().size(), 60u * 1024);
    EXPECT_EQ(*joins[0].header("Content-Length"), std::to_string(joins[0].body.size()));
}

} // namespace
} // namespace joingate::test
