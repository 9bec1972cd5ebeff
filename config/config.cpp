// The small value parsers behind config loading (durations, host:port, URLs, RFC 3339
// times), the enum names, and the reload rule. Kept apart from load.cpp so that the CLI
// and the proxy can reuse them without touching TOML.
#include "config/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace joingate::config {

std::string HostPort::text() const {
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::string Error::text() const {
    std::string out = file;
    if (line > 0)
        out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty())
        out += key + ": ";
    out += message;
    return out;
}

const char* to_string(Profile p) {
    switch (p) {
    case Profile::etcd3:
        return "etcd3";
    case Profile::etcd2:
        return "etcd2";
    case Profile::generic:
        return "generic";
    }
    return "?";
}

const char* to_string(Mode m) {
    switch (m) {
    case Mode::leader:
        return "leader";
    case Mode::follower:
        return "follower";
    case Mode::both:
        return "both";
    case Mode::observe:
        return "observe";
    }
    return "?";
}

const char* to_string(Policy p) {
    switch (p) {
    case Policy::exact:
        return "exact";
    case Policy::not_older_than_leader:
        return "not-older-than-leader";
    case Policy::skew:
        return "skew";
    case Policy::protocol:
        return "protocol";
    }
    return "?";
}

const char* to_string(FailMode f) {
    switch (f) {
    case FailMode::closed:
        return "closed";
    case FailMode::open:
        return "open";
    }
    return "?";
}

const char* to_string(OnReject o) {
    switch (o) {
    case OnReject::wait:
        return "wait";
    case OnReject::exit:
        return "exit";
    }
    return "?";
}

const char* to_string(LogFormat f) {
    switch (f) {
    case LogFormat::json:
        return "json";
    case LogFormat::text:
        return "text";
    }
    return "?";
}

const char* to_string(LogLevel l) {
    switch (l) {
    case LogLevel::debug:
        return "debug";
    case LogLevel::info:
        return "info";
    case LogLevel::warn:
        return "warn";
    case LogLevel::error:
        return "error";
    }
    return "?";
}

// ---- durations ---------------------------------------------------------------------

namespace {

struct Unit {
    std::string_view name;
    std::int64_t ms;
};
// Largest first: a duration lists its units in this order, each at most once.
constexpr std::array<Unit, 4> units{{{"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}}};
// About 31 years; anything longer is a typo, and it keeps every sum far from overflow.
constexpr std::int64_t max_duration_ms = 1'000'000'000'000;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

} // namespace

std::optional<Duration> parse_duration(std::string_view text) {
    if (text == "0")
        return Duration{0};
    if (text.empty())
        return std::nullopt;
    std::int64_t total = 0;
    std::size_t next_unit = 0; // index into units: the smallest unit still allowed
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t start = i;
        while (i < text.size() && is_digit(text[i]))
            ++i;
        if (i == start || i - start > 13)
            return std::nullopt;
        std::int64_t n = 0;
        std::from_chars(text.data() + start, text.data() + i, n);
        std::size_t ustart = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
            ++i;
        std::string_view uname = text.substr(ustart, i - ustart);
        auto it = std::find_if(units.begin() + static_cast<std::ptrdiff_t>(next_unit), units.end(),
                               [&](const Unit& u) { return u.name == uname; });
        if (it == units.end())
            return std::nullopt;
        next_unit = static_cast<std::size_t>(it - units.begin()) + 1;
        if (n > max_duration_ms / it->ms)
            return std::nullopt;
        total += n * it->ms;
        if (total > max_duration_ms)
            return std::nullopt;
    }
    return Duration{total};
}

std::string format_duration(Duration d) {
    std::int64_t ms = d.count();
    if (ms == 0)
        return "0s";
    std::string out;
    if (ms < 0) {
        out = "-";
        ms = -ms;
    }
    for (const Unit& u : units) {
        if (ms >= u.ms) {
            out += std::to_string(ms / u.ms);
            out += u.name;
            ms %= u.ms;
        }
    }
    return out;
}

// ---- host:port and URLs --------------------------------------------------------------

namespace {

bool valid_dns_name(std::string_view host) {
    if (host.empty() || host.size() > 253)
        return false;
    if (host.back() == '.') // a fully qualified name: "etcd-0.etcd.svc."
        host.remove_suffix(1);
    std::size_t start = 0;
    while (true) {
        std::size_t dot = host.find('.', start);
        std::string_view label = host.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
                return false;
        }
        if (dot == std::string_view::npos)
            return true;
        start = dot + 1;
    }
}

bool looks_numeric(std::string_view host) {
    return !host.empty() &&
           std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; });
}

