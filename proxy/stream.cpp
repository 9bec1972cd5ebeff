// Plain and TLS streams over non-blocking sockets, deadlines, and the buffer pool.
#include "proxy/stream.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <ctime>

namespace joingate::proxy {

namespace {
class Category : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "joingate.stream"; }
    std::string message(int ev) const override {
        switch (static_cast<StreamError>(ev)) {
        case StreamError::tls_failed: return "TLS failure";
        case StreamError::timed_out: return "timed out";
        case StreamError::closed: return "connection closed";
        }
        return "stream error";
    }
};

struct Pool {
    std::size_t block = 32 * 1024;
    std::vector<char*> free;
    ~Pool() {
        for (char* p : free) delete[] p;
    }
};
thread_local Pool g_pool;
std::size_t g_block_size = 32 * 1024;
} // namespace

const boost::system::error_category& stream_category() {
    static Category c;
    return c;
}

std::chrono::steady_clock::time_point coarse_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                                 std::chrono::nanoseconds(ts.tv_nsec));
}

std::chrono::nanoseconds coarse_tick() {
    static const std::chrono::nanoseconds tick = [] {
        timespec ts{};
        if (::clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::nanoseconds(10'000'000);
        return std::chrono::nanoseconds(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
    }();
    return tick;
}

void clear_ssl_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

// ---- Deadline ----

Deadline::Deadline(tcp::socket& sock)
    : state_(std::make_shared<State>(State{&sock})), timer_(sock.get_executor()) {}

Deadline::~Deadline() { state_->sock = nullptr; }

void Deadline::arm(std::chrono::milliseconds d) {
    auto& st = *state_;
    // Coarse time plus one tick: never earlier than `d` from now, at most a tick later.
    st.at = coarse_now() + coarse_tick() + d;
    if (st.waiting && timer_.expiry() <= st.at) return; // it fires first and waits again
    timer_.expires_at(st.at); // aborts an outstanding wait (its handler sees another gen)
    wait();
}

void Deadline::wait() {
    unsigned gen = ++state_->gen;
    state_->waiting = true;
    timer_.async_wait([st = state_, gen, this](error_code ec) {
        // A newer wait replaced this one, or the Deadline is gone (then `this` is too).
        if (st->gen != gen || !st->sock) return;
        st->waiting = false;
        if (ec || st->at == Clock::time_point::max()) return;
        if (Clock::now() < st->at) { // re-armed later since this wait began
            timer_.expires_at(st->at);
            wait();
            return;
        }
        st->expired = true;
        error_code ignored;
        st->sock->cancel(ignored);
    });
}

void Deadline::disarm() { state_->at = Clock::time_point::max(); }

// ---- Buffer ----

void Buffer::set_block_size(std::size_t n) { g_block_size = n; }
std::size_t Buffer::block_size() { return g_block_size; }

void Buffer::acquire() {
    if (data_) return;
    if (g_pool.block != g_block_size) { // block size changed (reload): drop old blocks
        for (char* p : g_pool.free) delete[] p;
        g_pool.free.clear();
        g_pool.block = g_block_size;
    }
    if (!g_pool.free.empty()) {
        data_ = g_pool.free.back();
        g_pool.free.pop_back();
    } else {
        data_ = new char[g_pool.block];
    }
    cap_ = g_pool.block;
    begin_ = end_ = 0;
}

void Buffer::release() {
    if (!data_) return;
    // Enough free blocks for the requests of a cluster's members in flight at once; a
    // burst of clients beyond that gives its blocks back to the allocator.
    if (cap_ == g_pool.block && g_pool.free.size() < 64) g_pool.free.push_back(data_);
    else delete[] data_;
    data_ = nullptr;
    cap_ = begin_ = end_ = 0;
}

void Buffer::compact() {
    if (begin_ == 0) return;
    std::memmove(data_, data_ + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
}

// ---- PlainStream ----

PlainStream::PlainStream(tcp::socket s) : sock_(std::move(s)) {}

void PlainStream::prepare() {
    error_code ec;
    sock_.non_blocking(true, ec);
}

asio::awaitable<std::size_t> PlainStream::read_some(char* p, std::size_t n, error_code& ec) {
    // Asio's own read: it tries recv() first and, when that would block, queues the read on
    // the descriptor's edge-triggered registration. A socket.async_wait() here would cost
    // an epoll_ctl() on every wait (Asio re-arms the descriptor for non-speculative
    // operations), one more system call per request.
    auto [rec, got] = co_await sock_.async_read_some(asio::buffer(p, n), nothrow);
    ec = rec;
    co_return got;
}

asio::awaitable<void> PlainStream::write(std::string_view a, std::string_view b, error_code& ec) {
    ec = {};
    while (!a.empty() || !b.empty()) {
        iovec iov[2];
        int cnt = 0;
        if (!a.empty()) iov[cnt++] = {const_cast<char*>(a.data()), a.size()};
        if (!b.empty()) iov[cnt++] = {const_cast<char*>(b.data()), b.size()};
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<std::size_t>(cnt);
        ssize_t r = ::sendmsg(sock_.native_handle(), &msg, MSG_NOSIGNAL);
        if (r >= 0) {
            auto n = static_cast<std::size_t>(r);
            std::size_t fa = std::min(n, a.size());
            a.remove_prefix(fa);
            b.remove_prefix(n - fa);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ec = error_code(errno, boost::system::system_category());
            co_return;
        }
        auto [wec] = co_await sock_.async_wait(tcp::socket::wait_write, nothrow);
        if (wec) {
            ec = wec;
            co_return;
        }
    }
}

asio::awaitable<void> PlainStream::wait_readable(error_code& ec) {
    auto [wec] = co_await sock_.async_wait(tcp::socket::wait_read, nothrow);
    ec = wec;
}

bool PlainStream::idle_alive() {
    char c;
    ssize_t r = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool PlainStream::peer_gone() {
    char c;
    ssize_t r = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void PlainStream::close() {
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
}

// ---- TlsStream ----

TlsStream::TlsStream(tcp::socket s, SSL_CTX* ctx) : sock_(std::move(s)), ssl_(SSL_new(ctx)) {}

void TlsStream::prepare() {
    error_code ec;
    sock_.non_blocking(true, ec);
    if (ssl_) SSL_set_fd(ssl_, static_cast<int>(sock_.native_handle()));
}

TlsStream::~TlsStream() {
    if (ssl_) SSL_free(ssl_);
}

template <class F> asio::awaitable<int> TlsStream::drive(F&& f, error_code& ec) {
    for (;;) {
        clear_ssl_errors();
        int r = f();
        if (r > 0) {
            ec = {};
            co_return r;
        }
        int err = SSL_get_error(ssl_, r);
        tcp::socket::wait_type wait;
        if (err == SSL_ERROR_WANT_READ) {
            wait = tcp::socket::wait_read;
        } else if (err == SSL_ERROR_WANT_WRITE) {
            wait = tcp::socket::wait_write;
        } else if (err == SSL_ERROR_ZERO_RETURN) {
            ec = asio::error::eof;
            co_return 0;
        } else if (err == SSL_ERROR_SYSCALL && errno == 0) {
            ec = asio::error::eof; // peer closed without close_notify
            co_return 0;
        } else if (err == SSL_ERROR_SYSCALL) {
            ec = error_code(errno, boost::system::system_category());
            co_return 0;
        } else {
            ec = make_error(StreamError::tls_failed);
            co_return 0;
        }
        auto [wec] = co_await sock_.async_wait(wait, nothrow);
        if (wec) {
            ec = wec;
            co_return 0;
        }
    }
}

asio::awaitable<void> TlsStream::handshake(bool server, error_code& ec) {
    if (!ssl_) {
        ec = make_error(StreamError::tls_failed);
        co_return;
    }
    co_await drive([&] { return server ? SSL_accept(ssl_) : SSL_connect(ssl_); }, ec);
}

asio::awaitable<std::size_t> TlsStream::read_some(char* p, std::size_t n, error_code& ec) {
    int cap = static_cast<int>(std::min<std::size_t>(n, 1 << 30));
    int r = co_await drive([&] { return SSL_read(ssl_, p, cap); }, ec);
    co_return ec ? 0 : static_cast<std::size_t>(r);
}

asio::awaitable<void> TlsStream::write(std::string_view a, std::string_view b, error_code& ec) {
    ec = {};
    // One record for a head and a small body: fewer syscalls and smaller packets.
    if (!a.empty() && !b.empty() && a.size() + b.size() <= 16384) {
        scratch_.assign(a).append(b);
        a = scratch_;
        b = {};
    }
    for (std::string_view part : {a, b}) {
        while (!part.empty()) {
            int len = static_cast<int>(std::min<std::size_t>(part.size(), 1 << 30));
            int r = co_await drive([&] { return SSL_write(ssl_, part.data(), len); }, ec);
            if (ec) co_return;
            part.remove_prefix(static_cast<std::size_t>(r));
        }
    }
    if (scratch_.capacity() > 16384) std::string().swap(scratch_);
}

asio::awaitable<void> TlsStream::wait_readable(error_code& ec) {
    if (has_buffered()) {
        ec = {};
        co_return;
    }
    auto [wec] = co_await sock_.async_wait(tcp::socket::wait_read, nothrow);
    ec = wec;
}

bool TlsStream::idle_alive() {
    if (SSL_has_pending(ssl_)) return false; // unexpected data on an idle connection
    char c;
    ssize_t r = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void TlsStream::close() {
    if (ssl_ && SSL_is_init_finished(ssl_)) {
        clear_ssl_errors();
        SSL_shutdown(ssl_); // best effort close_notify, never waits
    }
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
}

} // namespace joingate::proxy
