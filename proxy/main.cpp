// joingate command line (DESIGN §8): run, check-config, version.
// Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
#include <chrono>
#include <csignal>
#include <optional>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proxy/cli.hpp"
#include "proxy/log.hpp"
#include "proxy/server.hpp"

namespace {

constexpr const char* kUsage = R"(usage: joingate <command> [options]

commands:
  run --config FILE            run the sidecar
  check-config --config FILE   validate a config file; prints every error as
                               FILE:LINE: key.path: message (exit 2), or "ok" (exit 0)
  wait [--admin URL] [--timeout DUR]
                               block until the member is admitted (/readyz is 200),
                               printing the reason whenever it changes; exit 1 on timeout
  status [--admin URL]         the cluster view as a table
  version                      print the joingate version

  --admin defaults to http://127.0.0.1:9380

exit codes: 0 ok, 1 runtime failure, 2 usage or config error
)";

int usage(const char* why = nullptr) {
    if (why) std::cerr << "joingate: " << why << "\n";
    std::cerr << kUsage;
    return 2;
}

struct Args {
    std::string command;
    std::string config;
    std::string admin = "http://127.0.0.1:9380";
    std::optional<std::chrono::milliseconds> timeout;
};

bool parse_args(int argc, char** argv, Args& a, std::string& err) {
    if (argc < 2) {
        err = "missing command";
        return false;
    }
    a.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--config" || arg == "-c") {
            if (i + 1 >= argc) {
                err = "--config needs a file";
                return false;
            }
            a.config = argv[++i];
        } else if (arg.starts_with("--config=")) {
            a.config = std::string(arg.substr(9));
        } else if (arg == "--admin" || arg == "--timeout") {
            if (i + 1 >= argc) {
                err = std::string(arg) + " needs a value";
                return false;
            }
            std::string v = argv[++i];
            if (arg == "--admin") {
                a.admin = v;
            } else if (auto d = joingate::config::parse_duration(v)) {
                a.timeout = *d;
            } else {
                err = "--timeout " + v + ": not a duration (e.g. 30s, 5m)";
                return false;
            }
        } else {
            err = "unknown argument: " + std::string(arg);
            return false;
        }
    }
    return true;
}

int check_config(const std::string& path) {
    auto res = joingate::config::load_file(path);
    for (const auto& w : res.warnings) std::cerr << w.text() << " (warning)\n";
    if (!res.errors.empty()) {
        for (const auto& e : res.errors) std::cout << e.text() << "\n";
        return 2;
    }
    std::cout << "ok\n";
    return 0;
}

int run(const std::string& path) {
    auto res = joingate::config::load_file(path);
    if (!res.errors.empty()) {
        for (const auto& e : res.errors) std::cerr << e.text() << "\n";
        return 2;
    }
    const auto& cfg = *res.config;
    joingate::log::configure(cfg.log.format, cfg.log.level);
    for (const auto& w : res.warnings) joingate::log::warn("config", {{"warning", w.text()}});
    try {
        joingate::proxy::Server server(res.config, path);
        return server.run();
    } catch (const std::exception& e) {
        joingate::log::error("cannot start", {{"error", e.what()}});
        return 1;
    }
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN); // a peer closing mid-write is an error code, not a signal
    Args a;
    std::string err;
    if (argc >= 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help" ||
                      std::string_view(argv[1]) == "help")) {
        std::cout << kUsage;
        return 0;
    }
    if (!parse_args(argc, argv, a, err)) return usage(err.c_str());
    if (a.command == "version" || a.command == "--version") {
        std::cout << "joingate " << JOINGATE_VERSION << "\n";
        return 0;
    }
    if (a.command == "wait") return joingate::cli::wait(a.admin, a.timeout);
    if (a.command == "status") return joingate::cli::status(a.admin);
    if (a.command == "run" || a.command == "check-config") {
        if (a.config.empty()) return usage("--config FILE is required");
        return a.command == "run" ? run(a.config) : check_config(a.config);
    }
    return usage(("unknown command: " + a.command).c_str());
}
