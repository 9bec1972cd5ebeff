// Every failure the proxy answers itself, in one table: status, reason code, whether the
// connection closes, and extra headers. Sessions never compose error responses by hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http.hpp"

namespace joingate::proxy {

enum class Failure : std::uint8_t {
    bad_request,           // malformed or ambiguous request (smuggling rules): 400, close
    uri_too_long,          // 414, close
    header_too_large,      // 431, close
    version_not_supported, // 505, close
    not_found,             // 404 (admin)
    method_not_allowed,    // 405 (CONNECT on the forward proxy, writes on admin)
    not_proxy_request,     // origin-form request on the forward proxy: 400
    upstream_unreachable,  // connect refused / resolve failed: 502
    upstream_timeout,      // connect timed out: 504
    upstream_tls,          // TLS with the target failed (certificate, name): 502
    upstream_bad_response, // unparseable or ambiguous response: 502
    upstream_closed,       // closed before a response head: 502
    overloaded,            // connection limit: 503
    draining,              // shutting down: 503, close
    rejected,              // admission: join refused (etcd3 412, etcd2 409 on PUT /join)
    held,                  // follower hold expired: 503 + Retry-After
    body_too_large,        // a join body over 64 KiB where the profile reads it: 413, close
};

struct FailureInfo {
    int status;
    const char* code;
    bool close;
};
const FailureInfo& info(Failure f);

// Maps a parse error of a request head to its failure.
Failure failure_for(http::HeadError e);

// Renders the response: JSON object body {"error":"joingate: <code>: <detail>","reason":"<code>"}.
// `status_override` (non-zero) replaces the table's status (profile-specific rejections).
void render_failure(std::string& out, Failure f, std::string_view detail, bool close,
                    int status_override = 0, std::string_view extra_headers = {});

} // namespace joingate::proxy
