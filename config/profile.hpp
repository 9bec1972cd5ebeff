// Profiles as data (DESIGN §7): which requests are join traffic, where a caller's version
// is read, how the local peer's version and leadership are probed, and how a rejection is
// answered. etcd3 and etcd2 are presets; "generic" is built from [profile].
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace joingate::config {

// One HTTP probe of the local peer: method, where, body, and the JSON pointer of the
// value ("" = the whole body, trimmed, is the value).
struct Probe {
    std::string method = "GET";
    HostPort host;
    std::string path;
    std::string body;
    std::string pointer;
};

struct ProfileSpec {
    Profile profile = Profile::etcd3;
    std::vector<JoinRoute> join_routes; // empty = every inbound request is join traffic
    std::string version_header;         // the peer's own version header, "" = none
    std::string body_version_pointer;   // version inside a join body, "" = none
    int reject_status = 412;            // status of a refused join (etcd never sees 410/403)
    std::optional<Probe> version_probe; // for member.version = "auto"
    std::optional<Probe> leader_probe;
    // The leader probe says "leader" when the value at leader_probe->pointer equals
    // leader_expected, or (when set) the value at leader_expected_pointer of the same reply.
    std::string leader_expected;
    std::string leader_expected_pointer;

    // Is this request join traffic (judged by the inbound side)?
    bool is_join(std::string_view method, std::string_view path) const;
};

// The preset for etcd3/etcd2, or the [profile] table for generic.
ProfileSpec make_profile(const Config& c);

} // namespace joingate::config
