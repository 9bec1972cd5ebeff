// Raw TCP/TLS clients and an HTTP/1.1 response reader for the integration tests. Sockets
// are non-blocking and every wait is a poll() with the caller's deadline, so a joingate
// that hangs fails a test instead of stalling it.
#include "support/client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace joingate::test {
namespace {

// Writes to a socket the peer has closed must be errors, not a signal that kills the test.
const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error.
int wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        return r == 0 ? 0 : 1;
    }
}

std::string ssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty())
            out += "; ";
        out += buf;
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

int connect_socket(std::uint16_t port, std::string* err, Ms timeout) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (err)
            *err = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (r < 0 && errno == EINPROGRESS) {
        if (wait_fd(fd, POLLOUT, Clock::now() + timeout) != 1) {
            if (err)
                *err = "connect to 127.0.0.1:" + std::to_string(port) + " timed out";
            ::close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            errno = soerr;
            r = -1;
        } else {
            r = 0;
        }
    }
    if (r < 0) {
        if (err)
            *err = "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

const char* to_string(Io io) {
    switch (io) {
    case Io::ok:
        return "ok";
    case Io::closed:
        return "closed by peer";
    case Io::timeout:
        return "timed out";
    case Io::error:
        return "error";
    }
    return "?";
}

Conn::~Conn() = default;

Io Conn::fill(Clock::time_point deadline) {
    char tmp[64 * 1024];
    std::size_t got = 0;
    Io io = read_some(tmp, sizeof tmp, got, deadline);
    if (io == Io::ok)
        buf_.append(tmp, got);
    return io;
}

bool Conn::wait_closed(Ms timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        Io io = fill(deadline);
        buf_.clear();
        if (io == Io::closed || io == Io::error)
            return true;
        if (io == Io::timeout)
            return false;
    }
}

// ---- TCP ----

TcpConn::~TcpConn() {
    if (fd_ >= 0)
        ::close(fd_);
}

std::unique_ptr<TcpConn> TcpConn::connect(std::uint16_t port, std::string* err, Ms timeout) {
    int fd = connect_socket(port, err, timeout);
    if (fd < 0)
        return nullptr;
    auto c = std::unique_ptr<TcpConn>(new TcpConn);
    c->fd_ = fd;
    return c;
}

bool TcpConn::write(std::string_view data, Ms timeout) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd_, POLLOUT, deadline) != 1) {
                last_error = "write timed out";
                return false;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        last_error = std::string("write: ") + std::strerror(errno);
        return false;
    }
    return true;
}

Io TcpConn::read_some(char* out, std::size_t n, std::size_t& got, Clock::time_point deadline) {
    for (;;) {
        ssize_t r = ::recv(fd_, out, n, 0);
        if (r > 0) {
            got = static_cast<std::size_t>(r);
            return Io::ok;
        }
        if (r == 0)
            return Io::closed;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET || errno == EPIPE)
            return Io::closed;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            last_error = std::string("read: ") + std::strerror(errno);
            return Io::error;
        }
        int w = wait_fd(fd_, POLLIN, deadline);
        if (w == 0)
            return Io::timeout;
        if (w < 0)
            return Io::error;
    }
}

