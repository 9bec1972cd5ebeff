// The cluster view (DESIGN §5): who leads at which version, reachability, the cluster
// protocol, members per version, who waits, who blocks an upgrade, and the epoch that
// tells cached decisions to go stale.
#include "admission/cluster_view.hpp"

#include <gtest/gtest.h>

#include <chrono>

using namespace joingate::admission;
using namespace std::chrono_literals;
using joingate::config::Policy;
using Clock = std::chrono::system_clock;

namespace {

const Clock::time_point t0 = Clock::from_time_t(1'800'000'000);

VersionDoc doc(std::string member, std::string version, Role role = Role::follower,
               joingate::config::ProtocolRange protocol = {1, 1}, bool admitted = true) {
    VersionDoc d;
    d.member = std::move(member);
    d.version = std::move(version);
    d.role = role;
    d.protocol = protocol;
    d.admitted = admitted;
    return d;
}

const std::vector<std::string> peers = {"etcd-0.etcd:2380", "etcd-1.etcd:2380", "etcd-2.etcd:2380"};

TEST(ClusterView, LeaderIsTheMemberThatSaysSo) {
    ClusterView view(peers);
    EXPECT_FALSE(view.first_round_done());
    EXPECT_TRUE(view.on_answer(peers[0], doc("etcd-0", "3.4.23", Role::leader), t0));
    EXPECT_TRUE(view.on_answer(peers[1], doc("etcd-1", "3.4.23"), t0));
    // Not every peer has answered: decisions see nothing yet (ledger not seeded).
    auto f = view.facts();
    EXPECT_EQ(f.leader_version, nullptr);
    EXPECT_TRUE(f.members.empty());
    EXPECT_TRUE(view.on_unreachable(peers[2], "connect: connection refused"));
    EXPECT_TRUE(view.first_round_done());

    f = view.facts();
    ASSERT_NE(f.leader_version, nullptr);
    EXPECT_EQ(f.leader_version->text(), "3.4.23");
    EXPECT_EQ(f.leader_member, "etcd-0");
    EXPECT_EQ(f.members.size(), 2u);
    auto leader = view.leader();
    ASSERT_TRUE(leader);
    EXPECT_EQ(leader->member, "etcd-0");
    EXPECT_EQ(view.reachable_count(), 2u);
    EXPECT_EQ(view.peers()[2].error, "connect: connection refused");
    EXPECT_FALSE(view.peers()[2].reachable);

    // The leader stops answering: leader unknown (its followers' word is not enough).
    auto before = view.epoch();
    view.on_unreachable(peers[0], "timeout");
    EXPECT_GT(view.epoch(), before);
    EXPECT_EQ(view.facts().leader_version, nullptr);
    EXPECT_FALSE(view.leader());
    // A new leader answers.
    auto e = view.epoch();
    view.on_answer(peers[1], doc("etcd-1", "3.4.23", Role::leader), t0 + 5s);
    EXPECT_GT(view.epoch(), e);
    EXPECT_EQ(view.facts().leader_member, "etcd-1");
}

// A member that answered before and cannot be reached now is kept at its last known
// version for the leaderless rule; one never reached is not; one reachable again, or
// reachable under another address, is not listed as unreachable.
TEST(ClusterView, RemembersTheLastVersionOfUnreachableMembers) {
    ClusterView view(peers);
    view.on_answer(peers[0], doc("etcd-0", "3.4.23", Role::leader), t0);
    view.on_answer(peers[1], doc("etcd-1", "3.5.0"), t0);
    view.on_unreachable(peers[2], "connect: connection refused"); // never answered
    EXPECT_TRUE(view.facts().unreachable.empty());

    auto e = view.epoch();
    view.on_unreachable(peers[0], "connect: connection refused"); // the leader's sidecar restarts
    EXPECT_GT(view.epoch(), e);
    auto f = view.facts();
    EXPECT_EQ(f.leader_version, nullptr);
    ASSERT_EQ(f.members.size(), 1u);
    ASSERT_EQ(f.unreachable.size(), 1u);
    EXPECT_EQ(f.unreachable[0].member, "etcd-0");
    ASSERT_NE(f.unreachable[0].version, nullptr);
    EXPECT_EQ(f.unreachable[0].version->text(), "3.4.23");

    view.on_answer(peers[0], doc("etcd-0", "3.5.0", Role::leader), t0 + 2s);
    f = view.facts();
    EXPECT_TRUE(f.unreachable.empty());
    ASSERT_NE(f.leader_version, nullptr);
    EXPECT_EQ(f.leader_version->text(), "3.5.0");
}

TEST(ClusterView, EpochChangesOnlyWhenDecisionInputsChange) {
    ClusterView view(peers);
    for (std::size_t i = 0; i < 3; ++i) {
        view.on_answer(
            peers[i],
            doc("etcd-" + std::to_string(i), "3.4.23", i == 0 ? Role::leader : Role::follower), t0);
    }
    auto e = view.epoch();
    // The same answers again (the periodic refresh): cached decisions stay valid.
    for (std::size_t i = 0; i < 3; ++i) {
        auto d = doc("etcd-" + std::to_string(i), "3.4.23", i == 0 ? Role::leader : Role::follower);
        d.admitted_members = {{"etcd-9", "1.0.0"}}; // not a decision input
        view.on_answer(peers[i], d, t0 + 5s);
    }
    EXPECT_EQ(view.epoch(), e);
    // A member's protocol range changes: new epoch.
    view.on_answer(peers[2], doc("etcd-2", "3.4.23", Role::follower, {1, 2}), t0 + 10s);
    EXPECT_GT(view.epoch(), e);
    e = view.epoch();
    // The leader's version changes: new epoch.
    view.on_answer(peers[0], doc("etcd-0", "3.5.0", Role::leader), t0 + 15s);
    EXPECT_GT(view.epoch(), e);
}

TEST(ClusterView, TwoClaimedLeadersResolvedByVotesThenRecency) {
    ClusterView view(peers);
    auto old_leader = doc("etcd-0", "3.4.23", Role::leader);
    old_leader.leader = MemberVersion{"etcd-0", "3.4.23"};
    auto new_leader = doc("etcd-1", "3.5.0", Role::leader);
    new_leader.leader = MemberVersion{"etcd-1", "3.5.0"};
    auto follower = doc("etcd-2", "3.4.23");
    follower.leader = MemberVersion{"etcd-1", "3.5.0"};
    view.on_answer(peers[0], old_leader, t0 + 2s); // stale claim, answered later
    view.on_answer(peers[1], new_leader, t0);
    view.on_answer(peers[2], follower, t0);
    EXPECT_EQ(view.leader()->member, "etcd-1");
    // Equal votes: the newest answer wins.
    follower.leader.reset();
    view.on_answer(peers[2], follower, t0);
    EXPECT_EQ(view.leader()->member, "etcd-0");
}

TEST(ClusterView, InvalidLeaderVersionMeansLeaderUnknown) {
    ClusterView view({peers[0]});
    view.on_answer(peers[0], doc("etcd-0", "", Role::leader), t0);
    EXPECT_TRUE(view.leader());                // we know who leads...
    EXPECT_EQ(view.leader_version(), nullptr); // ...but not at which version
    EXPECT_EQ(view.facts().leader_version, nullptr);
    view.on_answer(peers[0], doc("etcd-0", "garbage", Role::leader), t0);
    EXPECT_EQ(view.facts().leader_version, nullptr);
}

TEST(ClusterView, ProtocolCountsWaitingAndBlocker) {
    ClusterView view(peers);
    view.on_answer(peers[0], doc("etcd-0", "3.4.23", Role::leader, {1, 1}), t0);
    view.on_answer(peers[1], doc("etcd-1", "3.5.0+abc", Role::follower, {1, 2}), t0);
    auto waiting = doc("etcd-2", "3.6.0", Role::follower, {2, 2}, false);
    waiting.reason = "protocol_incompatible";
    view.on_answer(peers[2], waiting, t0);

    EXPECT_FALSE(view.protocol()); // 1..1, 1..2 and 2..2 share nothing
    auto counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 3u);
    EXPECT_EQ(counts[0].version, "3.4.23");
    EXPECT_EQ(counts[1].version, "3.5.0"); // build metadata not a separate series
    EXPECT_EQ(counts[2].version, "3.6.0");
    for (auto& c : counts)
        EXPECT_EQ(c.members, 1u);

    auto w = view.waiting();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].member, "etcd-2");
    EXPECT_EQ(w[0].reason, "protocol_incompatible");

    EXPECT_EQ(view.upgrade_blocker(Policy::not_older_than_leader), "etcd-0"); // lowest version
    EXPECT_EQ(view.upgrade_blocker(Policy::protocol), "etcd-0");              // lowest max protocol

    // Uniform cluster: nobody blocks.
    view.on_answer(peers[0], doc("etcd-0", "3.6.0", Role::leader, {2, 2}), t0);
    view.on_answer(peers[1], doc("etcd-1", "3.6.0", Role::follower, {2, 2}), t0);
    EXPECT_EQ(view.protocol(), 2u);
    EXPECT_FALSE(view.upgrade_blocker(Policy::exact));
    EXPECT_FALSE(view.upgrade_blocker(Policy::protocol));
    counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 1u);
    EXPECT_EQ(counts[0].members, 3u);

    // An unreachable member counts as unknown.
    view.on_unreachable(peers[2], "refused");
    counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 2u);
    EXPECT_EQ(counts[0].members, 2u);
    EXPECT_EQ(counts[1].version, "unknown");
    EXPECT_EQ(counts[1].members, 1u);
}

