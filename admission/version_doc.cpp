// Reading and writing the /joingate/v1/version document with Boost.JSON. Parsing is
// defensive: the text comes from the network (albeit over mTLS), so every field is
// type-checked and nothing here throws.
#include "admission/version_doc.hpp"

#include <boost/json.hpp>

#include <climits>
#include <exception>

namespace joingate::admission {
namespace json = boost::json;

const char* to_string(Role r) {
    switch (r) {
    case Role::leader:
        return "leader";
    case Role::follower:
        return "follower";
    case Role::unknown:
        return "unknown";
    }
    return "unknown";
}

Role parse_role(std::string_view s) noexcept {
    if (s == "leader")
        return Role::leader;
    if (s == "follower")
        return Role::follower;
    return Role::unknown;
}

namespace {

json::object member_version(const MemberVersion& mv) {
    json::object o;
    o["member"] = mv.member;
    o["version"] = mv.version;
    return o;
}

// Field readers: true when absent (keeping the default) or well-typed; false with
// *error set otherwise. null counts as absent for optional fields.
struct Reader {
    std::string* error;
    bool fail(std::string_view path, std::string_view want) {
        if (error) {
            *error = "version document: field \"";
            *error += path;
            *error += "\": expected ";
            *error += want;
        }
        return false;
    }

    bool str(const json::object& o, std::string_view key, std::string_view path, std::string& out) {
        auto* v = o.if_contains(key);
        if (!v || v->is_null())
            return true;
        if (!v->is_string())
            return fail(path, "a string");
        out.assign(v->get_string().data(), v->get_string().size());
        return true;
    }
    bool opt_str(const json::object& o, std::string_view key, std::optional<std::string>& out) {
        auto* v = o.if_contains(key);
        if (!v || v->is_null())
            return true;
        if (!v->is_string())
            return fail(key, "a string");
        out.emplace(v->get_string().data(), v->get_string().size());
        return true;
    }
    bool boolean(const json::object& o, std::string_view key, bool& out) {
        auto* v = o.if_contains(key);
        if (!v || v->is_null())
            return true;
        if (!v->is_bool())
            return fail(key, "true or false");
        out = v->get_bool();
        return true;
    }
    // A non-negative integer up to max (JSON integers only, not 1.0).
    bool uint(const json::value& v, std::string_view path, std::uint64_t max, std::uint64_t& out) {
        if (v.is_uint64()) {
            out = v.get_uint64();
        } else if (v.is_int64() && v.get_int64() >= 0) {
            out = static_cast<std::uint64_t>(v.get_int64());
        } else {
            return fail(path, "a non-negative integer");
        }
        if (out > max)
            return fail(path, "a smaller integer");
        return true;
    }
    bool member_version(const json::value& v, std::string_view path, MemberVersion& out) {
        if (!v.is_object())
            return fail(path, "an object {\"member\",\"version\"}");
        const auto& o = v.get_object();
        std::string member_path = std::string(path) + ".member";
        std::string version_path = std::string(path) + ".version";
        return str(o, "member", member_path, out.member) &&
               str(o, "version", version_path, out.version);
    }
};

std::optional<VersionDoc> parse_object(const json::object& o, std::string* error) {
    Reader r{error};
    VersionDoc d;

    auto* api = o.if_contains("api");
    if (!api) {
        r.fail("api", "a positive integer (missing: not a joingate version document?)");
        return std::nullopt;
    }
    std::uint64_t api_value = 0;
    if (!r.uint(*api, "api", INT_MAX, api_value))
        return std::nullopt;
    if (api_value == 0) {
        r.fail("api", "a positive integer");
        return std::nullopt;
    }
    d.api = static_cast<int>(api_value);

    auto* member = o.if_contains("member");
    if (!member || !member->is_string()) {
        r.fail("member", member ? "a string" : "a string (missing)");
        return std::nullopt;
    }
    d.member = std::string_view(member->get_string());
    if (!r.str(o, "version", "version", d.version))
        return std::nullopt;

    if (auto* p = o.if_contains("protocol"); p && !p->is_null()) {
        if (!p->is_object()) {
            r.fail("protocol", "an object {\"min\",\"max\"}");
            return std::nullopt;
        }
        const auto& po = p->get_object();
        std::uint64_t lo = d.protocol.min, hi = d.protocol.max;
        if (auto* m = po.if_contains("min"); m && !r.uint(*m, "protocol.min", UINT32_MAX, lo)) {
            return std::nullopt;
        }
        if (auto* m = po.if_contains("max"); m && !r.uint(*m, "protocol.max", UINT32_MAX, hi)) {
            return std::nullopt;
        }
        if (lo > hi) {
            r.fail("protocol", "min <= max");
            return std::nullopt;
        }
        d.protocol = {static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi)};
    }

