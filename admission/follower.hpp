// Follower-controlled wait-and-retry (DESIGN §6) as a sans-I/O state machine: the proxy
// feeds it events (a completed cluster view round, a timer, a reload, a new own version)
// with the current time, and carries out the action it returns (probe the cluster now,
// sleep until T, report admitted, exit with a reason). Time and randomness are injected,
// so tests script whole upgrades with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "admission/backoff.hpp"
#include "admission/cluster_view.hpp"
#include "admission/decision.hpp"
#include "admission/gate.hpp"
#include "admission/version.hpp"
#include "config/config.hpp"

namespace joingate::admission {

enum class FollowerState : std::uint8_t {
    probing, // asking the cluster; the next view round decides
    waiting, // refused or undecidable; sleeping until the next try
    admitted,
    gave_up, // deadline passed, or refused with on_reject = "exit"
};
const char* to_string(FollowerState);

// Steady time for sleeps and the deadline, wall time for override expiry.
struct Now {
    std::chrono::steady_clock::time_point mono;
    std::chrono::system_clock::time_point wall;
};

enum class ActionKind : std::uint8_t {
    none,        // nothing to do
    probe_now,   // run a cluster view round now, then call on_view()
    sleep_until, // call on_timer() at Action::until
    admitted,    // the member may join: open /readyz, release held requests
    exit_with,   // give up: joingate wait / the sidecar exits 1 with Action::reason
};
const char* to_string(ActionKind);

struct Action {
    ActionKind kind = ActionKind::none;
    std::chrono::steady_clock::time_point until{}; // sleep_until
    Reason reason = Reason::leader_unknown;        // exit_with (and the last reason otherwise)
};

struct FollowerSettings {
    std::string member;
    config::ProtocolRange protocol;
    bool bootstrap = false;
    config::OnReject on_reject = config::OnReject::wait;
    config::Retry retry;

    static FollowerSettings from(const config::Config& c) {
        return {c.member.name, c.member.protocol, c.cluster.bootstrap, c.admission.on_reject,
                c.admission.retry};
    }
};

// One completed round of the cluster view, as the follower needs it.
struct ViewAnswer {
    ClusterFacts facts;
    bool complete = false;            // every configured peer answered or failed
    std::size_t others_reachable = 0; // reachable members other than this one

    static ViewAnswer from(const ClusterView& view, std::string_view self);
};

// What /readyz, /status and the join metrics show.
struct FollowerStatus {
    FollowerState state = FollowerState::probing;
    bool admitted = false;
    std::optional<Reason> reason; // of the last decision; nullopt before the first
    bool would_reject = false;    // observe/leader mode: admitted, but the policy said no
    bool fail_open = false;
    bool bootstrap = false; // admitted as the lone first member
    std::string member;
    std::string member_version; // "" while unknown
    std::optional<MemberVersion> leader;
    std::optional<std::chrono::milliseconds> next_try_in; // while waiting
    std::uint32_t tries = 0;                              // decisions made since the wait began
    std::optional<std::chrono::steady_clock::duration> waited; // start to admission
};

class Follower {
  public:
    // The gate supplies rules, overrides and the ledger (the follower records its own
    // admission there, so it is published in admitted_members). It must outlive this.
    Follower(FollowerSettings settings, Gate& gate, UnitRandom random);

    // The local member's version: nullopt while unknown (member.version = "auto" and the
    // peer not up). A change from one known version to another re-judges an admitted
    // member; unknown -> known does not, and a probe that fails keeps the last version.
    Action set_own_version(std::optional<Version> v, Now now);

    Action start(Now now);                                // -> probe_now (or admitted)
    Action on_view(const ViewAnswer& view, Now now);      // after each completed view round
    Action on_no_leader(Now now);                         // a round in which nothing answered
    Action on_timer(Now now);                             // the sleep_until time came
    Action on_config(FollowerSettings settings, Now now); // after Gate::configure on reload

    FollowerState state() const noexcept { return state_; }
    bool admitted() const noexcept { return state_ == FollowerState::admitted; }
    FollowerStatus status(std::chrono::steady_clock::time_point now) const;
    // The decision of the last view round (what the policy says about this member now).
    const std::optional<Decision>& last_decision() const noexcept { return last_; }
    const std::optional<Version>& own_version() const noexcept { return own_version_; }

  private:
    Action admit(const Decision& d, Now now);
    Action refuse(const Decision& d, Now now);
    Action restart_wait(Now now);
    std::optional<std::chrono::steady_clock::time_point> deadline() const;

    FollowerSettings settings_;
    Gate& gate_;
    UnitRandom random_;
    std::optional<Version> own_version_;
    FollowerState state_ = FollowerState::probing;
    bool started_ = false;
    std::optional<Decision> last_;
    bool bootstrap_ = false;
    std::optional<MemberVersion> leader_;
    std::chrono::steady_clock::time_point wait_started_{};
    std::optional<std::chrono::steady_clock::time_point> admitted_at_;
    std::chrono::steady_clock::time_point next_try_at_{};
    std::uint32_t tries_ = 0;
    std::uint32_t refusals_ = 0; // the backoff exponent
};

} // namespace joingate::admission