TEST(ClusterView, SameMemberUnderTwoAddressesCountsOnce) {
    std::vector<std::string> addrs = {"etcd-0.etcd:2380", "10.0.0.10:2380", "etcd-1.etcd:2380"};
    ClusterView view(addrs);
    view.on_answer(addrs[0], doc("etcd-0", "3.4.23", Role::leader), t0);
    view.on_answer(addrs[1], doc("etcd-0", "3.4.23", Role::leader), t0 + 1s);
    view.on_answer(addrs[2], doc("etcd-1", "3.4.23"), t0);
    EXPECT_EQ(view.reachable_count(), 2u);
    EXPECT_EQ(view.facts().members.size(), 2u);
    auto counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 1u);
    EXPECT_EQ(counts[0].members, 2u);
    // One address of etcd-0 fails: it is still known through the other.
    view.on_unreachable(addrs[0], "refused");
    counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 1u);
    EXPECT_EQ(counts[0].members, 2u);
    EXPECT_EQ(view.leader()->member, "etcd-0");
}

TEST(ClusterView, NewestAnswerOfAMemberWins) {
    std::vector<std::string> addrs = {"etcd-0.etcd:2380", "10.0.0.10:2380"};
    ClusterView view(addrs);
    view.on_answer(addrs[1], doc("etcd-0", "3.4.23", Role::leader), t0);
    view.on_answer(addrs[0], doc("etcd-0", "3.5.0", Role::leader), t0 + 5s); // restarted
    ASSERT_NE(view.facts().leader_version, nullptr);
    EXPECT_EQ(view.facts().leader_version->text(), "3.5.0");
    auto counts = view.members_per_version();
    ASSERT_EQ(counts.size(), 1u);
    EXPECT_EQ(counts[0].version, "3.5.0");
    view.on_answer(addrs[1], doc("etcd-0", "3.6.0", Role::leader), t0 + 10s);
    EXPECT_EQ(view.facts().leader_version->text(), "3.6.0");
}