    if (auto* v = o.if_contains("role"); v && !v->is_null()) {
        if (!v->is_string()) {
            r.fail("role", "a string");
            return std::nullopt;
        }
        d.role = parse_role(std::string_view(v->get_string()));
    }

    if (auto* v = o.if_contains("leader"); v && !v->is_null()) {
        MemberVersion mv;
        if (!r.member_version(*v, "leader", mv))
            return std::nullopt;
        d.leader = std::move(mv);
    }

    if (!r.boolean(o, "admitted", d.admitted))
        return std::nullopt;
    if (!r.str(o, "mode", "mode", d.mode))
        return std::nullopt;
    if (!r.str(o, "policy", "policy", d.policy))
        return std::nullopt;
    if (!r.str(o, "profile", "profile", d.profile))
        return std::nullopt;

    if (auto* v = o.if_contains("admitted_members"); v && !v->is_null()) {
        if (!v->is_array()) {
            r.fail("admitted_members", "an array");
            return std::nullopt;
        }
        const auto& a = v->get_array();
        d.admitted_members.reserve(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            MemberVersion mv;
            if (!r.member_version(a[i], "admitted_members[" + std::to_string(i) + "]", mv)) {
                return std::nullopt;
            }
            d.admitted_members.push_back(std::move(mv));
        }
    }

    if (!r.opt_str(o, "reason", d.reason))
        return std::nullopt;
    if (!r.opt_str(o, "joingate", d.joingate))
        return std::nullopt;
    return d;
}

} // namespace

std::string to_json(const VersionDoc& d) {
    json::object o;
    o["api"] = d.api;
    o["member"] = d.member;
    o["version"] = d.version;
    o["protocol"] = json::object{{"min", d.protocol.min}, {"max", d.protocol.max}};
    o["role"] = to_string(d.role);
    if (d.leader) {
        o["leader"] = member_version(*d.leader);
    } else {
        o["leader"] = nullptr;
    }
    o["admitted"] = d.admitted;
    o["mode"] = d.mode;
    o["policy"] = d.policy;
    o["profile"] = d.profile;
    json::array members;
    members.reserve(d.admitted_members.size());
    for (const auto& mv : d.admitted_members)
        members.push_back(member_version(mv));
    o["admitted_members"] = std::move(members);
    if (d.reason)
        o["reason"] = *d.reason;
    if (d.joingate)
        o["joingate"] = *d.joingate;
    return json::serialize(o);
}

std::optional<VersionDoc> parse_version_doc(std::string_view text, std::string* error) noexcept {
    try {
        if (text.size() > max_version_doc_bytes) {
            if (error) {
                *error = "version document: " + std::to_string(text.size()) +
                         " bytes, more than the limit of " + std::to_string(max_version_doc_bytes);
            }
            return std::nullopt;
        }
        json::parse_options opts;
        opts.max_depth = 16; // the document is three levels deep; refuse pathological nesting
        boost::system::error_code ec;
        json::value v = json::parse(text, ec, {}, opts);
        if (ec) {
            if (error)
                *error = "version document: malformed JSON: " + ec.message();
            return std::nullopt;
        }
        if (!v.is_object()) {
            if (error)
                *error = "version document: expected a JSON object";
            return std::nullopt;
        }
        return parse_object(v.get_object(), error);
    } catch (const std::exception& e) { // allocation failure: the only thing left to throw
        if (error) {
            try {
                *error = std::string("version document: ") + e.what();
            } catch (...) {
            }
        }
        return std::nullopt;
    }
}

} // namespace joingate::admission
