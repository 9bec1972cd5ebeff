// Follower-controlled wait-and-retry (DESIGN §6) as scripted event sequences on a fake
// clock: admission, backoff, on_reject, fail modes, bootstrap, the deadline, reloads
// while waiting, and "once admitted, stays admitted until the own version changes".
#include "admission/follower.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

using namespace joingate::admission;
using namespace std::chrono_literals;
using joingate::config::Admission;
using joingate::config::FailMode;
using joingate::config::Mode;
using joingate::config::OnReject;
using joingate::config::Policy;

namespace {

const std::vector<std::string> peers = {"etcd-0:2380", "etcd-1:2380", "etcd-2:2380"};

// The joiner is etcd-2; etcd-0 leads.
struct Harness {
    Now now{std::chrono::steady_clock::time_point{} + 1000h,
            std::chrono::system_clock::from_time_t(1'800'000'000)};
    Admission admission;
    FollowerSettings settings;
    Gate gate{admission};
    ClusterView view{peers};
    Follower follower;
    double u = 0.0; // the "random" draw: 0 = no jitter, full delay

    explicit Harness(Admission a = {}, FollowerSettings s = make_settings())
        : admission(a), settings(s), gate(admission),
          follower(settings, gate, [this] { return u; }) {}

    static FollowerSettings make_settings() {
        FollowerSettings s;
        s.member = "etcd-2";
        s.protocol = {1, 1};
        return s;
    }

    void advance(std::chrono::steady_clock::duration d) {
        now.mono += d;
        now.wall += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    }
    // A full view round: leader etcd-0 at `leader`, etcd-1 at `other`, etcd-2 (self).
    Action round(const std::string& leader, const std::string& other = "3.4.23") {
        VersionDoc l;
        l.member = "etcd-0";
        l.version = leader;
        l.role = Role::leader;
        view.on_answer(peers[0], l, now.wall);
        VersionDoc o;
        o.member = "etcd-1";
        o.version = other;
        o.role = Role::follower;
        view.on_answer(peers[1], o, now.wall);
        view.on_unreachable(peers[2], "not started"); // our own peer is held back
        return follower.on_view(ViewAnswer::from(view, "etcd-2"), now);
    }
    Action nobody_answers() {
        for (auto& p : peers)
            view.on_unreachable(p, "refused");
        return follower.on_view(ViewAnswer::from(view, "etcd-2"), now);
    }
    FollowerStatus status() const { return follower.status(now.mono); }
};

Version v(std::string_view s) {
    return parse_version(s).value();
}

TEST(Follower, AdmittedAtOnceWhenTheLeaderRunsTheSameVersion) {
    Harness h;
    h.follower.set_own_version(v("3.4.23"), h.now);
    EXPECT_EQ(h.status().state, FollowerState::probing);
    EXPECT_FALSE(h.status().admitted);
    EXPECT_EQ(h.follower.start(h.now).kind, ActionKind::probe_now);
    auto a = h.round("3.4.23");
    EXPECT_EQ(a.kind, ActionKind::admitted);
    EXPECT_EQ(a.reason, Reason::same_version);
    auto s = h.status();
    EXPECT_TRUE(s.admitted);
    EXPECT_EQ(s.state, FollowerState::admitted);
    EXPECT_EQ(s.reason, Reason::same_version);
    EXPECT_EQ(s.member, "etcd-2");
    EXPECT_EQ(s.member_version, "3.4.23");
    ASSERT_TRUE(s.leader);
    EXPECT_EQ(s.leader->member, "etcd-0");
    EXPECT_EQ(s.leader->version, "3.4.23");
    EXPECT_EQ(s.tries, 1u);
    EXPECT_FALSE(s.next_try_in);
    EXPECT_EQ(s.waited, std::chrono::steady_clock::duration::zero());
    // Published for the rest of the cluster.
    EXPECT_TRUE(h.gate.ledger().contains("etcd-2", v("3.4.23")));
}

TEST(Follower, WaitsWithExponentialBackoffUntilTheLeaderCatchesUp) {
    Admission a;
    a.policy = Policy::exact;
    Harness h(a);
    h.follower.set_own_version(v("3.5.0"), h.now);
    auto start = h.now.mono;
    ASSERT_EQ(h.follower.start(h.now).kind, ActionKind::probe_now);
    const std::vector<std::chrono::seconds> delays = {1s, 2s, 4s, 8s, 16s, 30s, 30s};
    for (std::size_t i = 0; i < delays.size(); ++i) {
        auto act = h.round("3.4.23");
        ASSERT_EQ(act.kind, ActionKind::sleep_until) << i;
        EXPECT_EQ(act.reason, Reason::version_mismatch);
        EXPECT_EQ(act.until, h.now.mono + delays[i]) << i;
        auto s = h.status();
        EXPECT_EQ(s.state, FollowerState::waiting);
        EXPECT_FALSE(s.admitted);
        EXPECT_EQ(s.reason, Reason::version_mismatch);
        EXPECT_EQ(s.next_try_in, std::chrono::duration_cast<std::chrono::milliseconds>(delays[i]));
        EXPECT_EQ(s.tries, i + 1);
        // A timer that fires early just re-arms.
        h.advance(delays[i] / 2);
        auto early = h.follower.on_timer(h.now);
        EXPECT_EQ(early.kind, ActionKind::sleep_until);
        EXPECT_EQ(early.until, act.until);
        h.advance(delays[i] - delays[i] / 2);
        EXPECT_EQ(h.follower.on_timer(h.now).kind, ActionKind::probe_now);
        EXPECT_EQ(h.status().state, FollowerState::probing);
    }
    // The leader is upgraded: admitted, and the wait is measured.
    auto act = h.round("3.5.0", "3.5.0");
    EXPECT_EQ(act.kind, ActionKind::admitted);
    EXPECT_EQ(h.status().waited, h.now.mono - start);
    EXPECT_EQ(h.status().tries, delays.size() + 1);
}

TEST(Follower, JitteredSleepsStayInTheDocumentedInterval) {
    Admission a;
    a.policy = Policy::exact;
    Harness h(a);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    h.follower.set_own_version(v("3.5.0"), h.now);
    h.follower.start(h.now);
    for (std::uint32_t i = 0; i < 50; ++i) {
        h.u = uniform(rng);
        auto act = h.round("3.4.23");
        ASSERT_EQ(act.kind, ActionKind::sleep_until);
        auto ceiling = backoff_ceiling(h.settings.retry, i);
        auto d = act.until - h.now.mono;
        EXPECT_GT(d, ceiling / 2);
        EXPECT_LE(d, ceiling);
        h.now.mono = act.until;
        ASSERT_EQ(h.follower.on_timer(h.now).kind, ActionKind::probe_now);
    }
}

TEST(Follower, OnRejectExitGivesUpWithTheReason) {
    Admission a;
    a.on_reject = OnReject::exit;
    auto s = Harness::make_settings();
    s.on_reject = OnReject::exit;
    Harness h(a, s);
    h.follower.set_own_version(v("3.4.0"), h.now);
    h.follower.start(h.now);
    auto act = h.round("3.4.23");
    EXPECT_EQ(act.kind, ActionKind::exit_with);
    EXPECT_EQ(act.reason, Reason::older_than_leader);
    EXPECT_EQ(h.status().state, FollowerState::gave_up);
    EXPECT_FALSE(h.status().admitted);
    // Terminal: nothing revives it.
    EXPECT_EQ(h.round("3.4.0").kind, ActionKind::none);
    EXPECT_EQ(h.follower.on_timer(h.now).kind, ActionKind::none);
    EXPECT_EQ(h.follower.on_config(s, h.now).kind, ActionKind::none);
    EXPECT_EQ(h.status().state, FollowerState::gave_up);
}

TEST(Follower, OnRejectExitStillWaitsForAnUnknownLeaderOrOwnVersion) {
    auto s = Harness::make_settings();
    s.on_reject = OnReject::exit;
    Harness h({}, s);
    h.follower.start(h.now);
    // Own version not probed yet.
    auto act = h.round("3.4.23");
    EXPECT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.reason, Reason::version_unknown);
    h.now.mono = act.until;
    h.follower.on_timer(h.now);
    h.follower.set_own_version(v("3.4.23"), h.now);
    // Nobody answers: leader unknown.
    act = h.nobody_answers();
    EXPECT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.reason, Reason::leader_unknown);
    h.now.mono = act.until;
    h.follower.on_timer(h.now);
    EXPECT_EQ(h.round("3.4.23").kind, ActionKind::admitted);
}

TEST(Follower, FailModeDecidesWithoutALeader) {
    {
        Harness h; // closed
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        auto act = h.follower.on_no_leader(h.now);
        EXPECT_EQ(act.kind, ActionKind::sleep_until);
        EXPECT_EQ(act.reason, Reason::leader_unknown);
        EXPECT_FALSE(h.status().admitted);
    }
    {
        Admission a;
        a.fail = FailMode::open;
        Harness h(a);
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        auto act = h.follower.on_no_leader(h.now);
        EXPECT_EQ(act.kind, ActionKind::admitted);
        EXPECT_EQ(act.reason, Reason::leader_unknown);
        EXPECT_TRUE(h.status().fail_open);
        EXPECT_FALSE(h.gate.ledger().contains("etcd-2", v("3.4.23"))); // a guess, not a verdict
    }
}

TEST(Follower, LoneBootstrapMemberAdmitsItself) {
    auto s = Harness::make_settings();
    s.bootstrap = true;
    {
        Harness h({}, s);
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        auto act = h.nobody_answers();
        EXPECT_EQ(act.kind, ActionKind::admitted);
        EXPECT_TRUE(h.status().bootstrap);
        EXPECT_TRUE(h.gate.ledger().contains("etcd-2", v("3.4.23")));
    }
    {
        // Only our own sidecar answers (cluster.peers lists us too): still alone.
        Harness h({}, s);
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        h.view.on_unreachable(peers[0], "refused");
        h.view.on_unreachable(peers[1], "refused");
        VersionDoc self;
        self.member = "etcd-2";
        self.version = "3.4.23";
        h.view.on_answer(peers[2], self, h.now.wall);
        EXPECT_EQ(h.follower.on_view(ViewAnswer::from(h.view, "etcd-2"), h.now).kind,
                  ActionKind::admitted);
    }
    {
        // Peers answer: bootstrap does not bypass the policy.
        Harness h({}, s);
        h.follower.set_own_version(v("3.4.0"), h.now);
        h.follower.start(h.now);
        EXPECT_EQ(h.round("3.4.23").kind, ActionKind::sleep_until);
        EXPECT_FALSE(h.status().bootstrap);
    }
    {
        // A round that is not complete yet is not "nobody answered".
        Harness h({}, s);
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        h.view.on_unreachable(peers[0], "refused");
        auto act = h.follower.on_view(ViewAnswer::from(h.view, "etcd-2"), h.now);
        EXPECT_EQ(act.kind, ActionKind::sleep_until);
    }
    {
        // Without cluster.bootstrap a lone member waits.
        Harness h;
        h.follower.set_own_version(v("3.4.23"), h.now);
        h.follower.start(h.now);
        EXPECT_EQ(h.nobody_answers().kind, ActionKind::sleep_until);
    }
}

TEST(Follower, DeadlineEndsTheWait) {
    auto s = Harness::make_settings();
    s.retry.deadline = 10s;
    Harness h({}, s);
    h.follower.set_own_version(v("3.4.0"), h.now);
    auto start = h.now.mono;
    h.follower.start(h.now);
    // Sleeps 1, 2, 4, then 3 (cut at the deadline), then one last try fails.
    const std::vector<std::chrono::seconds> sleeps = {1s, 2s, 4s, 3s};
    for (auto d : sleeps) {
        auto act = h.round("3.4.23");
        ASSERT_EQ(act.kind, ActionKind::sleep_until);
        EXPECT_EQ(act.until - h.now.mono, d);
        EXPECT_LE(act.until, start + 10s);
        h.now.mono = act.until;
        ASSERT_EQ(h.follower.on_timer(h.now).kind, ActionKind::probe_now);
    }
    EXPECT_EQ(h.now.mono, start + 10s);
    auto act = h.round("3.4.23");
    EXPECT_EQ(act.kind, ActionKind::exit_with);
    EXPECT_EQ(act.reason, Reason::older_than_leader);
    EXPECT_EQ(h.status().state, FollowerState::gave_up);
}

TEST(Follower, AdmittedBeforeTheDeadlineIsAdmitted) {
    auto s = Harness::make_settings();
    s.retry.deadline = 10s;
    Harness h({}, s);
    h.follower.set_own_version(v("3.4.23"), h.now);
    h.follower.start(h.now);
    auto act = h.nobody_answers();
    h.now.mono = act.until;
    h.follower.on_timer(h.now);
    EXPECT_EQ(h.round("3.4.23").kind, ActionKind::admitted);
    h.advance(1h); // the deadline no longer matters
    EXPECT_EQ(h.round("3.4.23").kind, ActionKind::none);
    EXPECT_TRUE(h.status().admitted);
}

TEST(Follower, StaysAdmittedAcrossLeaderChangesUntilItsOwnVersionChanges) {
    Harness h;
    h.follower.set_own_version(v("3.4.23"), h.now);
    h.follower.start(h.now);
    ASSERT_EQ(h.round("3.4.23").kind, ActionKind::admitted);
    // Another member upgraded to 3.5 now leads: we are older, and stay admitted.
    h.advance(5s);
    EXPECT_EQ(h.round("3.5.0", "3.5.0").kind, ActionKind::none);
    EXPECT_TRUE(h.status().admitted);
    h.advance(5s);
    EXPECT_EQ(h.nobody_answers().kind, ActionKind::none);
    EXPECT_TRUE(h.status().admitted);
    // The same version probed again (even with other build metadata): nothing changes.
    EXPECT_EQ(h.follower.set_own_version(v("3.4.23+rebuild"), h.now).kind, ActionKind::none);
    // A failed probe keeps the last known version.
    EXPECT_EQ(h.follower.set_own_version(std::nullopt, h.now).kind, ActionKind::none);
    EXPECT_EQ(h.status().member_version, "3.4.23+rebuild");
    // Restarted at another version: judged again, and now refused (older than 3.5).
    auto act = h.follower.set_own_version(v("3.4.24"), h.now);
    EXPECT_EQ(act.kind, ActionKind::probe_now);
    EXPECT_FALSE(h.status().admitted);
    EXPECT_EQ(h.status().tries, 0u);
    act = h.round("3.5.0", "3.5.0");
    EXPECT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.reason, Reason::older_than_leader);
    EXPECT_EQ(act.until - h.now.mono, 1s); // backoff starts over
    h.now.mono = act.until;
    h.follower.on_timer(h.now);
    act = h.follower.set_own_version(v("3.5.0"), h.now);
    EXPECT_EQ(act.kind, ActionKind::probe_now);
    EXPECT_EQ(h.round("3.5.0", "3.5.0").kind, ActionKind::admitted);
}