void TcpConn::close() {
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

void TcpConn::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

// ---- TLS ----

TlsConn::~TlsConn() {
    if (ssl_)
        SSL_free(ssl_);
    if (ctx_)
        SSL_CTX_free(ctx_);
    if (fd_ >= 0)
        ::close(fd_);
}

std::unique_ptr<TlsConn> TlsConn::connect(std::uint16_t port, const TlsOptions& o, std::string* err,
                                          Ms timeout) {
    auto deadline = Clock::now() + timeout;
    auto fail = [&](std::string why) -> std::unique_ptr<TlsConn> {
        if (err)
            *err = std::move(why);
        return nullptr;
    };
    auto c = std::unique_ptr<TlsConn>(new TlsConn);
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    if (!c->ctx_)
        return fail("SSL_CTX_new: " + ssl_errors());
    SSL_CTX_set_options(c->ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o.legacy) {
        SSL_CTX_set_security_level(c->ctx_, 0);
        SSL_CTX_set_cipher_list(c->ctx_, "ALL:@SECLEVEL=0");
    }
    if (o.min_version)
        SSL_CTX_set_min_proto_version(c->ctx_, o.min_version);
    if (o.max_version)
        SSL_CTX_set_max_proto_version(c->ctx_, o.max_version);
    if (!o.ca.empty()) {
        if (SSL_CTX_load_verify_locations(c->ctx_, o.ca.c_str(), nullptr) != 1)
            return fail("load CA " + o.ca + ": " + ssl_errors());
        SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
    }
    if (!o.cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(c->ctx_, o.cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(c->ctx_, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
            return fail("load client certificate " + o.cert + ": " + ssl_errors());
    }
    c->fd_ = connect_socket(port, err, timeout);
    if (c->fd_ < 0)
        return nullptr;
    c->ssl_ = SSL_new(c->ctx_);
    SSL_set_fd(c->ssl_, c->fd_);
    if (!o.sni.empty())
        SSL_set_tlsext_host_name(c->ssl_, o.sni.c_str());
    X509_VERIFY_PARAM* param = SSL_get0_param(c->ssl_);
    if (!o.verify_host.empty())
        X509_VERIFY_PARAM_set1_host(param, o.verify_host.c_str(), 0);
    if (!o.verify_ip.empty())
        X509_VERIFY_PARAM_set1_ip_asc(param, o.verify_ip.c_str());
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl_);
        if (r == 1)
            break;
        int e = SSL_get_error(c->ssl_, r);
        int w = -1;
        if (e == SSL_ERROR_WANT_READ)
            w = wait_fd(c->fd_, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            w = wait_fd(c->fd_, POLLOUT, deadline);
        else {
            long vr = SSL_get_verify_result(c->ssl_);
            std::string why = "TLS handshake failed: " + ssl_errors();
            if (vr != X509_V_OK)
                why += " (verify: " + std::string(X509_verify_cert_error_string(vr)) + ")";
            if (e == SSL_ERROR_SYSCALL)
                why += std::string(" (") + std::strerror(errno) + ")";
            return fail(why);
        }
        if (w == 0)
            return fail("TLS handshake timed out");
        if (w < 0)
            return fail("poll failed");
    }
    return c;
}

bool TlsConn::write(std::string_view data, Ms timeout) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        ERR_clear_error();
        std::size_t n = 0;
        if (SSL_write_ex(ssl_, data.data(), data.size(), &n) == 1) {
            data.remove_prefix(n);
            continue;
        }
        int e = SSL_get_error(ssl_, 0);
        int w = -1;
        if (e == SSL_ERROR_WANT_WRITE)
            w = wait_fd(fd_, POLLOUT, deadline);
        else if (e == SSL_ERROR_WANT_READ)
            w = wait_fd(fd_, POLLIN, deadline);
        else {
            last_error = "TLS write failed: " + ssl_errors();
            return false;
        }
        if (w != 1) {
            last_error = w == 0 ? "TLS write timed out" : "poll failed";
            return false;
        }
    }
    return true;
}

Io TlsConn::read_some(char* out, std::size_t n, std::size_t& got, Clock::time_point deadline) {
    for (;;) {
        ERR_clear_error();
        if (SSL_read_ex(ssl_, out, n, &got) == 1)
            return Io::ok;
        int e = SSL_get_error(ssl_, 0);
        int w = -1;
        if (e == SSL_ERROR_WANT_READ)
            w = wait_fd(fd_, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            w = wait_fd(fd_, POLLOUT, deadline);
        else if (e == SSL_ERROR_ZERO_RETURN)
            return Io::closed;
        else if (e == SSL_ERROR_SYSCALL) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
                return Io::closed;
            last_error = std::string("TLS read: ") + std::strerror(errno);
            return Io::error;
        } else {
            // A TLS alert from the peer (e.g. certificate required) ends the connection.
            last_error = "TLS read: " + ssl_errors();
            return Io::error;
        }
        if (w == 0)
            return Io::timeout;
        if (w < 0)
            return Io::error;
    }
}

void TlsConn::close() {
    if (ssl_) {
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

int TlsConn::version() const {
    return ssl_ ? SSL_version(ssl_) : 0;
}

std::string TlsConn::peer_subject() const {
    if (!ssl_)
        return {};
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (!cert)
        return {};
    char buf[256] = {0};
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    return buf;
}

// ---- HTTP responses ----

std::optional<std::string> Response::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name))
            return v;
    return std::nullopt;
}

std::size_t Response::header_count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); }));
}

bool Response::closes() const {
    auto c = header("Connection");
    return c && iequals(trim(*c), "close");
}

