// Config loading and validation (DESIGN §9): what an operator sees for every mistake —
// the exact FILE:LINE: key.path of each error, all of them at once — and the defaults
// that apply when keys are left out.
#include "config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace joingate::config {
// Readable failure output: gtest finds these by argument-dependent lookup.
void PrintTo(const Error& e, std::ostream* os) {
    *os << e.text();
}
void PrintTo(const HostPort& h, std::ostream* os) {
    *os << h.text();
}
} // namespace joingate::config

namespace {

namespace fs = std::filesystem;
using namespace joingate::config;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Joins lines with '\n', so that line N of the document is element N-1: tests name exact
// line numbers without counting raw-string lines by hand.
std::string doc(std::initializer_list<std::string_view> lines) {
    std::string out;
    for (std::string_view l : lines) {
        out += l;
        out += '\n';
    }
    return out;
}

std::chrono::system_clock::time_point at(std::string_view rfc3339) {
    auto t = parse_rfc3339(rfc3339);
    EXPECT_TRUE(t.has_value()) << rfc3339;
    return t.value_or(std::chrono::system_clock::time_point{});
}

struct Expected {
    int line;
    std::string key;
    std::string message_part;
};

std::string describe(const std::vector<Error>& errors) {
    std::string out;
    for (const Error& e : errors)
        out += "  " + e.text() + "\n";
    return out;
}

// Each expected error, in order (the loader sorts by line), with its line and key.
void expect_errors(const LoadResult& r, const std::vector<Expected>& want) {
    EXPECT_EQ(r.config, nullptr);
    ASSERT_EQ(r.errors.size(), want.size()) << describe(r.errors);
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(r.errors[i].line, want[i].line) << r.errors[i].text();
        EXPECT_EQ(r.errors[i].key, want[i].key) << r.errors[i].text();
        EXPECT_THAT(r.errors[i].message, HasSubstr(want[i].message_part)) << r.errors[i].text();
    }
}

void expect_one_error(const LoadResult& r, int line, const std::string& key,
                      const std::string& message_part) {
    expect_errors(r, {{line, key, message_part}});
}

class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        dir_ = fs::temp_directory_path() /
               ("jg-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        for (const char* name : {"tls.crt", "tls.key", "ca.crt"})
            touch(dir_ / name);
    }
    void TearDown() override { fs::remove_all(dir_); }

    static void touch(const fs::path& p) {
        fs::create_directories(p.parent_path());
        std::ofstream(p) << "x\n";
    }

    std::string file() const { return (dir_ / "joingate.toml").string(); }

    LoadResult load(const std::string& text) const { return load_string(text, file(), now_); }

    // A valid config: member (1-3), inbound (5-6), tls (8-11). Tests append to it, so
    // their own lines start at 12.
    static std::string base() {
        return doc({
            "[member]",                         // 1
            "name = \"etcd-0\"",                // 2
            "peer = \"http://127.0.0.1:2381\"", // 3
            "",                                 // 4
            "[inbound]",                        // 5
            "listen = \"0.0.0.0:2380\"",        // 6
            "",                                 // 7
            "[tls]",                            // 8
            "cert = \"tls.crt\"",               // 9
            "key = \"tls.key\"",                // 10
            "ca = \"ca.crt\"",                  // 11
        });
    }

    const Config& ok(const LoadResult& r) const {
        EXPECT_THAT(r.errors, IsEmpty()) << describe(r.errors);
        static const Config empty;
        return r.config ? *r.config : empty;
    }

    fs::path dir_;
    std::chrono::system_clock::time_point now_ = at("2026-11-25T10:00:00Z");
};

// ---- the happy paths ------------------------------------------------------------------------

TEST_F(ConfigTest, MinimalConfigGetsEveryDefault) {
    LoadResult r = load(base());
    const Config& c = ok(r);
    ASSERT_NE(r.config, nullptr);
    EXPECT_THAT(r.warnings, IsEmpty());
    EXPECT_EQ(c.file, file());
    EXPECT_EQ(c.member.name, "etcd-0");
    EXPECT_EQ(c.member.version, "auto");
    EXPECT_EQ(c.member.profile, Profile::etcd3);
    EXPECT_EQ(c.member.protocol, (ProtocolRange{1, 1}));
    EXPECT_EQ(c.member.peer.scheme, "http");
    EXPECT_EQ(c.member.peer.authority, (HostPort{"127.0.0.1", 2381}));
    EXPECT_EQ(c.member.peer.text, "http://127.0.0.1:2381");
    EXPECT_FALSE(c.member.client.has_value());
    EXPECT_EQ(c.member.probe_interval, 5s);
    EXPECT_EQ(c.inbound.listen, (HostPort{"0.0.0.0", 2380}));
    EXPECT_FALSE(c.outbound.listen.has_value());
    EXPECT_THAT(c.outbound.routes, IsEmpty());
    EXPECT_THAT(c.cluster.peers, IsEmpty());
    EXPECT_FALSE(c.cluster.bootstrap);
    EXPECT_EQ(c.cluster.view_interval, 5s);
    EXPECT_THAT(c.tls.allowed_peers, IsEmpty());
    EXPECT_EQ(c.admission.mode, Mode::both);
    EXPECT_EQ(c.admission.policy, Policy::not_older_than_leader);
    EXPECT_EQ(c.admission.fail, FailMode::closed);
    EXPECT_EQ(c.admission.max_minor_skew, 1u);
    EXPECT_FALSE(c.admission.allow_older);
    EXPECT_EQ(c.admission.on_reject, OnReject::wait);
    EXPECT_EQ(c.admission.retry.initial, 1s);
    EXPECT_EQ(c.admission.retry.max, 30s);
    EXPECT_DOUBLE_EQ(c.admission.retry.multiplier, 2.0);
    EXPECT_DOUBLE_EQ(c.admission.retry.jitter, 0.5);
    EXPECT_EQ(c.admission.retry.deadline, 0s);
    EXPECT_EQ(c.admission.retry.hold, 5s);
    EXPECT_THAT(c.admission.overrides, IsEmpty());
    EXPECT_FALSE(c.profile.has_value());
    EXPECT_EQ(c.admin.listen, (HostPort{"127.0.0.1", 9380}));
    EXPECT_EQ(c.log.format, LogFormat::json);
    EXPECT_EQ(c.log.level, LogLevel::info);
    EXPECT_EQ(c.limits.max_header_bytes, 16u * 1024);
    EXPECT_EQ(c.limits.max_uri_bytes, 8u * 1024);
    EXPECT_EQ(c.limits.handshake_timeout, 10s);
    EXPECT_EQ(c.limits.header_timeout, 10s);
    EXPECT_EQ(c.limits.connect_timeout, 3s);
    EXPECT_EQ(c.limits.idle_timeout, 5min);
    EXPECT_EQ(c.limits.drain_timeout, 15s);
    EXPECT_EQ(c.limits.max_connections, 4096u);
    EXPECT_EQ(c.lines.at("inbound.listen"), 6);
    EXPECT_EQ(c.lines.at("member.peer"), 3);
}

