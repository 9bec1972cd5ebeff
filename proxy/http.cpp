// Sans-I/O HTTP/1.1 codec: strict head parsing (DESIGN §10), head rewriting, chunked
// framing. No allocation on the hot path beyond the reused fields vector and output string.
#include "proxy/http.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace joingate::http {
namespace {

constexpr std::array<bool, 256> make_tchar() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr auto tchar = make_tchar();

inline bool is_tchar(char c) { return tchar[static_cast<unsigned char>(c)]; }
// field-value characters: VCHAR, obs-text, SP, HTAB
inline bool is_vchar(char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
}
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string_view trim_ows(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

// Iterates a comma-separated list, calling f(token) for each trimmed, non-empty element.
template <class F> void for_each_token(std::string_view v, F&& f) {
    while (!v.empty()) {
        auto comma = v.find(',');
        auto tok = trim_ows(v.substr(0, comma));
        if (!tok.empty()) f(tok);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 18) return false; // < 10^18: no overflow, far beyond any body
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

// Finds the end of the head (the blank line). Returns the size including it, or 0.
std::size_t find_head_end(std::string_view in) {
    auto pos = in.find("\r\n\r\n");
    return pos == std::string_view::npos ? 0 : pos + 4;
}

// Parses the field lines in [begin, end) of `in` (each ending in CRLF) into out.fields.
bool parse_fields(std::string_view lines, const Limits& limits, Head& out, HeadError& err) {
    while (!lines.empty()) {
        auto eol = lines.find("\r\n");
        if (eol == std::string_view::npos) {
            err = HeadError::bad_field_value;
            return false;
        }
        auto line = lines.substr(0, eol);
        lines.remove_prefix(eol + 2);
        if (line.empty()) break; // the blank line
        if (line.front() == ' ' || line.front() == '\t') {
            err = HeadError::obs_fold;
            return false;
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            err = HeadError::bad_field_name;
            return false;
        }
        auto name = line.substr(0, colon);
        for (char c : name) {
            if (!is_tchar(c)) { // includes whitespace before the colon
                err = HeadError::bad_field_name;
                return false;
            }
        }
        auto value = line.substr(colon + 1);
        for (char c : value) {
            if (!is_vchar(c)) {
                err = (c == '\n' || c == '\r') ? HeadError::bare_line_feed
                                               : HeadError::bad_field_value;
                return false;
            }
        }
        if (out.fields.size() >= limits.max_fields) {
            err = HeadError::too_many_fields;
            return false;
        }
        out.fields.push_back({name, trim_ows(value)});
    }
    return true;
}

// Framing and connection semantics shared by requests and responses.
bool analyse_fields(Head& h, bool request, HeadError& err) {
    bool have_cl = false, have_te = false, chunked_last = false;
    int chunked_count = 0;
    bool conn_close = false, conn_keep_alive = false;
    bool host_seen = false;
    for (const auto& f : h.fields) {
        if (iequals(f.name, "content-length")) {
            bool ok = true;
            for_each_token(f.value, [&](std::string_view tok) {
                std::uint64_t v = 0;
                if (!parse_u64(tok, v)) {
                    ok = false;
                    return;
                }
                if (have_cl && v != h.content_length) {
                    err = HeadError::conflicting_content_length;
                    ok = false;
                    return;
                }
                have_cl = true;
                h.content_length = v;
            });
            if (!ok) {
                if (err != HeadError::conflicting_content_length) err = HeadError::bad_content_length;
                return false;
            }
            if (f.value.empty()) {
                err = HeadError::bad_content_length;
                return false;
            }
        } else if (iequals(f.name, "transfer-encoding")) {
            have_te = true;
            for_each_token(f.value, [&](std::string_view tok) {
                chunked_last = iequals(tok, "chunked");
                if (chunked_last) ++chunked_count;
            });
        } else if (iequals(f.name, "connection")) {
            for_each_token(f.value, [&](std::string_view tok) {
                if (iequals(tok, "close")) conn_close = true;
                else if (iequals(tok, "keep-alive")) conn_keep_alive = true;
                else if (iequals(tok, "upgrade")) h.upgrade = true;
            });
        } else if (request && iequals(f.name, "host")) {
            if (host_seen) {
                err = HeadError::duplicate_host;
                return false;
            }
            host_seen = true;
            h.host = f.value;
        } else if (request && iequals(f.name, "expect")) {
            h.expect_continue = iequals(f.value, "100-continue");
        }
    }
    if (have_te && have_cl) {
        err = HeadError::te_and_content_length;
        return false;
    }
    if (chunked_count > 1) {
        err = HeadError::chunked_twice;
        return false;
    }
    if (have_te) {
        if (chunked_last) {
            h.framing = Framing::chunked;
        } else if (request) {
            err = HeadError::te_not_chunked;
            return false;
        } else {
            h.framing = Framing::close; // RFC 9112 §6.3: read until close
        }
    } else if (have_cl) {
        h.framing = h.content_length ? Framing::length : Framing::none;
    } else {
        h.framing = request ? Framing::none : Framing::close;
    }
    h.keep_alive = h.minor_version >= 1 ? !conn_close : (conn_keep_alive && !conn_close);
    if (request && h.minor_version >= 1 && !host_seen) {
        err = HeadError::missing_host;
        return false;
    }
    return true;
}

bool parse_version(std::string_view v, int& minor, HeadError& err) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9') {
        err = HeadError::bad_version;
        return false;
    }
    if (v[5] != '1') {
        err = HeadError::unsupported_version;
        return false;
    }
    minor = v[7] - '0';
    if (minor > 1) minor = 1;
    return true;
}

} // namespace

