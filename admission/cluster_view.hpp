// The cluster view (DESIGN §5): the last answer of every configured peer to
// /joingate/v1/version, and what follows from them: who leads and at which version, which
// protocol the cluster speaks, how many members run which version, who is waiting and
// which member holds an upgrade back. Fed by the proxy's peer client; no I/O here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admission/decision.hpp"
#include "admission/version.hpp"
#include "admission/version_doc.hpp"

namespace joingate::admission {

struct PeerState {
    std::string address;            // as configured in cluster.peers
    bool answered = false;          // at least one answer or failure since start
    bool reachable = false;         // the last attempt got a valid document
    std::optional<VersionDoc> doc;  // the last valid document (kept while unreachable)
    std::optional<Version> version; // doc->version parsed; nullopt when missing or invalid
    std::string error;              // why the last attempt failed ("" when reachable)
    std::chrono::system_clock::time_point last_seen{}; // last valid document
};

struct VersionCount {
    std::string version; // canonical text, or "unknown" (unreachable / not reported)
    std::size_t members = 0;
};

struct WaitingMember {
    std::string member;
    std::string version;
    std::string reason; // as published, "" when not given
};

class ClusterView {
  public:
    explicit ClusterView(std::vector<std::string> peers = {});

    // Reload: keeps what is known about peers that stay, forgets the others.
    void set_peers(std::vector<std::string> peers);

    // Feed. Answers from addresses not configured are ignored (returns false).
    bool on_answer(std::string_view address, VersionDoc doc,
                   std::chrono::system_clock::time_point now);
    bool on_unreachable(std::string_view address, std::string_view why);

    // Every configured peer has answered or failed at least once: the ledger is seeded
    // (DESIGN §6), so facts() stops hiding the leader.
    bool first_round_done() const noexcept;

    // For decide(): valid until the next feed or set_peers call. The leader is reported
    // unknown until first_round_done().
    ClusterFacts facts() const noexcept;

    // Derived, over reachable members (one entry per member name, the newest answer wins).
    const std::vector<PeerState>& peers() const noexcept { return peers_; }
    std::optional<MemberVersion> leader() const; // the reachable member that says role=leader
    const Version* leader_version() const noexcept {
        return leader_version_ ? &*leader_version_ : nullptr;
    }
    std::optional<std::uint32_t> protocol() const noexcept; // cluster protocol
    std::vector<VersionCount> members_per_version() const;  // joingate_cluster_members{version}
    std::vector<WaitingMember> waiting() const;             // published admitted=false
    // The member that holds an upgrade back: with the protocol policy, the one whose
    // highest protocol is lowest, when others could speak a higher one; otherwise the
    // member at the lowest version, when the cluster runs more than one. nullopt when the
    // cluster is uniform.
    std::optional<std::string> upgrade_blocker(config::Policy policy) const;
    std::size_t reachable_count() const noexcept;
    std::uint64_t epoch() const noexcept { return epoch_; }

  private:
    PeerState* find(std::string_view address) noexcept;
    const PeerState* newest(std::string_view member) const noexcept;
    void derive();

    std::vector<PeerState> peers_;
    // Derived state, rebuilt by derive() after every change.
    std::vector<MemberProtocol> protocols_; // views into peers_[i].doc->member
    std::vector<MemberProtocol> unreachable_; // last known, of members not reachable now
    std::optional<std::size_t> leader_;     // index into peers_
    std::optional<Version> leader_version_;
    std::string signature_; // what facts() shows, as text; epoch_ counts its changes
    std::uint64_t epoch_ = 0;
};

} // namespace joingate::admission
