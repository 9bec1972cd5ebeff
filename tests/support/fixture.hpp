// The GoogleTest fixture of the black-box integration tests: a backend standing in for
// the local etcd peer, joingate processes started against it, mTLS client options, and
// the joingate logs printed when a test fails.
#pragma once

#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "support/backend.hpp"
#include "support/certs.hpp"
#include "support/client.hpp"
#include "support/process.hpp"

namespace joingate::test {

class JoingateTest : public ::testing::Test {
  protected:
    void SetUp() override { backend = std::make_unique<Backend>(); }

    void TearDown() override {
        if (HasFailure()) {
            for (const auto& p : procs)
                std::cerr << p->logs() << "\n";
        }
        for (auto& p : procs)
            p->kill();
    }

    // Starts joingate with o (member.peer defaults to the backend); nullptr and a test
    // failure when it does not come up.
    JoingateProcess* start_joingate(JoingateOptions o = {}) {
        if (o.peer.empty())
            o.peer = backend->url();
        auto p = std::make_unique<JoingateProcess>(std::move(o));
        std::string err;
        if (!p->start(&err)) {
            ADD_FAILURE() << "joingate did not start: " << err;
            return nullptr;
        }
        procs.push_back(std::move(p));
        return procs.back().get();
    }

    // Starts joingate with a MemberConfig (process.hpp); nullptr and a test failure when it
    // does not come up.
    JoingateProcess* start_member(const MemberConfig& m) {
        auto p = std::make_unique<JoingateProcess>(m.process_options());
        p->write_config(joingate_member_config(m));
        std::string err;
        if (!p->start(&err)) {
            ADD_FAILURE() << "joingate " << m.name << " did not start: " << err;
            return nullptr;
        }
        procs.push_back(std::move(p));
        return procs.back().get();
    }

    // Writes m as p's config, sends SIGHUP and waits until joingate counts a successful
    // reload; false (and a test failure) when it does not.
    static bool reload(JoingateProcess& p, const MemberConfig& m) {
        auto successes = [&] {
            return metric(p, "joingate_config_reloads_total", {"result=\"success\""});
        };
        double before = successes();
        p.write_config(joingate_member_config(m));
        p.signal(SIGHUP);
        if (eventually([&] { return successes() > before; }))
            return true;
        ADD_FAILURE() << "joingate " << m.name << " did not reload its config\n" << p.logs();
        return false;
    }

    // A member's client certificate, verifying the server as 127.0.0.1 against the CA.
    static TlsOptions client_tls() {
        const auto& pki = test_pki();
        TlsOptions o;
        o.ca = pki.ca;
        o.cert = pki.client.cert;
        o.key = pki.client.key;
        o.verify_ip = "127.0.0.1";
        return o;
    }

    // An mTLS connection to port; nullptr and a test failure when it cannot be made.
    static std::unique_ptr<TlsConn> tls_connect(std::uint16_t port, TlsOptions o = client_tls()) {
        std::string err;
        auto c = TlsConn::connect(port, o, &err);
        if (!c)
            ADD_FAILURE() << "mTLS connection to 127.0.0.1:" << port << " failed: " << err;
        return c;
    }

    static std::unique_ptr<TcpConn> tcp_connect(std::uint16_t port) {
        std::string err;
        auto c = TcpConn::connect(port, &err);
        if (!c)
            ADD_FAILURE() << "TCP connection to 127.0.0.1:" << port << " failed: " << err;
        return c;
    }

    // A metric from joingate's admin listener (0 when the sample does not exist yet).
    static double metric(const JoingateProcess& p, std::string_view name,
                         const std::vector<std::string>& labels = {}) {
        return metric_value(p.metrics(), name, labels).value_or(0);
    }

    std::unique_ptr<Backend> backend;
    std::vector<std::unique_ptr<JoingateProcess>> procs;
};

// "GET /small" etc. for a connection to joingate's inbound listener.
inline std::string inbound_get(std::string_view target, std::string_view extra_headers = {},
                               bool close = false) {
    return get_request(target, "m0.joingate.test:2380", extra_headers, close);
}

} // namespace joingate::test
