// The profile presets and the generic profile, as plain data.
#include "config/profile.hpp"

namespace joingate::config {
namespace {

// "http://host:port/path" → probe at host:port with that path.
std::optional<Probe> probe_from_url(const std::string& url, const std::string& pointer) {
    if (url.empty()) return std::nullopt;
    auto parsed = parse_http_url(url, true);
    if (!parsed) return std::nullopt;
    Probe p;
    p.host = parsed->authority;
    auto rest = std::string_view(url).substr(7); // after "http://"
    auto slash = rest.find('/');
    p.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    p.pointer = pointer;
    return p;
}

} // namespace

bool ProfileSpec::is_join(std::string_view method, std::string_view path) const {
    if (join_routes.empty()) return true;
    for (const auto& r : join_routes) {
        if (!r.method.empty() && r.method != method) continue;
        if (path.substr(0, r.path_prefix.size()) == r.path_prefix) return true;
    }
    return false;
}

ProfileSpec make_profile(const Config& c) {
    ProfileSpec s;
    s.profile = c.member.profile;
    switch (c.member.profile) {
    case Profile::etcd3:
        // Every inbound peer request is join traffic (DESIGN §7).
        s.version_header = "X-Server-Version";
        s.reject_status = 412;
        s.version_probe = Probe{"GET", c.member.peer.authority, "/version", "", "/etcdserver"};
        if (c.member.client)
            s.leader_probe = Probe{"POST", c.member.client->authority, "/v3/maintenance/status", "{}", "/leader"};
        s.leader_expected_pointer = "/header/member_id";
        break;
    case Profile::etcd2:
        // The proposal's own protocol: etcd 0.4's internal join.
        s.join_routes = {{"PUT", "/join"}};
        s.body_version_pointer = "/version";
        s.reject_status = 409;
        s.version_probe = Probe{"GET", c.member.peer.authority, "/version", "", ""};
        if (c.member.client)
            s.leader_probe = Probe{"GET", c.member.client->authority, "/v2/stats/self", "", "/state"};
        s.leader_expected = "StateLeader";
        break;
    case Profile::generic:
        if (c.profile) {
            const auto& g = *c.profile;
            s.join_routes = g.join_routes;
            s.version_header = g.version_header;
            s.body_version_pointer = g.body_version_pointer;
            s.reject_status = 412;
            s.version_probe = probe_from_url(g.version_probe_url, g.version_probe_pointer);
            s.leader_probe = probe_from_url(g.leader_probe_url, g.leader_probe_pointer);
            s.leader_expected = g.leader_probe_expected;
        }
        break;
    }
    return s;
}

} // namespace joingate::config
