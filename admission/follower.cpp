// The follower's wait-and-retry state machine. Every transition returns the one action
// the driver must carry out; the driver holds no admission state of its own.
#include "admission/follower.hpp"

#include <algorithm>

namespace joingate::admission {

const char* to_string(FollowerState s) {
    switch (s) {
    case FollowerState::probing:
        return "probing";
    case FollowerState::waiting:
        return "waiting";
    case FollowerState::admitted:
        return "admitted";
    case FollowerState::gave_up:
        return "gave_up";
    }
    return "unknown";
}

const char* to_string(ActionKind k) {
    switch (k) {
    case ActionKind::none:
        return "none";
    case ActionKind::probe_now:
        return "probe_now";
    case ActionKind::sleep_until:
        return "sleep_until";
    case ActionKind::admitted:
        return "admitted";
    case ActionKind::exit_with:
        return "exit_with";
    }
    return "unknown";
}

ViewAnswer ViewAnswer::from(const ClusterView& view, std::string_view self) {
    ViewAnswer a;
    a.facts = view.facts();
    a.complete = view.first_round_done();
    for (const auto& m : a.facts.members)
        a.others_reachable += m.member != self;
    return a;
}

Follower::Follower(FollowerSettings settings, Gate& gate, UnitRandom random)
    : settings_(std::move(settings)), gate_(gate), random_(std::move(random)) {}

std::optional<std::chrono::steady_clock::time_point> Follower::deadline() const {
    if (settings_.retry.deadline.count() <= 0)
        return std::nullopt;
    return wait_started_ + settings_.retry.deadline;
}

Action Follower::restart_wait(Now now) {
    wait_started_ = now.mono;
    admitted_at_.reset();
    bootstrap_ = false;
    tries_ = 0;
    refusals_ = 0;
    if (!enforces(gate_.rules().mode, Side::follower)) {
        // Nothing to wait for in this mode; decisions are still made (and shown) per view.
        state_ = FollowerState::admitted;
        admitted_at_ = now.mono;
        return {ActionKind::admitted, {}, last_ ? last_->reason : Reason::leader_unknown};
    }
    state_ = FollowerState::probing;
    return {ActionKind::probe_now, {}, last_ ? last_->reason : Reason::leader_unknown};
}

Action Follower::start(Now now) {
    started_ = true;
    return restart_wait(now);
}

Action Follower::set_own_version(std::optional<Version> v, Now now) {
    if (!v)
        return {}; // a failed probe: keep what we knew
    if (own_version_ && *own_version_ == *v) {
        own_version_ = std::move(v); // may differ in build metadata only
        return {};
    }
    bool was_unknown = !own_version_;
    own_version_ = std::move(v);
    if (!started_ || state_ == FollowerState::gave_up)
        return {};
    if (was_unknown) {
        // Admitted before the version was known (bootstrap or fail open): publish it now.
        if (state_ == FollowerState::admitted && !last_.value_or(Decision{}).would_reject) {
            gate_.ledger().record(settings_.member, *own_version_);
        }
        return {};
    }
    // A member restarted at another version is judged again (DESIGN §6).
    return restart_wait(now);
}

Action Follower::on_no_leader(Now now) {
    ViewAnswer nothing;
    nothing.complete = true;
    return on_view(nothing, now);
}

Action Follower::on_view(const ViewAnswer& view, Now now) {
    if (!started_ || state_ == FollowerState::gave_up)
        return {};
    leader_.reset();
    if (view.complete && view.facts.leader_version) {
        leader_ =
            MemberVersion{std::string(view.facts.leader_member), view.facts.leader_version->text()};
    }

    Decision d;
    bool bootstrap = false;
    if (!view.complete) {
        d.verdict = Verdict::wait; // the ledger is not seeded yet: decide nothing
        d.reason = Reason::leader_unknown;
    } else if (settings_.bootstrap && view.others_reachable == 0) {
        // A lone first member: nobody to ask, so it admits itself.
        d.verdict = Verdict::admit;
        d.reason = Reason::leader_unknown;
        bootstrap = true;
        if (own_version_)
            gate_.ledger().record(settings_.member, *own_version_);
    } else {
        d = gate_.judge(Side::follower, settings_.member, own_version_ ? &*own_version_ : nullptr,
                        settings_.protocol, view.facts, now.wall);
    }

    if (state_ == FollowerState::admitted) {
        // Once admitted, stays admitted until the own version changes; keep showing what
        // the policy says (observe mode reports would_reject this way).
        if (!d.blocks())
            last_ = d;
        return {};
    }
    last_ = d;
    // A round that arrives when the sleep is over counts as the try the timer would start.
    if (state_ == FollowerState::waiting && now.mono >= next_try_at_)
        state_ = FollowerState::probing;
    if (state_ == FollowerState::probing)
        ++tries_;
    if (!d.blocks()) {
        bootstrap_ = bootstrap;
        state_ = FollowerState::admitted;
        admitted_at_ = now.mono;
        return {ActionKind::admitted, {}, d.reason};
    }
    return refuse(d, now);
}

Action Follower::refuse(const Decision& d, Now now) {
    auto dl = deadline();
    if (dl && now.mono >= *dl) {
        state_ = FollowerState::gave_up;
        return {ActionKind::exit_with, {}, d.reason};
    }
    // Only a real policy refusal ends the wait with on_reject = "exit"; an unknown leader
    // or an own version not probed yet may resolve itself.
    if (d.verdict == Verdict::reject && d.reason != Reason::version_unknown &&
        settings_.on_reject == config::OnReject::exit) {
        state_ = FollowerState::gave_up;
        return {ActionKind::exit_with, {}, d.reason};
    }
    if (state_ == FollowerState::waiting) {
        // A periodic view round during the sleep: keep the current schedule.
        return {ActionKind::sleep_until, next_try_at_, d.reason};
    }
    auto delay = backoff_delay(settings_.retry, refusals_, random_);
    ++refusals_;
    auto next = now.mono + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
    if (dl)
        next = std::min(next, *dl); // wake at the deadline for one last try
    next_try_at_ = next;
    state_ = FollowerState::waiting;
    return {ActionKind::sleep_until, next, d.reason};
}

Action Follower::on_timer(Now now) {
    if (state_ != FollowerState::waiting)
        return {};
    Reason r = last_ ? last_->reason : Reason::leader_unknown;
    if (now.mono < next_try_at_)
        return {ActionKind::sleep_until, next_try_at_, r};
    state_ = FollowerState::probing;
    return {ActionKind::probe_now, {}, r};
}

Action Follower::on_config(FollowerSettings settings, Now now) {
    settings_ = std::move(settings);
    if (!started_ || state_ == FollowerState::gave_up || state_ == FollowerState::admitted) {
        return {};
    }
    // Waiting under new rules: judge again now, with a fresh backoff; the deadline still
    // counts from when the wait began.
    refusals_ = 0;
    if (!enforces(gate_.rules().mode, Side::follower)) {
        state_ = FollowerState::admitted;
        admitted_at_ = now.mono;
        return {ActionKind::admitted, {}, last_ ? last_->reason : Reason::leader_unknown};
    }
    state_ = FollowerState::probing;
    return {ActionKind::probe_now, {}, last_ ? last_->reason : Reason::leader_unknown};
}

FollowerStatus Follower::status(std::chrono::steady_clock::time_point now) const {
    FollowerStatus s;
    s.state = state_;
    s.admitted = state_ == FollowerState::admitted;
    if (last_) {
        s.reason = last_->reason;
        s.would_reject = last_->would_reject;
        s.fail_open = last_->fail_open;
    }
    s.bootstrap = bootstrap_;
    s.member = settings_.member;
    if (own_version_)
        s.member_version = own_version_->text();
    s.leader = leader_;
    if (state_ == FollowerState::waiting) {
        auto left = std::max(next_try_at_ - now, std::chrono::steady_clock::duration::zero());
        s.next_try_in = std::chrono::ceil<std::chrono::milliseconds>(left);
    }
    s.tries = tries_;
    if (admitted_at_)
        s.waited = *admitted_at_ - wait_started_;
    return s;
}

} // namespace joingate::admission