const char* describe(HeadError e) {
    switch (e) {
    case HeadError::none: return "no error";
    case HeadError::bad_request_line: return "malformed request line";
    case HeadError::bad_method: return "malformed method";
    case HeadError::bad_target: return "malformed request target";
    case HeadError::bad_version: return "malformed HTTP version";
    case HeadError::unsupported_version: return "HTTP version not supported";
    case HeadError::bad_status_line: return "malformed status line";
    case HeadError::bad_field_name: return "malformed header field name";
    case HeadError::bad_field_value: return "invalid character in header field value";
    case HeadError::bare_line_feed: return "bare CR or LF in header";
    case HeadError::obs_fold: return "obsolete line folding in header";
    case HeadError::missing_host: return "HTTP/1.1 request without Host";
    case HeadError::duplicate_host: return "more than one Host header";
    case HeadError::bad_content_length: return "malformed Content-Length";
    case HeadError::conflicting_content_length: return "differing Content-Length values";
    case HeadError::te_and_content_length: return "both Transfer-Encoding and Content-Length";
    case HeadError::te_not_chunked: return "Transfer-Encoding whose last coding is not chunked";
    case HeadError::chunked_twice: return "chunked applied more than once";
    case HeadError::too_many_fields: return "too many header fields";
    case HeadError::uri_too_long: return "request target too long";
    case HeadError::header_too_large: return "header block too large";
    }
    return "unknown";
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view Head::get(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return f.value;
    return {};
}

bool Head::has(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return true;
    return false;
}

void Head::reset() {
    fields.clear(); // keeps capacity: no allocation per request after warm-up
    auto keep = std::move(fields);
    *this = Head{};
    fields = std::move(keep);
}

Parse parse_request(std::string_view in, const Limits& limits, Head& out, HeadError& err) {
    err = HeadError::none;
    std::size_t end = find_head_end(in.substr(0, std::min(in.size(), limits.max_header_bytes + 4)));
    auto first_eol = in.find("\r\n");
    // The request line alone is bounded by the URI limit plus method and version.
    std::size_t line_limit = limits.max_uri_bytes + 64;
    if ((first_eol == std::string_view::npos && in.size() > line_limit) ||
        (first_eol != std::string_view::npos && first_eol > line_limit)) {
        err = HeadError::uri_too_long;
        return Parse::error;
    }
    if (end == 0) {
        // A bare LF before any CRLF terminator can never become valid: fail early.
        auto lf = in.find('\n');
        if (lf != std::string_view::npos && (lf == 0 || in[lf - 1] != '\r')) {
            err = HeadError::bare_line_feed;
            return Parse::error;
        }
        if (in.size() > limits.max_header_bytes) {
            err = HeadError::header_too_large;
            return Parse::error;
        }
        return Parse::incomplete;
    }
    out.reset();
    out.size = end;
    std::string_view head = in.substr(0, end);
    // Every LF must be preceded by CR; a CR must be followed by LF.
    for (std::size_t i = 0; i < head.size(); ++i) {
        char c = head[i];
        if (c == '\n' && (i == 0 || head[i - 1] != '\r')) {
            err = HeadError::bare_line_feed;
            return Parse::error;
        }
        if (c == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) {
            err = HeadError::bare_line_feed;
            return Parse::error;
        }
    }
    auto line = head.substr(0, first_eol);
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) {
        err = HeadError::bad_request_line;
        return Parse::error;
    }
    out.method = line.substr(0, sp1);
    for (char c : out.method)
        if (!is_tchar(c)) {
            err = HeadError::bad_method;
            return Parse::error;
        }
    auto rest = line.substr(sp1 + 1);
    auto sp2 = rest.find(' ');
    if (sp2 == std::string_view::npos || sp2 == 0) {
        err = HeadError::bad_request_line;
        return Parse::error;
    }
    out.target = rest.substr(0, sp2);
    if (out.target.size() > limits.max_uri_bytes) {
        err = HeadError::uri_too_long;
        return Parse::error;
    }
    for (char c : out.target) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {
            err = HeadError::bad_target;
            return Parse::error;
        }
    }
    if (!parse_version(rest.substr(sp2 + 1), out.minor_version, err)) return Parse::error;
    if (!parse_fields(head.substr(first_eol + 2), limits, out, err)) return Parse::error;
    if (!analyse_fields(out, true, err)) return Parse::error;
    return Parse::complete;
}

