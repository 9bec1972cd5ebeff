// The test backend (see backend.hpp): blocking sockets, one thread per connection; the
// destructor shuts every socket down, which wakes the threads blocked on them.
#include "support/backend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace joingate::test {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Buffered reads of one connection.
struct Reader {
    int fd;
    std::string buf;
    bool fill() {
        char tmp[64 * 1024];
        for (;;) {
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return false;
            buf.append(tmp, static_cast<std::size_t>(n));
            return true;
        }
    }
    bool line(std::string& out) {
        for (;;) {
            auto p = buf.find("\r\n");
            if (p != std::string::npos) {
                out = buf.substr(0, p);
                buf.erase(0, p + 2);
                return true;
            }
            if (buf.size() > 1024 * 1024 || !fill())
                return false;
        }
    }
    // Consumes n body bytes into the hash (and the first `keep_max` bytes into *keep).
    bool body(std::uint64_t n, std::uint64_t& hash, std::string* keep = nullptr,
              std::size_t keep_max = 0) {
        while (n > 0) {
            if (buf.empty() && !fill())
                return false;
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
            hash = Backend::fnv1a(std::string_view(buf.data(), take), hash);
            if (keep && keep->size() < keep_max)
                keep->append(buf.data(), std::min(take, keep_max - keep->size()));
            buf.erase(0, take);
            n -= take;
        }
        return true;
    }
};

std::string query_param(std::string_view target, std::string_view name) {
    auto q = target.find('?');
    if (q == std::string_view::npos)
        return {};
    std::string_view qs = target.substr(q + 1);
    while (!qs.empty()) {
        auto amp = qs.find('&');
        std::string_view kv = qs.substr(0, amp);
        auto eq = kv.find('=');
        if (kv.substr(0, eq) == name)
            return eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
        if (amp == std::string_view::npos)
            break;
        qs.remove_prefix(amp + 1);
    }
    return {};
}

std::string path_of(std::string_view target) {
    return std::string(target.substr(0, target.find('?')));
}

std::string response(int status, std::string_view body, bool close,
                     std::string_view type = "text/plain") {
    std::string r = "HTTP/1.1 " + std::to_string(status) +
                    (status == 200   ? " OK"
                     : status == 404 ? " Not Found"
                                     : " Bad Request") +
                    "\r\n";
    r += "Content-Type: " + std::string(type) + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "X-Backend: joingate-test\r\n";
    if (close)
        r += "Connection: close\r\n";
    r += "\r\n";
    r += body;
    return r;
}

const char* reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

// The response of an answer() set by a test.
std::string fixed_response(int status, std::string_view body, std::string_view type, bool close) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    r += "Content-Type: " + std::string(type) + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "X-Backend: joingate-test\r\n";
    if (close)
        r += "Connection: close\r\n";
    r += "\r\n";
    r += body;
    return r;
}

} // namespace

void Backend::answer(const std::string& method, const std::string& path, int status,
                     std::string body, std::string content_type) {
    std::lock_guard lk(mu_);
    std::string key = method + " " + path;
    Answer a{status, std::move(body), std::move(content_type)};
    for (auto& [k, v] : answers_) {
        if (k == key) {
            v = std::move(a);
            return;
        }
    }
    answers_.emplace_back(std::move(key), std::move(a));
}

void Backend::clear_answer(const std::string& method, const std::string& path) {
    std::lock_guard lk(mu_);
    std::string key = method + " " + path;
    std::erase_if(answers_, [&](const auto& e) { return e.first == key; });
}

std::optional<Backend::Answer> Backend::answer_for(const std::string& method,
                                                   const std::string& path) const {
    std::lock_guard lk(mu_);
    std::string key = method + " " + path;
    for (const auto& [k, v] : answers_)
        if (k == key)
            return v;
    return std::nullopt;
}

