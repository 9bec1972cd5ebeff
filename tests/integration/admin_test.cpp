// Black-box tests of the operator interfaces (DESIGN §4, §8, §9): the admin listener, the
// version document on the inbound listener, SIGHUP reloads, SIGTERM drains, and
// `joingate check-config`.
#include <gtest/gtest.h>

#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/fixture.hpp"

namespace joingate::test {
namespace {

using std::chrono::milliseconds;

class Admin : public JoingateTest {};

TEST_F(Admin, HealthAndReadiness) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto h = http_get(jg->admin_port, "/healthz");
    ASSERT_EQ(h.io, Io::ok) << h.error;
    EXPECT_EQ(h.response.status, 200);
    auto r = http_get(jg->admin_port, "/readyz");
    ASSERT_EQ(r.io, Io::ok) << r.error;
    EXPECT_EQ(r.response.status, 200)
        << "observe mode, bootstrap: ready at once; " << r.response.body;
}

TEST_F(Admin, MetricsCountTraffic) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c->write(inbound_get("/small")));
        Response r;
        ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
        ASSERT_EQ(r.status, 200);
    }
    auto m = http_get(jg->admin_port, "/metrics");
    ASSERT_EQ(m.io, Io::ok) << m.error;
    EXPECT_EQ(m.response.status, 200);
    auto type = m.response.header("Content-Type").value_or("");
    EXPECT_NE(type.find("text/plain"), std::string::npos) << type;
    EXPECT_NE(type.find("version=0.0.4"), std::string::npos) << type;
    const std::string& text = m.response.body;
    EXPECT_NE(text.find("# TYPE joingate_requests_total counter"), std::string::npos);
    EXPECT_EQ(metric_value(text, "joingate_build_info"), 1.0) << text;
    EXPECT_GE(
        metric_value(text, "joingate_requests_total", {"listener=\"inbound\"", "code=\"200\""})
            .value_or(0),
        3.0)
        << text;
    // The client connection is still open: the gauge shows it.
    EXPECT_GE(
        metric_value(text, "joingate_connections_active", {"listener=\"inbound\""}).value_or(0),
        1.0)
        << text;
    EXPECT_TRUE(metric_value(text, "joingate_member_info",
                             {"member=\"m0\"", "version=\"3.4.23\"", "profile=\"etcd3\""})
                    .has_value())
        << text;
    EXPECT_GT(metric_value(text, "joingate_cert_expiry_timestamp_seconds").value_or(0), 1.7e9);

    c->close();
    EXPECT_TRUE(eventually([&] {
        return metric(*jg, "joingate_connections_active", {"listener=\"inbound\""}) == 0;
    })) << "joingate_connections_active{listener=\"inbound\"} did not drop after the close";
}

TEST_F(Admin, StatusIsJson) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto s = http_get(jg->admin_port, "/status");
    ASSERT_EQ(s.io, Io::ok) << s.error;
    EXPECT_EQ(s.response.status, 200);
    EXPECT_EQ(s.response.header("Content-Type").value_or("").substr(0, 16), "application/json");
    EXPECT_TRUE(looks_like_json_object(s.response.body)) << s.response.body;
    EXPECT_NE(s.response.body.find("\"m0\""), std::string::npos) << s.response.body;
}

void expect_version_document(const Response& r) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type").value_or("").substr(0, 16), "application/json");
    EXPECT_TRUE(looks_like_json_object(r.body)) << r.body;
    EXPECT_EQ(json_number(r.body, "api"), 1.0) << r.body;
    EXPECT_EQ(json_string(r.body, "member"), "m0") << r.body;
    EXPECT_EQ(json_string(r.body, "version"), "3.4.23") << r.body;
    EXPECT_EQ(json_string(r.body, "profile"), "etcd3") << r.body;
    EXPECT_EQ(json_string(r.body, "mode"), "observe") << r.body;
    EXPECT_NE(r.body.find("\"protocol\":{\"min\":1,\"max\":1}"), std::string::npos) << r.body;
}

TEST_F(Admin, VersionDocumentOnAdminListener) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto v = http_get(jg->admin_port, "/joingate/v1/version");
    ASSERT_EQ(v.io, Io::ok) << v.error;
    expect_version_document(v.response);
}

