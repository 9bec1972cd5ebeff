// The joingate binary as a child process for black-box tests: writes a config file (DESIGN
// §9) into a temporary directory, starts `joingate run`, learns the listener ports from
// its "listening" log lines, sends signals and stops it. stdout and stderr go to files in
// that directory so a failing test can show them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace joingate::test {

// The path of the joingate binary under test (JOINGATE_BIN, or $JOINGATE_BIN if set).
std::string joingate_bin();

struct JoingateOptions {
    std::string name = "m0";
    std::string version = "3.4.23";
    std::string peer;                     // member.peer, e.g. "http://127.0.0.1:1234"
    bool outbound = true;                 // [outbound] listen = "127.0.0.1:0"
    std::vector<std::string> route_peers; // one [[outbound.route]] each, listen 127.0.0.1:0
    std::string cert, key, ca;            // default: the test PKI's member cert and CA
    std::vector<std::string> allowed_peers;
    std::string limits; // lines for [limits], e.g. "drain_timeout = \"2s\""
    std::string extra;  // appended verbatim at the end
};

inline JoingateOptions options_for(std::string peer) {
    JoingateOptions o;
    o.peer = std::move(peer);
    return o;
}

// The config text for the options (ports 0 everywhere).
std::string joingate_config(const JoingateOptions& o);

// A member's sidecar for the admission tests (DESIGN §5, §6): the keys they vary, with
// short intervals so that a view round or a retry takes a fraction of a second. Listen
// addresses are 127.0.0.1:0; TLS is the test PKI's member certificate and CA.
struct MemberConfig {
    std::string name = "m0";
    std::string version = "3.4.23";
    std::string profile = "etcd3"; // etcd3 | etcd2 | generic (then `profile_table`)
    std::string protocol;          // member.protocol, "" = default
    std::string peer;              // member.peer, e.g. a Backend's url()
    std::string client;            // member.client (the leader probe), "" = none
    std::string probe_interval = "200ms";
    bool outbound = true;
    std::vector<std::string> cluster_peers; // inbound addresses, "127.0.0.1:1234"
    bool bootstrap = false;
    std::string view_interval = "200ms";
    std::string mode = "both";
    std::string policy = "not-older-than-leader";
    std::string fail = "closed";
    std::string on_reject = "wait";
    std::string retry_initial = "200ms";
    std::string retry_max = "400ms";
    std::string hold = "2s";
    std::string deadline = "0s";
    std::string admission_extra; // more lines for [admission], e.g. "max_minor_skew = 2"
    std::string limits;          // lines for [limits]
    std::string tail;            // appended at the end: [profile], [[admission.override]]
    // The JoingateOptions that make JoingateProcess wait for these listeners.
    JoingateOptions process_options() const;
};
std::string joingate_member_config(const MemberConfig& m);
// An [[admission.override]] table admitting `member` for the next hour.
std::string override_for_member(const std::string& member, const std::string& reason);

struct CommandResult {
    int exit_code = -1; // minus the signal when killed by one; -1 when timed out
    bool timed_out = false;
    std::string out, err;
};
// Runs a command (argv[0] a path) with a deadline, capturing stdout and stderr.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

class JoingateProcess {
  public:
    explicit JoingateProcess(JoingateOptions o);
    ~JoingateProcess(); // SIGKILL if still running; removes the directory
    JoingateProcess(const JoingateProcess&) = delete;
    JoingateProcess& operator=(const JoingateProcess&) = delete;

    // Starts the process and waits (bounded) until every configured listener is
    // listening. false and *err set when it exits or does not listen in time.
    bool start(std::string* err,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

    const std::string& dir() const { return dir_; }
    const std::string& config_path() const { return config_path_; }
    void write_config(std::string_view text) const; // replaces the config file
    pid_t pid() const { return pid_; }

    std::uint16_t inbound_port = 0;
    std::uint16_t outbound_port = 0;
    std::uint16_t admin_port = 0;
    std::vector<std::uint16_t> route_ports; // in config order
    std::string inbound_address() const { return "127.0.0.1:" + std::to_string(inbound_port); }

    bool running(); // not exited yet (reaps it if it has)
    void signal(int sig) const;
    // Waits for exit; the exit code, or minus the signal that killed it (-6: SIGABRT);
    // nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // SIGTERM, then SIGKILL after timeout; the exit code as wait_exit.
    std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
    void kill();

    std::string stdout_text() const;
    std::string stderr_text() const;
    // Waits until stdout has a line containing every one of needles, after the first
    // `skip_lines` lines.
    bool wait_log(const std::vector<std::string>& needles, std::chrono::milliseconds timeout,
                  std::size_t skip_lines = 0) const;
    std::size_t log_lines() const;
    // The two logs, for failure messages (the last `max_bytes` of each).
    std::string logs(std::size_t max_bytes = 16 * 1024) const;

    // Admin API conveniences.
    std::string metrics() const; // "" when unreachable

  private:
    JoingateOptions opts_;
    std::string dir_, config_path_, out_path_, err_path_;
    pid_t pid_ = -1;
    std::optional<int> exit_;
};

} // namespace joingate::test