TEST(Follower, OwnVersionChangeWhileWaitingStartsTheWaitOver) {
    auto s = Harness::make_settings();
    s.retry.deadline = 20s;
    Harness h({}, s);
    h.follower.set_own_version(v("3.4.0"), h.now);
    h.follower.start(h.now);
    for (int i = 0; i < 4; ++i) { // 1 + 2 + 4 + 8 s
        auto act = h.round("3.5.0");
        ASSERT_EQ(act.kind, ActionKind::sleep_until);
        h.now.mono = act.until;
        h.follower.on_timer(h.now);
    }
    EXPECT_EQ(h.status().tries, 4u);
    // Upgraded, but still older than the leader: a fresh wait with a fresh backoff and
    // a deadline counted from now (15 s are gone, 20 s remain).
    EXPECT_EQ(h.follower.set_own_version(v("3.4.1"), h.now).kind, ActionKind::probe_now);
    EXPECT_EQ(h.status().tries, 0u);
    auto act = h.round("3.5.0");
    ASSERT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.until - h.now.mono, 1s);
    h.advance(12s);
    act = h.round("3.5.0");
    ASSERT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.until - h.now.mono, 2s);
}

TEST(Follower, ReloadDuringWaitJudgesAgainUnderTheNewRules) {
    Harness h;
    h.follower.set_own_version(v("3.4.0"), h.now);
    h.follower.start(h.now);
    for (int i = 0; i < 4; ++i) {
        auto act = h.round("3.5.0");
        ASSERT_EQ(act.kind, ActionKind::sleep_until);
        h.now.mono = act.until;
        h.follower.on_timer(h.now);
    }
    auto act = h.round("3.5.0");
    ASSERT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.until - h.now.mono, 16s);
    // The operator allows one older minor.
    h.admission.policy = Policy::skew;
    h.admission.allow_older = true;
    h.gate.configure(h.admission);
    h.advance(2s);
    act = h.follower.on_config(h.settings, h.now);
    EXPECT_EQ(act.kind, ActionKind::probe_now);
    act = h.round("3.5.0");
    EXPECT_EQ(act.kind, ActionKind::admitted);
    EXPECT_EQ(act.reason, Reason::older_than_leader);
}

