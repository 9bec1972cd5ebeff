// The /joingate/v1/version document (DESIGN §4): what every sidecar publishes about its
// member and what it reads from every peer to build the cluster view. The v1 field names
// and meanings are frozen; new fields may be added, and readers ignore fields they do not
// know, so a newer sidecar and an older one always understand each other.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace joingate::admission {

enum class Role { leader, follower, unknown };
const char* to_string(Role);
// "leader" | "follower"; anything else (including values a newer sidecar may introduce)
// is Role::unknown.
Role parse_role(std::string_view) noexcept;

// A (member, version) pair as published in "leader" and "admitted_members".
struct MemberVersion {
    std::string member;
    std::string version;
    bool operator==(const MemberVersion&) const = default;
};

struct VersionDoc {
    int api = 1;
    std::string member;
    std::string version; // "" while the local peer's version is not known yet
    config::ProtocolRange protocol;
    Role role = Role::unknown;
    std::optional<MemberVersion> leader; // nullopt = leader unknown (published as null)
    bool admitted = false;
    // Kept as text, not config enums: a newer peer may publish a value this build does
    // not know, and that must not make its whole document unreadable.
    std::string mode;
    std::string policy;
    std::string profile;
    std::vector<MemberVersion> admitted_members;

    // Additions beyond the DESIGN §4 example (optional on the wire):
    std::optional<std::string>
        reason; // admission reason code of this member, e.g. "older_than_leader"
    std::optional<std::string> joingate; // the sidecar's own build version

    bool operator==(const VersionDoc&) const = default;
};

// Documents larger than this are refused unread.
inline constexpr std::size_t max_version_doc_bytes = 1024 * 1024;

// One JSON object, fields in the DESIGN §4 order, no whitespace. Optional additions are
// left out when unset; "leader" is null when unknown.
std::string to_json(const VersionDoc& doc);

// Reads a document published by any v1 sidecar. "api" and "member" are required; other
// fields take their defaults when missing; unknown fields are ignored; a field of the
// wrong type, a non-object, malformed JSON or input over max_version_doc_bytes gives
// nullopt and *error (when given) saying which. Never throws.
std::optional<VersionDoc> parse_version_doc(std::string_view json,
                                            std::string* error = nullptr) noexcept;

} // namespace joingate::admission