TEST_F(ConfigTest, EveryKeyIsRead) {
    std::string text = doc({
        "[member]",
        "name = \"etcd-1\"",
        "version = \"v3.5.0-rc.1\"",
        "profile = \"etcd2\"",
        "protocol = \"1..3\"",
        "peer = \"http://127.0.0.1:7001/\"",
        "client = \"http://[::1]:4001\"",
        "probe_interval = \"1m30s\"",
        "[inbound]",
        "listen = \"[::]:2380\"",
        "[outbound]",
        "listen = \"127.0.0.1:2390\"",
        "[[outbound.route]]",
        "listen = \"127.0.0.1:12380\"",
        "peer = \"etcd-1.etcd:2380\"",
        "[[outbound.route]]",
        "listen = \"127.0.0.1:12381\"",
        "peer = \"10.0.0.12:2380\"",
        "[cluster]",
        "peers = [\"etcd-0.etcd:2380\", \"[fd00::2]:2380\"]",
        "bootstrap = true",
        "view_interval = \"250ms\"",
        "[tls]",
        "cert = \"tls.crt\"",
        "key = \"tls.key\"",
        "ca = \"ca.crt\"",
        "allowed_peers = [\"spiffe://cluster/etcd-*\"]",
        "[admission]",
        "mode = \"observe\"",
        "policy = \"skew\"",
        "fail = \"open\"",
        "max_minor_skew = 2",
        "allow_older = true",
        "on_reject = \"exit\"",
        "[admission.retry]",
        "initial = \"500ms\"",
        "max = \"1m\"",
        "multiplier = 1.5",
        "jitter = 0.25",
        "deadline = \"10m\"",
        "hold = \"9s\"",
        "[[admission.override]]",
        "member = \"etcd-3\"",
        "until = 2026-11-25T20:00:00Z",
        "reason = \"INC-42: roll back etcd-3\"",
        "[[admission.override]]",
        "version = \"3.5.1\"",
        "until = \"2026-11-26T09:00:00+01:00\"",
        "reason = \"canary\"",
        "[admin]",
        "listen = \"127.0.0.1:0\"",
        "[log]",
        "format = \"text\"",
        "level = \"debug\"",
        "[limits]",
        "max_header_bytes = 32768",
        "max_uri_bytes = 4096",
        "handshake_timeout = \"5s\"",
        "header_timeout = \"6s\"",
        "connect_timeout = \"1s\"",
        "idle_timeout = \"1h\"",
        "drain_timeout = \"30s\"",
        "max_connections = 100",
    });
    LoadResult r = load(text);
    const Config& c = ok(r);
    EXPECT_EQ(c.member.name, "etcd-1");
    EXPECT_EQ(c.member.version, "v3.5.0-rc.1");
    EXPECT_EQ(c.member.profile, Profile::etcd2);
    EXPECT_EQ(c.member.protocol, (ProtocolRange{1, 3}));
    EXPECT_EQ(c.member.peer.authority, (HostPort{"127.0.0.1", 7001}));
    ASSERT_TRUE(c.member.client.has_value());
    EXPECT_EQ(c.member.client->authority, (HostPort{"::1", 4001}));
    EXPECT_EQ(c.member.probe_interval, 90s);
    EXPECT_EQ(c.inbound.listen, (HostPort{"::", 2380}));
    EXPECT_EQ(c.outbound.listen, (HostPort{"127.0.0.1", 2390}));
    ASSERT_EQ(c.outbound.routes.size(), 2u);
    EXPECT_EQ(c.outbound.routes[0].listen, (HostPort{"127.0.0.1", 12380}));
    EXPECT_EQ(c.outbound.routes[0].peer, (HostPort{"etcd-1.etcd", 2380}));
    EXPECT_EQ(c.outbound.routes[1].peer, (HostPort{"10.0.0.12", 2380}));
    EXPECT_THAT(c.cluster.peers,
                ElementsAre(HostPort{"etcd-0.etcd", 2380}, HostPort{"fd00::2", 2380}));
    EXPECT_TRUE(c.cluster.bootstrap);
    EXPECT_EQ(c.cluster.view_interval, 250ms);
    EXPECT_THAT(c.tls.allowed_peers, ElementsAre("spiffe://cluster/etcd-*"));
    EXPECT_EQ(c.admission.mode, Mode::observe);
    EXPECT_EQ(c.admission.policy, Policy::skew);
    EXPECT_EQ(c.admission.fail, FailMode::open);
    EXPECT_EQ(c.admission.max_minor_skew, 2u);
    EXPECT_TRUE(c.admission.allow_older);
    EXPECT_EQ(c.admission.on_reject, OnReject::exit);
    EXPECT_EQ(c.admission.retry.initial, 500ms);
    EXPECT_EQ(c.admission.retry.max, 1min);
    EXPECT_DOUBLE_EQ(c.admission.retry.multiplier, 1.5);
    EXPECT_DOUBLE_EQ(c.admission.retry.jitter, 0.25);
    EXPECT_EQ(c.admission.retry.deadline, 10min);
    EXPECT_EQ(c.admission.retry.hold, 9s);
    ASSERT_EQ(c.admission.overrides.size(), 2u);
    EXPECT_EQ(c.admission.overrides[0].member, "etcd-3");
    EXPECT_FALSE(c.admission.overrides[0].version.has_value());
    EXPECT_EQ(c.admission.overrides[0].until, at("2026-11-25T20:00:00Z"));
    EXPECT_EQ(c.admission.overrides[0].reason, "INC-42: roll back etcd-3");
    EXPECT_EQ(c.admission.overrides[0].line, 42);
    EXPECT_EQ(c.admission.overrides[1].version, "3.5.1");
    EXPECT_EQ(c.admission.overrides[1].until, at("2026-11-26T08:00:00Z"));
    EXPECT_EQ(c.admission.overrides[1].line, 46);
    EXPECT_EQ(c.admin.listen, (HostPort{"127.0.0.1", 0}));
    EXPECT_EQ(c.log.format, LogFormat::text);
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.limits.max_header_bytes, 32768u);
    EXPECT_EQ(c.limits.max_uri_bytes, 4096u);
    EXPECT_EQ(c.limits.handshake_timeout, 5s);
    EXPECT_EQ(c.limits.header_timeout, 6s);
    EXPECT_EQ(c.limits.connect_timeout, 1s);
    EXPECT_EQ(c.limits.idle_timeout, 1h);
    EXPECT_EQ(c.limits.drain_timeout, 30s);
    EXPECT_EQ(c.limits.max_connections, 100u);
}

// The example in DESIGN §9 is what operators copy: it must load as written.
TEST_F(ConfigTest, DesignExampleLoads) {
    std::string text = R"([member]
name = "etcd-0"
version = "auto"               # or "3.5.0"
profile = "etcd3"              # etcd3 | etcd2 | generic
peer = "http://127.0.0.1:2381" # the local peer's plain listener
client = "http://127.0.0.1:2379"   # etcd3 leader probe

[inbound]
listen = "0.0.0.0:2380"
[outbound]
listen = "127.0.0.1:2390"
[[outbound.route]]
listen = "127.0.0.1:12380"
peer = "etcd-1.etcd:2380"

[cluster]
peers = ["etcd-0.etcd:2380", "etcd-1.etcd:2380", "etcd-2.etcd:2380"]
bootstrap = false

[tls]
cert = "tls.crt"
key = "tls.key"
ca = "ca.crt"
allowed_peers = []             # optional SAN allow-list, e.g. "spiffe://cluster/etcd-*"

[admission]
mode = "both"
policy = "not-older-than-leader"
fail = "closed"
[admission.retry]
initial = "1s"
max = "30s"

[admin]
listen = "127.0.0.1:9380"
[log]
format = "json"
level = "info"
)";
    LoadResult r = load(text);
    const Config& c = ok(r);
    EXPECT_THAT(r.warnings, IsEmpty());
    EXPECT_EQ(c.cluster.peers.size(), 3u);
    ASSERT_EQ(c.outbound.routes.size(), 1u);
    EXPECT_EQ(c.outbound.routes[0].peer, (HostPort{"etcd-1.etcd", 2380}));
    ASSERT_TRUE(c.member.client.has_value());
    EXPECT_EQ(c.member.client->authority, (HostPort{"127.0.0.1", 2379}));
}

