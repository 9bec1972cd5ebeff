// libFuzzer: the TOML config loader on arbitrary text. Never throws or crashes; either a
// config or at least one error, each naming the file.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto r = joingate::config::load_string(in, "/nonexistent/fuzz.toml");
    if (!r.config && r.errors.empty()) std::abort();
    if (r.config && !r.errors.empty()) std::abort();
    for (const auto& e : r.errors)
        if (e.file != "/nonexistent/fuzz.toml") std::abort();
    return 0;
}