TEST_F(Admin, VersionDocumentOnInboundIsAnsweredByJoingate) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/joingate/v1/version")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    expect_version_document(r);
    // and the connection goes on relaying
    ASSERT_TRUE(c->write(inbound_get("/small")));
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(backend->requests_for("/joingate/v1/version").size(), 0u)
        << "the version endpoint was forwarded to the peer";
    EXPECT_EQ(backend->request_count(), 1u);
}

TEST_F(Admin, VersionDocumentIsFetchedOverTheForwardProxy) {
    // What a sidecar's follower probe does: another member's inbound, through mTLS.
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto c = tcp_connect(jg->outbound_port);
    ASSERT_NE(c, nullptr);
    std::string authority = jg->inbound_address();
    ASSERT_TRUE(c->write("GET http://" + authority +
                         "/joingate/v1/version HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    expect_version_document(r);
    EXPECT_EQ(backend->request_count(), 0u);
}

TEST_F(Admin, UnknownPathIs404Json) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto x = http_get(jg->admin_port, "/no/such/thing");
    ASSERT_EQ(x.io, Io::ok) << x.error;
    EXPECT_EQ(x.response.status, 404);
    EXPECT_TRUE(looks_like_json_object(x.response.body)) << x.response.body;
    EXPECT_TRUE(json_string(x.response.body, "error").has_value()) << x.response.body;
}

TEST_F(Admin, IsReadOnly) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    auto x =
        plain_exchange(jg->admin_port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                       "Connection: close\r\n\r\n{}");
    ASSERT_EQ(x.io, Io::ok) << x.error;
    EXPECT_EQ(x.response.status, 405);
}

class Signals : public JoingateTest {
  protected:
    // Lines of stdout after the first `skip`, one of which has every needle and one of the
    // given levels.
    static bool logged_after(const JoingateProcess& p, std::size_t skip,
                             const std::vector<std::string>& levels, milliseconds timeout) {
        return eventually(
            [&] {
                std::istringstream in(p.stdout_text());
                std::string line;
                for (std::size_t n = 0; std::getline(in, line); ++n) {
                    if (n < skip)
                        continue;
                    for (const auto& l : levels)
                        if (json_string(line, "level") == l)
                            return true;
                }
                return false;
            },
            timeout);
    }
    static double reloads(const JoingateProcess& p, const char* result) {
        return metric(p, "joingate_config_reloads_total",
                      {std::string("result=\"") + result + "\""});
    }
};

TEST_F(Signals, ReloadWithInvalidConfigKeepsServingTheOldOne) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    double failures = reloads(*jg, "failure");
    std::size_t lines = jg->log_lines();

    jg->write_config("[member\nname = = \"broken\n\x01\x02 garbage }}}\n");
    jg->signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return reloads(*jg, "failure") == failures + 1; }))
        << "joingate_config_reloads_total{result=\"failure\"} did not grow\n"
        << jg->metrics();
    EXPECT_TRUE(logged_after(*jg, lines, {"error", "warn"}, milliseconds(3000)))
        << "the failed reload was not logged";
    EXPECT_TRUE(jg->running());

    // Still serving with the old config, on every listener.
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("X-Joingate-Version"), "3.4.23");
    auto v = http_get(jg->admin_port, "/joingate/v1/version");
    ASSERT_EQ(v.io, Io::ok);
    EXPECT_EQ(json_string(v.response.body, "version"), "3.4.23");

    // A config that parses but is invalid is refused the same way.
    JoingateOptions bad;
    bad.peer = backend->url();
    bad.extra = "[limits]\ndrain_timeout = \"soon\"\n";
    jg->write_config(joingate_config(bad));
    jg->signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return reloads(*jg, "failure") == failures + 2; }))
        << "an invalid limits.drain_timeout was not refused on reload";
    auto h = http_get(jg->admin_port, "/healthz");
    EXPECT_EQ(h.response.status, 200);
}

