// The control plane beside the relay: what this sidecar knows and decides.
//  - local probes: the peer's version (member.version = "auto") and whether it leads;
//  - the cluster view: every cluster.peers sidecar's /joingate/v1/version over mTLS;
//  - the gate: leader-controlled decisions for inbound callers and outbound targets;
//  - the follower: wait-and-retry until the local member may join (/readyz, hold);
//  - the documents the admin API serves (version, status, readiness).
// Runs on the server's io_context thread; the admission logic itself is pure (admission/).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "admission/cluster_view.hpp"
#include "admission/follower.hpp"
#include "admission/gate.hpp"
#include "config/profile.hpp"
#include "metrics/metrics.hpp"
#include "proxy/http.hpp"
#include "proxy/runtime.hpp"
#include "proxy/stream.hpp"

namespace joingate::proxy {

// The local member as stamped on messages: replaced (never mutated) when the probed
// version changes, so an exchange in flight keeps a consistent stamp.
struct Identity {
    std::string member, version, protocol;
    http::Stamp stamp() const { return {member, version, protocol}; }
};

class Control {
public:
    Control(asio::io_context& ioc, metrics::Metrics& metrics, const std::shared_ptr<const Runtime>& rt);
    ~Control();
    void start();
    void reconfigured(); // after a successful SIGHUP reload (rt already swapped)

    std::shared_ptr<const Identity> identity() const { return identity_; }
    const config::ProfileSpec& profile() const { return profile_; }

    // Leader-controlled, inbound: a caller's request. Cheap when cached.
    admission::Decision judge_inbound(std::string_view member, std::string_view version,
                                      std::string_view protocol);
    // Outbound: the local peer's request to a target. Probes a target never seen before;
    // nullopt (with *error) when the target's sidecar cannot be reached.
    // *who and *version (when given) receive the target's member name and version.
    asio::awaitable<std::optional<admission::Decision>> judge_outbound(const std::string& authority,
                                                                       const config::HostPort& target,
                                                                       std::string* error,
                                                                       std::string* who = nullptr,
                                                                       std::string* version = nullptr);
    // Keeps the target's identity fresh from the X-Joingate-* of its responses. When they
    // differ from what the request was judged with (the target restarted at another
    // version), judges again: a refusal text means the response must not be relayed.
    std::string learn_target(const std::string& authority, const http::Head& response,
                             std::string_view judged_member, std::string_view judged_version);
    // What a refusal's JSON error says: the reason, whom and at which version.
    static std::string refusal_detail(const admission::Decision& d, std::string_view member,
                                      std::string_view version);
    // Counts a request refused by a cached decision (no log line: etcd retries every 100 ms).
    void count_refused(admission::Side side);

    // Follower side: whether the local member may send join traffic now; waits up to
    // `hold` for admission. False = still not admitted.
    bool follower_enforced() const;
    bool admitted() const;
    asio::awaitable<bool> hold(std::chrono::milliseconds hold);

    std::string version_json() const;
    std::string status_json() const; // the "admission" and "cluster" parts
    std::pair<int, std::string> readyz_json() const;
    std::string readiness_reason() const; // for the 503 of a held request
    bool exit_requested() const { return exit_requested_; }

private:
    struct Target {
        std::string member, version, protocol;
        std::chrono::steady_clock::time_point seen;
    };
    asio::awaitable<void> probe_loop();
    asio::awaitable<void> view_loop();
    asio::awaitable<void> view_round();
    asio::awaitable<void> follower_timer_loop();
    void handle(admission::Action a);
    void set_own_version(std::optional<admission::Version> v);
    void record(admission::Side side, std::string_view who, std::string_view version,
                const admission::Decision& d);
    // A decision re-made only because the gate's cache was invalidated elsewhere (the
    // ledger grew, a view round) is not news: counted like a cached one, not logged again.
    void account_follower();
    bool repeated(admission::Side side, std::string_view who, std::string_view version,
                  const admission::Decision& d);
    void account(admission::Side side, std::string_view who, std::string_view version,
                 const admission::Decision& d);
    std::array<std::unordered_map<std::string, std::string>, 3> last_logged_;
    void publish_view_metrics();
    admission::Now now() const;
    const Runtime& rt() const { return *rt_; }

    asio::io_context& ioc_;
    metrics::Metrics& metrics_;
    const std::shared_ptr<const Runtime>& rt_;
    config::ProfileSpec profile_;
    admission::Gate gate_;
    admission::ClusterView view_;
    std::unique_ptr<admission::Follower> follower_;
    std::shared_ptr<const Identity> identity_;
    std::optional<admission::Version> own_version_;
    admission::Role role_ = admission::Role::unknown;
    std::string probe_error_;
    std::unordered_map<std::string, Target> targets_;
    std::deque<std::string> recent_; // the last decisions, as JSON objects for /status
    bool follower_wants_view_ = false;
    bool exit_requested_ = false;
    std::uint32_t tries_seen_ = 0;
    std::chrono::steady_clock::time_point started_;
    asio::steady_timer view_wake_;
    asio::steady_timer follower_timer_;
    bool stopping_ = false;

    // instruments
    prometheus::Gauge& is_leader_;
    prometheus::Gauge& join_waiting_;
    prometheus::Gauge& join_admitted_;
    prometheus::Counter& join_retries_;
    prometheus::Histogram& join_wait_seconds_;
    prometheus::Gauge& overrides_active_;
    prometheus::Gauge* leader_info_ = nullptr;
    std::vector<prometheus::Gauge*> cluster_members_;
    std::array<prometheus::Counter*, 3> refused_{};
};

} // namespace joingate::proxy