TEST_F(ConfigTest, LoadFileReadsTheFileAndResolvesAgainstItsDirectory) {
    fs::path sub = dir_ / "etc";
    touch(sub / "certs" / "tls.crt");
    touch(sub / "certs" / "tls.key");
    touch(sub / "certs" / "ca.crt");
    std::string text = base();
    for (const char* name : {"tls.crt", "tls.key", "ca.crt"}) {
        std::string from = std::string("\"") + name + "\"";
        text.replace(text.find(from), from.size(), std::string("\"certs/") + name + "\"");
    }
    std::ofstream(sub / "joingate.toml") << text;
    LoadResult r = load_file((sub / "joingate.toml").string());
    const Config& c = ok(r);
    EXPECT_EQ(c.tls.cert, (sub / "certs" / "tls.crt").string());
    EXPECT_EQ(c.tls.key, (sub / "certs" / "tls.key").string());
    EXPECT_EQ(c.tls.ca, (sub / "certs" / "ca.crt").string());
}

TEST_F(ConfigTest, LoadFileThatDoesNotExistIsOneError) {
    std::string path = (dir_ / "nope.toml").string();
    LoadResult r = load_file(path);
    EXPECT_EQ(r.config, nullptr);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].file, path);
    EXPECT_THAT(r.errors[0].text(), HasSubstr(path + ": cannot read"));
}

// ---- syntax, unknown keys, types, all errors at once -------------------------------------

TEST_F(ConfigTest, SyntaxErrorIsOneErrorWithTheParsersLine) {
    LoadResult r = load(doc({"[member]", "name = \"etcd-0\"", "peer = = 1", "[inbound"}));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 3);
    EXPECT_EQ(r.errors[0].key, "");
    EXPECT_FALSE(r.errors[0].message.empty());
    EXPECT_EQ(r.errors[0].text(), file() + ":3: " + r.errors[0].message);
    EXPECT_EQ(r.config, nullptr);
}

TEST_F(ConfigTest, DuplicateKeyIsASyntaxError) {
    LoadResult r = load(base() + doc({"[inbound]"}));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 12);
}

TEST_F(ConfigTest, UnknownKeysEverywhereWithSuggestions) {
    LoadResult r = load(doc({
        "[member]",                         // 1
        "name = \"etcd-0\"",                // 2
        "nmae = \"etcd-0\"",                // 3  transposition
        "peer = \"http://127.0.0.1:2381\"", // 4
        "listen = \"0.0.0.0:2380\"",        // 5  belongs elsewhere
        "[inbound]",                        // 6
        "listen = \"0.0.0.0:2380\"",        // 7
        "[tls]",                            // 8
        "cert = \"tls.crt\"",               // 9
        "key = \"tls.key\"",                // 10
        "ca = \"ca.crt\"",                  // 11
        "[admission.retry]",                // 12
        "hodl = \"5s\"",                    // 13 nested table
        "[[outbound.route]]",               // 14
        "listen = \"127.0.0.1:12380\"",     // 15
        "peer = \"etcd-1:2380\"",           // 16
        "[[outbound.route]]",               // 17
        "lisen = \"127.0.0.1:12381\"",      // 18 array of tables, element 1
        "peer = \"etcd-2:2380\"",           // 19
        "[membr]",                          // 20 unknown table
        "x = 1",                            // 21 (not descended into)
        "[limits]",                         // 22
        "\"max header bytes\" = 1",         // 23 a quoted key
        "zzzzzz = 1",                       // 24 nothing close
    }));
    expect_errors(
        r,
        {
            {3, "member.nmae", "unknown key (did you mean member.name?)"},
            {5, "member.listen", "unknown key (it belongs in [admin] or [inbound]"},
            {13, "admission.retry.hodl", "unknown key (did you mean admission.retry.hold?)"},
            {17, "outbound.route[1].listen", "required key missing"},
            {18, "outbound.route[1].lisen", "unknown key (did you mean outbound.route[1].listen?)"},
            {20, "membr", "unknown key (did you mean member?)"},
            {23, "limits.\"max header bytes\"", "unknown key"},
            {24, "limits.zzzzzz", "unknown key"},
        });
    EXPECT_EQ(r.errors[7].message, "unknown key");
    EXPECT_EQ(r.errors[0].text(),
              file() + ":3: member.nmae: unknown key (did you mean member.name?)");
}

TEST_F(ConfigTest, UnknownKeysInInlineTablesAndProfileRoutes) {
    LoadResult r = load(doc({
        "[member]",                                                // 1
        "name = \"etcd-0\"",                                       // 2
        "profile = \"generic\"",                                   // 3
        "version = \"1.0.0\"",                                     // 4
        "peer = \"http://127.0.0.1:2381\"",                        // 5
        "[inbound]",                                               // 6
        "listen = \"0.0.0.0:2380\"",                               // 7
        "[tls]",                                                   // 8
        "cert = \"tls.crt\"",                                      // 9
        "key = \"tls.key\"",                                       // 10
        "ca = \"ca.crt\"",                                         // 11
        "[profile]",                                               // 12
        "join_routes = [{ methd = \"PUT\", prefix = \"/join\" }]", // 13
        "leader_probe_url = \"http://127.0.0.1:2381/leader\"",     // 14
        "leader_probe_pointer = \"/state\"",                       // 15
        "leader_probe_expected = \"leader\"",                      // 16
    }));
    expect_one_error(r, 13, "profile.join_routes[0].methd",
                     "did you mean profile.join_routes[0].method?");
}

TEST_F(ConfigTest, FiveMistakesGiveFiveErrors) {
    LoadResult r = load(doc({
        "[member]",                          // 1
        "name = \"\"",                       // 2  empty
        "peer = \"https://127.0.0.1:2381\"", // 3  not http
        "[inbound]",                         // 4
        "listen = 2380",                     // 5  wrong type
        "[tls]",                             // 6
        "cert = \"tls.crt\"",                // 7
        "key = \"tls.key\"",                 // 8
        "ca = \"missing-ca.crt\"",           // 9  no such file
        "[admission.retry]",                 // 10
        "hold = \"12s\"",                    // 11 too long
    }));
    expect_errors(r, {
                         {2, "member.name", "must not be empty"},
                         {3, "member.peer", "not an http URL"},
                         {5, "inbound.listen", "expected a string, got an integer"},
                         {9, "tls.ca", "no such file"},
                         {11, "admission.retry.hold", "12s is more than 9s"},
                     });
    EXPECT_THAT(r.errors[4].message, HasSubstr("etcd gives up on a /members request after 10 s"));
    EXPECT_EQ(r.errors[2].text(), file() + ":5: inbound.listen: expected a string, got an integer");
}

TEST_F(ConfigTest, MissingRequiredKeysUseTheirTableLine) {
    LoadResult r = load(doc({
        "# joingate",         // 1
        "[member]",           // 2
        "version = \"auto\"", // 3
        "[inbound]",          // 4
        "[tls]",              // 5
        "cert = \"tls.crt\"", // 6
        "key = \"tls.key\"",  // 7
    }));
    expect_errors(r, {
                         {2, "member.name", "required key missing"},
                         {2, "member.peer", "required key missing"},
                         {4, "inbound.listen", "required key missing"},
                         {5, "tls.ca", "required key missing"},
                     });
}

