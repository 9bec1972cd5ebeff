// "What is judged" (DESIGN §6): the admission ledger and the gate's per-caller cache.
// The scenario that matters: a rolling upgrade where leadership moves to a newer member
// must not cut off the older members it still needs for quorum.
#include "admission/gate.hpp"
#include "admission/ledger.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

static std::atomic<bool> counting{false};
static std::atomic<long> allocations{0};
// noinline: GCC must not see malloc/free pair up with new/delete across inlining.
[[gnu::noinline]] void* operator new(std::size_t n) {
    if (counting)
        ++allocations;
    if (void* p = std::malloc(n ? n : 1))
        return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

using namespace joingate::admission;
using namespace std::chrono_literals;
using joingate::config::Admission;
using joingate::config::Mode;
using joingate::config::Policy;
using Clock = std::chrono::system_clock;

namespace {

const Clock::time_point t0 = Clock::from_time_t(1'800'000'000);

Version v(std::string_view s) {
    return parse_version(s).value();
}

ClusterFacts led_by(const Version& leader, std::uint64_t epoch) {
    ClusterFacts c;
    c.leader_version = &leader;
    c.leader_member = "etcd-0";
    c.epoch = epoch;
    return c;
}

TEST(Ledger, RecordsContainsAndPublishes) {
    AdmissionLedger l;
    EXPECT_FALSE(l.contains("etcd-1", v("3.4.23")));
    EXPECT_TRUE(l.record("etcd-1", v("3.4.23")));
    EXPECT_FALSE(l.record("etcd-1", v("v3.4.23+other-build"))); // same version
    EXPECT_TRUE(l.contains("etcd-1", v("3.4.23")));
    EXPECT_FALSE(l.contains("etcd-1", v("3.5.0")));
    EXPECT_FALSE(l.contains("etcd-2", v("3.4.23")));
    EXPECT_FALSE(l.record("", v("3.4.23"))); // nameless callers are never remembered
    EXPECT_TRUE(l.record("etcd-1", v("3.5.0")));
    EXPECT_TRUE(l.record("etcd-0", v("3.4.23")));
    EXPECT_EQ(l.size(), 3u);
    auto published = l.published();
    ASSERT_EQ(published.size(), 3u);
    EXPECT_EQ(published[0], (MemberVersion{"etcd-0", "3.4.23"}));
    EXPECT_EQ(published[1], (MemberVersion{"etcd-1", "3.4.23"}));
    EXPECT_EQ(published[2], (MemberVersion{"etcd-1", "3.5.0"}));
}

TEST(Ledger, MergesPeersAndSkipsGarbage) {
    AdmissionLedger l;
    l.record("etcd-0", v("3.4.23"));
    auto rev = l.revision();
    EXPECT_EQ(l.merge({{"etcd-0", "3.4.23"},
                       {"etcd-1", "3.4.23"},
                       {"etcd-2", "not-a-version"},
                       {"", "3.4.23"},
                       {"etcd-2", "3.5.0"}}),
              2u);
    EXPECT_GT(l.revision(), rev);
    EXPECT_TRUE(l.contains("etcd-1", v("3.4.23")));
    EXPECT_TRUE(l.contains("etcd-2", v("3.5.0")));
    rev = l.revision();
    EXPECT_EQ(l.merge({{"etcd-1", "3.4.23"}}), 0u);
    EXPECT_EQ(l.revision(), rev); // nothing new, nothing invalidated
}

TEST(Ledger, IsBounded) {
    AdmissionLedger l;
    for (int i = 0; i < 10; ++i)
        l.record("etcd-1", Version{3, static_cast<std::uint64_t>(i), 0, "", ""});
    EXPECT_EQ(l.size(), AdmissionLedger::max_versions_per_member);
    EXPECT_TRUE(l.contains("etcd-1", v("3.9.0")));  // most recent kept
    EXPECT_FALSE(l.contains("etcd-1", v("3.0.0"))); // oldest dropped
    for (std::size_t i = 0; i < AdmissionLedger::max_members + 10; ++i) {
        l.record("m" + std::to_string(i), v("1.0.0"));
    }
    EXPECT_LE(l.published().size(),
              AdmissionLedger::max_members * AdmissionLedger::max_versions_per_member);
}

Admission admission(Policy p, Mode m = Mode::both) {
    Admission a;
    a.policy = p;
    a.mode = m;
    return a;
}

// The rolling upgrade of DESIGN §6: 3.4 members, one restarted at 3.5 becomes leader.
TEST(Gate, NeverReJudgesAnAdmittedMemberBecauseTheLeaderChanged) {
    Gate gate(admission(Policy::not_older_than_leader));
    Version v34 = v("3.4.23"), v35 = v("3.5.0");
    auto old_leader = led_by(v34, 1);
    for (auto m : {"etcd-0", "etcd-1", "etcd-2"}) {
        auto d = gate.judge(Side::inbound, m, "3.4.23", {}, old_leader, t0);
        EXPECT_EQ(d.verdict, Verdict::admit);
        EXPECT_EQ(d.reason, Reason::same_version);
    }
    // etcd-2 restarts at 3.5: a new version, judged again, admitted as newer.
    auto d = gate.judge(Side::inbound, "etcd-2", "3.5.0", {}, old_leader, t0);
    EXPECT_EQ(d.reason, Reason::newer_than_leader);
    EXPECT_FALSE(d.cached);
    // Leadership moves to etcd-2 at 3.5: the 3.4 members stay admitted.
    auto new_leader = led_by(v35, 2);
    for (auto m : {"etcd-0", "etcd-1"}) {
        d = gate.judge(Side::inbound, m, "3.4.23", {}, new_leader, t0);
        EXPECT_EQ(d.verdict, Verdict::admit) << m;
        EXPECT_TRUE(d.remembered) << m;
        EXPECT_EQ(d.reason, Reason::older_than_leader); // what the policy alone would say
        d = gate.judge(Side::outbound, m, "3.4.23", {}, new_leader, t0);
        EXPECT_EQ(d.verdict, Verdict::admit) << m;
    }
    // A member never seen at 3.4 is judged, and refused.
    d = gate.judge(Side::inbound, "etcd-3", "3.4.23", {}, new_leader, t0);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_EQ(d.reason, Reason::older_than_leader);
    // A version change re-judges: etcd-1 downgraded to a version it was never admitted at.
    d = gate.judge(Side::inbound, "etcd-1", "3.4.22", {}, new_leader, t0);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_FALSE(d.remembered);
}

TEST(Gate, SeededFromPeersBeforeJudging) {
    // A sidecar restarted after the upgrade: its own memory is empty, peers remember.
    Gate gate(admission(Policy::exact));
    Version v35 = v("3.5.0");
    auto c = led_by(v35, 1);
    EXPECT_EQ(gate.judge(Side::inbound, "etcd-0", "3.4.23", {}, c, t0).verdict, Verdict::reject);
    EXPECT_EQ(gate.merge({{"etcd-0", "3.4.23"}, {"etcd-1", "3.4.23"}}), 2u);
    auto d = gate.judge(Side::inbound, "etcd-0", "3.4.23", {}, c, t0);
    EXPECT_EQ(d.verdict, Verdict::admit); // the cached refusal was dropped by the merge
    EXPECT_TRUE(d.remembered);
}

TEST(Gate, OnlyRealAdmissionsAreRemembered) {
    Version v35 = v("3.5.0");
    {
        // Observe: a would_reject is not an admission.
        Gate gate(admission(Policy::exact, Mode::observe));
        auto d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, led_by(v35, 1), t0);
        EXPECT_EQ(d.verdict, Verdict::admit);
        EXPECT_TRUE(d.would_reject);
        EXPECT_FALSE(gate.ledger().contains("etcd-1", v("3.4.0")));
        // But a real admit in observe mode is.
        gate.judge(Side::inbound, "etcd-2", "3.5.0", {}, led_by(v35, 1), t0);
        EXPECT_TRUE(gate.ledger().contains("etcd-2", v35));
    }
    {
        // Fail open: admitted without knowing the leader, judged again once it is known.
        auto a = admission(Policy::exact);
        a.fail = joingate::config::FailMode::open;
        Gate gate(a);
        auto d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, ClusterFacts{}, t0);
        EXPECT_TRUE(d.fail_open);
        EXPECT_EQ(gate.ledger().size(), 0u);
        d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, led_by(v35, 1), t0);
        EXPECT_EQ(d.verdict, Verdict::reject);
    }
    {
        // An override admission is remembered: its expiry does not cut the member off.
        auto a = admission(Policy::exact);
        joingate::config::Override o;
        o.member = "etcd-1";
        o.until = t0 + 1h;
        o.reason = "test";
        a.overrides.push_back(o);
        Gate gate(a);
        auto d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, led_by(v35, 1), t0);
        EXPECT_EQ(d.reason, Reason::override);
        d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, led_by(v35, 1), t0 + 2h);
        EXPECT_EQ(d.verdict, Verdict::admit);
        EXPECT_TRUE(d.remembered);
    }
    {
        // Unknown versions and nameless callers leave no trace.
        Gate gate(admission(Policy::not_older_than_leader));
        gate.judge(Side::inbound, "etcd-1", "", {}, led_by(v35, 1), t0);
        gate.judge(Side::inbound, "", "3.5.0", {}, led_by(v35, 1), t0);
        EXPECT_EQ(gate.ledger().size(), 0u);
    }
}

