// The admission ledger ("what is judged", DESIGN §6): the (member, version) pairs this
// sidecar or any peer admitted. A member is judged once per version; once admitted it is
// never re-judged because the leader changed or a sidecar restarted, or a new leader at a
// newer version would cut off the older members it still needs for quorum. Published as
// admitted_members in /joingate/v1/version and merged from every peer's answer.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "admission/version.hpp"
#include "admission/version_doc.hpp"

namespace joingate::admission {

class AdmissionLedger {
  public:
    // Bounds against a misbehaving peer: versions remembered per member (most recent
    // kept; a member goes through few versions at a time) and members in all.
    static constexpr std::size_t max_versions_per_member = 4;
    static constexpr std::size_t max_members = 1024;

    // Allocation-free lookup for the hot path.
    bool contains(std::string_view member, const Version& v) const noexcept;
    // Returns true when the pair is new. An empty member name is never recorded.
    bool record(std::string_view member, const Version& v);
    // Merges a peer's admitted_members; pairs whose version does not parse are skipped.
    // Returns how many pairs were new.
    std::size_t merge(const std::vector<MemberVersion>& published);

    // For admitted_members: sorted by member, then version.
    std::vector<MemberVersion> published() const;
    std::size_t size() const noexcept;
    // Bumped on every change: Gate uses it to drop cached refusals.
    std::uint64_t revision() const noexcept { return revision_; }

  private:
    std::map<std::string, std::deque<Version>, std::less<>> members_;
    std::uint64_t revision_ = 0;
};

} // namespace joingate::admission