TEST_F(ConfigTest, MissingTablesReportTheirKeysAtLineOne) {
    LoadResult r = load(doc({"", "[log]", "level = \"warn\""}));
    expect_errors(r, {
                         {1, "member.name", "required key missing"},
                         {1, "member.peer", "required key missing"},
                         {1, "inbound.listen", "required key missing"},
                         {1, "tls.cert", "required key missing"},
                         {1, "tls.key", "required key missing"},
                         {1, "tls.ca", "required key missing"},
                     });
    EXPECT_EQ(r.errors[1].text(), file() + ":1: member.peer: required key missing");
}

TEST_F(ConfigTest, WrongTypesNameBothTypes) {
    LoadResult r = load(base() + doc({
                                     "[cluster]",               // 12
                                     "peers = \"etcd-1:2380\"", // 13
                                     "bootstrap = \"yes\"",     // 14
                                     "view_interval = 5",       // 15
                                     "[admission]",             // 16
                                     "max_minor_skew = 1.5",    // 17
                                     "mode = [\"leader\"]",     // 18
                                     "allow_older = 1",         // 19
                                     "[admission.retry]",       // 20
                                     "multiplier = \"2\"",      // 21
                                     "[log]",                   // 22
                                     "level = { a = 1 }",       // 23
                                 }));
    expect_errors(r, {
                         {13, "cluster.peers", "expected an array, got a string"},
                         {14, "cluster.bootstrap", "expected a boolean, got a string"},
                         {15, "cluster.view_interval",
                          "expected a duration string like \"10s\", got an integer"},
                         {17, "admission.max_minor_skew", "expected an integer, got a float"},
                         {18, "admission.mode", "expected a string, got an array"},
                         {19, "admission.allow_older", "expected a boolean, got an integer"},
                         {21, "admission.retry.multiplier", "expected a number, got a string"},
                         {23, "log.level", "expected a string, got a table"},
                     });
}

TEST_F(ConfigTest, TablesOfTheWrongShape) {
    LoadResult r = load(doc({
        "admin = \"127.0.0.1:9380\"",       // 1
        "[member]",                         // 2
        "name = \"etcd-0\"",                // 3
        "peer = \"http://127.0.0.1:2381\"", // 4
        "[inbound]",                        // 5
        "listen = \"0.0.0.0:2380\"",        // 6
        "[tls]",                            // 7
        "cert = \"tls.crt\"",               // 8
        "key = \"tls.key\"",                // 9
        "ca = \"ca.crt\"",                  // 10
        "[outbound.route]",                 // 11 a table, not an array of tables
        "listen = \"127.0.0.1:1\"",         // 12
        "[admission]",                      // 13
        "override = [1, 2]",                // 14
    }));
    expect_errors(r, {
                         {1, "admin", "expected a table, got a string"},
                         {11, "outbound.route",
                          "expected an array of tables ([[outbound.route]]), got a table"},
                         {14, "admission.override[0]", "expected a table, got an integer"},
                         {14, "admission.override[1]", "expected a table, got an integer"},
                     });
}

TEST_F(ConfigTest, EnumsListTheirChoices) {
    LoadResult r = load(base() + doc({
                                     "[admission]",            // 12
                                     "mode = \"leaderr\"",     // 13
                                     "policy = \"not_older\"", // 14
                                     "fail = \"shut\"",        // 15
                                     "on_reject = \"crash\"",  // 16
                                     "[log]",                  // 17
                                     "format = \"yaml\"",      // 18
                                     "level = \"trace\"",      // 19
                                 }));
    expect_errors(r, {
                         {13, "admission.mode",
                          "must be one of \"leader\", \"follower\", \"both\", \"observe\"; got "
                          "\"leaderr\""},
                         {14, "admission.policy", "\"not-older-than-leader\""},
                         {15, "admission.fail", "\"closed\", \"open\""},
                         {16, "admission.on_reject", "\"wait\", \"exit\""},
                         {18, "log.format", "\"json\", \"text\"; got \"yaml\""},
                         {19, "log.level", "\"debug\", \"info\", \"warn\", \"error\""},
                     });
    std::string text = base();
    text.insert(text.find("peer ="), "profile = \"etcd4\"\n");
    expect_one_error(load(text), 3, "member.profile", "\"etcd3\", \"etcd2\", \"generic\"; got");
}

// ---- member ----------------------------------------------------------------------------

TEST_F(ConfigTest, MemberVersionAndProtocolUseTheVersionParser) {
    for (const char* good : {"auto", "3.4.23", "v3.5.0-rc.1", "3.5.0+build.7", "2"}) {
        std::string text = base();
        text.insert(text.find("peer ="), "version = \"" + std::string(good) + "\"\n");
        LoadResult v = load(text);
        EXPECT_THAT(v.errors, IsEmpty()) << good << "\n" << describe(v.errors);
        if (v.config) {
            EXPECT_EQ(v.config->member.version, good);
        }
    }
    std::string text = base();
    text.insert(text.find("peer ="), "version = \"3.4.x\"\nprotocol = \"2..1\"\n");
    LoadResult r = load(text);
    expect_errors(r, {
                         {3, "member.version", "not a version: \"3.4.x\""},
                         {4, "member.protocol", "not a protocol range: \"2..1\""},
                     });
    EXPECT_THAT(r.errors[0].message, HasSubstr("\"auto\""));
}

TEST_F(ConfigTest, MemberUrlsAndName) {
    std::string text = doc({
        "[member]",                              // 1
        "name = \"etcd 0\\n\"",                  // 2 control character
        "peer = \"http://127.0.0.1\"",           // 3 no port
        "client = \"http://127.0.0.1:2379/v3\"", // 4 path not allowed
        "probe_interval = \"0s\"",               // 5 must be > 0
        "[inbound]",                             // 6
        "listen = \"0.0.0.0:2380\"",             // 7
        "[tls]",                                 // 8
        "cert = \"tls.crt\"",                    // 9
        "key = \"tls.key\"",                     // 10
        "ca = \"ca.crt\"",                       // 11
    });
    expect_errors(load(text), {
                                  {2, "member.name", "printable ASCII"},
                                  {3, "member.peer", "not an http URL: \"http://127.0.0.1\""},
                                  {4, "member.client", "no path allowed"},
                                  {5, "member.probe_interval", "must be more than 0"},
                              });
}

// ---- durations -------------------------------------------------------------------------

TEST(Duration, ParsesValidForms) {
    struct Case {
        const char* text;
        Duration want;
    } cases[] = {
        {"0", Duration{0}}, {"0s", Duration{0}}, {"0ms", Duration{0}},
        {"250ms", 250ms},   {"10s", 10s},        {"5m", 5min},
        {"1h", 1h},         {"1m30s", 90s},      {"1h2m3s4ms", 3723004ms},
        {"2h45m", 165min},  {"1s500ms", 1500ms}, {"90s", 90s},
        {"36h", 36h},
    };
    for (const Case& c : cases) {
        auto d = parse_duration(c.text);
        ASSERT_TRUE(d.has_value()) << c.text;
        EXPECT_EQ(*d, c.want) << c.text;
    }
}