namespace {

// Reads up to and including the next CRLF; line excludes it.
Io read_line(Conn& c, std::string& line, Clock::time_point deadline) {
    for (;;) {
        auto pos = c.buf_.find("\r\n");
        if (pos != std::string::npos) {
            line = c.buf_.substr(0, pos);
            c.buf_.erase(0, pos + 2);
            return Io::ok;
        }
        if (c.buf_.size() > 1024 * 1024)
            return Io::error;
        Io io = c.fill(deadline);
        if (io != Io::ok)
            return io;
    }
}

Io read_exact(Conn& c, std::size_t n, std::string& out, Clock::time_point deadline) {
    while (c.buf_.size() < n) {
        Io io = c.fill(deadline);
        if (io != Io::ok)
            return io;
    }
    out.append(c.buf_, 0, n);
    c.buf_.erase(0, n);
    return Io::ok;
}

Io read_chunk_until(Conn& c, std::string& data, Clock::time_point deadline) {
    data.clear();
    std::string line;
    Io io = read_line(c, line, deadline);
    if (io != Io::ok)
        return io;
    char* end = nullptr;
    unsigned long long size = std::strtoull(line.c_str(), &end, 16);
    if (end == line.c_str()) {
        c.last_error = "bad chunk size line: " + line;
        return Io::error;
    }
    if (size == 0) {
        for (;;) { // trailers up to the empty line
            io = read_line(c, line, deadline);
            if (io != Io::ok)
                return io;
            if (line.empty())
                return Io::ok;
        }
    }
    io = read_exact(c, static_cast<std::size_t>(size), data, deadline);
    if (io != Io::ok)
        return io;
    io = read_line(c, line, deadline);
    if (io != Io::ok)
        return io;
    if (!line.empty()) {
        c.last_error = "chunk not followed by CRLF";
        return Io::error;
    }
    return Io::ok;
}

} // namespace

Io read_head(Conn& c, Response& r, Ms timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        r = Response{};
        std::size_t end;
        while ((end = c.buf_.find("\r\n\r\n")) == std::string::npos) {
            if (c.buf_.size() > 1024 * 1024) {
                c.last_error = "response head too large";
                return Io::error;
            }
            Io io = c.fill(deadline);
            if (io != Io::ok)
                return io;
        }
        std::string head = c.buf_.substr(0, end + 2);
        c.buf_.erase(0, end + 4);
        auto eol = head.find("\r\n");
        std::string_view status_line(head.data(), eol);
        auto sp1 = status_line.find(' ');
        if (sp1 == std::string_view::npos) {
            c.last_error = "bad status line: " + std::string(status_line);
            return Io::error;
        }
        r.version = std::string(status_line.substr(0, sp1));
        r.status = std::atoi(std::string(status_line.substr(sp1 + 1, 3)).c_str());
        if (status_line.size() > sp1 + 5)
            r.reason = std::string(status_line.substr(sp1 + 5));
        std::size_t pos = eol + 2;
        while (pos < head.size()) {
            auto next = head.find("\r\n", pos);
            std::string_view line(head.data() + pos, next - pos);
            pos = next + 2;
            auto colon = line.find(':');
            if (colon == std::string_view::npos)
                continue;
            r.headers.emplace_back(std::string(line.substr(0, colon)),
                                   std::string(trim(line.substr(colon + 1))));
        }
        if (r.status >= 100 && r.status < 200 && r.status != 101)
            continue; // interim
        auto te = r.header("Transfer-Encoding");
        r.chunked = te && te->find("chunked") != std::string::npos;
        r.until_close = !r.chunked && !r.header("Content-Length");
        return Io::ok;
    }
}

Io read_body(Conn& c, Response& r, Ms timeout, bool head_request) {
    auto deadline = Clock::now() + timeout;
    r.body.clear();
    if (head_request || r.status == 204 || r.status == 304)
        return Io::ok;
    if (r.chunked) {
        std::string data;
        for (;;) {
            Io io = read_chunk_until(c, data, deadline);
            if (io != Io::ok)
                return io;
            if (data.empty())
                return Io::ok;
            r.body += data;
        }
    }
    if (auto cl = r.header("Content-Length")) {
        auto n = std::strtoull(cl->c_str(), nullptr, 10);
        return read_exact(c, static_cast<std::size_t>(n), r.body, deadline);
    }
    for (;;) { // until close
        Io io = c.fill(deadline);
        r.body += c.buf_;
        c.buf_.clear();
        if (io == Io::closed)
            return Io::ok;
        if (io != Io::ok)
            return io;
    }
}

