// The admission ledger: a small map of member -> recently admitted versions.
#include "admission/ledger.hpp"

#include <algorithm>

namespace joingate::admission {

bool AdmissionLedger::contains(std::string_view member, const Version& v) const noexcept {
    auto it = members_.find(member);
    if (it == members_.end())
        return false;
    return std::find(it->second.begin(), it->second.end(), v) != it->second.end();
}

bool AdmissionLedger::record(std::string_view member, const Version& v) {
    if (member.empty())
        return false;
    auto it = members_.find(member);
    if (it == members_.end()) {
        if (members_.size() >= max_members)
            return false;
        it = members_.emplace(std::string(member), std::deque<Version>{}).first;
    }
    auto& versions = it->second;
    if (std::find(versions.begin(), versions.end(), v) != versions.end())
        return false;
    versions.push_back(v);
    if (versions.size() > max_versions_per_member)
        versions.pop_front();
    ++revision_;
    return true;
}

std::size_t AdmissionLedger::merge(const std::vector<MemberVersion>& published) {
    std::size_t added = 0;
    for (const auto& mv : published) {
        auto v = parse_version(mv.version);
        if (v && record(mv.member, *v))
            ++added;
    }
    return added;
}

std::vector<MemberVersion> AdmissionLedger::published() const {
    std::vector<MemberVersion> out;
    for (const auto& [member, versions] : members_) {
        std::vector<const Version*> sorted;
        for (const auto& v : versions)
            sorted.push_back(&v);
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return *a < *b; });
        for (auto* v : sorted)
            out.push_back({member, v->text()});
    }
    return out;
}

std::size_t AdmissionLedger::size() const noexcept {
    std::size_t n = 0;
    for (const auto& [member, versions] : members_)
        n += versions.size();
    return n;
}

} // namespace joingate::admission
