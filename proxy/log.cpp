// JSON-lines logger. Writes whole lines with one write(2) so lines never interleave.
#include "proxy/log.hpp"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace joingate::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_text{false};

const char* level_name(Level l) {
    switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}

void append_timestamp(std::string& out) {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    out.append(buf);
}

void append_value(std::string& out, const Value& v, bool text) {
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
                if (text && x.find_first_of(" \"=") == std::string_view::npos && !x.empty())
                    out.append(x);
                else
                    append_json_string(out, x);
            } else if constexpr (std::is_same_v<T, bool>) {
                out.append(x ? "true" : "false");
            } else {
                char buf[32];
                auto [p, ec] = std::to_chars(buf, buf + sizeof buf, x);
                out.append(buf, p);
            }
        },
        v.v);
}
} // namespace

void configure(config::LogFormat format, Level level) {
    g_level = static_cast<int>(level);
    g_text = format == config::LogFormat::text;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
            if (u < 0x20 || u == 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", u);
                out.append(buf);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

void write(Level level, std::string_view msg, Fields fields) {
    thread_local std::string line;
    line.clear();
    if (g_text) {
        append_timestamp(line);
        line.append(" ").append(level_name(level)).append(" ").append(msg);
        for (const auto& [k, v] : fields) {
            line.append(" ").append(k).append("=");
            append_value(line, v, true);
        }
    } else {
        line.append("{\"ts\":\"");
        append_timestamp(line);
        line.append("\",\"level\":\"").append(level_name(level)).append("\",\"msg\":");
        append_json_string(line, msg);
        for (const auto& [k, v] : fields) {
            line.append(",");
            append_json_string(line, k);
            line.append(":");
            append_value(line, v, false);
        }
        line.append("}");
    }
    line.push_back('\n');
    std::size_t off = 0;
    while (off < line.size()) {
        auto n = ::write(STDOUT_FILENO, line.data() + off, line.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
}

} // namespace joingate::log