Io read_response(Conn& c, Response& r, Ms timeout, bool head_request) {
    auto deadline = Clock::now() + timeout;
    Io io = read_head(c, r, timeout);
    if (io != Io::ok)
        return io;
    return read_body(c, r, std::chrono::duration_cast<Ms>(deadline - Clock::now()), head_request);
}

Io read_chunk(Conn& c, std::string& data, Ms timeout) {
    return read_chunk_until(c, data, Clock::now() + timeout);
}

std::string get_request(std::string_view target, std::string_view host,
                        std::string_view extra_headers, bool close) {
    std::string r =
        "GET " + std::string(target) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n";
    r += extra_headers;
    if (close)
        r += "Connection: close\r\n";
    r += "\r\n";
    return r;
}

Exchange plain_exchange(std::uint16_t port, std::string_view request, Ms timeout) {
    Exchange x;
    auto c = TcpConn::connect(port, &x.error);
    if (!c)
        return x;
    if (!c->write(request, timeout)) {
        x.error = c->last_error;
        return x;
    }
    x.io = read_response(*c, x.response, timeout);
    if (x.io != Io::ok)
        x.error = std::string(to_string(x.io)) + " " + c->last_error;
    return x;
}

Exchange http_get(std::uint16_t port, std::string_view path, Ms timeout) {
    return plain_exchange(port, get_request(path, "127.0.0.1:" + std::to_string(port), {}, true),
                          timeout);
}

std::optional<double> metric_value(const std::string& text, std::string_view name,
                                   const std::vector<std::string>& labels) {
    std::optional<double> sum;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        if (eol == std::string::npos)
            eol = text.size();
        std::string_view line(text.data() + pos, eol - pos);
        pos = eol + 1;
        if (line.empty() || line.front() == '#')
            continue;
        if (!line.starts_with(name) || line.size() == name.size())
            continue;
        char after = line[name.size()];
        if (after != '{' && after != ' ')
            continue;
        std::string_view label_part;
        std::string_view rest = line.substr(name.size());
        if (after == '{') {
            auto close = rest.find('}');
            if (close == std::string_view::npos)
                continue;
            label_part = rest.substr(0, close + 1);
            rest = rest.substr(close + 1);
        }
        bool all = std::all_of(labels.begin(), labels.end(), [&](const std::string& l) {
            return label_part.find(l) != std::string_view::npos;
        });
        if (!all)
            continue;
        double v = std::strtod(std::string(trim(rest)).c_str(), nullptr);
        sum = sum.value_or(0) + v;
    }
    return sum;
}

std::optional<std::string> json_string(std::string_view json, std::string_view key) {
    std::string needle = "\"" + std::string(key) + "\"";
    auto p = json.find(needle);
    if (p == std::string_view::npos)
        return std::nullopt;
    p += needle.size();
    while (p < json.size() && (json[p] == ' ' || json[p] == ':'))
        ++p;
    if (p >= json.size() || json[p] != '"')
        return std::nullopt;
    std::string out;
    for (++p; p < json.size(); ++p) {
        char ch = json[p];
        if (ch == '"')
            return out;
        if (ch == '\\' && p + 1 < json.size()) {
            char e = json[++p];
            if (e == '"' || e == '\\' || e == '/')
                out += e;
            else
                out += '\\', out += e;
            continue;
        }
        out += ch;
    }
    return std::nullopt;
}

std::optional<double> json_number(std::string_view json, std::string_view key) {
    std::string needle = "\"" + std::string(key) + "\"";
    auto p = json.find(needle);
    if (p == std::string_view::npos)
        return std::nullopt;
    p += needle.size();
    while (p < json.size() && (json[p] == ' ' || json[p] == ':'))
        ++p;
    if (p >= json.size() || !(json[p] == '-' || (json[p] >= '0' && json[p] <= '9')))
        return std::nullopt;
    return std::strtod(std::string(json.substr(p, 32)).c_str(), nullptr);
}

bool looks_like_json_object(std::string_view text) {
    auto t = trim(text);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r'))
        t.remove_suffix(1);
    while (!t.empty() && (t.front() == '\n' || t.front() == '\r'))
        t.remove_prefix(1);
    return t.size() >= 2 && t.front() == '{' && t.back() == '}';
}

} // namespace joingate::test