TEST(Follower, ReloadDuringWaitResetsTheBackoffAndAppliesNewRetrySettings) {
    Harness h;
    h.follower.set_own_version(v("3.4.0"), h.now);
    h.follower.start(h.now);
    for (int i = 0; i < 5; ++i) {
        auto act = h.round("3.5.0");
        h.now.mono = act.until;
        h.follower.on_timer(h.now);
    }
    auto s = h.settings;
    s.retry.initial = 250ms;
    EXPECT_EQ(h.follower.on_config(s, h.now).kind, ActionKind::probe_now);
    auto act = h.round("3.5.0");
    ASSERT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.until - h.now.mono, 250ms);
    // Reloading into observe mode releases the wait.
    h.admission.mode = Mode::observe;
    h.gate.configure(h.admission);
    EXPECT_EQ(h.follower.on_config(s, h.now).kind, ActionKind::admitted);
    EXPECT_TRUE(h.status().admitted);
}

TEST(Follower, ReloadDoesNotUnadmit) {
    Harness h;
    h.follower.set_own_version(v("3.4.23"), h.now);
    h.follower.start(h.now);
    ASSERT_EQ(h.round("3.4.23").kind, ActionKind::admitted);
    h.admission.policy = Policy::exact;
    h.gate.configure(h.admission);
    EXPECT_EQ(h.follower.on_config(h.settings, h.now).kind, ActionKind::none);
    EXPECT_EQ(h.round("3.5.0", "3.5.0").kind, ActionKind::none);
    EXPECT_TRUE(h.status().admitted);
}

