// The admission decision (DESIGN §6) as one pure function: policy, the joiner's version
// and protocol, the leader's version, the cluster's protocol ranges, overrides and the
// time in; a verdict and a reason code out. No allocation and no I/O, so the inbound and
// outbound hot paths can call it per request, and tests can enumerate it exhaustively.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "admission/version.hpp"
#include "config/config.hpp"

namespace joingate::admission {

enum class Verdict : std::uint8_t {
    admit,
    reject, // the policy says no; stays no until versions, leader or config change
    wait,   // cannot decide yet (leader unknown, fail closed): not admitted, try again later
};

// Exactly the reason codes of DESIGN §6 (they are metric label values and log fields).
enum class Reason : std::uint8_t {
    same_version,
    newer_than_leader,
    older_than_leader,
    version_mismatch,
    skew_exceeded,
    protocol_incompatible,
    leader_unknown,
    version_unknown,
    override,
};

// Who is asking: the inbound and outbound sides enforce in mode leader/both, the
// follower side (a member judging itself) in mode follower/both.
enum class Side : std::uint8_t { inbound, outbound, follower };

const char* to_string(Verdict);
const char* to_string(Reason);
const char* to_string(Side);
std::optional<Reason> parse_reason(std::string_view) noexcept;

// Does this side block in this mode? (observe never blocks.)
constexpr bool enforces(config::Mode mode, Side side) noexcept {
    switch (mode) {
    case config::Mode::both:
        return true;
    case config::Mode::leader:
        return side != Side::follower;
    case config::Mode::follower:
        return side == Side::follower;
    case config::Mode::observe:
        return false;
    }
    return false;
}

// The policy part of config::Admission, small and trivially copyable.
struct Rules {
    config::Policy policy = config::Policy::not_older_than_leader;
    config::Mode mode = config::Mode::both;
    config::FailMode fail = config::FailMode::closed;
    std::uint32_t max_minor_skew = 1;
    bool allow_older = false;

    static Rules from(const config::Admission& a) noexcept {
        return {a.policy, a.mode, a.fail, a.max_minor_skew, a.allow_older};
    }
};

// An [[admission.override]] with its version parsed once, at load or reload.
struct PreparedOverride {
    std::string member;             // "" = any member
    std::optional<Version> version; // nullopt = any version
    std::chrono::system_clock::time_point until;
    std::string reason;
    int line = 0;

    bool active(std::chrono::system_clock::time_point now) const noexcept { return now < until; }
    // Both given = both must match; a version override never matches an unknown version.
    bool matches(std::string_view who, const Version* v) const noexcept;
};

// Overrides whose version does not parse are left out, one message each in *errors
// (config validation should already have refused them).
std::vector<PreparedOverride> prepare_overrides(const std::vector<config::Override>& in,
                                                std::vector<std::string>* errors = nullptr);

// The one being judged: a caller (inbound), a target (outbound) or the local member.
struct Subject {
    std::string_view member;          // "" when the caller did not say
    const Version* version = nullptr; // nullptr = unknown
    config::ProtocolRange protocol;
};

struct MemberProtocol {
    std::string_view member;
    config::ProtocolRange protocol;
    const Version* version = nullptr; // nullptr = not reported
};

// What the decision needs from the cluster view; views into the view's storage.
struct ClusterFacts {
    const Version* leader_version = nullptr; // nullptr = leader unknown
    std::string_view leader_member;
    std::span<const MemberProtocol> members; // every member that answered, any order
    // Members that answered before and cannot be reached now, at their last known version
    // (none of them is also in `members`). Only the leaderless rule looks at them.
    std::span<const MemberProtocol> unreachable;
    std::uint64_t epoch = 0;                 // changes whenever the fields above change
};

// The highest protocol every member except `exclude` supports (top of the intersection of
// their ranges); nullopt when there are no such members or the ranges do not intersect.
std::optional<std::uint32_t> cluster_protocol(std::span<const MemberProtocol> members,
                                              std::string_view exclude = {}) noexcept;

struct Decision {
    Verdict verdict = Verdict::wait; // what to do
    Reason reason = Reason::leader_unknown;
    bool would_reject = false; // the policy said no, but this side does not enforce in this mode
    bool fail_open = false;    // admitted only because admission.fail = "open"
    bool remembered = false;   // admitted because (member, version) was admitted before
    bool cached = false;       // returned from Gate's per-caller cache (do not log again)
    const PreparedOverride* override_used = nullptr; // for the audit warning

    bool blocks() const noexcept { return verdict != Verdict::admit; }
};

// The decision label for metrics and logs: admit | reject | wait | would_reject.
const char* decision_label(const Decision&) noexcept;

// The policy alone (no overrides, no memory, no mode): what DESIGN §6 says about this
// joiner and this cluster. Unknown versions give leader_unknown/version_unknown with the
// fail mode applied.
Decision evaluate_policy(const Rules& rules, const Subject& who,
                         const ClusterFacts& cluster) noexcept;

// The full decision: override > remembered admission > policy > fail mode, then the mode
// (observe, or a side that does not enforce in this mode) turns any refusal into an admit
// with would_reject set. `remembered` is whether (who.member, *who.version) is already in
// the admission ledger.
Decision decide(const Rules& rules, Side side, const Subject& who, const ClusterFacts& cluster,
                std::span<const PreparedOverride> overrides,
                std::chrono::system_clock::time_point now, bool remembered = false) noexcept;

} // namespace joingate::admission