Parse parse_response(std::string_view in, const Limits& limits, std::string_view request_method,
                     Head& out, HeadError& err) {
    err = HeadError::none;
    std::size_t end = find_head_end(in.substr(0, std::min(in.size(), limits.max_header_bytes + 4)));
    if (end == 0) {
        if (in.size() > limits.max_header_bytes) {
            err = HeadError::header_too_large;
            return Parse::error;
        }
        return Parse::incomplete;
    }
    out.reset();
    out.size = end;
    std::string_view head = in.substr(0, end);
    auto first_eol = head.find("\r\n");
    auto line = head.substr(0, first_eol);
    // HTTP/1.1 200 OK
    if (line.size() < 12 || line[8] != ' ' || line[9] < '1' || line[9] > '9' || line[10] < '0' ||
        line[10] > '9' || line[11] < '0' || line[11] > '9' || (line.size() > 12 && line[12] != ' ')) {
        err = HeadError::bad_status_line;
        return Parse::error;
    }
    if (!parse_version(line.substr(0, 8), out.minor_version, err)) return Parse::error;
    out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    if (!parse_fields(head.substr(first_eol + 2), limits, out, err)) return Parse::error;
    if (!analyse_fields(out, false, err)) return Parse::error;
    if (out.status < 200 || out.status == 204 || out.status == 304 || request_method == "HEAD")
        out.framing = Framing::none;
    return Parse::complete;
}

bool parse_absolute_target(std::string_view target, AbsoluteTarget& out) {
    if (!istarts_with(target, "http://")) return false;
    auto rest = target.substr(7);
    auto slash = rest.find_first_of("/?");
    auto authority = rest.substr(0, slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
    out.authority = authority;
    std::string_view port_text;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return false;
        out.host = authority.substr(1, close - 1);
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return false;
            port_text = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        out.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    }
    if (out.host.empty()) return false;
    out.port = 80;
    if (!port_text.empty()) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc{} || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
            return false;
        out.port = static_cast<std::uint16_t>(v);
    }
    if (slash == std::string_view::npos) {
        out.origin = "/";
    } else if (rest[slash] == '?') {
        out.origin = rest.substr(slash); // "?q" — rare; sent as is after a '/'
    } else {
        out.origin = rest.substr(slash);
    }
    return true;
}

bool is_joingate_field(std::string_view name) { return istarts_with(name, "x-joingate-"); }

bool is_hop_by_hop(std::string_view name) {
    switch (name.size()) {
    case 2: return iequals(name, "te");
    case 7: return iequals(name, "upgrade") || iequals(name, "trailer");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16: return iequals(name, "proxy-connection");
    case 19: return iequals(name, "proxy-authorization");
    default: return false;
    }
}

namespace {

// Fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
bool named_in_connection(const Head& in, std::string_view name) {
    bool found = false;
    for (const auto& f : in.fields) {
        if (!iequals(f.name, "connection")) continue;
        for_each_token(f.value, [&](std::string_view tok) {
            if (iequals(tok, name)) found = true;
        });
    }
    return found;
}

void append_fields(std::string& out, const Head& in, bool drop_host, bool drop_te) {
    bool has_connection = in.has("connection");
    for (const auto& f : in.fields) {
        if (is_hop_by_hop(f.name) || is_joingate_field(f.name)) continue;
        if (drop_host && iequals(f.name, "host")) continue;
        if (drop_te && iequals(f.name, "transfer-encoding")) continue;
        if (has_connection && named_in_connection(in, f.name)) continue;
        out.append(f.name).append(": ").append(f.value).append("\r\n");
    }
}

void append_stamp(std::string& out, const Stamp* stamp) {
    if (!stamp) return;
    if (!stamp->member.empty()) out.append("X-Joingate-Member: ").append(stamp->member).append("\r\n");
    if (!stamp->version.empty())
        out.append("X-Joingate-Version: ").append(stamp->version).append("\r\n");
    if (!stamp->protocol.empty())
        out.append("X-Joingate-Protocol: ").append(stamp->protocol).append("\r\n");
}

} // namespace

void write_request_head(std::string& out, const Head& in, std::string_view target,
                        std::string_view host, const Stamp* stamp) {
    out.clear();
    out.append(in.method).append(" ").append(target).append(" HTTP/1.1\r\n");
    if (!host.empty()) out.append("Host: ").append(host).append("\r\n");
    append_fields(out, in, !host.empty(), false);
    append_stamp(out, stamp);
    out.append("\r\n");
}

