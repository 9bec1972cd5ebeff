// The admission gate: rules, prepared overrides, the admission ledger and a per-caller
// decision cache, behind one call per request. The inbound side asks about callers, the
// outbound side about targets, the follower about its own member. A cache hit compares
// two strings and two counters and allocates nothing, so the ~100 ms raft stream retries
// of a refused member cost next to nothing.
//
// Not thread-safe: call it from one strand, or guard it with a mutex.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "admission/decision.hpp"
#include "admission/ledger.hpp"
#include "config/config.hpp"

namespace joingate::admission {

class Gate {
  public:
    // Entries kept per side before the cache is cleared (callers are cluster members:
    // a handful in practice).
    static constexpr std::size_t max_cached_callers = 4096;

    explicit Gate(const config::Admission& admission);

    // SIGHUP: new rules and overrides; cached decisions are dropped, the ledger is kept.
    // Returns the messages of overrides that could not be prepared.
    std::vector<std::string> configure(const config::Admission& admission);

    // Judge a caller (inbound), a target (outbound) or the local member (follower).
    // version_text is as received ("" = unknown); it is parsed only on a cache miss.
    // An admit by policy or override is recorded in the ledger. Decisions that depend on
    // the cluster are recomputed when cluster.epoch changes; override admissions when
    // the override expires; everything on configure() or when the ledger grows.
    Decision judge(Side side, std::string_view member, std::string_view version_text,
                   config::ProtocolRange protocol, const ClusterFacts& cluster,
                   std::chrono::system_clock::time_point now);
    // The same with a parsed version (nullptr = unknown), uncached.
    Decision judge(Side side, std::string_view member, const Version* version,
                   config::ProtocolRange protocol, const ClusterFacts& cluster,
                   std::chrono::system_clock::time_point now);

    // Seeds from a peer's admitted_members; returns how many pairs were new.
    std::size_t merge(const std::vector<MemberVersion>& published);
    AdmissionLedger& ledger() noexcept { return ledger_; }
    const AdmissionLedger& ledger() const noexcept { return ledger_; }

    const Rules& rules() const noexcept { return rules_; }
    const std::vector<PreparedOverride>& overrides() const noexcept { return overrides_; }
    // joingate_overrides_active
    std::size_t overrides_active(std::chrono::system_clock::time_point now) const noexcept;
    // Overrides that have expired since the last call (each reported once), for the
    // "expired override ignored" warning.
    std::vector<const PreparedOverride*>
    take_newly_expired(std::chrono::system_clock::time_point now);

    std::size_t cache_size() const noexcept;

  private:
    struct Entry {
        std::string version_text;
        config::ProtocolRange protocol;
        std::uint64_t generation = 0;
        std::uint64_t cluster_epoch = 0;
        std::chrono::system_clock::time_point valid_until;
        Decision decision;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Cache = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

    std::uint64_t generation() const noexcept { return config_generation_ + ledger_.revision(); }

    Rules rules_;
    std::vector<PreparedOverride> overrides_;
    std::vector<bool> expiry_reported_;
    AdmissionLedger ledger_;
    std::array<Cache, 3> cache_; // by Side
    std::uint64_t config_generation_ = 0;
};

} // namespace joingate::admission
