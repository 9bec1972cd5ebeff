// The version field in a join command's JSON body (DESIGN §7, etcd2 and generic profiles):
// read on the leader's side, written on the joiner's side, at a JSON pointer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace joingate::proxy {

// A JSON pointer's reference tokens ("/a/b~1c" → a, b/c).
std::vector<std::string> pointer_tokens(std::string_view ptr);

// The version string at `pointer` in a JSON body, "" when absent or not a string.
std::string body_version(std::string_view body, const std::string& pointer);

// Writes `version` at `pointer` into a JSON object body (creating objects on the way).
// A body that is not a JSON object, or a pointer deeper than 16 levels or with bytes
// outside printable ASCII, leaves the body unchanged.
std::string with_body_version(std::string_view body, const std::string& pointer, const std::string& version);

} // namespace joingate::proxy