TEST_F(Signals, ReloadWithValidChangeIsApplied) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    double successes = reloads(*jg, "success");
    JoingateOptions next;
    next.peer = backend->url();
    next.version = "3.4.24";
    jg->write_config(joingate_config(next));
    jg->signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return reloads(*jg, "success") == successes + 1; }))
        << "joingate_config_reloads_total{result=\"success\"} did not grow\n"
        << jg->metrics();
    EXPECT_TRUE(eventually([&] {
        auto v = http_get(jg->admin_port, "/joingate/v1/version");
        return json_string(v.response.body, "version") == "3.4.24";
    })) << "the new member.version is not served";
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("X-Joingate-Version"), "3.4.24");
    EXPECT_EQ(reloads(*jg, "failure"), 0);
}

TEST_F(Signals, ReloadCannotMoveAListener) {
    auto* jg = start_joingate();
    ASSERT_NE(jg, nullptr);
    double failures = reloads(*jg, "failure");
    std::string text = joingate_config(options_for(backend->url()));
    auto p = text.find("[admin]\nlisten = \"127.0.0.1:0\"");
    ASSERT_NE(p, std::string::npos);
    text.replace(p, 30, "[admin]\nlisten = \"127.0.0.1:1\"");
    jg->write_config(text);
    jg->signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return reloads(*jg, "failure") == failures + 1; }))
        << "changing admin.listen on reload should be refused";
    auto h = http_get(jg->admin_port, "/healthz");
    EXPECT_EQ(h.response.status, 200);
}

