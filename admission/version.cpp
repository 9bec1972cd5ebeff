// Versions and protocol ranges (DESIGN §3): a strict SemVer 2.0 parser and its precedence
// rules, written by hand so that config validation and the admission hot path share one
// definition and error messages can say exactly what is wrong with an operator's text.
#include "admission/version.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace joingate::admission {
namespace {

// Longer text is not a version anyone writes; bounding it keeps errors and logs short.
constexpr std::size_t max_version_text = 256;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_ident_char(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}
bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// The offending text, quoted, with control bytes escaped and long input cut short, so an
// error message is always one printable line.
std::string quote(std::string_view text) {
    constexpr std::size_t shown = 64;
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < shown; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > shown)
        out += "...";
    out += '"';
    return out;
}

std::nullopt_t fail_version(std::string_view text, std::string_view why, std::string* error) {
    if (error) {
        *error = "not a version: " + quote(text) + " (";
        *error += why;
        *error += "; expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] or an integer, e.g. 3.4.23)";
    }
    return std::nullopt;
}

// A numeric core component: digits, no leading zero, fits in 64 bits.
bool parse_number(std::string_view s, std::uint64_t& out, const char*& why) {
    if (s.empty()) {
        why = "empty number";
        return false;
    }
    if (!all_digits(s)) {
        why = "not a number";
        return false;
    }
    if (s.size() > 1 && s[0] == '0') {
        why = "leading zero";
        return false;
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc{} || p != s.data() + s.size()) {
        why = "number too large";
        return false;
    }
    return true;
}

// Dot-separated non-empty [0-9A-Za-z-] identifiers; numeric prerelease identifiers must
// not have leading zeros (SemVer §9), build identifiers may (§10).
const char* check_identifiers(std::string_view s, bool prerelease) {
    if (s.empty())
        return prerelease ? "empty prerelease" : "empty build metadata";
    std::size_t start = 0;
    while (true) {
        auto dot = s.find('.', start);
        auto id = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        if (id.empty()) {
            return prerelease ? "empty prerelease identifier" : "empty build identifier";
        }
        if (!std::all_of(id.begin(), id.end(), is_ident_char)) {
            return prerelease ? "invalid character in prerelease (allowed: 0-9 A-Z a-z - .)"
                              : "invalid character in build metadata (allowed: 0-9 A-Z a-z - .)";
        }
        if (prerelease && all_digits(id) && id.size() > 1 && id[0] == '0') {
            return "leading zero in numeric prerelease identifier";
        }
        if (dot == std::string_view::npos)
            return nullptr;
        start = dot + 1;
    }
}

// SemVer §11.4: numeric identifiers compare numerically (no leading zeros, so by length
// then text, which also works beyond 64 bits), numeric < alphanumeric, otherwise ASCII.
std::strong_ordering compare_identifier(std::string_view a, std::string_view b) {
    bool an = all_digits(a), bn = all_digits(b);
    if (an && bn) {
        if (a.size() != b.size())
            return a.size() <=> b.size();
        return a.compare(b) <=> 0;
    }
    if (an != bn)
        return an ? std::strong_ordering::less : std::strong_ordering::greater;
    return a.compare(b) <=> 0;
}

std::strong_ordering compare_prerelease(std::string_view a, std::string_view b) {
    // A release has higher precedence than any of its prereleases.
    if (a.empty() || b.empty()) {
        if (a.empty() && b.empty())
            return std::strong_ordering::equal;
        return a.empty() ? std::strong_ordering::greater : std::strong_ordering::less;
    }
    std::size_t ia = 0, ib = 0;
    while (true) {
        auto da = a.find('.', ia), db = b.find('.', ib);
        auto xa = a.substr(ia, da == std::string_view::npos ? a.npos : da - ia);
        auto xb = b.substr(ib, db == std::string_view::npos ? b.npos : db - ib);
        if (auto c = compare_identifier(xa, xb); c != 0)
            return c;
        bool ea = da == std::string_view::npos, eb = db == std::string_view::npos;
        if (ea || eb) {
            if (ea && eb)
                return std::strong_ordering::equal;
            return ea ? std::strong_ordering::less : std::strong_ordering::greater;
        }
        ia = da + 1;
        ib = db + 1;
    }
}

} // namespace

