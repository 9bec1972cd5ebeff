// The admission decision (DESIGN §6): every policy over every pair of a version table,
// protocol ranges exhaustively, fail modes, modes and sides, overrides on a fake clock,
// and the hot-path promises (no allocation, well under a microsecond).
#include "admission/decision.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts heap allocations made while `counting` is set (this test binary only).
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
using joingate::config::FailMode;
using joingate::config::Mode;
using joingate::config::Policy;
using joingate::config::ProtocolRange;
using Clock = std::chrono::system_clock;

namespace {

Version v(std::string_view s) {
    auto r = parse_version(s);
    if (!r)
        ADD_FAILURE() << "bad version in test: " << s;
    return r.value_or(Version{});
}

const Clock::time_point t0 = Clock::from_time_t(1'800'000'000);

const std::vector<const char*> versions = {
    "2",     "3.3.9", "3.4.0-rc.1", "3.4.0", "3.4.23", "3.4.23+build.7", "3.5.0-rc.1",
    "3.5.0", "3.5.3", "3.6.2",      "3.7.0", "4.0.0",  "4.1.0",          "0.4.6",
};

struct Expect {
    Verdict verdict;
    Reason reason;
};

// The rules of DESIGN §6, restated independently of the implementation.
Expect oracle(Policy p, const Version& j, const Version& l, std::uint32_t skew, bool allow_older) {
    auto cmp = j <=> l;
    Reason by_order = cmp == 0  ? Reason::same_version
                      : cmp > 0 ? Reason::newer_than_leader
                                : Reason::older_than_leader;
    switch (p) {
    case Policy::exact:
        return cmp == 0 ? Expect{Verdict::admit, Reason::same_version}
                        : Expect{Verdict::reject, Reason::version_mismatch};
    case Policy::not_older_than_leader:
        return {cmp < 0 ? Verdict::reject : Verdict::admit, by_order};
    case Policy::skew: {
        long long d = static_cast<long long>(j.minor) - static_cast<long long>(l.minor);
        if (j.major != l.major || std::llabs(d) > skew)
            return {Verdict::reject, Reason::skew_exceeded};
        if (cmp < 0 && !allow_older)
            return {Verdict::reject, Reason::older_than_leader};
        return {Verdict::admit, by_order};
    }
    case Policy::protocol:
        break;
    }
    return {Verdict::wait, Reason::leader_unknown};
}

Rules rules(Policy p, Mode m = Mode::both, FailMode f = FailMode::closed, std::uint32_t skew = 1,
            bool allow_older = false) {
    return Rules{p, m, f, skew, allow_older};
}

TEST(Decision, EveryVersionPairUnderEveryVersionPolicy) {
    int checked = 0;
    for (auto p : {Policy::exact, Policy::not_older_than_leader, Policy::skew}) {
        for (std::uint32_t skew : {0u, 1u, 2u}) {
            for (bool allow_older : {false, true}) {
                auto r = rules(p, Mode::both, FailMode::closed, skew, allow_older);
                for (auto js : versions) {
                    for (auto ls : versions) {
                        Version j = v(js), l = v(ls);
                        ClusterFacts cluster;
                        cluster.leader_version = &l;
                        for (auto side : {Side::inbound, Side::outbound, Side::follower}) {
                            auto d = decide(r, side, {"etcd-3", &j, {}}, cluster, {}, t0);
                            auto e = oracle(p, j, l, skew, allow_older);
                            EXPECT_EQ(d.verdict, e.verdict) << to_string(p) << " skew=" << skew
                                                            << " allow_older=" << allow_older
                                                            << " joiner=" << js << " leader=" << ls;
                            EXPECT_EQ(d.reason, e.reason)
                                << to_string(p) << " joiner=" << js << " leader=" << ls;
                            EXPECT_FALSE(d.would_reject);
                            EXPECT_FALSE(d.fail_open);
                            EXPECT_FALSE(d.remembered);
                            EXPECT_EQ(d.override_used, nullptr);
                            ++checked;
                        }
                    }
                }
            }
        }
    }
    EXPECT_EQ(checked, 3 * 3 * 2 * 14 * 14 * 3);
}

// Hand-checked rows, so a bug shared by oracle and implementation still shows.
TEST(Decision, PolicyRowsFromTheDesign) {
    struct Row {
        Policy policy;
        std::uint32_t skew;
        bool allow_older;
        const char* joiner;
        const char* leader;
        Verdict verdict;
        Reason reason;
    };
    const std::vector<Row> rows = {
        {Policy::exact, 1, false, "3.4.23", "3.4.23", Verdict::admit, Reason::same_version},
        {Policy::exact, 1, false, "v3.4.23+x", "3.4.23", Verdict::admit, Reason::same_version},
        {Policy::exact, 1, false, "3.4.22", "3.4.23", Verdict::reject, Reason::version_mismatch},
        {Policy::exact, 1, false, "3.5.0", "3.4.23", Verdict::reject, Reason::version_mismatch},
        {Policy::exact, 1, false, "3.5.0-rc.1", "3.5.0", Verdict::reject, Reason::version_mismatch},
        {Policy::exact, 1, false, "2", "2.0.0", Verdict::admit, Reason::same_version},
        {Policy::not_older_than_leader, 1, false, "3.4.23", "3.4.23", Verdict::admit,
         Reason::same_version},
        {Policy::not_older_than_leader, 1, false, "3.5.0", "3.4.23", Verdict::admit,
         Reason::newer_than_leader},
        {Policy::not_older_than_leader, 1, false, "4.0.0", "3.4.23", Verdict::admit,
         Reason::newer_than_leader},
        {Policy::not_older_than_leader, 1, false, "3.4.22", "3.4.23", Verdict::reject,
         Reason::older_than_leader},
        {Policy::not_older_than_leader, 1, false, "3.5.0-rc.1", "3.5.0", Verdict::reject,
         Reason::older_than_leader},
        {Policy::skew, 1, false, "3.5.0", "3.4.23", Verdict::admit, Reason::newer_than_leader},
        {Policy::skew, 1, false, "3.6.0", "3.4.23", Verdict::reject, Reason::skew_exceeded},
        {Policy::skew, 2, false, "3.6.0", "3.4.23", Verdict::admit, Reason::newer_than_leader},
        {Policy::skew, 1, false, "4.4.23", "3.4.23", Verdict::reject, Reason::skew_exceeded},
        {Policy::skew, 1, false, "3.4.0", "3.5.1", Verdict::reject, Reason::older_than_leader},
        {Policy::skew, 1, true, "3.4.0", "3.5.1", Verdict::admit, Reason::older_than_leader},
        {Policy::skew, 1, true, "3.3.0", "3.5.1", Verdict::reject, Reason::skew_exceeded},
        {Policy::skew, 0, false, "3.4.99", "3.4.0", Verdict::admit, Reason::newer_than_leader},
        {Policy::skew, 0, false, "3.5.0", "3.4.0", Verdict::reject, Reason::skew_exceeded},
        {Policy::skew, 1, false, "3.4.23", "3.4.23", Verdict::admit, Reason::same_version},
    };
    for (const auto& row : rows) {
        Version j = v(row.joiner), l = v(row.leader);
        ClusterFacts cluster;
        cluster.leader_version = &l;
        auto d = decide(rules(row.policy, Mode::both, FailMode::closed, row.skew, row.allow_older),
                        Side::inbound, {"etcd-3", &j, {}}, cluster, {}, t0);
        EXPECT_EQ(to_string(d.verdict), std::string(to_string(row.verdict)))
            << to_string(row.policy) << " " << row.joiner << " vs " << row.leader;
        EXPECT_EQ(to_string(d.reason), std::string(to_string(row.reason)))
            << to_string(row.policy) << " " << row.joiner << " vs " << row.leader;
    }
}

// All ranges with 0 <= min <= max <= 3.
std::vector<ProtocolRange> all_ranges() {
    std::vector<ProtocolRange> out;
    for (std::uint32_t lo = 0; lo <= 3; ++lo) {
        for (std::uint32_t hi = lo; hi <= 3; ++hi)
            out.push_back({lo, hi});
    }
    return out;
}

TEST(Decision, ProtocolPolicyExhaustive) {
    auto ranges = all_ranges();
    Version ver = v("3.5.0"), leader = v("3.4.23");
    int admitted = 0, rejected = 0;
    for (auto a : ranges) {
        for (auto b : ranges) {
            for (auto joiner : ranges) {
                // The joiner may already be in the view (restarted member): it must not count.
                std::vector<MemberProtocol> members = {
                    {"etcd-0", a}, {"etcd-1", b}, {"etcd-3", {9, 9}}};
                ClusterFacts cluster;
                cluster.leader_version = &leader;
                cluster.members = members;
                auto d = decide(rules(Policy::protocol), Side::inbound, {"etcd-3", &ver, joiner},
                                cluster, {}, t0);
                // Oracle: the cluster protocol is the highest value in every member's range.
                std::optional<std::uint32_t> p;
                for (std::uint32_t x = 0; x <= 3; ++x) {
                    if (a.min <= x && x <= a.max && b.min <= x && x <= b.max)
                        p = x;
                }
                auto overlaps = [&](ProtocolRange m) {
                    return joiner.min <= m.max && m.min <= joiner.max;
                };
                bool ok = p && joiner.min <= *p && *p <= joiner.max && overlaps(a) && overlaps(b);
                EXPECT_EQ(cluster_protocol(members, "etcd-3"), p);
                if (ok) {
                    ++admitted;
                    EXPECT_EQ(d.verdict, Verdict::admit);
                    EXPECT_EQ(d.reason, Reason::newer_than_leader);
                } else {
                    ++rejected;
                    EXPECT_EQ(d.verdict, Verdict::reject);
                    EXPECT_EQ(d.reason, Reason::protocol_incompatible);
                }
            }
        }
    }
    EXPECT_GT(admitted, 50);
    EXPECT_GT(rejected, 50);
}

TEST(Decision, ProtocolPolicyRows) {
    Version ver = v("3.6.0");
    auto run = [&](std::vector<MemberProtocol> members, ProtocolRange joiner,
                   const Version* leader) {
        ClusterFacts cluster;
        cluster.leader_version = leader;
        cluster.members = members;
        return decide(rules(Policy::protocol), Side::inbound, {"etcd-9", &ver, joiner}, cluster, {},
                      t0);
    };
    Version l = v("3.6.0");
    // Rolling upgrade 1 -> 2: new members speak 1..2 while any old one speaks only 1.
    auto d = run({{"a", {1, 1}}, {"b", {1, 2}}}, {1, 2}, &l);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_EQ(d.reason, Reason::same_version);
    // A member that dropped 1 cannot join while someone still speaks only 1.
    EXPECT_EQ(run({{"a", {1, 1}}, {"b", {1, 2}}}, {2, 2}, &l).reason,
              Reason::protocol_incompatible);
    // All upgraded: cluster protocol 2; a 2-only member may join.
    EXPECT_EQ(run({{"a", {1, 2}}, {"b", {1, 2}}}, {2, 2}, &l).verdict, Verdict::admit);
    // ... and an old 1-only member may not (cluster protocol 2 not in its range).
    EXPECT_EQ(run({{"a", {1, 2}}, {"b", {1, 2}}}, {1, 1}, &l).reason,
              Reason::protocol_incompatible);
    // Cluster already split: nobody can join.
    EXPECT_EQ(run({{"a", {1, 1}}, {"b", {2, 2}}}, {1, 2}, &l).reason,
              Reason::protocol_incompatible);
    // The protocol policy does not need the leader; the reason then says it is unknown.
    d = run({{"a", {1, 1}}}, {1, 1}, nullptr);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_FALSE(d.fail_open);
    EXPECT_EQ(d.reason, Reason::leader_unknown);
    // Nobody else in the view: the cluster is unknown, fail closed waits.
    d = run({{"etcd-9", {1, 1}}}, {1, 1}, &l);
    EXPECT_EQ(d.verdict, Verdict::wait);
    EXPECT_EQ(d.reason, Reason::leader_unknown);
}

TEST(Decision, UnknownVersionsFollowTheFailMode) {
    Version j = v("3.4.23"), l = v("3.4.23");
    ClusterFacts known, unknown_leader;
    known.leader_version = &l;
    for (auto p : {Policy::exact, Policy::not_older_than_leader, Policy::skew, Policy::protocol}) {
        SCOPED_TRACE(to_string(p));
        // Leader unknown: closed waits (it may become known), open admits and says so.
        auto d = decide(rules(p, Mode::both, FailMode::closed), Side::inbound, {"m", &j, {}},
                        unknown_leader, {}, t0);
        EXPECT_EQ(d.verdict, Verdict::wait);
        EXPECT_EQ(d.reason, Reason::leader_unknown);
        EXPECT_FALSE(d.fail_open);
        d = decide(rules(p, Mode::both, FailMode::open), Side::inbound, {"m", &j, {}},
                   unknown_leader, {}, t0);
        EXPECT_EQ(d.verdict, Verdict::admit);
        EXPECT_EQ(d.reason, Reason::leader_unknown);
        EXPECT_TRUE(d.fail_open);
        // Caller version unknown: closed rejects, open admits.
        d = decide(rules(p, Mode::both, FailMode::closed), Side::inbound, {"m", nullptr, {}}, known,
                   {}, t0);
        EXPECT_EQ(d.verdict, Verdict::reject);
        EXPECT_EQ(d.reason, Reason::version_unknown);
        d = decide(rules(p, Mode::both, FailMode::open), Side::inbound, {"m", nullptr, {}}, known,
                   {}, t0);
        EXPECT_EQ(d.verdict, Verdict::admit);
        EXPECT_EQ(d.reason, Reason::version_unknown);
        EXPECT_TRUE(d.fail_open);
        EXPECT_STREQ(decision_label(d), "admit");
    }
}

TEST(Decision, ModesAndSides) {
    struct Row {
        Mode mode;
        bool inbound, outbound, follower; // enforced?
    };
    const std::vector<Row> rows = {
        {Mode::both, true, true, true},
        {Mode::leader, true, true, false},
        {Mode::follower, false, false, true},
        {Mode::observe, false, false, false},
    };
    Version old = v("3.4.0"), leader = v("3.5.0");
    ClusterFacts cluster;
    cluster.leader_version = &leader;
    for (const auto& row : rows) {
        for (auto [side, enforced] :
             {std::pair{Side::inbound, row.inbound}, std::pair{Side::outbound, row.outbound},
              std::pair{Side::follower, row.follower}}) {
            SCOPED_TRACE(std::string(to_string(row.mode)) + "/" + to_string(side));
            EXPECT_EQ(enforces(row.mode, side), enforced);
            // A refusal blocks only where enforced; elsewhere it is a would_reject.
            auto d = decide(rules(Policy::not_older_than_leader, row.mode), side, {"m", &old, {}},
                            cluster, {}, t0);
            EXPECT_EQ(d.reason, Reason::older_than_leader);
            EXPECT_EQ(d.blocks(), enforced);
            EXPECT_EQ(d.would_reject, !enforced);
            EXPECT_STREQ(decision_label(d), enforced ? "reject" : "would_reject");
            // Undecidable (leader unknown) likewise.
            d = decide(rules(Policy::exact, row.mode), side, {"m", &old, {}}, ClusterFacts{}, {},
                       t0);
            EXPECT_EQ(d.blocks(), enforced);
            EXPECT_STREQ(decision_label(d), enforced ? "wait" : "would_reject");
            // An admit is an admit everywhere.
            d = decide(rules(Policy::not_older_than_leader, row.mode), side, {"m", &leader, {}},
                       cluster, {}, t0);
            EXPECT_EQ(d.verdict, Verdict::admit);
            EXPECT_FALSE(d.would_reject);
        }
    }
}

TEST(Decision, ObserveNeverBlocksAnything) {
    auto ranges = all_ranges();
    int would = 0;
    for (auto p : {Policy::exact, Policy::not_older_than_leader, Policy::skew, Policy::protocol}) {
        for (auto f : {FailMode::closed, FailMode::open}) {
            for (auto js : versions) {
                for (auto ls : versions) {
                    for (bool leader_known : {true, false}) {
                        for (bool version_known : {true, false}) {
                            Version j = v(js), l = v(ls);
                            std::vector<MemberProtocol> members = {{"a", {2, 2}}};
                            ClusterFacts c;
                            c.leader_version = leader_known ? &l : nullptr;
                            c.members = members;
                            for (auto side : {Side::inbound, Side::outbound, Side::follower}) {
                                auto d =
                                    decide(rules(p, Mode::observe, f), side,
                                           {"m", version_known ? &j : nullptr, {1, 1}}, c, {}, t0);
                                ASSERT_EQ(d.verdict, Verdict::admit) << js << " " << ls;
                                would += d.would_reject;
                            }
                        }
                    }
                }
            }
        }
    }
    EXPECT_GT(would, 1000); // refusals were computed, just not enforced
}

TEST(Decision, RememberedAdmissionSurvivesLeaderChange) {
    Version old = v("3.4.23"), new_leader = v("3.5.0");
    ClusterFacts c;
    c.leader_version = &new_leader;
    auto d = decide(rules(Policy::exact), Side::inbound, {"etcd-1", &old, {}}, c, {}, t0, true);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_TRUE(d.remembered);
    EXPECT_EQ(d.reason, Reason::version_mismatch); // what the policy would say now
    // Even with the leader unknown and fail closed.
    d = decide(rules(Policy::exact), Side::inbound, {"etcd-1", &old, {}}, ClusterFacts{}, {}, t0,
               true);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_FALSE(d.fail_open);
    // Memory needs a known version.
    d = decide(rules(Policy::exact), Side::inbound, {"etcd-1", nullptr, {}}, c, {}, t0, true);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_EQ(d.reason, Reason::version_unknown);
}

joingate::config::Override make_override(std::optional<std::string> member,
                                         std::optional<std::string> version,
                                         Clock::time_point until, int line = 10) {
    joingate::config::Override o;
    o.member = std::move(member);
    o.version = std::move(version);
    o.until = until;
    o.reason = "break glass";
    o.line = line;
    return o;
}

TEST(Overrides, MatchByMemberOrVersionUntilExpiry) {
    using namespace std::chrono_literals;
    auto overrides = prepare_overrides({
        make_override("etcd-3", std::nullopt, t0 + 1h, 1),
        make_override(std::nullopt, "v3.3.0", t0 + 2h, 2),
        make_override("etcd-4", "3.2.0", t0 + 3h, 3),
    });
    ASSERT_EQ(overrides.size(), 3u);
    Version old = v("3.3.0"), older = v("3.2.0"), leader = v("3.5.0");
    ClusterFacts c;
    c.leader_version = &leader;
    auto r = rules(Policy::exact);
    auto at = [&](std::string_view member, const Version* ver, Clock::time_point now) {
        return decide(r, Side::inbound, {member, ver, {}}, c, overrides, now);
    };

    // By member, whatever the version (even unknown).
    auto d = at("etcd-3", &older, t0);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_EQ(d.reason, Reason::override);
    ASSERT_NE(d.override_used, nullptr);
    EXPECT_EQ(d.override_used->line, 1);
    EXPECT_EQ(at("etcd-3", nullptr, t0).reason, Reason::override);
    // By version, whatever the member ("v3.3.0" == "3.3.0").
    d = at("etcd-7", &old, t0 + 90min);
    EXPECT_EQ(d.reason, Reason::override);
    EXPECT_EQ(d.override_used->line, 2);
    EXPECT_NE(at("etcd-7", nullptr, t0).reason, Reason::override);
    // Both given: both must match.
    EXPECT_EQ(at("etcd-4", &older, t0).reason, Reason::override);
    EXPECT_EQ(at("etcd-4", &leader, t0).verdict, Verdict::admit); // by policy
    EXPECT_EQ(at("etcd-4", &leader, t0).reason, Reason::same_version);
    EXPECT_EQ(at("etcd-5", &older, t0).reason, Reason::version_mismatch);

    // Expiry on the fake clock: active strictly before `until`, ignored from then on.
    EXPECT_EQ(at("etcd-3", &older, t0 + 1h - 1ms).reason, Reason::override);
    d = at("etcd-3", &older, t0 + 1h);
    EXPECT_EQ(d.verdict, Verdict::reject);
    EXPECT_EQ(d.reason, Reason::version_mismatch);
    EXPECT_EQ(d.override_used, nullptr);
    EXPECT_EQ(at("etcd-7", &old, t0 + 2h).reason, Reason::version_mismatch);
    EXPECT_EQ(at("etcd-4", &older, t0 + 3h).reason, Reason::version_mismatch);
    // An override also lets a member pass where the leader is unknown.
    EXPECT_EQ(decide(r, Side::follower, {"etcd-3", &old, {}}, ClusterFacts{}, overrides, t0).reason,
              Reason::override);
}

TEST(Overrides, PrepareReportsUnusableOnes) {
    std::vector<std::string> errors;
    auto p = prepare_overrides({make_override(std::nullopt, "3.x", t0, 7),
                                make_override(std::nullopt, std::nullopt, t0, 8),
                                make_override("etcd-1", std::nullopt, t0, 9)},
                               &errors);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].member, "etcd-1");
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].find("line 7"), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("\"3.x\""), std::string::npos) << errors[0];
    EXPECT_NE(errors[1].find("line 8"), std::string::npos) << errors[1];
}