void Backend::act_as_etcd3(bool leader, const std::string& version) {
    answer("POST", "/v3/maintenance/status", 200,
           std::string(R"({"header":{"cluster_id":"14841639068965178418","member_id":"1",)") +
               R"("revision":"1","raft_term":"2"},"version":")" + version +
               R"(","dbSize":"20480","leader":")" + (leader ? "1" : "2") +
               R"(","raftIndex":"4","raftTerm":"2"})");
    answer("GET", "/version", 200, R"({"etcdserver":")" + version + R"(","etcdcluster":"3.4.0"})");
}

void Backend::act_as_etcd2(bool leader) {
    answer("GET", "/v2/stats/self", 200,
           std::string(R"({"name":"m0","id":"ce2a822cea30bfca","state":")") +
               (leader ? "StateLeader" : "StateFollower") +
               R"(","startTime":"2014-10-24T13:15:13Z"})");
}

std::optional<std::string> BackendRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name))
            return v;
    return std::nullopt;
}

bool BackendRequest::has_header_prefix(std::string_view prefix) const {
    std::string p = lower(prefix);
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& h) { return lower(h.first).starts_with(p); });
}

std::uint64_t Backend::fnv1a(std::string_view data, std::uint64_t h) {
    for (unsigned char ch : data) {
        h ^= ch;
        h *= 1099511628211ull;
    }
    return h;
}

const std::string& Backend::small_body() {
    static const std::string body = [] {
        std::string s;
        for (int i = 0; i < 100; ++i)
            s += static_cast<char>('a' + i % 26);
        return s;
    }();
    return body;
}

const std::string& Backend::big_body() {
    static const std::string body = [] {
        std::string s(4 * 1024 * 1024, '\0');
        for (std::size_t i = 0; i < s.size(); ++i)
            s[i] = static_cast<char>('A' + (i * 7 + i / 4093) % 58);
        return s;
    }();
    return body;
}

Backend::Backend() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0)
        throw std::runtime_error("backend: socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error("backend: bind/listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

Backend::~Backend() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR); // wakes accept()
    acceptor_.join();
    ::close(listen_fd_);
    {
        std::lock_guard lk(mu_);
        for (int fd : fds_)
            ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_)
        t.join();
}

void Backend::accept_loop() {
    for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (stopping_) {
            if (fd >= 0)
                ::close(fd);
            return;
        }
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::uint64_t id = ++accepted_;
        std::lock_guard lk(mu_);
        fds_.insert(fd);
        threads_.emplace_back([this, fd, id] {
            serve(fd, id);
            {
                std::lock_guard lk2(mu_);
                fds_.erase(fd);
            }
            ::close(fd);
        });
    }
}

void Backend::record(BackendRequest r) {
    std::lock_guard lk(mu_);
    requests_.push_back(std::move(r));
}

std::vector<BackendRequest> Backend::requests() const {
    std::lock_guard lk(mu_);
    return requests_;
}

std::size_t Backend::request_count() const {
    std::lock_guard lk(mu_);
    return requests_.size();
}

std::vector<BackendRequest> Backend::requests_for(std::string_view path) const {
    std::lock_guard lk(mu_);
    std::vector<BackendRequest> out;
    for (const auto& r : requests_)
        if (path_of(r.target) == path)
            out.push_back(r);
    return out;
}

