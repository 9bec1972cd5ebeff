// The joingate child process (see process.hpp). posix_spawn, not fork: the test process
// has threads (the backend), and the child must not inherit their sockets (every socket
// the support code opens is close-on-exec).
#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/certs.hpp"
#include "support/client.hpp"

extern char** environ;

namespace joingate::test {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\')
            out += '\\';
        out += ch;
    }
    return out + "\"";
}

std::string toml_array(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        out += (i ? ", " : "") + toml_string(v[i]);
    return out + "]";
}

std::string make_temp_dir() {
    char tmpl[] = "/tmp/joingate-it-XXXXXX";
    if (!::mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

// Spawns argv with stdout/stderr redirected to files; -1 on failure.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGINT);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -1;
}

// Reaps pid if it exited: the exit code, or minus the signal that killed it; nullopt
// while running.
std::optional<int> try_reap(pid_t pid) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (r < 0)
        return -1;
    return std::nullopt;
}

std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
    std::optional<int> code;
    eventually([&] { return (code = try_reap(pid)).has_value(); }, timeout);
    return code;
}

std::uint16_t port_of(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos)
        return 0;
    return static_cast<std::uint16_t>(std::atoi(address.c_str() + colon + 1));
}

} // namespace

std::string joingate_bin() {
    if (const char* env = std::getenv("JOINGATE_BIN"))
        return env;
#ifdef JOINGATE_BIN
    return JOINGATE_BIN;
#else
    return "joingate";
#endif
}

std::string joingate_config(const JoingateOptions& o) {
    const TestPki& pki = test_pki();
    std::string c;
    c += "[member]\n";
    c += "name = " + toml_string(o.name) + "\n";
    c += "version = " + toml_string(o.version) + "\n";
    c += "profile = \"etcd3\"\n";
    c += "peer = " + toml_string(o.peer) + "\n\n";
    c += "[inbound]\nlisten = \"127.0.0.1:0\"\n\n";
    if (o.outbound || !o.route_peers.empty()) {
        c += "[outbound]\n";
        if (o.outbound)
            c += "listen = \"127.0.0.1:0\"\n";
        for (const auto& p : o.route_peers)
            c += "[[outbound.route]]\nlisten = \"127.0.0.1:0\"\npeer = " + toml_string(p) + "\n";
        c += "\n";
    }
    c += "[cluster]\npeers = []\nbootstrap = true\n\n";
    c += "[tls]\n";
    c += "cert = " + toml_string(o.cert.empty() ? pki.member.cert : o.cert) + "\n";
    c += "key = " + toml_string(o.key.empty() ? pki.member.key : o.key) + "\n";
    c += "ca = " + toml_string(o.ca.empty() ? pki.ca : o.ca) + "\n";
    if (!o.allowed_peers.empty())
        c += "allowed_peers = " + toml_array(o.allowed_peers) + "\n";
    c += "\n[admission]\nmode = \"observe\"\nfail = \"open\"\n\n";
    c += "[admin]\nlisten = \"127.0.0.1:0\"\n\n";
    c += "[log]\nlevel = \"debug\"\n";
    if (!o.limits.empty())
        c += "\n[limits]\n" + o.limits + "\n";
    if (!o.extra.empty())
        c += "\n" + o.extra + "\n";
    return c;
}

JoingateOptions MemberConfig::process_options() const {
    JoingateOptions o;
    o.name = name;
    o.version = version;
    o.peer = peer;
    o.outbound = outbound;
    return o;
}

std::string joingate_member_config(const MemberConfig& m) {
    const TestPki& pki = test_pki();
    std::string c;
    c += "[member]\n";
    c += "name = " + toml_string(m.name) + "\n";
    c += "version = " + toml_string(m.version) + "\n";
    c += "profile = " + toml_string(m.profile) + "\n";
    if (!m.protocol.empty())
        c += "protocol = " + toml_string(m.protocol) + "\n";
    c += "peer = " + toml_string(m.peer) + "\n";
    if (!m.client.empty())
        c += "client = " + toml_string(m.client) + "\n";
    c += "probe_interval = " + toml_string(m.probe_interval) + "\n\n";
    c += "[inbound]\nlisten = \"127.0.0.1:0\"\n\n";
    if (m.outbound)
        c += "[outbound]\nlisten = \"127.0.0.1:0\"\n\n";
    c += "[cluster]\npeers = " + toml_array(m.cluster_peers) + "\n";
    c += std::string("bootstrap = ") + (m.bootstrap ? "true" : "false") + "\n";
    c += "view_interval = " + toml_string(m.view_interval) + "\n\n";
    c += "[tls]\n";
    c += "cert = " + toml_string(pki.member.cert) + "\n";
    c += "key = " + toml_string(pki.member.key) + "\n";
    c += "ca = " + toml_string(pki.ca) + "\n\n";
    c += "[admission]\n";
    c += "mode = " + toml_string(m.mode) + "\n";
    c += "policy = " + toml_string(m.policy) + "\n";
    c += "fail = " + toml_string(m.fail) + "\n";
    c += "on_reject = " + toml_string(m.on_reject) + "\n";
    if (!m.admission_extra.empty())
        c += m.admission_extra + "\n";
    c += "\n[admission.retry]\n";
    c += "initial = " + toml_string(m.retry_initial) + "\n";
    c += "max = " + toml_string(m.retry_max) + "\n";
    c += "hold = " + toml_string(m.hold) + "\n";
    c += "deadline = " + toml_string(m.deadline) + "\n\n";
    c += "[admin]\nlisten = \"127.0.0.1:0\"\n\n";
    c += "[log]\nlevel = \"debug\"\n";
    if (!m.limits.empty())
        c += "\n[limits]\n" + m.limits + "\n";
    if (!m.tail.empty())
        c += "\n" + m.tail + "\n";
    return c;
}