void write_response_head(std::string& out, const Head& in, bool close, bool dechunk,
                         const Stamp* stamp) {
    out.clear();
    char code[4] = {static_cast<char>('0' + in.status / 100),
                    static_cast<char>('0' + in.status / 10 % 10),
                    static_cast<char>('0' + in.status % 10), 0};
    out.append("HTTP/1.1 ").append(code, 3).append(" ");
    out.append(in.reason.empty() ? std::string_view(reason_phrase(in.status)) : in.reason);
    out.append("\r\n");
    append_fields(out, in, false, dechunk);
    append_stamp(out, stamp);
    if (close) out.append("Connection: close\r\n");
    out.append("\r\n");
}

ChunkedDecoder::Result ChunkedDecoder::feed(std::string_view in, std::vector<Span>* data) {
    // Bounds: 16 hex digits at most, 4 KiB per size/extension line, 16 KiB of trailers.
    constexpr std::size_t max_line = 4096;
    constexpr std::size_t max_trailers = 16 * 1024;
    Result r;
    std::size_t i = 0;
    auto fail = [&](const char* why) {
        error_ = why;
        state_ = State::done;
        r.status = Status::error;
        r.consumed = i;
        return r;
    };
    while (i < in.size()) {
        char c = in[i];
        switch (state_) {
        case State::size: {
            int v = -1;
            if (c >= '0' && c <= '9') v = c - '0';
            else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
            if (v >= 0) {
                if (++digits_ > 15) return fail("chunk size too large");
                remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
                ++i;
                break;
            }
            if (digits_ == 0) return fail("malformed chunk size");
            if (c == ';' || c == ' ' || c == '\t') {
                state_ = State::ext;
                ++i;
                ++line_;
                break;
            }
            if (c == '\r') {
                state_ = State::size_lf;
                ++i;
                break;
            }
            return fail("malformed chunk size");
        }
        case State::ext:
            // chunk extensions are passed through, bounded, never interpreted
            if (c == '\r') state_ = State::size_lf;
            else if (c == '\n' || c == 0) return fail("malformed chunk extension");
            else if (++line_ > max_line) return fail("chunk extension too long");
            ++i;
            break;
        case State::size_lf:
            if (c != '\n') return fail("chunk size line not ended by CRLF");
            ++i;
            line_ = 0;
            digits_ = 0;
            if (remaining_ == 0) {
                state_ = State::trailer_start;
            } else {
                state_ = State::data;
            }
            break;
        case State::data: {
            std::size_t n = static_cast<std::size_t>(
                std::min<std::uint64_t>(remaining_, in.size() - i));
            if (data && n) data->push_back({i, n});
            i += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = State::data_cr;
            break;
        }
        case State::data_cr:
            if (c != '\r') return fail("chunk data not followed by CRLF");
            state_ = State::data_lf;
            ++i;
            break;
        case State::data_lf:
            if (c != '\n') return fail("chunk data not followed by CRLF");
            state_ = State::size;
            ++i;
            break;
        case State::trailer_start:
            if (c == '\r') {
                state_ = State::end_lf;
                ++i;
                break;
            }
            state_ = State::trailer;
            line_ = 0;
            [[fallthrough]];
        case State::trailer:
            if (c == '\r') state_ = State::trailer_lf;
            else if (c == '\n' || c == 0) return fail("malformed trailer");
            else if (++trailer_bytes_ > max_trailers) return fail("trailers too large");
            ++i;
            break;
        case State::trailer_lf:
            if (c != '\n') return fail("malformed trailer");
            state_ = State::trailer_start;
            ++i;
            break;
        case State::end_lf:
            if (c != '\n') return fail("malformed last chunk");
            ++i;
            state_ = State::done;
            r.status = Status::done;
            r.consumed = i;
            return r;
        case State::done:
            r.status = Status::done;
            r.consumed = i;
            return r;
        }
    }
    r.consumed = i;
    r.status = state_ == State::done ? Status::done : Status::more;
    return r;
}

const char* reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void write_simple_response(std::string& out, int status, std::string_view content_type,
                           std::string_view body, bool close, std::string_view extra_headers) {
    out.clear();
    char num[24];
    auto [p, ec] = std::to_chars(num, num + sizeof num, status);
    out.append("HTTP/1.1 ").append(num, p).append(" ").append(reason_phrase(status)).append("\r\n");
    if (!content_type.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
    auto [q, ec2] = std::to_chars(num, num + sizeof num, body.size());
    out.append("Content-Length: ").append(num, q).append("\r\n");
    out.append(extra_headers);
    if (close) out.append("Connection: close\r\n");
    out.append("\r\n").append(body);
}

} // namespace joingate::http