TEST(Gate, CachePerCallerUntilSomethingRelevantChanges) {
    using joingate::config::Override;
    auto a = admission(Policy::exact);
    Gate gate(a);
    Version v35 = v("3.5.0"), v36 = v("3.6.0");
    auto c1 = led_by(v35, 1);
    auto d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, c1, t0);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_FALSE(d.cached);
    d = gate.judge(Side::inbound, "etcd-1", "3.4.0", {}, c1, t0);
    EXPECT_TRUE(d.cached);
    EXPECT_EQ(d.verdict, Verdict::reject);
    // Another side has its own entry.
    EXPECT_FALSE(gate.judge(Side::outbound, "etcd-1", "3.4.0", {}, c1, t0).cached);
    // The caller's version changes: judged again.
    d = gate.judge(Side::inbound, "etcd-1", "3.5.0", {}, c1, t0);
    EXPECT_FALSE(d.cached);
    EXPECT_EQ(d.verdict, Verdict::admit);
    // Its protocol changes: judged again.
    EXPECT_FALSE(gate.judge(Side::inbound, "etcd-1", "3.5.0", {1, 2}, c1, t0).cached);
    // A refused caller is judged again when the cluster changes.
    gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c1, t0);
    EXPECT_TRUE(gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c1, t0).cached);
    auto c2 = led_by(v36, 2);
    d = gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c2, t0);
    EXPECT_FALSE(d.cached);
    EXPECT_EQ(d.verdict, Verdict::admit);
    // ... and after a reload.
    EXPECT_TRUE(gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c2, t0).cached);
    gate.configure(a);
    EXPECT_FALSE(gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c2, t0).cached);
    EXPECT_EQ(gate.judge(Side::inbound, "etcd-2", "3.6.0", {}, c2, t0).verdict, Verdict::admit);
}