TEST(Follower, ObserveAndLeaderModesNeverHoldTheMember) {
    for (auto mode : {Mode::observe, Mode::leader}) {
        SCOPED_TRACE(joingate::config::to_string(mode));
        Admission a;
        a.mode = mode;
        Harness h(a);
        h.follower.set_own_version(v("3.4.0"), h.now);
        EXPECT_EQ(h.follower.start(h.now).kind, ActionKind::admitted);
        EXPECT_TRUE(h.status().admitted);
        // The view still shows what the policy thinks.
        EXPECT_EQ(h.round("3.5.0").kind, ActionKind::none);
        EXPECT_TRUE(h.status().admitted);
        EXPECT_TRUE(h.status().would_reject);
        EXPECT_EQ(h.status().reason, Reason::older_than_leader);
        EXPECT_FALSE(h.gate.ledger().contains("etcd-2", v("3.4.0")));
    }
}

TEST(Follower, ViewRoundsWhileSleepingDoNotDisturbTheSchedule) {
    Harness h;
    h.follower.set_own_version(v("3.4.0"), h.now);
    h.follower.start(h.now);
    auto act = h.round("3.5.0");
    ASSERT_EQ(act.kind, ActionKind::sleep_until);
    auto until = act.until;
    h.advance(200ms);
    act = h.round("3.5.0"); // the periodic refresh, still refused
    EXPECT_EQ(act.kind, ActionKind::sleep_until);
    EXPECT_EQ(act.until, until);
    EXPECT_EQ(h.status().tries, 1u);
    h.advance(200ms);
    act = h.round("3.4.0", "3.4.0"); // the leader was rolled back: admitted without waiting
    EXPECT_EQ(act.kind, ActionKind::admitted);
}

