// The error table (STYLE: all errors become responses in one place).
#include "proxy/errors.hpp"

#include "proxy/log.hpp"

namespace joingate::proxy {

const FailureInfo& info(Failure f) {
    static const FailureInfo table[] = {
        /* bad_request */ {400, "bad_request", true},
        /* uri_too_long */ {414, "uri_too_long", true},
        /* header_too_large */ {431, "header_too_large", true},
        /* version_not_supported */ {505, "version_not_supported", true},
        /* not_found */ {404, "not_found", false},
        /* method_not_allowed */ {405, "method_not_allowed", false},
        /* not_proxy_request */ {400, "not_proxy_request", false},
        /* upstream_unreachable */ {502, "upstream_unreachable", false},
        /* upstream_timeout */ {504, "upstream_timeout", false},
        /* upstream_tls */ {502, "upstream_tls", false},
        /* upstream_bad_response */ {502, "upstream_bad_response", false},
        /* upstream_closed */ {502, "upstream_closed", false},
        /* overloaded */ {503, "overloaded", true},
        /* draining */ {503, "draining", true},
        /* rejected */ {412, "rejected", false},
        /* held */ {503, "not_admitted", false},
        /* body_too_large */ {413, "body_too_large", true},
    };
    return table[static_cast<int>(f)];
}

Failure failure_for(http::HeadError e) {
    switch (e) {
    case http::HeadError::uri_too_long: return Failure::uri_too_long;
    case http::HeadError::header_too_large: return Failure::header_too_large;
    case http::HeadError::too_many_fields: return Failure::header_too_large; // 431, as RFC 6585 says
    case http::HeadError::unsupported_version: return Failure::version_not_supported;
    default: return Failure::bad_request;
    }
}

void render_failure(std::string& out, Failure f, std::string_view detail, bool close,
                    int status_override, std::string_view extra_headers) {
    const auto& i = info(f);
    std::string body;
    body.reserve(64 + detail.size());
    body.append("{\"error\":");
    std::string msg = "joingate: ";
    msg.append(i.code);
    if (!detail.empty()) msg.append(": ").append(detail);
    log::append_json_string(body, msg);
    body.append(",\"reason\":");
    log::append_json_string(body, i.code);
    body.append("}");
    http::write_simple_response(out, status_override ? status_override : i.status,
                                "application/json", body, close || i.close, extra_headers);
}

} // namespace joingate::proxy