TEST(Decision, NamesAreTheContractLabels) {
    const std::vector<std::pair<Reason, const char*>> reasons = {
        {Reason::same_version, "same_version"},
        {Reason::newer_than_leader, "newer_than_leader"},
        {Reason::older_than_leader, "older_than_leader"},
        {Reason::version_mismatch, "version_mismatch"},
        {Reason::skew_exceeded, "skew_exceeded"},
        {Reason::protocol_incompatible, "protocol_incompatible"},
        {Reason::leader_unknown, "leader_unknown"},
        {Reason::version_unknown, "version_unknown"},
        {Reason::override, "override"},
    };
    for (auto [r, name] : reasons) {
        EXPECT_STREQ(to_string(r), name);
        EXPECT_EQ(parse_reason(name), r);
    }
    EXPECT_FALSE(parse_reason("nope"));
    EXPECT_STREQ(to_string(Verdict::admit), "admit");
    EXPECT_STREQ(to_string(Verdict::reject), "reject");
    EXPECT_STREQ(to_string(Verdict::wait), "wait");
    EXPECT_STREQ(to_string(Side::inbound), "inbound");
    EXPECT_STREQ(to_string(Side::outbound), "outbound");
    EXPECT_STREQ(to_string(Side::follower), "follower");
}

// The cost of a decision is measured by tests/bench (BM_Decide), never timed here.
TEST(Decision, HotPathAllocatesNothing) {
    using namespace std::chrono_literals;
    Version j = v("3.5.0-rc.1"), l = v("3.5.0-rc.2");
    std::vector<MemberProtocol> members = {
        {"etcd-0", {1, 2}}, {"etcd-1", {1, 2}}, {"etcd-2", {1, 1}}};
    ClusterFacts c;
    c.leader_version = &l;
    c.members = members;
    auto overrides = prepare_overrides({make_override("etcd-9", std::nullopt, t0 + 1h),
                                        make_override(std::nullopt, "3.0.0", t0 + 1h)});
    int admits = 0, refusals = 0;
    counting = true;
    for (int i = 0; i < 1000; ++i) {
        auto p = static_cast<Policy>(i % 4);
        auto d = decide(rules(p), static_cast<Side>(i % 3), {"etcd-3", &j, {1, 2}}, c, overrides, t0);
        admits += d.verdict == Verdict::admit;
        refusals += d.verdict != Verdict::admit;
    }
    counting = false;
    EXPECT_EQ(allocations.load(), 0);
    EXPECT_GT(admits, 0);
    EXPECT_GT(refusals, 0); // exact refuses 3.5.0-rc.1 against rc.2: both paths were taken
}

} // namespace