std::strong_ordering operator<=>(const Version& a, const Version& b) {
    if (auto c = a.major <=> b.major; c != 0)
        return c;
    if (auto c = a.minor <=> b.minor; c != 0)
        return c;
    if (auto c = a.patch <=> b.patch; c != 0)
        return c;
    return compare_prerelease(a.prerelease, b.prerelease);
}

std::string Version::text() const {
    std::string out =
        std::to_string(major) + '.' + std::to_string(minor) + '.' + std::to_string(patch);
    if (!prerelease.empty())
        out += '-' + prerelease;
    if (!build.empty())
        out += '+' + build;
    return out;
}

std::optional<Version> parse_version(std::string_view text, std::string* error) {
    if (text.empty())
        return fail_version(text, "empty", error);
    if (text.size() > max_version_text)
        return fail_version(text, "too long", error);
    std::string_view s = text;
    if (s.front() == 'v')
        s.remove_prefix(1);
    if (s.empty())
        return fail_version(text, "nothing after 'v'", error);

    Version v;
    const char* why = nullptr;
    // etcd 0.4 internal versions are bare integers: N means N.0.0.
    if (all_digits(s)) {
        if (!parse_number(s, v.major, why))
            return fail_version(text, why, error);
        return v;
    }

    // Split off build metadata first ('+' cannot appear elsewhere), then the prerelease
    // (the first '-': later ones belong to the prerelease identifiers).
    std::string_view core = s, pre, build;
    bool has_pre = false, has_build = false;
    if (auto plus = core.find('+'); plus != std::string_view::npos) {
        build = core.substr(plus + 1);
        core = core.substr(0, plus);
        has_build = true;
    }
    if (auto dash = core.find('-'); dash != std::string_view::npos) {
        pre = core.substr(dash + 1);
        core = core.substr(0, dash);
        has_pre = true;
    }

    std::string_view parts[3];
    std::size_t n = 0, start = 0;
    while (true) {
        auto dot = core.find('.', start);
        if (n == 3)
            return fail_version(text, "more than three numbers before the prerelease", error);
        parts[n++] = core.substr(start, dot == std::string_view::npos ? core.npos : dot - start);
        if (dot == std::string_view::npos)
            break;
        start = dot + 1;
    }
    // Bad numbers first: "auto" is better reported as not a number than as too short.
    static constexpr const char* names[3] = {"major", "minor", "patch"};
    std::uint64_t* fields[3] = {&v.major, &v.minor, &v.patch};
    for (std::size_t i = 0; i < n; ++i) {
        if (!parse_number(parts[i], *fields[i], why)) {
            std::string detail = std::string(names[i]) + ": " + why;
            return fail_version(text, detail, error);
        }
    }
    if (n != 3) {
        return fail_version(text, n == 1 ? "missing minor and patch" : "missing patch", error);
    }
    if (has_pre) {
        if (const char* bad = check_identifiers(pre, true))
            return fail_version(text, bad, error);
        v.prerelease = pre;
    }
    if (has_build) {
        if (const char* bad = check_identifiers(build, false))
            return fail_version(text, bad, error);
        v.build = build;
    }
    return v;
}

std::optional<config::ProtocolRange> parse_protocol_range(std::string_view text,
                                                          std::string* error) {
    auto fail = [&](std::string_view why) -> std::optional<config::ProtocolRange> {
        if (error) {
            *error = "not a protocol range: " + quote(text) + " (";
            *error += why;
            *error += "; expected MIN..MAX with non-negative integers, e.g. 1..2)";
        }
        return std::nullopt;
    };
    auto sep = text.find("..");
    if (sep == std::string_view::npos)
        return fail("missing \"..\"");
    auto lo = text.substr(0, sep), hi = text.substr(sep + 2);
    auto number = [](std::string_view s, std::uint32_t& out) {
        if (!all_digits(s))
            return false;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && p == s.data() + s.size();
    };
    config::ProtocolRange r;
    if (!number(lo, r.min))
        return fail("min is not a non-negative 32-bit integer");
    if (!number(hi, r.max))
        return fail("max is not a non-negative 32-bit integer");
    if (r.min > r.max)
        return fail("min is greater than max");
    return r;
}

std::string to_string(const config::ProtocolRange& r) {
    return std::to_string(r.min) + ".." + std::to_string(r.max);
}

} // namespace joingate::admission
