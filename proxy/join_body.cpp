// Reading and writing the version in a join body; never throws on bad input.
#include "proxy/join_body.hpp"

#include <boost/json.hpp>

namespace joingate::proxy {

// A JSON pointer's reference tokens ("/a/b~1c" → a, b/c).
std::vector<std::string> pointer_tokens(std::string_view ptr) {
    std::vector<std::string> out;
    while (!ptr.empty() && ptr.front() == '/') {
        ptr.remove_prefix(1);
        auto next = ptr.find('/');
        std::string tok(ptr.substr(0, next));
        for (std::size_t i = 0; (i = tok.find('~', i)) != std::string::npos; ++i)
            tok.replace(i, 2, i + 1 < tok.size() && tok[i + 1] == '1' ? "/" : "~");
        out.push_back(std::move(tok));
        ptr = next == std::string_view::npos ? std::string_view{} : ptr.substr(next);
    }
    return out;
}

// The version a joiner's sidecar wrote into a join body, "" when absent.
std::string body_version(std::string_view body, const std::string& pointer) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(body, ec);
    if (ec) return {};
    const boost::json::value* v = &doc;
    for (const auto& tok : pointer_tokens(pointer)) {
        if (!v->is_object()) return {};
        v = v->as_object().if_contains(tok);
        if (!v) return {};
    }
    return v->is_string() ? std::string(v->as_string()) : std::string();
}

// Writes `version` at `pointer` into a JSON object body (the proposal's "version field in
// the join command"). A body that is not a JSON object is left as it is.
std::string with_body_version(std::string_view body, const std::string& pointer, const std::string& version) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(body, ec);
    auto tokens = pointer_tokens(pointer);
    // Keys must stay valid JSON text: only printable ASCII pointers are written (found by
    // the join_body fuzzer: raw bytes in a key made the rewritten body unreadable).
    for (char c : pointer)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return std::string(body);
    // Deeper than 16 levels would outgrow what a JSON reader accepts (fuzzer finding).
    if (ec || !doc.is_object() || tokens.empty() || tokens.size() > 16) return std::string(body);
    boost::json::value* v = &doc;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        auto& obj = v->as_object();
        v = &obj[tokens[i]];
        if (!v->is_object()) *v = boost::json::object();
    }
    v->as_object()[tokens.back()] = version;
    return boost::json::serialize(doc);
}

} // namespace joingate::proxy