// No member says it leads (a new cluster forming, or an election): refusing everyone would
// keep raft from ever electing a leader, so the joiner is judged against every other
// member that answered, and admitted only if the policy holds against each of them.
// The leader's sidecar restarts (unreachable) while the other members already run a newer
// version: the joiner is judged against the old leader's last known version too, so it
// does not slip in during the gap; a stale member alone never admits.
TEST(LeaderlessCluster, UnreachableMembersCountAtTheirLastVersion) {
    Version old_leader = v("3.4.23"), up1 = v("3.5.0"), up2 = v("3.5.0"), joiner = v("3.6.0");
    std::vector<MemberProtocol> answering = {{"m2", {1, 1}, &up1}, {"m3", {1, 1}, &up2}};
    std::vector<MemberProtocol> gone = {{"m1", {1, 1}, &old_leader}};
    ClusterFacts facts;
    facts.members = answering;
    Rules rules;
    rules.policy = Policy::skew;
    rules.max_minor_skew = 1;

    auto d = evaluate_policy(rules, Subject{"m4", &joiner, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::admit) << "without the stale member, 3.6 is within skew of 3.5";
    facts.unreachable = gone;
    d = evaluate_policy(rules, Subject{"m4", &joiner, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::wait);
    EXPECT_EQ(d.reason, Reason::leader_unknown);

    Version next = v("3.5.1");
    d = evaluate_policy(rules, Subject{"m4", &next, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::admit); // within skew of every member, reachable or not

    facts.members = {};
    d = evaluate_policy(rules, Subject{"m4", &next, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::wait);
    EXPECT_EQ(d.reason, Reason::leader_unknown);
}

TEST(LeaderlessCluster, JudgedAgainstEveryOtherMember) {
    Version a = v("3.4.23"), b = v("3.4.23"), older = v("3.3.9"), newer = v("3.5.0");
    std::vector<MemberProtocol> members = {{"m0", {1, 1}, &a}, {"m1", {1, 1}, &b}};
    ClusterFacts facts;
    facts.members = members;
    Rules rules; // not-older-than-leader, fail closed

    Version same = v("3.4.23");
    auto d = evaluate_policy(rules, Subject{"m2", &same, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_EQ(d.reason, Reason::same_version);

    d = evaluate_policy(rules, Subject{"m2", &older, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::wait);
    EXPECT_EQ(d.reason, Reason::leader_unknown);

    d = evaluate_policy(rules, Subject{"m2", &newer, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::admit);
    EXPECT_EQ(d.reason, Reason::newer_than_leader);

    // The subject itself does not count: alone, nothing is known.
    std::vector<MemberProtocol> self_only = {{"m2", {1, 1}, &older}};
    facts.members = self_only;
    d = evaluate_policy(rules, Subject{"m2", &same, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::wait);
    EXPECT_EQ(d.reason, Reason::leader_unknown);

    // One member of a mixed cluster is enough to refuse under exact.
    Version mixed = v("3.5.0");
    std::vector<MemberProtocol> mixed_members = {{"m0", {1, 1}, &a}, {"m1", {1, 1}, &mixed}};
    facts.members = mixed_members;
    rules.policy = Policy::exact;
    d = evaluate_policy(rules, Subject{"m2", &same, {1, 1}}, facts);
    EXPECT_EQ(d.verdict, Verdict::wait);

    // Members that did not report a version are not evidence either way.
    std::vector<MemberProtocol> unversioned = {{"m0", {1, 1}, nullptr}};
    facts.members = unversioned;
    rules.policy = Policy::not_older_than_leader;
    d = evaluate_policy(rules, Subject{"m2", &same, {1, 1}}, facts);
    EXPECT_EQ(d.reason, Reason::leader_unknown);
}
