// The validated, immutable joingate configuration (DESIGN §9). Produced only by
// config::load(); everything else receives a std::shared_ptr<const Config>.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace joingate::config {

using Duration = std::chrono::milliseconds;

// host:port as written; host may be a DNS name, IPv4 or [IPv6].
struct HostPort {
    std::string host; // without brackets
    std::uint16_t port = 0;
    std::string text() const; // "host:port" (brackets for IPv6)
    bool operator==(const HostPort&) const = default;
};

// A plain-HTTP URL of the local peer or client endpoint: http://host:port
struct HttpUrl {
    std::string scheme; // "http"
    HostPort authority;
    std::string text;   // as written
    bool operator==(const HttpUrl&) const = default;
};

enum class Profile { etcd3, etcd2, generic };
enum class Mode { leader, follower, both, observe };
enum class Policy { exact, not_older_than_leader, skew, protocol };
enum class FailMode { closed, open };
enum class OnReject { wait, exit };
enum class LogFormat { json, text };
enum class LogLevel { debug, info, warn, error };

struct ProtocolRange {
    std::uint32_t min = 1;
    std::uint32_t max = 1;
    bool operator==(const ProtocolRange&) const = default;
};

struct Member {
    std::string name;
    std::string version = "auto"; // "auto" or a version string (validated by admission parser)
    Profile profile = Profile::etcd3;
    ProtocolRange protocol;       // member.protocol = "1..1"
    HttpUrl peer;                 // required
    std::optional<HttpUrl> client;
    Duration probe_interval{5000};
};

struct Route {
    HostPort listen;
    HostPort peer;
};

struct Inbound {
    HostPort listen;
};

struct Outbound {
    std::optional<HostPort> listen; // forward proxy; absent = none
    std::vector<Route> routes;
};

struct Cluster {
    std::vector<HostPort> peers;
    bool bootstrap = false;
    Duration view_interval{5000};
};

struct Tls {
    std::string cert; // paths resolved relative to the config file's directory
    std::string key;
    std::string ca;
    std::vector<std::string> allowed_peers; // SAN patterns, '*' wildcard
};

struct Retry {
    Duration initial{1000};
    Duration max{30000};
    double multiplier = 2.0;
    double jitter = 0.5;   // [0,1]
    Duration deadline{0};  // 0 = forever
    Duration hold{5000};   // at most 9s
};

struct Override {
    std::optional<std::string> member;
    std::optional<std::string> version;
    std::chrono::system_clock::time_point until;
    std::string reason;
    int line = 0; // where it was written, for audit logs
};

struct Admission {
    Mode mode = Mode::both;
    Policy policy = Policy::not_older_than_leader;
    FailMode fail = FailMode::closed;
    std::uint32_t max_minor_skew = 1;
    bool allow_older = false;
    OnReject on_reject = OnReject::wait;
    Retry retry;
    std::vector<Override> overrides;
};

// profile = "generic": every field taken from [profile]
struct JoinRoute {
    std::string method; // "" = any
    std::string path_prefix;
};
struct GenericProfile {
    std::vector<JoinRoute> join_routes;
    std::string version_header;        // e.g. "X-Server-Version"
    std::string body_version_pointer;  // JSON pointer, "" = none
    std::string version_probe_url;     // e.g. http://127.0.0.1:2381/version
    std::string version_probe_pointer; // e.g. /etcdserver
    std::string leader_probe_url;
    std::string leader_probe_pointer;
    std::string leader_probe_expected;
};

struct Admin {
    HostPort listen{"127.0.0.1", 9380};
};

struct Log {
    LogFormat format = LogFormat::json;
    LogLevel level = LogLevel::info;
};

struct Limits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_uri_bytes = 8 * 1024;
    Duration handshake_timeout{10000};
    Duration header_timeout{10000};
    Duration connect_timeout{3000};
    Duration idle_timeout{300000};
    Duration drain_timeout{15000};
    std::size_t max_connections = 4096; // per listener
};

struct Config {
    std::string file; // the path it was loaded from
    Member member;
    Inbound inbound;
    Outbound outbound;
    Cluster cluster;
    Tls tls;
    Admission admission;
    std::optional<GenericProfile> profile; // set iff member.profile == generic
    Admin admin;
    Log log;
    Limits limits;
    // Key path -> line where it was written ("inbound.listen" -> 7), for messages about
    // the config after loading (reload refusals, unreadable certificates).
    std::map<std::string, int> lines;
};

// One problem found while loading: rendered as "FILE:LINE: key.path: message".
struct Error {
    std::string file;
    int line = 0; // 0 when unknown (e.g. missing required key: line of its table or 1)
    std::string key;
    std::string message;
    std::string text() const;
};

struct LoadResult {
    std::shared_ptr<const Config> config; // null when errors is non-empty
    std::vector<Error> errors;
    std::vector<Error> warnings; // not fatal: expired overrides and the like
};

// Parse and validate a TOML file. Never throws; every error is reported at once.
LoadResult load_file(const std::string& path);
// Same, from text (file is used only in error messages and for resolving relative paths).
LoadResult load_string(std::string_view toml, const std::string& file);
// The same with the time given, for the override rules (until at most 24 h after now).
LoadResult load_file(const std::string& path, std::chrono::system_clock::time_point now);
LoadResult load_string(std::string_view toml, const std::string& file,
                       std::chrono::system_clock::time_point now);

// Errors for every listen address (inbound, outbound, admin, routes) that differs between
// the running config and a reloaded one: sockets stay bound across SIGHUP (DESIGN §9).
std::vector<Error> check_reload(const Config& running, const Config& next);

// "host:port" with host a DNS name, IPv4 or [IPv6] and port 0..65535; nullopt and *error
// set (naming the text) when malformed.
std::optional<HostPort> parse_host_port(std::string_view text, std::string* error = nullptr);
// "http://host:port" (an optional trailing '/'); with allow_path, any absolute path too.
std::optional<HttpUrl> parse_http_url(std::string_view text, bool allow_path = false,
                                      std::string* error = nullptr);
// RFC 3339 with an offset: "2026-11-25T10:00:00Z", "2026-11-25T12:00:00.5+02:00".
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);
std::string format_rfc3339(std::chrono::system_clock::time_point t); // UTC, "...Z"

// "250ms", "10s", "5m", "1h", "1m30s"; nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);

const char* to_string(Profile);
const char* to_string(Mode);
const char* to_string(Policy);
const char* to_string(FailMode);
const char* to_string(OnReject);
const char* to_string(LogFormat);
const char* to_string(LogLevel);

} // namespace joingate::config