TEST(Duration, RejectsMalformedText) {
    for (const char* bad : {"",
                            "10",
                            "5",
                            "-5s",
                            "+5s",
                            "10 s",
                            " 10s",
                            "10s ",
                            "1.5s",
                            "10S",
                            "10sec",
                            "5d",
                            "1us",
                            "s",
                            "ms",
                            "30s1m",
                            "1m1m",
                            "1s1h",
                            "99999999999999h",
                            "0x10s",
                            "1e3ms",
                            "10s\n"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(Duration, FormatsAsTheShortestText) {
    EXPECT_EQ(format_duration(Duration{0}), "0s");
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(90s), "1m30s");
    EXPECT_EQ(format_duration(1h), "1h");
    EXPECT_EQ(format_duration(3723004ms), "1h2m3s4ms");
    EXPECT_EQ(format_duration(12s), "12s");
    for (const char* text : {"250ms", "10s", "5m", "1h", "1m30s", "2h0m1ms"}) {
        auto d = parse_duration(text);
        ASSERT_TRUE(d.has_value()) << text;
        EXPECT_EQ(parse_duration(format_duration(*d)), d) << text;
    }
}

TEST_F(ConfigTest, DurationErrorsShowTheText) {
    LoadResult r = load(base() + doc({
                                     "[cluster]",                // 12
                                     "view_interval = \"10 s\"", // 13
                                     "[admission.retry]",        // 14
                                     "deadline = \"-1s\"",       // 15
                                     "initial = \"0\"",          // 16 zero where it cannot be
                                     "[limits]",                 // 17
                                     "idle_timeout = \"5\"",     // 18 missing unit
                                     "drain_timeout = 15",       // 19 integer
                                 }));
    expect_errors(r, {
                         {13, "cluster.view_interval", "not a duration: \"10 s\""},
                         {15, "admission.retry.deadline", "not a duration: \"-1s\""},
                         {16, "admission.retry.initial", "must be more than 0"},
                         {18, "limits.idle_timeout", "not a duration: \"5\""},
                         {19, "limits.drain_timeout", "got an integer"},
                     });
}

TEST_F(ConfigTest, ZeroIsAllowedWhereItMeansNone) {
    LoadResult r = load(base() + doc({"[admission.retry]", "deadline = \"0\"", "hold = \"0s\""}));
    const Config& c = ok(r);
    EXPECT_EQ(c.admission.retry.deadline, 0s);
    EXPECT_EQ(c.admission.retry.hold, 0s);
}

// ---- host:port ---------------------------------------------------------------------------

TEST(HostPortParse, AcceptsNamesIPv4AndBracketedIPv6) {
    struct Case {
        const char* text;
        HostPort want;
        const char* round_trip;
    } cases[] = {
        {"etcd-0.etcd:2380", {"etcd-0.etcd", 2380}, "etcd-0.etcd:2380"},
        {"etcd-0.etcd.default.svc.cluster.local.:2380",
         {"etcd-0.etcd.default.svc.cluster.local.", 2380},
         "etcd-0.etcd.default.svc.cluster.local.:2380"},
        {"localhost:0", {"localhost", 0}, "localhost:0"},
        {"10.0.0.12:65535", {"10.0.0.12", 65535}, "10.0.0.12:65535"},
        {"0.0.0.0:2380", {"0.0.0.0", 2380}, "0.0.0.0:2380"},
        {"[::1]:2380", {"::1", 2380}, "[::1]:2380"},
        {"[::]:0", {"::", 0}, "[::]:0"},
        {"[fd00::12]:2380", {"fd00::12", 2380}, "[fd00::12]:2380"},
        {"[fe80::1%eth0]:2380", {"fe80::1%eth0", 2380}, "[fe80::1%eth0]:2380"},
    };
    for (const Case& c : cases) {
        std::string why;
        auto hp = parse_host_port(c.text, &why);
        ASSERT_TRUE(hp.has_value()) << c.text << ": " << why;
        EXPECT_EQ(*hp, c.want) << c.text;
        EXPECT_EQ(hp->text(), c.round_trip);
    }
}

TEST(HostPortParse, RejectsMalformedAddresses) {
    struct Case {
        const char* text;
        const char* why;
    } cases[] = {
        {"etcd-0", "missing :PORT"},
        {"etcd-0:", "port must be a number"},
        {"etcd-0:65536", "port must be a number"},
        {"etcd-0:-1", "port must be a number"},
        {"etcd-0: 80", "port must be a number"},
        {"etcd-0:80x", "port must be a number"},
        {"etcd-0:0080000", "port must be a number"},
        {":2380", "host is empty"},
        {"::1:2380", "in brackets"},
        {"[::1]", "expected :PORT after ']'"},
        {"[::1:2380", "missing ']'"},
        {"[zz::1]:2380", "not an IPv6 address"},
        {"[10.0.0.1]:2380", "not an IPv6 address"},
        {"300.1.1.1:2380", "not an IPv4 address"},
        {"10.0.0:2380", "not an IPv4 address"},
        {"-etcd:2380", "not a valid DNS name"},
        {"etcd..0:2380", "not a valid DNS name"},
        {"etcd 0:2380", "not a valid DNS name"},
        {"http://etcd:2380", "in brackets"},
    };
    for (const Case& c : cases) {
        std::string why;
        EXPECT_FALSE(parse_host_port(c.text, &why).has_value()) << c.text;
        EXPECT_THAT(why, HasSubstr(c.why)) << c.text;
        EXPECT_THAT(why, HasSubstr(std::string("\"") + c.text + "\"")) << c.text;
    }
}

TEST(HttpUrlParse, PeerUrlsAndProbeUrls) {
    auto u = parse_http_url("http://127.0.0.1:2381");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->scheme, "http");
    EXPECT_EQ(u->authority, (HostPort{"127.0.0.1", 2381}));
    EXPECT_EQ(u->text, "http://127.0.0.1:2381");
    EXPECT_TRUE(parse_http_url("http://[::1]:2381/").has_value());
    EXPECT_FALSE(parse_http_url("http://127.0.0.1:2381/version").has_value());
    EXPECT_TRUE(parse_http_url("http://127.0.0.1:2381/version", true).has_value());
    EXPECT_FALSE(parse_http_url("https://127.0.0.1:2381").has_value());
    EXPECT_FALSE(parse_http_url("127.0.0.1:2381").has_value());
    EXPECT_FALSE(parse_http_url("http://127.0.0.1").has_value());
    EXPECT_FALSE(parse_http_url("http://127.0.0.1:2381/a b", true).has_value());
}

TEST_F(ConfigTest, HostPortErrorsCarryIndexedKeyPaths) {
    LoadResult r = load(base() + doc({
                                     "[cluster]",                                  // 12
                                     "peers = [\"etcd-0:2380\", \"etcd-1:2380\",", // 13
                                     "  \"etcd-2\", 7,",                           // 14
                                     "  \"etcd-0:2380\"]",                         // 15
                                     "[[outbound.route]]",                         // 16
                                     "listen = \"127.0.0.1:12380\"",               // 17
                                     "peer = \"etcd-1:2380\"",                     // 18
                                     "[[outbound.route]]",                         // 19
                                     "listen = \"127.0.0.1:12381\"",               // 20
                                     "peer = \"etcd-1\"",                          // 21
                                 }));
    expect_errors(r, {
                         {14, "cluster.peers[2]", "not host:port: \"etcd-2\""},
                         {14, "cluster.peers[3]", "expected a string, got an integer"},
                         {15, "cluster.peers[4]", "etcd-0:2380 is listed twice"},
                         {21, "outbound.route[1].peer", "not host:port: \"etcd-1\""},
                     });
}

TEST_F(ConfigTest, ListenHostsMustBeIpAddressesOrLocalhost) {
    std::string text = base();
    text.replace(text.find("0.0.0.0:2380"), 12, "etcd-0.etcd:2380");
    LoadResult r = load(text + doc({
                                   "[outbound]",                  // 12
                                   "listen = \"localhost:2390\"", // 13 fine
                                   "[admin]",                     // 14
                                   "listen = \"[::1]:9380\"",     // 15 fine
                                   "[[outbound.route]]",          // 16
                                   "listen = \"proxy:12380\"",    // 17
                                   "peer = \"etcd-1.etcd:2380\"", // 18 a name is fine here
                               }));
    expect_errors(r, {
                         {6, "inbound.listen",
                          "cannot listen on \"etcd-0.etcd:2380\": the host must be an IP address"},
                         {17, "outbound.route[0].listen", "cannot listen on \"proxy:12380\""},
                     });
}

TEST_F(ConfigTest, ListenAddressesMustDifferUnlessPortZero) {
    LoadResult r = load(base() + doc({
                                     "[outbound]",                  // 12
                                     "listen = \"127.0.0.1:2380\"", // 13 under 0.0.0.0:2380
                                     "[[outbound.route]]",          // 14
                                     "listen = \"127.0.0.1:9380\"", // 15 the admin default
                                     "peer = \"etcd-1:2380\"",      // 16
                                 }));
    expect_errors(r, {
                         {13, "outbound.listen", "127.0.0.1:2380 is also inbound.listen"},
                         {15, "outbound.route[0].listen",
                          "127.0.0.1:9380 is also admin.listen (its default)"},
                     });

    // Port 0 everywhere: tests bind ephemeral ports and must not trip the rule.
    std::string text = base();
    text.replace(text.find("0.0.0.0:2380"), 12, "127.0.0.1:0");
    r = load(text +
             doc({"[outbound]", "listen = \"127.0.0.1:0\"", "[admin]", "listen = \"127.0.0.1:0\"",
                  "[[outbound.route]]", "listen = \"127.0.0.1:0\"", "peer = \"etcd-1:2380\""}));
    ok(r);

    // Same port on two distinct specific hosts is fine.
    r = load(base() + doc({"[outbound]", "listen = \"127.0.0.2:2390\"", "[admin]",
                           "listen = \"127.0.0.1:2390\""}));
    ok(r);

    // localhost is 127.0.0.1 for this rule.
    r = load(base() + doc({"[outbound]", "listen = \"localhost:9380\""}));
    expect_one_error(r, 13, "outbound.listen", "localhost:9380 is also admin.listen");

    // The local peer cannot sit on one of joingate's own addresses.
    text = base();
    text.replace(text.find("127.0.0.1:2381"), 14, "127.0.0.1:2380");
    expect_one_error(load(text), 3, "member.peer",
                     "127.0.0.1:2380 is also joingate's inbound.listen");
}

// ---- TLS ---------------------------------------------------------------------------------

TEST_F(ConfigTest, TlsPathsResolveAgainstTheConfigDirectoryNotTheWorkingDirectory) {
    touch(dir_ / "pki" / "peer.crt");
    fs::path abs_key = dir_ / "elsewhere" / "peer.key";
    touch(abs_key);
    std::string text = doc({
        "[member]",
        "name = \"etcd-0\"",
        "peer = \"http://127.0.0.1:2381\"",
        "[inbound]",
        "listen = \"0.0.0.0:2380\"",
        "[tls]",
        "cert = \"pki/../pki/peer.crt\"",
        "key = \"" + abs_key.string() + "\"",
        "ca = \"./ca.crt\"",
        "allowed_peers = [\"spiffe://cluster/etcd-*\", \"\"]",
    });
    fs::path old = fs::current_path();
    fs::current_path(fs::temp_directory_path());
    LoadResult r = load(text);
    fs::current_path(old);
    expect_one_error(r, 10, "tls.allowed_peers[1]", "must not be empty");

    text.replace(text.find(", \"\"]"), 5, "]");
    r = load(text);
    const Config& c = ok(r);
    EXPECT_EQ(c.tls.cert, (dir_ / "pki" / "peer.crt").string());
    EXPECT_EQ(c.tls.key, abs_key.string());
    EXPECT_EQ(c.tls.ca, (dir_ / "ca.crt").string());
    EXPECT_TRUE(fs::path(c.tls.cert).is_absolute());
}

TEST_F(ConfigTest, MissingOrUnreadableTlsFilesAreErrors) {
    fs::create_directories(dir_ / "adir");
    LoadResult r = load(doc({
        "[member]",                         // 1
        "name = \"etcd-0\"",                // 2
        "peer = \"http://127.0.0.1:2381\"", // 3
        "[inbound]",                        // 4
        "listen = \"0.0.0.0:2380\"",        // 5
        "[tls]",                            // 6
        "cert = \"nope.crt\"",              // 7
        "key = \"adir\"",                   // 8
        "ca = \"\"",                        // 9
    }));
    expect_errors(r, {
                         {7, "tls.cert", "no such file: " + (dir_ / "nope.crt").string()},
                         {8, "tls.key", "is a directory"},
                         {9, "tls.ca", "must not be empty"},
                     });
    EXPECT_THAT(r.errors[0].message, HasSubstr("relative to the config file"));
}

// ---- admission.retry -------------------------------------------------------------------

TEST_F(ConfigTest, RetryRules) {
    LoadResult r = load(base() + doc({
                                     "[admission.retry]", // 12
                                     "initial = \"1m\"",  // 13 more than max
                                     "max = \"30s\"",     // 14
                                     "multiplier = 0.5",  // 15
                                     "jitter = 1.5",      // 16
                                     "hold = \"9s1ms\"",  // 17
                                 }));
    expect_errors(r, {
                         {13, "admission.retry.initial", "initial 1m is more than max 30s"},
                         {15, "admission.retry.multiplier", "must be 1 or more"},
                         {16, "admission.retry.jitter", "must be between 0 and 1, got 1.5"},
                         {17, "admission.retry.hold", "9s1ms is more than 9s"},
                     });

    r = load(base() + doc({"[admission.retry]", "multiplier = 3", "jitter = 0", "max = \"500ms\"",
                           "initial = \"500ms\""}));
    const Config& c = ok(r);
    EXPECT_DOUBLE_EQ(c.admission.retry.multiplier, 3.0);
    EXPECT_DOUBLE_EQ(c.admission.retry.jitter, 0.0);

    // A max below the default initial is caught too, at the max line.
    expect_one_error(load(base() + doc({"[admission.retry]", "max = \"500ms\""})), 13,
                     "admission.retry.max", "initial 1s is more than max 500ms");
    expect_one_error(load(base() + doc({"[admission]", "max_minor_skew = -1"})), 13,
                     "admission.max_minor_skew", "0 or more");
}

// ---- overrides ---------------------------------------------------------------------------

TEST_F(ConfigTest, OverrideWithinADayIsAccepted) {
    LoadResult r = load(base() + doc({
                                     "[[admission.override]]",           // 12
                                     "member = \"etcd-3\"",              // 13
                                     "until = \"2026-11-26T10:00:00Z\"", // 14 exactly 24 h
                                     "reason = \"INC-7\"",               // 15
                                 }));
    const Config& c = ok(r);
    ASSERT_EQ(c.admission.overrides.size(), 1u);
    EXPECT_EQ(c.admission.overrides[0].line, 12);
    EXPECT_EQ(c.admission.overrides[0].member, "etcd-3");
    EXPECT_EQ(c.admission.overrides[0].until, now_ + 24h);
    EXPECT_THAT(r.warnings, IsEmpty());
}

TEST_F(ConfigTest, OverrideRules) {
    LoadResult r =
        load(base() + doc({
                          "[[admission.override]]",           // 12 more than 24 h ahead
                          "member = \"etcd-3\"",              // 13
                          "until = 2026-11-26T10:00:01Z",     // 14
                          "reason = \"INC-7\"",               // 15
                          "[[admission.override]]",           // 16 both member and version
                          "member = \"etcd-3\"",              // 17
                          "version = \"3.5.0\"",              // 18
                          "until = \"2026-11-25T11:00:00Z\"", // 19
                          "reason = \"x\"",                   // 20
                          "[[admission.override]]",           // 21 neither; no until; empty reason
                          "reason = \"  \"",                  // 22
                          "[[admission.override]]",      // 23 bad version, local time, no reason
                          "version = \"3.5\"",           // 24
                          "until = 2026-11-25T11:00:00", // 25
                          "[[admission.override]]",      // 26 unparseable string
                          "member = \"\"",               // 27
                          "until = \"tomorrow\"",        // 28
                          "reason = \"x\"",              // 29
                          "[[admission.override]]",      // 30 wrong type for until
                          "member = \"etcd-4\"",         // 31
                          "until = 1700000000",          // 32
                          "reason = \"x\"",              // 33
                      }));
    expect_errors(r, {
                         {14, "admission.override[0].until",
                          "2026-11-26T10:00:01Z is more than 24h ahead (now 2026-11-25T10:00:00Z)"},
                         {18, "admission.override[1].version", "set member or version, not both"},
                         {21, "admission.override[2]", "needs member or version"},
                         {21, "admission.override[2].until", "required key missing"},
                         {22, "admission.override[2].reason", "must not be empty"},
                         {23, "admission.override[3].reason", "required key missing"},
                         {24, "admission.override[3].version", "not a version: \"3.5\""},
                         {25, "admission.override[3].until", "needs a UTC offset"},
                         {27, "admission.override[4].member", "must not be empty"},
                         {28, "admission.override[4].until",
                          "not an RFC 3339 time with offset: \"tomorrow\""},
                         {32, "admission.override[5].until",
                          "expected a date-time like 2026-11-25T10:00:00Z, got an integer"},
                     });
}

TEST_F(ConfigTest, ExpiredOverrideIsAWarningNotAnError) {
    LoadResult r = load(base() + doc({
                                     "[[admission.override]]",       // 12
                                     "version = \"3.5.0\"",          // 13
                                     "until = 2026-11-25T09:59:59Z", // 14
                                     "reason = \"old break-glass\"", // 15
                                 }));
    const Config& c = ok(r);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0].line, 14);
    EXPECT_EQ(r.warnings[0].key, "admission.override[0].until");
    EXPECT_THAT(r.warnings[0].message, HasSubstr("expired at 2026-11-25T09:59:59Z"));
    EXPECT_THAT(r.warnings[0].message, HasSubstr("ignored"));
    // Kept in the config: admission ignores it by time, and /status can still show it.
    ASSERT_EQ(c.admission.overrides.size(), 1u);
    EXPECT_EQ(c.admission.overrides[0].version, "3.5.0");
}