bool set_error(std::string* error, std::string message) {
    if (error)
        *error = std::move(message);
    return false;
}

} // namespace

std::optional<HostPort> parse_host_port(std::string_view text, std::string* error) {
    const std::string shown = in_quotes(text);
    std::string_view host;
    std::string_view port_text;
    bool ipv6 = false;
    if (!text.empty() && text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos) {
            set_error(error, "not host:port: " + shown + " (missing ']' after the IPv6 address)");
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            set_error(error, "not host:port: " + shown + " (expected :PORT after ']')");
            return std::nullopt;
        }
        port_text = rest.substr(1);
        ipv6 = true;
    } else {
        std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            set_error(error, "not host:port: " + shown + " (missing :PORT)");
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            set_error(error, "not host:port: " + shown +
                                 " (write an IPv6 address in brackets: [::1]:2380)");
            return std::nullopt;
        }
    }
    if (host.empty()) {
        set_error(error, "not host:port: " + shown +
                             " (the host is empty; use 0.0.0.0 or [::] for every interface)");
        return std::nullopt;
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || port_text.size() > 5 || ec != std::errc{} ||
        end != port_text.data() + port_text.size() || port > 65535) {
        set_error(error, "not host:port: " + shown + " (the port must be a number 0..65535)");
        return std::nullopt;
    }
    std::string host_str(host);
    if (ipv6) {
        // A zone ("fe80::1%eth0") is kept as written; only the address part is checked.
        std::string addr = host_str.substr(0, host_str.find('%'));
        in6_addr a6{};
        if (inet_pton(AF_INET6, addr.c_str(), &a6) != 1) {
            set_error(error, "not host:port: " + shown + " (not an IPv6 address in brackets)");
            return std::nullopt;
        }
    } else if (looks_numeric(host)) {
        in_addr a4{};
        if (inet_pton(AF_INET, host_str.c_str(), &a4) != 1) {
            set_error(error, "not host:port: " + shown + " (not an IPv4 address)");
            return std::nullopt;
        }
    } else if (!valid_dns_name(host)) {
        set_error(error, "not host:port: " + shown + " (the host is not a valid DNS name)");
        return std::nullopt;
    }
    return HostPort{std::move(host_str), static_cast<std::uint16_t>(port)};
}

std::optional<HttpUrl> parse_http_url(std::string_view text, bool allow_path, std::string* error) {
    const std::string shown = in_quotes(text);
    constexpr std::string_view prefix = "http://";
    if (text.substr(0, prefix.size()) != prefix) {
        set_error(error, "not an http URL: " + shown +
                             " (expected http://host:port; the local peer speaks plain HTTP)");
        return std::nullopt;
    }
    std::string_view rest = text.substr(prefix.size());
    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (!allow_path && !path.empty() && path != "/") {
        set_error(error, "not http://host:port: " + shown + " (no path allowed here)");
        return std::nullopt;
    }
    if (path.find_first_of(" \t\r\n#") != std::string_view::npos) {
        set_error(error, "not an http URL: " + shown + " (the path has spaces or a fragment)");
        return std::nullopt;
    }
    std::string hp_error;
    auto hp = parse_host_port(authority, &hp_error);
    if (!hp) {
        set_error(error, "not an http URL: " + shown + " (expected http://host:port" +
                             (allow_path ? "/path" : "") + " with an explicit port)");
        return std::nullopt;
    }
    return HttpUrl{"http", *hp, std::string(text)};
}

