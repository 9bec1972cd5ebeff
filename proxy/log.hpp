// Structured logging: one JSON object per line on stdout (DESIGN §8), or `key=value`
// text for humans. Fields are typed so nothing needs formatting on a disabled level.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"

namespace joingate::log {

using Level = config::LogLevel;

struct Value {
    std::variant<std::string_view, std::int64_t, double, bool> v;
    Value(std::string_view s) : v(s) {}
    Value(const std::string& s) : v(std::string_view(s)) {}
    Value(const char* s) : v(std::string_view(s)) {}
    Value(int i) : v(std::int64_t{i}) {}
    Value(long i) : v(std::int64_t{i}) {}
    Value(long long i) : v(std::int64_t{i}) {}
    Value(unsigned i) : v(std::int64_t{i}) {}
    Value(unsigned long i) : v(static_cast<std::int64_t>(i)) {}
    Value(unsigned long long i) : v(static_cast<std::int64_t>(i)) {}
    Value(double d) : v(d) {}
    Value(bool b) : v(b) {}
};
using Fields = std::initializer_list<std::pair<std::string_view, Value>>;

void configure(config::LogFormat format, Level level);
bool enabled(Level level);
void write(Level level, std::string_view msg, Fields fields = {});

inline void debug(std::string_view msg, Fields f = {}) { if (enabled(Level::debug)) write(Level::debug, msg, f); }
inline void info(std::string_view msg, Fields f = {}) { if (enabled(Level::info)) write(Level::info, msg, f); }
inline void warn(std::string_view msg, Fields f = {}) { if (enabled(Level::warn)) write(Level::warn, msg, f); }
inline void error(std::string_view msg, Fields f = {}) { if (enabled(Level::error)) write(Level::error, msg, f); }

// JSON string escaping, shared with the admin API.
void append_json_string(std::string& out, std::string_view s);

} // namespace joingate::log