TEST(Rfc3339, ParsesOffsetsAndFractions) {
    auto z = parse_rfc3339("2026-11-25T10:00:00Z");
    ASSERT_TRUE(z.has_value());
    EXPECT_EQ(format_rfc3339(*z), "2026-11-25T10:00:00Z");
    EXPECT_EQ(parse_rfc3339("2026-11-25T12:30:00+02:30"), z);
    EXPECT_EQ(parse_rfc3339("2026-11-25 05:00:00-05:00"), z);
    auto frac = parse_rfc3339("2026-11-25T10:00:00.250Z");
    ASSERT_TRUE(frac.has_value());
    EXPECT_EQ(*frac - *z, 250ms);
    for (const char* bad :
         {"2026-11-25T10:00:00", "2026-11-25", "2026-02-30T10:00:00Z", "2026-11-25T24:00:00Z",
          "2026-11-25T10:00:00+2:00", "2026-11-25T10:00:00Zjunk", "tomorrow", ""}) {
        EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
    }
}

// ---- profiles ----------------------------------------------------------------------------

std::string generic_member(const char* version = "auto") {
    return doc({
        "[member]",                                   // 1
        "name = \"node-0\"",                          // 2
        "profile = \"generic\"",                      // 3
        std::string("version = \"") + version + "\"", // 4
        "peer = \"http://127.0.0.1:2381\"",           // 5
        "[inbound]",                                  // 6
        "listen = \"0.0.0.0:2380\"",                  // 7
        "[tls]",                                      // 8
        "cert = \"tls.crt\"",                         // 9
        "key = \"tls.key\"",                          // 10
        "ca = \"ca.crt\"",                            // 11
    });
}

