// libFuzzer: the request head parser and the head rewrite that follows it, on arbitrary
// bytes. Invariants: never crashes, a complete head lies within the input, a rewritten
// head parses again to the same method and framing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/http.hpp"

using namespace joingate::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    Limits limits;
    limits.max_header_bytes = 4096;
    limits.max_uri_bytes = 2048;
    Head head;
    HeadError err{};
    auto r = parse_request(in, limits, head, err);
    if (r != Parse::complete) return 0;
    if (head.size > in.size()) std::abort();
    AbsoluteTarget t;
    std::string_view target = head.target;
    if (parse_absolute_target(head.target, t)) target = t.origin;
    Stamp stamp{"m0", "3.4.23", "1-1"};
    std::string out;
    write_request_head(out, head, target, {}, &stamp);
    Head again;
    HeadError err2{};
    if (parse_request(out, Limits{64 * 1024, 64 * 1024, 1024}, again, err2) != Parse::complete) {
        // Dropping hop-by-hop fields may drop the only Host of an HTTP/1.0 request: fine.
        if (err2 != HeadError::missing_host) std::abort();
        return 0;
    }
    if (again.method != head.method || again.framing != head.framing) std::abort();
    return 0;
}