TEST(ClusterView, ReloadKeepsKnownPeersAndIgnoresStrangers) {
    ClusterView view(peers);
    view.on_answer(peers[0], doc("etcd-0", "3.4.23", Role::leader), t0);
    EXPECT_FALSE(view.on_answer("stranger:2380", doc("x", "1.0.0"), t0));
    EXPECT_FALSE(view.on_unreachable("stranger:2380", "x"));
    view.set_peers({peers[0], "etcd-3.etcd:2380", peers[0]});
    ASSERT_EQ(view.peers().size(), 2u);
    EXPECT_TRUE(view.peers()[0].reachable);
    EXPECT_FALSE(view.first_round_done()); // the new peer has not answered
    EXPECT_EQ(view.facts().leader_version, nullptr);
    view.on_unreachable("etcd-3.etcd:2380", "refused");
    ASSERT_NE(view.facts().leader_version, nullptr);
    EXPECT_EQ(view.facts().leader_member, "etcd-0");
}

TEST(ClusterView, NoPeersConfigured) {
    ClusterView view;
    EXPECT_TRUE(view.first_round_done());
    EXPECT_EQ(view.facts().leader_version, nullptr);
    EXPECT_TRUE(view.members_per_version().empty());
    EXPECT_FALSE(view.upgrade_blocker(Policy::exact));
}

} // namespace
