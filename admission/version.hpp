// Versions and protocol ranges (DESIGN §3): SemVer 2.0 with an optional leading 'v',
// build metadata ignored in comparisons, and bare integers N (etcd 0.4) meaning N.0.0.
// Pure parsing, no allocation beyond the prerelease text; used by config validation
// and by every admission decision.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace joingate::admission {

struct Version {
    std::uint64_t major = 0;
    std::uint64_t minor = 0;
    std::uint64_t patch = 0;
    std::string prerelease; // dot-separated identifiers, "" = release
    std::string build;      // kept for display, ignored in comparisons

    // SemVer 2.0 precedence (§11): build metadata ignored.
    friend std::strong_ordering operator<=>(const Version& a, const Version& b);
    friend bool operator==(const Version& a, const Version& b) {
        return (a <=> b) == std::strong_ordering::equal;
    }
    std::string text() const; // canonical "3.4.23", "3.5.0-rc.1" (no 'v', with +build)
};

// Returns nullopt and sets *error (when given) to a message naming the offending text,
// e.g. "not a version: \"3.4.x\" (expected MAJOR.MINOR.PATCH, e.g. 3.4.23)".
std::optional<Version> parse_version(std::string_view text, std::string* error = nullptr);

// "min..max" with non-negative integers and min <= max.
std::optional<config::ProtocolRange> parse_protocol_range(std::string_view text,
                                                          std::string* error = nullptr);
std::string to_string(const config::ProtocolRange& r); // "1..1"

} // namespace joingate::admission