TEST_F(ConfigTest, GenericProfileIsReadFromTheProfileTable) {
    LoadResult r = load(generic_member() +
                        doc({
                            "[profile]",                                                  // 12
                            "join_routes = [{ method = \"PUT\", prefix = \"/join\" },",   // 13
                            "               { prefix = \"/members/add\" }]",              // 14
                            "version_header = \"X-Server-Version\"",                      // 15
                            "body_version_pointer = \"/version\"",                        // 16
                            "version_probe_url = \"http://127.0.0.1:2381/version\"",      // 17
                            "version_probe_pointer = \"/etcdserver\"",                    // 18
                            "leader_probe_url = \"http://127.0.0.1:2381/v2/stats/self\"", // 19
                            "leader_probe_pointer = \"/state\"",                          // 20
                            "leader_probe_expected = \"StateLeader\"",                    // 21
                        }));
    const Config& c = ok(r);
    ASSERT_TRUE(c.profile.has_value());
    const GenericProfile& p = *c.profile;
    ASSERT_EQ(p.join_routes.size(), 2u);
    EXPECT_EQ(p.join_routes[0].method, "PUT");
    EXPECT_EQ(p.join_routes[0].path_prefix, "/join");
    EXPECT_EQ(p.join_routes[1].method, "");
    EXPECT_EQ(p.join_routes[1].path_prefix, "/members/add");
    EXPECT_EQ(p.version_header, "X-Server-Version");
    EXPECT_EQ(p.body_version_pointer, "/version");
    EXPECT_EQ(p.version_probe_url, "http://127.0.0.1:2381/version");
    EXPECT_EQ(p.version_probe_pointer, "/etcdserver");
    EXPECT_EQ(p.leader_probe_url, "http://127.0.0.1:2381/v2/stats/self");
    EXPECT_EQ(p.leader_probe_pointer, "/state");
    EXPECT_EQ(p.leader_probe_expected, "StateLeader");
}