TEST(Gate, CachedOverrideAdmissionEndsWithTheOverride) {
    auto a = admission(Policy::exact, Mode::both);
    joingate::config::Override o;
    o.version = "3.4.0";
    o.until = t0 + 1h;
    o.reason = "test";
    a.overrides.push_back(o);
    Gate gate(a);
    Version v35 = v("3.5.0");
    auto c = led_by(v35, 1);
    // A nameless caller is not remembered, so only the cache carries the override.
    auto d = gate.judge(Side::inbound, "", "3.4.0", {}, c, t0);
    EXPECT_EQ(d.reason, Reason::override);
    EXPECT_EQ(gate.overrides_active(t0), 1u);
    EXPECT_TRUE(gate.judge(Side::inbound, "", "3.4.0", {}, c, t0 + 59min).cached);
    d = gate.judge(Side::inbound, "", "3.4.0", {}, c, t0 + 1h);
    EXPECT_FALSE(d.cached);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_EQ(gate.overrides_active(t0 + 1h), 0u);
    auto expired = gate.take_newly_expired(t0 + 1h);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_TRUE(gate.take_newly_expired(t0 + 2h).empty()); // reported once
}

TEST(Gate, CacheHitAllocatesNothing) {
    Gate gate(admission(Policy::not_older_than_leader));
    Version v35 = v("3.5.0-rc.1");
    auto c = led_by(v35, 7);
    gate.judge(Side::inbound, "etcd-member-with-a-long-name", "3.5.0-rc.1+build.123", {}, c, t0);
    gate.judge(Side::inbound, "etcd-old", "3.4.0", {}, c, t0);
    // Its cost is measured by tests/bench (BM_GateJudgeCached), never timed here.
    counting = true;
    int blocked = 0, misses = 0;
    for (int i = 0; i < 1000; ++i) {
        auto d = gate.judge(Side::inbound, "etcd-member-with-a-long-name", "3.5.0-rc.1+build.123", {}, c, t0);
        auto r = gate.judge(Side::inbound, "etcd-old", "3.4.0", {}, c, t0);
        blocked += r.blocks() + d.blocks();
        misses += !d.cached + !r.cached;
    }
    counting = false;
    EXPECT_EQ(allocations.load(), 0);
    EXPECT_EQ(misses, 0);
    EXPECT_EQ(blocked, 1000);
}

TEST(Gate, CacheIsBounded) {
    Gate gate(admission(Policy::exact));
    Version v35 = v("3.5.0");
    auto c = led_by(v35, 1);
    for (std::size_t i = 0; i < Gate::max_cached_callers + 100; ++i) {
        gate.judge(Side::inbound, "m" + std::to_string(i), "3.4.0", {}, c, t0);
    }
    EXPECT_LE(gate.cache_size(), Gate::max_cached_callers);
}

TEST(Gate, ConfigureReportsBadOverridesAndKeepsTheLedger) {
    auto a = admission(Policy::exact);
    Gate gate(a);
    Version v35 = v("3.5.0");
    gate.judge(Side::inbound, "etcd-1", "3.5.0", {}, led_by(v35, 1), t0);
    joingate::config::Override o;
    o.version = "bogus";
    o.until = t0 + 1h;
    o.line = 42;
    a.overrides.push_back(o);
    a.policy = Policy::skew;
    auto errors = gate.configure(a);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("line 42"), std::string::npos);
    EXPECT_EQ(gate.rules().policy, Policy::skew);
    EXPECT_TRUE(gate.ledger().contains("etcd-1", v35));
}

} // namespace
