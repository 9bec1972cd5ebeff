// Sans-I/O HTTP/1.1 codec for the relay: parses request and response heads in place
// (views into the connection buffer, no copies), applies the smuggling rules of
// DESIGN §10, rewrites heads for the next hop, and tracks chunked framing so bodies can
// be passed through verbatim without ever being held whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace joingate::http {

enum class Framing : std::uint8_t {
    none,    // no body
    length,  // Content-Length bytes
    chunked, // Transfer-Encoding ending in chunked
    close,   // response body runs until the connection closes
};

enum class HeadError : std::uint8_t {
    none,
    bad_request_line,
    bad_method,
    bad_target,
    bad_version,
    unsupported_version,
    bad_status_line,
    bad_field_name,
    bad_field_value,
    bare_line_feed,
    obs_fold,
    missing_host,
    duplicate_host,
    bad_content_length,
    conflicting_content_length,
    te_and_content_length,
    te_not_chunked,
    chunked_twice,
    too_many_fields,
    uri_too_long,
    header_too_large,
};
const char* describe(HeadError e);

struct Field {
    std::string_view name;
    std::string_view value;
};

struct Limits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_uri_bytes = 8 * 1024;
    std::size_t max_fields = 256;
};

struct Head {
    // request
    std::string_view method;
    std::string_view target;
    // response
    int status = 0;
    std::string_view reason;

    int minor_version = 1; // HTTP/1.x
    std::vector<Field> fields;
    Framing framing = Framing::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    bool expect_continue = false;
    bool upgrade = false;
    std::string_view host;
    std::size_t size = 0; // bytes of the head including the blank line

    // First value of a field (case-insensitive name), or empty.
    std::string_view get(std::string_view name) const;
    bool has(std::string_view name) const;
    void reset();
};

enum class Parse : std::uint8_t { incomplete, complete, error };

// Parses a request head from the start of `in`. `incomplete` means more bytes are needed
// (and no limit is exceeded yet). On `error`, `err` says why.
Parse parse_request(std::string_view in, const Limits& limits, Head& out, HeadError& err);

// Parses a response head; the framing depends on the request's method (HEAD) and status.
Parse parse_response(std::string_view in, const Limits& limits, std::string_view request_method,
                     Head& out, HeadError& err);

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

// Absolute-form request target (forward proxy): http://authority/path → parts.
struct AbsoluteTarget {
    std::string_view authority; // host[:port] as written
    std::string_view host;      // without brackets
    std::uint16_t port = 80;
    std::string_view origin;    // "/path?query" ("/" when empty)
};
bool parse_absolute_target(std::string_view target, AbsoluteTarget& out);

// The X-Joingate-* identity stamped on messages between sidecars (DESIGN §8).
struct Stamp {
    std::string_view member;
    std::string_view version;  // empty = unknown, header omitted
    std::string_view protocol; // "min-max"
};

// Writes the head to send upstream: origin-form target, hop-by-hop and X-Joingate-*
// fields dropped, Host replaced when `host` is non-empty, stamp added when given.
void write_request_head(std::string& out, const Head& in, std::string_view target,
                        std::string_view host, const Stamp* stamp);

// Writes the head to send back to the client. `close` adds Connection: close;
// `dechunk` drops Transfer-Encoding (the body is decoded for an HTTP/1.0 client).
void write_response_head(std::string& out, const Head& in, bool close, bool dechunk,
                         const Stamp* stamp);

// Is this field stripped before forwarding (hop-by-hop or X-Joingate-*)?
bool is_hop_by_hop(std::string_view name);
bool is_joingate_field(std::string_view name);

// Incremental chunked-body tracker. Feeding bytes tells how many belong to the body (so
// they can be forwarded verbatim) and, when asked, where the chunk data lies.
class ChunkedDecoder {
public:
    enum class Status : std::uint8_t { more, done, error };
    struct Span {
        std::size_t offset;
        std::size_t size;
    };
    struct Result {
        Status status = Status::more;
        std::size_t consumed = 0; // bytes of `in` that belong to this body
    };
    // `data` (optional) receives the chunk-data spans inside `in` (offsets into `in`).
    Result feed(std::string_view in, std::vector<Span>* data = nullptr);
    void reset() { *this = ChunkedDecoder{}; }
    const char* error() const { return error_; }

private:
    enum class State : std::uint8_t {
        size, ext, size_lf, data, data_cr, data_lf, trailer_start, trailer, trailer_lf, end_lf, done
    };
    State state_ = State::size;
    std::uint64_t remaining_ = 0;
    std::size_t digits_ = 0;
    std::size_t line_ = 0; // bytes on the current size/trailer line
    std::size_t trailer_bytes_ = 0;
    const char* error_ = nullptr;
};

// A complete local response (errors, admin answers): status line, headers, body.
void write_simple_response(std::string& out, int status, std::string_view content_type,
                           std::string_view body, bool close,
                           std::string_view extra_headers = {});
const char* reason_phrase(int status);

} // namespace joingate::http