TEST_F(ConfigTest, GenericProfileRules) {
    // Generic without [profile]: reported at member.profile.
    expect_one_error(load(generic_member()), 3, "profile", "required when member.profile");

    // [profile] with a built-in profile.
    // [profile] with a built-in profile: one error, not one per missing generic field.
    LoadResult r = load(base() + doc({"[profile]", "version_header = \"X-V\""}));
    expect_one_error(r, 12, "profile",
                     "only allowed when member.profile = \"generic\" (member.profile is "
                     "\"etcd3\")");
    // A misspelt member.profile is the one error; the [profile] table is not blamed too.
    std::string text = base();
    text.insert(text.find("peer ="), "profile = \"gneric\"\n");
    expect_one_error(load(text + doc({"[profile]", "version_header = \"X-V\""})), 3,
                     "member.profile", "got \"gneric\"");

    r = load(
        generic_member() +
        doc({
            "[profile]",                                                                     // 12
            "join_routes = [{ method = \"put\", prefix = \"join\" }, { method = \"PUT\" }]", // 13
            "version_header = \"X Server\"",                                                 // 14
            "body_version_pointer = \"version\"",                                            // 15
            "version_probe_url = \"127.0.0.1:2381/version\"",                                // 16
            "leader_probe_url = \"http://127.0.0.1:2381/leader\"",                           // 17
            "leader_probe_pointer = \"/a~2b\"",                                              // 18
            "leader_probe_expected = \"\"",                                                  // 19
        }));
    expect_errors(r, {
                         {12, "profile.version_probe_pointer", "required key missing"},
                         {13, "profile.join_routes[0].method", "not an HTTP method: \"put\""},
                         {13, "profile.join_routes[0].prefix", "must be a path starting with '/'"},
                         {13, "profile.join_routes[1].prefix", "required key missing"},
                         {14, "profile.version_header", "not an HTTP header name"},
                         {15, "profile.body_version_pointer", "not a JSON pointer: \"version\""},
                         {16, "profile.version_probe_url", "not an http URL"},
                         {18, "profile.leader_probe_pointer", "not a JSON pointer"},
                         {19, "profile.leader_probe_expected", "must not be empty"},
                     });

    // With a fixed version no version probe is needed; routes and leader probe still are.
    r = load(generic_member("1.2.3") + doc({"[profile]", "join_routes = []"}));
    expect_errors(r, {
                         {12, "profile.leader_probe_url", "required key missing"},
                         {12, "profile.leader_probe_pointer", "required key missing"},
                         {12, "profile.leader_probe_expected", "required key missing"},
                         {13, "profile.join_routes", "must list at least one route"},
                     });
}

// ---- limits -----------------------------------------------------------------------------

TEST_F(ConfigTest, LimitsBounds) {
    LoadResult r = load(base() + doc({
                                     "[limits]",                   // 12
                                     "max_header_bytes = 1023",    // 13
                                     "max_uri_bytes = 1048577",    // 14
                                     "handshake_timeout = \"0s\"", // 15
                                     "connect_timeout = \"0\"",    // 16
                                     "max_connections = 0",        // 17
                                 }));
    expect_errors(r, {
                         {13, "limits.max_header_bytes", "1 KiB..1 MiB), got 1023"},
                         {14, "limits.max_uri_bytes", "got 1048577"},
                         {15, "limits.handshake_timeout", "must be more than 0"},
                         {16, "limits.connect_timeout", "must be more than 0"},
                         {17, "limits.max_connections", "must be 1 or more, got 0"},
                     });
    r = load(base() + doc({"[limits]", "max_header_bytes = 1024", "max_uri_bytes = 1048576",
                           "max_connections = 1"}));
    const Config& c = ok(r);
    EXPECT_EQ(c.limits.max_header_bytes, 1024u);
    EXPECT_EQ(c.limits.max_uri_bytes, 1048576u);
    EXPECT_EQ(c.limits.max_connections, 1u);
}

// ---- reload ------------------------------------------------------------------------------

TEST_F(ConfigTest, ReloadRefusesChangedListenAddresses) {
    std::string routes = doc({"[outbound]", "listen = \"127.0.0.1:2390\"", "[[outbound.route]]",
                              "listen = \"127.0.0.1:12380\"", "peer = \"etcd-1:2380\""});
    LoadResult a = load(base() + routes);
    ASSERT_NE(a.config, nullptr) << describe(a.errors);

    // Everything else may change: log level, peers, the route's target.
    std::string same = base() + routes + doc({"[log]", "level = \"debug\""});
    same.replace(same.find("etcd-1:2380"), 11, "etcd-2:2380");
    LoadResult b = load(same);
    ASSERT_NE(b.config, nullptr) << describe(b.errors);
    EXPECT_THAT(check_reload(*a.config, *b.config), IsEmpty());

    std::string moved = base() + doc({
                                     "[outbound]",                   // 12
                                     "[[outbound.route]]",           // 13
                                     "listen = \"127.0.0.1:12381\"", // 14
                                     "peer = \"etcd-1:2380\"",       // 15
                                     "[[outbound.route]]",           // 16
                                     "listen = \"127.0.0.1:12382\"", // 17
                                     "peer = \"etcd-1:2380\"",       // 18
                                     "[admin]",                      // 19
                                     "listen = \"127.0.0.1:9381\"",  // 20
                                 });
    moved.replace(moved.find("0.0.0.0:2380"), 12, "0.0.0.0:2480");
    LoadResult c = load(moved);
    ASSERT_NE(c.config, nullptr) << describe(c.errors);
    std::vector<Error> errors = check_reload(*a.config, *c.config);
    ASSERT_EQ(errors.size(), 5u) << describe(errors);
    EXPECT_EQ(errors[0].key, "inbound.listen");
    EXPECT_EQ(errors[0].line, 6);
    EXPECT_EQ(errors[0].file, file());
    EXPECT_THAT(errors[0].message, HasSubstr("running 0.0.0.0:2380, new 0.0.0.0:2480"));
    EXPECT_EQ(errors[1].key, "outbound.listen");
    EXPECT_THAT(errors[1].message, HasSubstr("running 127.0.0.1:2390, new none"));
    EXPECT_EQ(errors[2].key, "admin.listen");
    EXPECT_EQ(errors[2].line, 20);
    EXPECT_EQ(errors[3].key, "outbound.route[0].listen");
    EXPECT_EQ(errors[3].line, 14);
    EXPECT_EQ(errors[4].key, "outbound.route[1].listen");
    EXPECT_THAT(errors[4].message, HasSubstr("running none, new 127.0.0.1:12382"));

    // Removing a route is a change too.
    std::vector<Error> removed = check_reload(*a.config, *load(base()).config);
    ASSERT_EQ(removed.size(), 2u) << describe(removed);
    EXPECT_EQ(removed[0].key, "outbound.listen");
    EXPECT_EQ(removed[1].key, "outbound.route");
    EXPECT_THAT(removed[1].message, HasSubstr("127.0.0.1:12380 was removed"));
}

// ---- small things ------------------------------------------------------------------------

TEST(ErrorText, RendersFileLineKeyMessage) {
    EXPECT_EQ((Error{"/etc/joingate.toml", 12, "admission.retry.hold", "too long"}).text(),
              "/etc/joingate.toml:12: admission.retry.hold: too long");
    EXPECT_EQ((Error{"x.toml", 3, "", "syntax"}).text(), "x.toml:3: syntax");
    EXPECT_EQ((Error{"x.toml", 0, "", "cannot read"}).text(), "x.toml: cannot read");
}

TEST(EnumNames, MatchTheConfigSpelling) {
    EXPECT_STREQ(to_string(Profile::etcd3), "etcd3");
    EXPECT_STREQ(to_string(Profile::etcd2), "etcd2");
    EXPECT_STREQ(to_string(Profile::generic), "generic");
    EXPECT_STREQ(to_string(Mode::observe), "observe");
    EXPECT_STREQ(to_string(Mode::both), "both");
    EXPECT_STREQ(to_string(Policy::not_older_than_leader), "not-older-than-leader");
    EXPECT_STREQ(to_string(Policy::protocol), "protocol");
    EXPECT_STREQ(to_string(FailMode::closed), "closed");
    EXPECT_STREQ(to_string(OnReject::exit), "exit");
    EXPECT_STREQ(to_string(LogFormat::text), "text");
    EXPECT_STREQ(to_string(LogLevel::warn), "warn");
}

} // namespace
