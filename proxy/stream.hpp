// Byte streams for the relay: plain TCP and TLS driven directly on the socket's fd
// (SSL_read/SSL_write on a non-blocking socket, waiting for readiness with Asio). No
// intermediate TLS buffers: an idle connection holds only its SSL object, which releases
// its record buffers (SSL_MODE_RELEASE_BUFFERS). Deadlines cancel the socket when a
// named timeout fires; buffers come from a per-thread pool and are held only while a
// request is in flight.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace joingate::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// CLOCK_MONOTONIC_COARSE as a steady_clock time point: the same timeline as
// steady_clock::now(), read without the TSC (a few ns instead of tens in a VM), at the
// resolution of the kernel tick (coarse_tick(), typically 1-4 ms). For timeouts and ages
// of seconds, armed several times per request.
std::chrono::steady_clock::time_point coarse_now();
std::chrono::nanoseconds coarse_tick();

// Clears this thread's OpenSSL error queue when it holds anything (SSL_get_error needs it
// empty before each call). Cheaper than ERR_clear_error(), which resets every slot.
void clear_ssl_errors();

// Errors the streams report besides the system ones.
enum class StreamError { tls_failed = 1, timed_out, closed };
const boost::system::error_category& stream_category();
inline error_code make_error(StreamError e) { return {static_cast<int>(e), stream_category()}; }

// Fires once after the armed duration and cancels the socket's pending operations.
// Re-arming is the common case (every phase of every request arms its own timeout), so it
// is lazy: arm() only records when the deadline is; the timer keeps one wait outstanding
// and, when it fires early, waits again for the recorded time. A later deadline costs no
// timer operation, an earlier one moves the timer.
class Deadline {
public:
    explicit Deadline(tcp::socket& sock);
    ~Deadline();
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
    void arm(std::chrono::milliseconds d);
    void disarm();
    bool expired() const { return state_->expired; }

private:
    using Clock = std::chrono::steady_clock;
    struct State {
        tcp::socket* sock;
        Clock::time_point at = Clock::time_point::max(); // max = disarmed
        unsigned gen = 0;     // of the outstanding wait
        bool waiting = false; // a wait is outstanding
        bool expired = false;
    };
    void wait();
    std::shared_ptr<State> state_;
    asio::steady_timer timer_;
};

// A fixed-size byte buffer with a [begin, end) window, taken from a per-thread pool.
class Buffer {
public:
    static void set_block_size(std::size_t n);
    static std::size_t block_size();
    Buffer() = default;
    ~Buffer() { release(); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void acquire();
    void release(); // back to the pool; only when empty (no pipelined bytes)
    bool held() const { return data_ != nullptr; }
    char* data() { return data_; }
    std::size_t capacity() const { return cap_; }

    std::string_view view() const { return {data_ + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Space to read into; compacts when the tail is short.
    char* tail() {
        if (begin_ && cap_ - end_ < cap_ / 4) compact();
        return data_ + end_;
    }
    std::size_t tail_room() const { return cap_ - end_; }
    void commit(std::size_t n) { end_ += n; }
    void compact();

private:
    char* data_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0, end_ = 0;
};

class PlainStream {
public:
    explicit PlainStream(tcp::socket s);
    tcp::socket& socket() { return sock_; }
    void prepare(); // once connected/accepted: non-blocking mode
    asio::awaitable<std::size_t> read_some(char* p, std::size_t n, error_code& ec);
    // Writes a then b completely (one syscall when possible).
    asio::awaitable<void> write(std::string_view a, std::string_view b, error_code& ec);
    asio::awaitable<void> wait_readable(error_code& ec);
    bool has_buffered() const { return false; }
    // Non-blocking liveness check for a pooled idle connection.
    bool idle_alive();
    bool peer_gone(); // the client closed (EOF or error), checked without reading
    void close();

private:
    tcp::socket sock_;
};

class TlsStream {
public:
    TlsStream(tcp::socket s, SSL_CTX* ctx);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;
    tcp::socket& socket() { return sock_; }
    void prepare(); // once connected/accepted: non-blocking mode, SSL bound to the fd
    SSL* ssl() { return ssl_; }
    asio::awaitable<void> handshake(bool server, error_code& ec);
    asio::awaitable<std::size_t> read_some(char* p, std::size_t n, error_code& ec);
    asio::awaitable<void> write(std::string_view a, std::string_view b, error_code& ec);
    asio::awaitable<void> wait_readable(error_code& ec);
    bool has_buffered() const { return SSL_has_pending(ssl_) == 1; }
    bool idle_alive();
    void close(); // sends close_notify when possible, then closes the socket

private:
    // Runs an SSL call until it completes, waiting for the socket as OpenSSL asks.
    template <class F> asio::awaitable<int> drive(F&& f, error_code& ec);
    tcp::socket sock_;
    SSL* ssl_ = nullptr;
    std::string scratch_; // coalesces a head and a small body into one TLS record
};

} // namespace joingate::proxy
