// `joingate wait` and `joingate status`: small blocking clients of the admin API, for init
// containers, systemd ExecStartPre and people. Plain HTTP to a loopback admin listener.
#include "proxy/cli.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "config/config.hpp"
#include "proxy/http.hpp"

namespace joingate::cli {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

struct Reply {
    int status = 0;
    std::string body;
    std::string error;
};

// One GET with a total timeout; Connection: close, body read to EOF.
Reply get(const config::HostPort& hp, const std::string& path, std::chrono::milliseconds timeout) {
    Reply r;
    asio::io_context ioc;
    tcp::socket sock(ioc);
    tcp::resolver res(ioc);
    std::string raw;
    boost::system::error_code ec;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer timer(ioc, deadline);
    timer.async_wait([&](boost::system::error_code e) {
        if (!e) {
            boost::system::error_code ignored;
            sock.close(ignored);
        }
    });
    res.async_resolve(hp.host, std::to_string(hp.port), [&](auto e, auto results) {
        if (e) {
            ec = e;
            timer.cancel();
            return;
        }
        asio::async_connect(sock, results, [&](auto e2, auto) {
            if (e2) {
                ec = e2;
                timer.cancel();
                return;
            }
            auto req = std::make_shared<std::string>("GET " + path + " HTTP/1.1\r\nHost: " + hp.text() +
                                                     "\r\nConnection: close\r\n\r\n");
            asio::async_write(sock, asio::buffer(*req), [&, req](auto e3, auto) {
                if (e3) {
                    ec = e3;
                    timer.cancel();
                    return;
                }
                asio::async_read(sock, asio::dynamic_buffer(raw), [&](auto e4, auto) {
                    if (e4 && e4 != asio::error::eof) ec = e4;
                    timer.cancel();
                });
            });
        });
    });
    ioc.run();
    if (std::chrono::steady_clock::now() >= deadline && raw.empty()) {
        r.error = "timed out";
        return r;
    }
    if (ec && raw.empty()) {
        r.error = ec.message();
        return r;
    }
    http::Head head;
    http::HeadError herr{};
    if (http::parse_response(raw, http::Limits{}, "GET", head, herr) != http::Parse::complete) {
        r.error = "malformed response from the admin API";
        return r;
    }
    r.status = head.status;
    r.body = raw.substr(head.size);
    return r;
}

bool parse_admin(const std::string& url, config::HostPort& hp, std::string& err) {
    auto u = config::parse_http_url(url, false, &err);
    if (!u) return false;
    hp = u->authority;
    return true;
}

std::string str(const json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    if (!v) return "";
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_int64()) return std::to_string(v->as_int64());
    if (v->is_uint64()) return std::to_string(v->as_uint64());
    if (v->is_bool()) return v->as_bool() ? "yes" : "no";
    return "";
}

std::string describe_wait(const json::object& o) {
    std::string line = "not admitted: " + str(o, "reason");
    auto mv = str(o, "member_version");
    auto leader = str(o, "leader");
    auto lv = str(o, "leader_version");
    line += " (member " + str(o, "member") + " at " + (mv.empty() ? "unknown version" : mv);
    if (!leader.empty()) line += ", leader " + leader + " at " + lv;
    else line += ", leader unknown";
    line += ")";
    return line;
}

} // namespace

