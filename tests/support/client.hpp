// Raw clients for the integration tests: a TCP and a TLS connection that send exact bytes
// and read HTTP/1.1 responses (Content-Length, chunked, until close) with a deadline on
// every read. They never fix up what they send, so malformed requests reach joingate as
// written.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace joingate::test {

using Ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// What a read ended with.
enum class Io { ok, closed, timeout, error };
const char* to_string(Io);

class Conn {
  public:
    virtual ~Conn();
    // Writes all of data; false when the peer is gone or the deadline passed.
    virtual bool write(std::string_view data, Ms timeout = Ms(10000)) = 0;
    // Reads what is available (at least one byte) into buf_.
    Io fill(Clock::time_point deadline);
    // Half-closes (TCP) or closes the connection.
    virtual void close() = 0;
    // Waits until the peer closes the connection (EOF, reset or TLS alert), discarding
    // anything it sends; false on timeout.
    bool wait_closed(Ms timeout);
    // Bytes read but not consumed yet.
    std::string buf_;
    std::string last_error; // for messages

  protected:
    virtual Io read_some(char* out, std::size_t n, std::size_t& got,
                         Clock::time_point deadline) = 0;
};

class TcpConn : public Conn {
  public:
    ~TcpConn() override;
    // 127.0.0.1:port; nullptr and *err set when the connection is refused.
    static std::unique_ptr<TcpConn> connect(std::uint16_t port, std::string* err = nullptr,
                                            Ms timeout = Ms(5000));
    bool write(std::string_view data, Ms timeout = Ms(10000)) override;
    void close() override;
    void shutdown_write();
    int fd() const { return fd_; }

  protected:
    Io read_some(char* out, std::size_t n, std::size_t& got, Clock::time_point deadline) override;
    int fd_ = -1;
};

struct TlsOptions {
    std::string ca;          // verify the server against this CA ("" = no verification)
    std::string cert, key;   // client certificate ("" = none)
    std::string verify_host; // check the server certificate names this host ("" = no check)
    std::string verify_ip;   // check the server certificate names this IP ("" = no check)
    std::string sni;         // server name indication ("" = none)
    int min_version = 0;     // TLS1_2_VERSION etc., 0 = library default
    int max_version = 0;
    bool legacy = false; // allow old protocols and ciphers on the client (SECLEVEL=0)
};

class TlsConn : public Conn {
  public:
    ~TlsConn() override;
    // Connects and completes the handshake. nullptr and *err set on failure (refused,
    // handshake failed or timed out).
    static std::unique_ptr<TlsConn> connect(std::uint16_t port, const TlsOptions& o,
                                            std::string* err = nullptr, Ms timeout = Ms(5000));
    bool write(std::string_view data, Ms timeout = Ms(10000)) override;
    void close() override;
    int version() const; // negotiated, e.g. TLS1_3_VERSION
    std::string peer_subject() const;

  protected:
    Io read_some(char* out, std::size_t n, std::size_t& got, Clock::time_point deadline) override;

  private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

struct Response {
    int status = 0;
    std::string version; // "HTTP/1.1"
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool chunked = false;
    bool until_close = false; // body delimited by the end of the connection
    std::optional<std::string> header(std::string_view name) const; // first, case-insensitive
    std::size_t header_count(std::string_view name) const;
    bool closes() const; // "Connection: close" was sent
};

// Reads one response head (1xx interim responses are skipped).
Io read_head(Conn& c, Response& r, Ms timeout = Ms(10000));
// Reads the whole body announced by the head.
Io read_body(Conn& c, Response& r, Ms timeout = Ms(20000), bool head_request = false);
// Head and body.
Io read_response(Conn& c, Response& r, Ms timeout = Ms(20000), bool head_request = false);
// Reads the next chunk of a chunked body into data (empty + ok for the last chunk).
Io read_chunk(Conn& c, std::string& data, Ms timeout);

// One request on a fresh connection, e.g. to the admin listener. Adds nothing: send the
// exact request bytes.
struct Exchange {
    Io io = Io::error;
    Response response;
    std::string error;
};
Exchange plain_exchange(std::uint16_t port, std::string_view request, Ms timeout = Ms(10000));
// "GET <path> HTTP/1.1", Host 127.0.0.1:port, Connection: close.
Exchange http_get(std::uint16_t port, std::string_view path, Ms timeout = Ms(10000));
std::string get_request(std::string_view target, std::string_view host,
                        std::string_view extra_headers = {}, bool close = false);

// Prometheus text: sum of the samples of metric `name` whose label set contains every
// `labels` entry (written as they appear: `listener="inbound"`); nullopt when none exists.
std::optional<double> metric_value(const std::string& text, std::string_view name,
                                   const std::vector<std::string>& labels = {});

// A JSON string field of a flat JSON text: "key":"value" (only the quote and backslash
// escapes are decoded). nullopt when absent or not a string.
std::optional<std::string> json_string(std::string_view json, std::string_view key);
// A JSON number field: "key":123.
std::optional<double> json_number(std::string_view json, std::string_view key);
// True when text is a JSON object: starts with '{' and ends with '}' (after spaces).
bool looks_like_json_object(std::string_view text);

// Polls pred every 20 ms until it is true or timeout passes; returns its last value.
template <class F> bool eventually(F&& pred, Ms timeout = Ms(5000)) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (Clock::now() >= deadline)
            return false;
        struct timespec ts {
            0, 20 * 1000 * 1000
        };
        ::nanosleep(&ts, nullptr);
    }
}

} // namespace joingate::test
