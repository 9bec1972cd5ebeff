// libFuzzer: the /joingate/v1/version reader used by the cluster view, on untrusted peer
// answers. Never throws or crashes; what it accepts serializes and reads back equal.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "admission/version_doc.hpp"

using namespace joingate::admission;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto doc = parse_version_doc(in);
    if (!doc) return 0;
    auto again = parse_version_doc(to_json(*doc));
    if (!again || !(*again == *doc)) std::abort();
    return 0;
}
