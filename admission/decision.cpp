// The admission decision of DESIGN §6. Every branch here is a row of the policy tables in
// tests/unit/admission_test.cpp.
#include "admission/decision.hpp"

#include <algorithm>
#include <optional>

namespace joingate::admission {

const char* to_string(Verdict v) {
    switch (v) {
    case Verdict::admit:
        return "admit";
    case Verdict::reject:
        return "reject";
    case Verdict::wait:
        return "wait";
    }
    return "unknown";
}

const char* to_string(Reason r) {
    switch (r) {
    case Reason::same_version:
        return "same_version";
    case Reason::newer_than_leader:
        return "newer_than_leader";
    case Reason::older_than_leader:
        return "older_than_leader";
    case Reason::version_mismatch:
        return "version_mismatch";
    case Reason::skew_exceeded:
        return "skew_exceeded";
    case Reason::protocol_incompatible:
        return "protocol_incompatible";
    case Reason::leader_unknown:
        return "leader_unknown";
    case Reason::version_unknown:
        return "version_unknown";
    case Reason::override:
        return "override";
    }
    return "unknown";
}

const char* to_string(Side s) {
    switch (s) {
    case Side::inbound:
        return "inbound";
    case Side::outbound:
        return "outbound";
    case Side::follower:
        return "follower";
    }
    return "unknown";
}

std::optional<Reason> parse_reason(std::string_view s) noexcept {
    for (auto r : {Reason::same_version, Reason::newer_than_leader, Reason::older_than_leader,
                   Reason::version_mismatch, Reason::skew_exceeded, Reason::protocol_incompatible,
                   Reason::leader_unknown, Reason::version_unknown, Reason::override}) {
        if (s == to_string(r))
            return r;
    }
    return std::nullopt;
}

const char* decision_label(const Decision& d) noexcept {
    if (d.would_reject)
        return "would_reject";
    return to_string(d.verdict);
}

bool PreparedOverride::matches(std::string_view who, const Version* v) const noexcept {
    if (member.empty() && !version)
        return false; // matches nothing rather than everything
    if (!member.empty() && member != who)
        return false;
    if (version && (!v || !(*version == *v)))
        return false;
    return true;
}

std::vector<PreparedOverride> prepare_overrides(const std::vector<config::Override>& in,
                                                std::vector<std::string>* errors) {
    std::vector<PreparedOverride> out;
    out.reserve(in.size());
    for (const auto& o : in) {
        PreparedOverride p;
        p.member = o.member.value_or("");
        if (o.version) {
            std::string err;
            p.version = parse_version(*o.version, &err);
            if (!p.version) {
                if (errors)
                    errors->push_back("admission.override (line " + std::to_string(o.line) +
                                      "): " + err);
                continue;
            }
        }
        if (p.member.empty() && !p.version) {
            if (errors) {
                errors->push_back("admission.override (line " + std::to_string(o.line) +
                                  "): neither member nor version given");
            }
            continue;
        }
        p.until = o.until;
        p.reason = o.reason;
        p.line = o.line;
        out.push_back(std::move(p));
    }
    return out;
}

std::optional<std::uint32_t> cluster_protocol(std::span<const MemberProtocol> members,
                                              std::string_view exclude) noexcept {
    bool any = false;
    std::uint32_t lo = 0, hi = UINT32_MAX;
    for (const auto& m : members) {
        if (!exclude.empty() && m.member == exclude)
            continue;
        any = true;
        lo = std::max(lo, m.protocol.min);
        hi = std::min(hi, m.protocol.max);
    }
    if (!any || lo > hi)
        return std::nullopt;
    return hi;
}

namespace {

Decision verdict(Verdict v, Reason r) noexcept {
    Decision d;
    d.verdict = v;
    d.reason = r;
    return d;
}

Decision unknown(const Rules& rules, Reason r) noexcept {
    if (rules.fail == config::FailMode::open) {
        auto d = verdict(Verdict::admit, r);
        d.fail_open = true;
        return d;
    }
    // An unknown leader may become known at the next view round: wait. A caller that does
    // not say its version will not start saying it: reject.
    return verdict(r == Reason::leader_unknown ? Verdict::wait : Verdict::reject, r);
}

// The reason an admit carries when the joiner's version is compared to the leader's.
Reason against_leader(const Version& joiner, const Version& leader) noexcept {
    auto c = joiner <=> leader;
    if (c == 0)
        return Reason::same_version;
    return c > 0 ? Reason::newer_than_leader : Reason::older_than_leader;
}

Decision protocol_policy(const Subject& who, const ClusterFacts& cluster) noexcept {
    bool any_other = false;
    for (const auto& m : cluster.members) {
        if (!who.member.empty() && m.member == who.member)
            continue;
        any_other = true;
        // The joiner must be able to speak with every member, whatever the cluster runs.
        if (who.protocol.max < m.protocol.min || m.protocol.max < who.protocol.min) {
            return verdict(Verdict::reject, Reason::protocol_incompatible);
        }
    }
    if (!any_other)
        return verdict(Verdict::wait, Reason::leader_unknown); // cluster unknown
    auto p = cluster_protocol(cluster.members, who.member);
    if (!p || *p < who.protocol.min || *p > who.protocol.max) {
        return verdict(Verdict::reject, Reason::protocol_incompatible);
    }
    // Admitted on protocol grounds; the reason still tells how it compares to the leader.
    if (!cluster.leader_version)
        return verdict(Verdict::admit, Reason::leader_unknown);
    return verdict(Verdict::admit, against_leader(*who.version, *cluster.leader_version));
}

} // namespace

// The policy of DESIGN §6 for a joiner at `v` against a leader at `leader`.
Decision against(const Rules& rules, const Version& v, const Version& leader) noexcept {
    switch (rules.policy) {
    case config::Policy::exact:
        if (v == leader)
            return verdict(Verdict::admit, Reason::same_version);
        return verdict(Verdict::reject, Reason::version_mismatch);
    case config::Policy::not_older_than_leader: {
        auto r = against_leader(v, leader);
        return verdict(r == Reason::older_than_leader ? Verdict::reject : Verdict::admit, r);
    }
    case config::Policy::skew: {
        auto distance = v.minor > leader.minor ? v.minor - leader.minor : leader.minor - v.minor;
        if (v.major != leader.major || distance > rules.max_minor_skew) {
            return verdict(Verdict::reject, Reason::skew_exceeded);
        }
        auto r = against_leader(v, leader);
        if (r == Reason::older_than_leader && !rules.allow_older) {
            return verdict(Verdict::reject, r);
        }
        return verdict(Verdict::admit, r);
    }
    case config::Policy::protocol:
        break; // handled above
    }
    return unknown(rules, Reason::leader_unknown);
}

Decision evaluate_policy(const Rules& rules, const Subject& who,
                         const ClusterFacts& cluster) noexcept {
    if (!who.version)
        return unknown(rules, Reason::version_unknown);
    if (rules.policy == config::Policy::protocol) {
        auto d = protocol_policy(who, cluster);
        // No other member answered: as good as no leader, so the fail mode decides.
        if (d.verdict == Verdict::wait)
            return unknown(rules, Reason::leader_unknown);
        return d;
    }
    if (!cluster.leader_version) {
        // No member says it leads: a new cluster forming, or an election. Raft needs peer
        // traffic to elect a leader, so refusing everyone here would keep a new cluster
        // leaderless for ever. Judge against every other member that answered instead, and
        // admit only when the policy holds against each of them. A member that answered
        // before and cannot be reached now counts at its last known version: it may be the
        // leader whose sidecar is restarting, and a joiner the old leader would refuse must
        // not slip in during that gap.
        auto others = [&](std::span<const MemberProtocol> list, Decision& last) {
            std::size_t judged = 0;
            for (const auto& m : list) {
                if (!m.version || (!who.member.empty() && m.member == who.member))
                    continue;
                ++judged;
                last = against(rules, *who.version, *m.version);
                if (last.blocks())
                    return std::optional<std::size_t>();
            }
            return std::optional<std::size_t>(judged);
        };
        Decision last = unknown(rules, Reason::leader_unknown);
        auto answered = others(cluster.members, last);
        if (!answered)
            return unknown(rules, Reason::leader_unknown);
        Decision stale = last;
        if (!others(cluster.unreachable, stale) || *answered == 0) // only members that
            return unknown(rules, Reason::leader_unknown);          // answer now admit
        return last;
    }
    return against(rules, *who.version, *cluster.leader_version);
}

Decision decide(const Rules& rules, Side side, const Subject& who, const ClusterFacts& cluster,
                std::span<const PreparedOverride> overrides,
                std::chrono::system_clock::time_point now, bool remembered) noexcept {
    for (const auto& o : overrides) {
        if (o.active(now) && o.matches(who.member, who.version)) {
            auto d = verdict(Verdict::admit, Reason::override);
            d.override_used = &o;
            return d;
        }
    }
    Decision d = evaluate_policy(rules, who, cluster);
    if (remembered && who.version) {
        // Never re-judged because the leader changed or a sidecar restarted (DESIGN §6).
        d.verdict = Verdict::admit;
        d.fail_open = false;
        d.remembered = true;
        return d;
    }
    if (d.blocks() && !enforces(rules.mode, side)) {
        d.verdict = Verdict::admit;
        d.would_reject = true;
    }
    return d;
}

} // namespace joingate::admission