void Backend::serve(int fd, std::uint64_t id) {
    Reader in{fd, {}};
    while (!stopping_) {
        BackendRequest req;
        req.connection = id;
        std::string line;
        if (!in.line(line))
            return;
        if (line.empty())
            continue; // tolerated between requests
        auto sp1 = line.find(' ');
        auto sp2 = line.rfind(' ');
        if (sp1 == std::string::npos || sp2 == sp1) {
            send_all(fd, response(400, "bad request line", true));
            return;
        }
        req.method = line.substr(0, sp1);
        req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        req.version = line.substr(sp2 + 1);
        for (;;) {
            if (!in.line(line))
                return;
            if (line.empty())
                break;
            auto colon = line.find(':');
            if (colon == std::string::npos)
                continue;
            req.headers.emplace_back(line.substr(0, colon),
                                     std::string(trim(std::string_view(line).substr(colon + 1))));
        }
        auto te = req.header("Transfer-Encoding");
        req.chunked = te && lower(*te).find("chunked") != std::string::npos;
        std::uint64_t hash = fnv1a({});
        if (req.chunked) {
            for (;;) {
                if (!in.line(line))
                    return;
                std::uint64_t size = std::strtoull(line.c_str(), nullptr, 16);
                if (size == 0) {
                    do { // trailers
                        if (!in.line(line))
                            return;
                    } while (!line.empty());
                    break;
                }
                if (!in.body(size, hash, &req.body, BackendRequest::max_recorded_body))
                    return;
                req.body_size += size;
                if (!in.line(line))
                    return; // CRLF after the data
            }
        } else if (auto cl = req.header("Content-Length")) {
            req.body_size = std::strtoull(cl->c_str(), nullptr, 10);
            if (!in.body(req.body_size, hash, &req.body, BackendRequest::max_recorded_body))
                return;
        }
        auto conn = req.header("Connection");
        bool close =
            (conn && lower(*conn).find("close") != std::string::npos) || req.version == "HTTP/1.0";
        std::string path = path_of(req.target);
        std::string method = req.method;
        std::string target = req.target;
        std::vector<std::string> names;
        for (const auto& h : req.headers)
            names.push_back(lower(h.first));
        std::uint64_t body_size = req.body_size;
        record(std::move(req));

        if (auto a = answer_for(method, path)) {
            if (!send_all(fd, fixed_response(a->status, a->body, a->content_type, close)))
                return;
        } else if (method == "GET" && path == "/small") {
            if (!send_all(fd, response(200, small_body(), close)))
                return;
        } else if (method == "GET" && path == "/big") {
            std::string r = response(200, big_body(), close, "application/octet-stream");
            if (query_param(target, "abort") == "1") {
                send_all(fd, std::string_view(r).substr(0, r.size() - 3 * 1024 * 1024));
                ::shutdown(fd, SHUT_RDWR);
                return;
            }
            if (!send_all(fd, r))
                return;
        } else if (method == "GET" && path == "/stream") {
            std::string a = query_param(target, "abort_after");
            if (!stream(fd, a.empty() ? 0 : std::strtoull(a.c_str(), nullptr, 10)))
                return;
            return; // a stream ends its connection
        } else if (method == "POST" && path == "/echo-size") {
            char hex[32];
            std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
            if (!send_all(fd, response(200, std::to_string(body_size) + " " + hex, close)))
                return;
        } else if (method == "GET" && path == "/headers") {
            std::string body;
            for (const auto& n : names)
                body += n + "\n";
            if (!send_all(fd, response(200, body, close)))
                return;
        } else {
            if (!send_all(fd, response(404, "no such test endpoint", close)))
                return;
        }
        if (close)
            return;
    }
}

// Writes a chunk every 100 ms until the client goes away (EOF, reset, failed write), the
// backend stops, or abort_after chunks were sent (then the connection is cut mid-body).
bool Backend::stream(int fd, std::uint64_t abort_after) {
    struct Open {
        std::atomic<int>& n;
        explicit Open(std::atomic<int>& c) : n(c) { ++n; }
        ~Open() { --n; }
    } open(open_streams_);
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Transfer-Encoding: chunked\r\nX-Backend: joingate-test\r\n\r\n";
    if (!send_all(fd, head))
        return false;
    using Clock = std::chrono::steady_clock;
    auto next = Clock::now();
    for (std::uint64_t seq = 1; !stopping_; ++seq) {
        if (abort_after && seq > abort_after) {
            ::shutdown(fd, SHUT_RDWR);
            return false;
        }
        std::string data = "seq=" + std::to_string(seq) + "\n";
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        if (!send_all(fd, size + data + "\r\n"))
            return false;
        ++chunks_sent_;
        next += std::chrono::milliseconds(100);
        // Wait for the next tick, watching for the client going away.
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
            if (left.count() <= 0)
                break;
            pollfd p{fd, POLLIN | POLLRDHUP, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return false;
            if (r == 0)
                break;
            if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
                return false;
            char tmp[4096];
            ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n == 0)
                return false;
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return false;
        }
    }
    return false;
}

} // namespace joingate::test
