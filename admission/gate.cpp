// The admission gate: decide() plus the ledger and a per-side, per-caller cache.
#include "admission/gate.hpp"

namespace joingate::admission {

Gate::Gate(const config::Admission& admission) {
    configure(admission);
}

std::vector<std::string> Gate::configure(const config::Admission& admission) {
    std::vector<std::string> errors;
    rules_ = Rules::from(admission);
    overrides_ = prepare_overrides(admission.overrides, &errors);
    expiry_reported_.assign(overrides_.size(), false);
    for (auto& c : cache_)
        c.clear();
    ++config_generation_;
    return errors;
}

Decision Gate::judge(Side side, std::string_view member, const Version* version,
                     config::ProtocolRange protocol, const ClusterFacts& cluster,
                     std::chrono::system_clock::time_point now) {
    Subject who{member, version, protocol};
    bool remembered = version && ledger_.contains(member, *version);
    Decision d = decide(rules_, side, who, cluster, overrides_, now, remembered);
    // Remember real admissions only: not fail-open guesses, not observe-mode passes.
    if (version && d.verdict == Verdict::admit && !d.fail_open && !d.would_reject &&
        !d.remembered) {
        ledger_.record(member, *version);
    }
    return d;
}

Decision Gate::judge(Side side, std::string_view member, std::string_view version_text,
                     config::ProtocolRange protocol, const ClusterFacts& cluster,
                     std::chrono::system_clock::time_point now) {
    auto& cache = cache_[static_cast<std::size_t>(side)];
    if (auto it = cache.find(member); it != cache.end()) {
        const Entry& e = it->second;
        if (e.version_text == version_text && e.protocol == protocol &&
            e.generation == generation() && e.cluster_epoch == cluster.epoch &&
            now < e.valid_until) {
            Decision d = e.decision;
            d.cached = true;
            return d;
        }
    }

    std::optional<Version> parsed;
    if (!version_text.empty())
        parsed = parse_version(version_text);
    Decision d = judge(side, member, parsed ? &*parsed : nullptr, protocol, cluster, now);

    if (cache.size() >= max_cached_callers)
        cache.clear();
    Entry e;
    e.version_text = version_text;
    e.protocol = protocol;
    e.generation = generation(); // after judge(): its own ledger record must not void it
    e.cluster_epoch = cluster.epoch;
    e.valid_until =
        d.override_used ? d.override_used->until : std::chrono::system_clock::time_point::max();
    e.decision = d;
    cache.insert_or_assign(std::string(member), std::move(e));
    return d;
}

std::size_t Gate::merge(const std::vector<MemberVersion>& published) {
    return ledger_.merge(published);
}

std::size_t Gate::overrides_active(std::chrono::system_clock::time_point now) const noexcept {
    std::size_t n = 0;
    for (const auto& o : overrides_)
        n += o.active(now) ? 1 : 0;
    return n;
}

std::vector<const PreparedOverride*>
Gate::take_newly_expired(std::chrono::system_clock::time_point now) {
    std::vector<const PreparedOverride*> out;
    for (std::size_t i = 0; i < overrides_.size(); ++i) {
        if (!expiry_reported_[i] && !overrides_[i].active(now)) {
            expiry_reported_[i] = true;
            out.push_back(&overrides_[i]);
        }
    }
    return out;
}

std::size_t Gate::cache_size() const noexcept {
    std::size_t n = 0;
    for (const auto& c : cache_)
        n += c.size();
    return n;
}

} // namespace joingate::admission
