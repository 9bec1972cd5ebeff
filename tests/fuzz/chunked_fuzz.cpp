// libFuzzer: the chunked-body tracker. Feeding the input whole or split at an arbitrary
// point must give the same outcome, and data spans must lie inside the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http.hpp"

using namespace joingate::http;

namespace {
struct Outcome {
    ChunkedDecoder::Status status;
    std::size_t consumed;
    std::string data;
};

Outcome run(std::string_view in, std::size_t split) {
    ChunkedDecoder d;
    Outcome o{ChunkedDecoder::Status::more, 0, {}};
    for (std::string_view part : {in.substr(0, split), in.substr(split)}) {
        if (o.status != ChunkedDecoder::Status::more) break;
        std::vector<ChunkedDecoder::Span> spans;
        auto r = d.feed(part, &spans);
        for (auto s : spans) {
            if (s.offset + s.size > part.size()) std::abort();
            o.data.append(part.substr(s.offset, s.size));
        }
        if (r.consumed > part.size()) std::abort();
        o.consumed += r.consumed;
        o.status = r.status;
    }
    return o;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto whole = run(in, in.size());
    auto split = run(in, size ? data[0] % (size + 1) : 0);
    if (whole.status != split.status) std::abort();
    if (whole.status != ChunkedDecoder::Status::error &&
        (whole.data != split.data || whole.consumed != split.consumed))
        std::abort();
    return 0;
}
