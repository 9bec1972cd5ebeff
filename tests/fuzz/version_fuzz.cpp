// libFuzzer: version and protocol-range parsing. A parsed version prints to a text that
// parses to an equal version; comparison is a total order consistent with equality.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admission/version.hpp"

using namespace joingate::admission;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto half = in.substr(0, size / 2), rest = in.substr(size / 2);
    std::string err;
    auto a = parse_version(half, &err);
    if (!a && err.empty()) std::abort(); // every refusal says why
    auto b = parse_version(rest);
    if (a) {
        auto again = parse_version(a->text());
        if (!again || !(*again == *a)) std::abort();
    }
    if (a && b) {
        auto c1 = *a <=> *b, c2 = *b <=> *a;
        if ((c1 == 0) != (c2 == 0) || (c1 < 0) != (c2 > 0)) std::abort();
    }
    auto r = parse_protocol_range(in);
    if (r && r->min > r->max) std::abort();
    return 0;
}