TEST_F(Signals, SigtermWithOpenStreamStopsAcceptingAndExitsWithinDrainTimeout) {
    JoingateOptions o;
    o.limits = "drain_timeout = \"2s\"";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/stream")));
    Response r;
    ASSERT_EQ(read_head(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
    std::string chunk;
    ASSERT_EQ(read_chunk(*c, chunk, milliseconds(2000)), Io::ok);
    ASSERT_EQ(backend->open_streams(), 1);

    auto t0 = Clock::now();
    jg->signal(SIGTERM);
    // Stops accepting while the stream keeps the process draining.
    bool refused_while_running = eventually(
        [&] {
            std::string err;
            auto probe = TcpConn::connect(jg->inbound_port, &err, milliseconds(500));
            return !probe;
        },
        milliseconds(1500));
    EXPECT_TRUE(refused_while_running) << "the inbound listener still accepts after SIGTERM";
    EXPECT_LT(Clock::now() - t0, milliseconds(1900));

    auto code = jg->wait_exit(milliseconds(6000));
    auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
    ASSERT_TRUE(code.has_value()) << "joingate did not exit within 6 s of SIGTERM (drain 2 s)";
    EXPECT_EQ(*code, 0);
    EXPECT_LT(took, milliseconds(3500)) << "exit took " << took.count() << " ms with drain 2 s";
    EXPECT_TRUE(c->wait_closed(milliseconds(2000))) << "the stream's client was left hanging";
    EXPECT_TRUE(eventually([&] { return backend->open_streams() == 0; }, milliseconds(3000)));
}

// SIGTERM while a snapshot (a chunked POST /raft/snapshot) is on its way in: the transfer
// in flight finishes, every byte reaches the peer, and joingate exits 0 within the drain.
TEST_F(Signals, SigtermDuringASnapshotUploadFinishesItThenExits) {
    JoingateOptions o;
    o.limits = "drain_timeout = \"5s\"";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    // The backend answers /echo-size with the size and hash of the body it read.
    ASSERT_TRUE(c->write("POST /echo-size HTTP/1.1\r\nHost: m0.joingate.test:2380\r\n"
                         "X-Raft-To: 8e9e\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::uint64_t hash = Backend::fnv1a({});
    std::size_t sent = 0;
    auto send_chunk = [&](std::size_t n) {
        std::string data(n, '\0');
        for (std::size_t i = 0; i < n; ++i)
            data[i] = static_cast<char>((sent + i) * 7 + 3);
        hash = Backend::fnv1a(data, hash);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", n);
        sent += n;
        return c->write(size) && c->write(data) && c->write("\r\n");
    };
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(send_chunk(64 * 1024)) << c->last_error;

    auto t0 = Clock::now();
    jg->signal(SIGTERM);
    // The rest of the snapshot keeps arriving for a second after the signal.
    for (int i = 0; i < 10; ++i) {
        std::this_thread::sleep_for(milliseconds(100));
        ASSERT_TRUE(send_chunk(64 * 1024)) << "the upload was cut after " << sent << " bytes: " << c->last_error;
    }
    ASSERT_TRUE(c->write("0\r\n\r\n"));
    Response r;
    ASSERT_EQ(read_response(*c, r, milliseconds(5000)), Io::ok) << c->last_error;
    EXPECT_EQ(r.status, 200);
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    EXPECT_EQ(r.body, std::to_string(sent) + " " + hex) << "the peer got a different snapshot";
    auto code = jg->wait_exit(milliseconds(8000));
    ASSERT_TRUE(code.has_value()) << "joingate did not exit after the snapshot was relayed";
    EXPECT_EQ(*code, 0);
    EXPECT_LT(Clock::now() - t0, milliseconds(6500));
}

TEST_F(Signals, SigtermWhenIdleExitsAtOnce) {
    JoingateOptions o;
    o.limits = "drain_timeout = \"5s\"";
    auto* jg = start_joingate(o);
    ASSERT_NE(jg, nullptr);
    // an idle keep-alive connection must not hold the drain
    auto c = tls_connect(jg->inbound_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->write(inbound_get("/small")));
    Response r;
    ASSERT_EQ(read_response(*c, r), Io::ok);
    auto t0 = Clock::now();
    auto code = jg->stop(milliseconds(8000));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
    EXPECT_LT(Clock::now() - t0, milliseconds(2000))
        << "an idle keep-alive connection held the drain";
}

class CheckConfig : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/joingate-check-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string write(const std::string& name, const std::string& text) {
        std::string path = dir + "/" + name;
        std::ofstream(path) << text;
        return path;
    }
    std::string dir;
};

TEST_F(CheckConfig, GoodFilePrintsOk) {
    auto path = write("good.toml", joingate_config(options_for("http://127.0.0.1:2381")));
    auto res = run_command({joingate_bin(), "check-config", "--config", path});
    ASSERT_FALSE(res.timed_out);
    EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
    EXPECT_NE(res.out.find("ok"), std::string::npos) << res.out;
}

TEST_F(CheckConfig, BadFilePrintsEveryErrorWithFileLineAndKey) {
    std::string text = joingate_config(options_for("http://127.0.0.1:2381"));
    // line 3 of the [member] table: a typo; and an invalid duration in [limits]
    auto p = text.find("name = \"m0\"");
    ASSERT_NE(p, std::string::npos);
    text.replace(p, 4, "nmae");
    int typo_line =
        1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(p), '\n'));
    text += "\n[limits]\ndrain_timeout = \"soon\"\n";
    int duration_line = static_cast<int>(std::count(text.begin(), text.end(), '\n')) - 0;
    auto path = write("bad.toml", text);

    auto res = run_command({joingate_bin(), "check-config", "--config", path});
    ASSERT_FALSE(res.timed_out);
    EXPECT_EQ(res.exit_code, 2) << res.out << res.err;
    std::string all = res.out + res.err;
    EXPECT_NE(all.find(path + ":" + std::to_string(typo_line) + ": member.nmae: "),
              std::string::npos)
        << all;
    EXPECT_NE(all.find(path + ":" + std::to_string(duration_line) + ": limits.drain_timeout: "),
              std::string::npos)
        << all;
    // every non-empty line of the report is FILE:LINE: key: message
    std::regex shape("^" +
                     std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                     R"(:[0-9]+: [A-Za-z0-9_.\[\]]+: .+$)");
    std::istringstream in(res.out);
    std::string line;
    int errors = 0;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        EXPECT_TRUE(std::regex_match(line, shape)) << "not FILE:LINE: key: message: " << line;
        ++errors;
    }
    EXPECT_GE(errors, 2) << "all errors must be reported at once:\n" << all;
}

TEST_F(CheckConfig, RunRefusesABadConfigWithExit2) {
    auto path = write("bad.toml", "[member]\nname = \"m0\"\nbogus = 1\n");
    auto res = run_command({joingate_bin(), "run", "--config", path});
    ASSERT_FALSE(res.timed_out) << "joingate run kept running with a bad config";
    EXPECT_EQ(res.exit_code, 2) << res.out << res.err;
}

} // namespace
} // namespace joingate::test