// ---- RFC 3339 --------------------------------------------------------------------------

namespace {

bool read_fixed(std::string_view s, std::size_t pos, std::size_t len, int& out) {
    if (pos + len > s.size())
        return false;
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
        if (!is_digit(s[i]))
            return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

} // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!read_fixed(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !read_fixed(s, 5, 2, mo) ||
        s[7] != '-' || !read_fixed(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !read_fixed(s, 11, 2, h) || s[13] != ':' || !read_fixed(s, 14, 2, mi) || s[16] != ':' ||
        !read_fixed(s, 17, 2, sec))
        return std::nullopt;
    std::size_t i = 19;
    milliseconds frac{0};
    if (i < s.size() && s[i] == '.') {
        ++i;
        std::size_t start = i;
        int scale = 100;
        while (i < s.size() && is_digit(s[i])) {
            frac += milliseconds{(s[i] - '0') * scale};
            scale /= 10;
            ++i;
        }
        if (i == start)
            return std::nullopt;
    }
    if (i >= s.size())
        return std::nullopt; // an offset is required: a local time is ambiguous
    minutes offset{0};
    if (s[i] == 'Z' || s[i] == 'z') {
        ++i;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh = 0, om = 0;
        if (!read_fixed(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
            !read_fixed(s, i + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset = minutes{(s[i] == '-' ? -1 : 1) * (oh * 60 + om)};
        i += 6;
    } else {
        return std::nullopt;
    }
    if (i != s.size())
        return std::nullopt;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60)
        return std::nullopt;
    sys_time<milliseconds> t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + frac;
    return time_point_cast<system_clock::duration>(t - offset);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto days = floor<std::chrono::days>(secs);
    year_month_day ymd{days};
    hh_mm_ss hms{secs - days};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

// ---- reload ----------------------------------------------------------------------------

namespace {

int line_of(const Config& c, const std::string& key) {
    auto it = c.lines.find(key);
    return it == c.lines.end() ? 0 : it->second;
}

std::string describe(const std::optional<HostPort>& hp) {
    return hp ? hp->text() : "none";
}

} // namespace

std::vector<Error> check_reload(const Config& running, const Config& next) {
    std::vector<Error> errors;
    auto refuse = [&](const std::string& key, const std::string& was, const std::string& now) {
        errors.push_back({next.file, line_of(next, key), key,
                          "listen addresses cannot change on reload (running " + was + ", new " +
                              now + "); restart joingate to change it"});
    };
    if (running.inbound.listen != next.inbound.listen)
        refuse("inbound.listen", running.inbound.listen.text(), next.inbound.listen.text());
    if (running.outbound.listen != next.outbound.listen)
        refuse("outbound.listen", describe(running.outbound.listen),
               describe(next.outbound.listen));
    if (running.admin.listen != next.admin.listen)
        refuse("admin.listen", running.admin.listen.text(), next.admin.listen.text());
    const auto& ra = running.outbound.routes;
    const auto& rb = next.outbound.routes;
    for (std::size_t i = 0; i < std::max(ra.size(), rb.size()); ++i) {
        std::string key = "outbound.route[" + std::to_string(i) + "].listen";
        if (i >= rb.size()) {
            errors.push_back({next.file, line_of(next, "outbound.route"), "outbound.route",
                              "listen addresses cannot change on reload (route " +
                                  ra[i].listen.text() +
                                  " was removed); restart joingate to change it"});
        } else if (i >= ra.size()) {
            refuse(key, "none", rb[i].listen.text());
        } else if (ra[i].listen != rb[i].listen) {
            refuse(key, ra[i].listen.text(), rb[i].listen.text());
        }
    }
    return errors;
}

} // namespace joingate::config