std::string override_for_member(const std::string& member, const std::string& reason) {
    std::time_t until = std::time(nullptr) + 3600;
    std::tm tm{};
    ::gmtime_r(&until, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return "[[admission.override]]\nmember = " + toml_string(member) + "\nuntil = \"" + when +
           "\"\nreason = " + toml_string(reason) + "\n";
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    CommandResult res;
    std::string dir = make_temp_dir();
    std::string out = dir + "/stdout", err = dir + "/stderr";
    pid_t pid = spawn(argv, out, err);
    if (pid < 0) {
        res.err = "cannot spawn " + argv.at(0);
    } else {
        auto code = wait_pid(pid, timeout);
        if (!code) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            res.timed_out = true;
        } else {
            res.exit_code = *code;
        }
        res.out = read_file(out);
        res.err = read_file(err);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return res;
}

JoingateProcess::JoingateProcess(JoingateOptions o) : opts_(std::move(o)) {
    dir_ = make_temp_dir();
    config_path_ = dir_ + "/joingate.toml";
    out_path_ = dir_ + "/stdout.log";
    err_path_ = dir_ + "/stderr.log";
    write_config(joingate_config(opts_));
}

JoingateProcess::~JoingateProcess() {
    kill();
    std::error_code ec;
    if (!std::getenv("JOINGATE_TEST_KEEP"))
        std::filesystem::remove_all(dir_, ec);
}

void JoingateProcess::write_config(std::string_view text) const {
    // Written beside and renamed: a reload never reads a half-written file.
    std::string tmp = config_path_ + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << text;
    }
    std::filesystem::rename(tmp, config_path_);
}

bool JoingateProcess::start(std::string* err, std::chrono::milliseconds timeout) {
    pid_ = spawn({joingate_bin(), "run", "--config", config_path_}, out_path_, err_path_);
    if (pid_ < 0) {
        if (err)
            *err = "cannot spawn " + joingate_bin();
        return false;
    }
    std::size_t want_routes = opts_.route_peers.size();
    auto deadline = Clock::now() + timeout;
    for (;;) {
        inbound_port = outbound_port = admin_port = 0;
        route_ports.clear();
        std::istringstream lines(stdout_text());
        std::string line;
        while (std::getline(lines, line)) {
            if (json_string(line, "msg") != "listening")
                continue;
            auto listener = json_string(line, "listener");
            auto address = json_string(line, "address");
            if (!listener || !address)
                continue;
            std::uint16_t port = port_of(*address);
            if (*listener == "inbound")
                inbound_port = port;
            else if (*listener == "outbound")
                outbound_port = port;
            else if (*listener == "admin")
                admin_port = port;
            else if (*listener == "route")
                route_ports.push_back(port);
        }
        if (inbound_port && admin_port && (outbound_port || !opts_.outbound) &&
            route_ports.size() >= want_routes)
            return true;
        if (!running()) {
            if (err)
                *err = "joingate exited with " + std::to_string(exit_.value_or(-1)) +
                       " before listening\n" + logs();
            return false;
        }
        if (Clock::now() >= deadline) {
            if (err)
                *err = "joingate did not report every listener in time\n" + logs();
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

bool JoingateProcess::running() {
    if (pid_ < 0 || exit_)
        return false;
    exit_ = try_reap(pid_);
    return !exit_;
}

void JoingateProcess::signal(int sig) const {
    if (pid_ > 0 && !exit_)
        ::kill(pid_, sig);
}

std::optional<int> JoingateProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ < 0)
        return std::nullopt;
    if (!exit_)
        exit_ = wait_pid(pid_, timeout);
    return exit_;
}

std::optional<int> JoingateProcess::stop(std::chrono::milliseconds timeout) {
    if (pid_ < 0)
        return std::nullopt;
    if (exit_)
        return exit_;
    signal(SIGTERM);
    auto code = wait_exit(timeout);
    if (!code)
        kill();
    return code;
}

void JoingateProcess::kill() {
    if (pid_ > 0 && !exit_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        exit_ = -SIGKILL;
    }
}

std::string JoingateProcess::stdout_text() const {
    return read_file(out_path_);
}
std::string JoingateProcess::stderr_text() const {
    return read_file(err_path_);
}

std::size_t JoingateProcess::log_lines() const {
    std::string s = stdout_text();
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

bool JoingateProcess::wait_log(const std::vector<std::string>& needles,
                               std::chrono::milliseconds timeout, std::size_t skip_lines) const {
    return eventually(
        [&] {
            std::istringstream lines(stdout_text());
            std::string line;
            for (std::size_t n = 0; std::getline(lines, line); ++n) {
                if (n < skip_lines)
                    continue;
                bool all = true;
                for (const auto& x : needles)
                    all = all && line.find(x) != std::string::npos;
                if (all)
                    return true;
            }
            return false;
        },
        timeout);
}

std::string JoingateProcess::logs(std::size_t max_bytes) const {
    auto tail = [&](std::string s) {
        if (s.size() > max_bytes)
            s = "...\n" + s.substr(s.size() - max_bytes);
        return s;
    };
    return "---- joingate config (" + config_path_ + ") ----\n" + read_file(config_path_) +
           "---- joingate stdout ----\n" + tail(stdout_text()) + "---- joingate stderr ----\n" +
           tail(stderr_text());
}

std::string JoingateProcess::metrics() const {
    auto x = http_get(admin_port, "/metrics");
    if (x.io != Io::ok || x.response.status != 200)
        return {};
    return x.response.body;
}

} // namespace joingate::test
