// libFuzzer: the etcd2 JoinCommand version rewrite on arbitrary bodies and pointers.
// Never throws; a body rewritten as a JSON object reads back the version written.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/join_body.hpp"

using namespace joingate::proxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto nl = in.find('\n');
    std::string pointer(nl == std::string_view::npos ? "/version" : in.substr(0, nl));
    auto body = nl == std::string_view::npos ? in : in.substr(nl + 1);
    (void)body_version(body, pointer);
    auto out = with_body_version(body, pointer, "3.4.23");
    if (out != body && !pointer_tokens(pointer).empty() && body_version(out, pointer) != "3.4.23") std::abort();
    return 0;
}