TEST(Follower, EventsBeforeStartDoNothing) {
    Harness h;
    EXPECT_EQ(h.follower.set_own_version(v("3.4.23"), h.now).kind, ActionKind::none);
    EXPECT_EQ(h.round("3.4.23").kind, ActionKind::none);
    EXPECT_EQ(h.follower.on_timer(h.now).kind, ActionKind::none);
    EXPECT_FALSE(h.status().admitted);
}

// Random event sequences: the invariants hold whatever the order.
TEST(Follower, InvariantsUnderRandomEvents) {
    std::mt19937_64 rng(12345);
    const std::vector<std::string> versions = {"3.4.0", "3.4.23", "3.5.0", ""};
    for (int run = 0; run < 200; ++run) {
        Admission a;
        a.policy = static_cast<Policy>(rng() % 3);
        a.fail = rng() % 2 ? FailMode::open : FailMode::closed;
        auto s = Harness::make_settings();
        s.retry.deadline =
            (rng() % 2) ? std::chrono::milliseconds(60s) : std::chrono::milliseconds(0);
        s.on_reject = rng() % 3 == 0 ? OnReject::exit : OnReject::wait;
        s.bootstrap = rng() % 4 == 0;
        Harness h(a, s);
        h.u = 0.5;
        auto start = h.now.mono;
        h.follower.start(h.now);
        std::optional<std::string> own;
        bool gave_up = false;
        for (int step = 0; step < 60; ++step) {
            bool was_admitted = h.status().admitted;
            Action act;
            bool version_changed = false;
            switch (rng() % 5) {
            case 0: {
                auto& nv = versions[rng() % 3];
                version_changed = own && *own != nv;
                own = nv;
                act = h.follower.set_own_version(v(nv), h.now);
                break;
            }
            case 1:
                act = h.round(versions[rng() % versions.size()]);
                break;
            case 2:
                act = h.nobody_answers();
                break;
            case 3:
                act = h.follower.on_timer(h.now);
                break;
            case 4:
                h.advance(std::chrono::milliseconds(rng() % 20'000));
                continue;
            }
            auto st = h.status();
            if (version_changed && !gave_up)
                start = h.now.mono; // the wait starts over
            if (gave_up) {
                ASSERT_EQ(act.kind, ActionKind::none);
                ASSERT_EQ(st.state, FollowerState::gave_up);
            }
            if (was_admitted && !version_changed) {
                ASSERT_TRUE(st.admitted) << "run " << run << " step " << step;
            }
            if (act.kind == ActionKind::sleep_until) {
                ASSERT_GT(act.until, h.now.mono);
                if (s.retry.deadline.count() > 0) {
                    ASSERT_LE(act.until, start + s.retry.deadline);
                }
                ASSERT_EQ(st.state, FollowerState::waiting);
                ASSERT_TRUE(st.next_try_in);
            }
            if (act.kind == ActionKind::exit_with) {
                ASSERT_EQ(st.state, FollowerState::gave_up);
                gave_up = true;
            }
            if (act.kind == ActionKind::admitted) {
                ASSERT_TRUE(st.admitted);
            }
            ASSERT_EQ(st.admitted, st.state == FollowerState::admitted);
        }
    }
}

} // namespace
