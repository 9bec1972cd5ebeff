// The cluster view: per-peer answers in, derived leader/protocol/counts out.
#include "admission/cluster_view.hpp"

#include <algorithm>
#include <map>

namespace joingate::admission {

ClusterView::ClusterView(std::vector<std::string> peers) {
    set_peers(std::move(peers));
}

void ClusterView::set_peers(std::vector<std::string> peers) {
    std::vector<PeerState> next;
    next.reserve(peers.size());
    for (auto& address : peers) {
        if (std::any_of(next.begin(), next.end(), [&](auto& p) { return p.address == address; })) {
            continue; // listed twice
        }
        if (auto* old = find(address)) {
            next.push_back(std::move(*old));
        } else {
            PeerState p;
            p.address = std::move(address);
            next.push_back(std::move(p));
        }
    }
    peers_ = std::move(next);
    derive();
}

PeerState* ClusterView::find(std::string_view address) noexcept {
    for (auto& p : peers_) {
        if (p.address == address)
            return &p;
    }
    return nullptr;
}

bool ClusterView::on_answer(std::string_view address, VersionDoc doc,
                            std::chrono::system_clock::time_point now) {
    auto* p = find(address);
    if (!p)
        return false;
    p->answered = true;
    p->reachable = true;
    p->error.clear();
    p->version = parse_version(doc.version);
    p->doc = std::move(doc);
    p->last_seen = now;
    derive();
    return true;
}

bool ClusterView::on_unreachable(std::string_view address, std::string_view why) {
    auto* p = find(address);
    if (!p)
        return false;
    p->answered = true;
    p->reachable = false;
    p->error = why;
    derive();
    return true;
}

bool ClusterView::first_round_done() const noexcept {
    return std::all_of(peers_.begin(), peers_.end(), [](auto& p) { return p.answered; });
}

const PeerState* ClusterView::newest(std::string_view member) const noexcept {
    const PeerState* best = nullptr;
    for (const auto& p : peers_) {
        if (!p.reachable || !p.doc || p.doc->member != member)
            continue;
        if (!best || p.last_seen > best->last_seen)
            best = &p;
    }
    return best;
}

void ClusterView::derive() {
    // One entry per member name: the same member may be listed under two addresses.
    std::vector<const PeerState*> members;
    for (const auto& p : peers_) {
        if (p.reachable && p.doc && newest(p.doc->member) == &p)
            members.push_back(&p);
    }

    protocols_.clear();
    for (auto* p : members)
        protocols_.push_back({p->doc->member, p->doc->protocol, p->version ? &*p->version : nullptr});
    // Members known from an earlier answer and not reachable under any address now.
    unreachable_.clear();
    for (const auto& p : peers_) {
        if (p.reachable || !p.doc || !p.version || newest(p.doc->member))
            continue;
        bool listed = std::any_of(unreachable_.begin(), unreachable_.end(),
                                  [&](const MemberProtocol& m) { return m.member == p.doc->member; });
        if (!listed)
            unreachable_.push_back({p.doc->member, p.doc->protocol, &*p.version});
    }

    // The leader is the member that says so. During an election two may say so for a
    // moment: take the one most members name as their leader, then the newest answer.
    const PeerState* leader = nullptr;
    std::size_t best_votes = 0;
    for (auto* p : members) {
        if (p->doc->role != Role::leader)
            continue;
        std::size_t votes = 0;
        for (auto* q : members)
            votes += q->doc->leader && q->doc->leader->member == p->doc->member;
        if (!leader || votes > best_votes ||
            (votes == best_votes && p->last_seen > leader->last_seen)) {
            leader = p;
            best_votes = votes;
        }
    }
    leader_.reset();
    if (leader)
        leader_ = static_cast<std::size_t>(leader - peers_.data());
    leader_version_ = leader ? leader->version : std::nullopt;

    // A new epoch whenever anything decide() sees changes (Gate's cache keys on it).
    std::string signature = first_round_done() ? "seeded" : "unseeded";
    if (leader)
        signature += "|leader=" + leader->doc->member + "@" + leader->doc->version;
    for (const auto& m : protocols_) {
        signature += "|" + std::string(m.member) + ":" + to_string(m.protocol) + "@" +
                     (m.version ? m.version->text() : std::string("?"));
    }
    for (const auto& m : unreachable_)
        signature += "|~" + std::string(m.member) + "@" + m.version->text();
    if (signature != signature_) {
        signature_ = std::move(signature);
        ++epoch_;
    }
}

ClusterFacts ClusterView::facts() const noexcept {
    ClusterFacts f;
    f.epoch = epoch_;
    if (!first_round_done())
        return f; // nothing is enforced before the ledger is seeded
    f.members = protocols_;
    f.unreachable = unreachable_;
    if (leader_) {
        f.leader_member = peers_[*leader_].doc->member;
        f.leader_version = leader_version();
    }
    return f;
}

std::optional<MemberVersion> ClusterView::leader() const {
    if (!leader_)
        return std::nullopt;
    const auto& doc = *peers_[*leader_].doc;
    return MemberVersion{doc.member, doc.version};
}

std::optional<std::uint32_t> ClusterView::protocol() const noexcept {
    return cluster_protocol(protocols_);
}

std::size_t ClusterView::reachable_count() const noexcept {
    return protocols_.size();
}

std::vector<VersionCount> ClusterView::members_per_version() const {
    std::map<Version, std::size_t> by_version;
    std::size_t unknown = 0;
    for (const auto& p : peers_) {
        bool counted_member = p.reachable && p.doc && newest(p.doc->member) == &p;
        // Unknown: answered without a usable version, or unreachable and not known under
        // another address.
        bool unknown_member =
            (counted_member && !p.version) || (!p.reachable && !(p.doc && newest(p.doc->member)));
        if (counted_member && p.version)
            ++by_version[*p.version];
        if (unknown_member)
            ++unknown;
    }
    std::vector<VersionCount> out;
    for (const auto& [v, n] : by_version) {
        Version plain = v;
        plain.build.clear();
        out.push_back({plain.text(), n});
    }
    if (unknown)
        out.push_back({"unknown", unknown});
    return out;
}

std::vector<WaitingMember> ClusterView::waiting() const {
    std::vector<WaitingMember> out;
    for (const auto& m : protocols_) {
        const auto* p = newest(m.member);
        if (!p->doc->admitted) {
            out.push_back({p->doc->member, p->doc->version, p->doc->reason.value_or("")});
        }
    }
    return out;
}

std::optional<std::string> ClusterView::upgrade_blocker(config::Policy policy) const {
    if (protocols_.size() < 2)
        return std::nullopt;
    if (policy == config::Policy::protocol) {
        const MemberProtocol* lowest = nullptr;
        std::uint32_t highest_max = 0;
        for (const auto& m : protocols_) {
            highest_max = std::max(highest_max, m.protocol.max);
            if (!lowest || m.protocol.max < lowest->protocol.max)
                lowest = &m;
        }
        if (lowest->protocol.max < highest_max)
            return std::string(lowest->member);
        return std::nullopt;
    }
    const PeerState* oldest = nullptr;
    bool mixed = false;
    for (const auto& m : protocols_) {
        const auto* p = newest(m.member);
        if (!p->version)
            continue;
        if (oldest && !(*p->version == *oldest->version))
            mixed = true;
        if (!oldest || *p->version < *oldest->version)
            oldest = p;
    }
    if (!mixed)
        return std::nullopt;
    return oldest->doc->member;
}

} // namespace joingate::admission