int wait(const std::string& admin_url, std::optional<std::chrono::milliseconds> timeout) {
    config::HostPort hp;
    std::string err;
    if (!parse_admin(admin_url, hp, err)) {
        std::cerr << "joingate wait: --admin " << admin_url << ": " << err << "\n";
        return 2;
    }
    auto start = std::chrono::steady_clock::now();
    std::string last;
    for (;;) {
        auto r = get(hp, "/readyz", std::chrono::seconds(3));
        std::string line;
        if (r.status == 200) {
            std::cout << "admitted" << std::endl;
            return 0;
        }
        if (r.status == 0) {
            line = "waiting for joingate at " + admin_url + ": " + r.error;
        } else {
            boost::system::error_code ec;
            auto v = json::parse(r.body, ec);
            if (ec || !v.is_object()) {
                line = "waiting: /readyz answered " + std::to_string(r.status);
            } else {
                const auto& o = v.as_object();
                if (str(o, "state") == "gave_up") {
                    std::cout << "gave up: " << describe_wait(o) << std::endl;
                    return 1;
                }
                line = describe_wait(o);
            }
        }
        // One line each time the reason changes, not one per poll.
        if (line != last) {
            std::cout << line << std::endl;
            last = line;
        }
        if (timeout && std::chrono::steady_clock::now() - start >= *timeout) {
            std::cout << "timed out after " << config::format_duration(*timeout) << ": " << last << std::endl;
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

int status(const std::string& admin_url) {
    config::HostPort hp;
    std::string err;
    if (!parse_admin(admin_url, hp, err)) {
        std::cerr << "joingate status: --admin " << admin_url << ": " << err << "\n";
        return 2;
    }
    auto r = get(hp, "/status", std::chrono::seconds(5));
    if (r.status != 200) {
        std::cerr << "joingate status: " << admin_url << "/status: "
                  << (r.status ? "answered " + std::to_string(r.status) : r.error) << "\n";
        return 1;
    }
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) {
        std::cerr << "joingate status: /status is not a JSON object\n";
        return 1;
    }
    const auto& o = v.as_object();
    const auto* member = o.if_contains("member");
    const auto* adm = o.if_contains("admission");
    const auto* cluster = o.if_contains("cluster");
    if (member && member->is_object()) {
        const auto& m = member->as_object();
        std::printf("member %s  version %s  role %s  admitted %s  mode %s  policy %s\n", str(m, "member").c_str(),
                    str(m, "version").c_str(), str(m, "role").c_str(), str(m, "admitted").c_str(),
                    str(m, "mode").c_str(), str(m, "policy").c_str());
    }
    if (cluster && cluster->is_object()) {
        const auto& c = cluster->as_object();
        auto leader = str(c, "leader");
        std::printf("leader %s\n", leader.empty() ? "unknown" : (leader + " (" + str(c, "leader_version") + ")").c_str());
        std::printf("\n%-10s %-22s %-12s %-9s %-9s %-9s %-10s %s\n", "MEMBER", "ADDRESS", "VERSION", "PROTOCOL",
                    "ROLE", "ADMITTED", "REACHABLE", "NOTE");
        if (auto* ms = c.if_contains("members"); ms && ms->is_array()) {
            for (const auto& e : ms->as_array()) {
                if (!e.is_object()) continue;
                const auto& m = e.as_object();
                auto note = str(m, "error");
                if (note.empty()) note = str(m, "reason");
                std::printf("%-10s %-22s %-12s %-9s %-9s %-9s %-10s %s\n", str(m, "member").c_str(),
                            str(m, "address").c_str(), str(m, "version").c_str(), str(m, "protocol").c_str(),
                            str(m, "role").c_str(), str(m, "admitted").c_str(), str(m, "reachable").c_str(),
                            note.c_str());
            }
        }
        if (auto b = str(c, "upgrade_blocked_by"); !b.empty()) std::printf("\nupgrade blocked by: %s\n", b.c_str());
        if (auto* ws = c.if_contains("waiting"); ws && ws->is_array() && !ws->as_array().empty()) {
            std::printf("\nwaiting to join:\n");
            for (const auto& e : ws->as_array())
                if (e.is_object())
                    std::printf("  %s at %s: %s\n", str(e.as_object(), "member").c_str(),
                                str(e.as_object(), "version").c_str(), str(e.as_object(), "reason").c_str());
        }
    }
    if (adm && adm->is_object()) {
        if (auto* ov = adm->as_object().if_contains("overrides"); ov && ov->is_array() && !ov->as_array().empty()) {
            std::printf("\noverrides:\n");
            for (const auto& e : ov->as_array())
                if (e.is_object()) {
                    const auto& x = e.as_object();
                    std::printf("  member=%s version=%s until %s active=%s: %s\n", str(x, "member").c_str(),
                                str(x, "version").c_str(), str(x, "until").c_str(), str(x, "active").c_str(),
                                str(x, "reason").c_str());
                }
        }
    }
    return 0;
}

} // namespace joingate::cli
