// A stand-in for the local etcd peer in the integration tests: a plain HTTP/1.1 server on
// 127.0.0.1:0 with keep-alive that records every request it gets (so a test can say what
// joingate forwarded, and what it must never forward) and serves fixed endpoints:
//   GET  /small           100 bytes (small_body())
//   GET  /big             4 MiB with Content-Length (big_body()); ?abort=1 closes the
//                         connection after 1 MiB of it
//   GET  /stream          a never-ending chunked response like an etcd raft stream: one
//                         chunk "seq=N\n" every 100 ms until the client goes away;
//                         ?abort_after=N closes the connection after N chunks
//   POST /echo-size       reads the body (Content-Length or chunked), answers
//                         "<length> <fnv1a64 hex>"
//   GET  /headers         the received header names, lower-case, one per line
//   anything else         404
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace joingate::test {

struct BackendRequest {
    std::uint64_t connection = 0; // 1 for the first accepted connection, and so on
    std::string method, target, version;
    std::vector<std::pair<std::string, std::string>> headers;
    std::uint64_t body_size = 0;
    bool chunked = false;
    std::optional<std::string> header(std::string_view name) const; // case-insensitive
    bool has_header_prefix(std::string_view prefix) const;          // case-insensitive
};

class Backend {
  public:
    Backend();  // listening when it returns; throws on failure
    ~Backend(); // closes every connection, joins every thread
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    std::vector<BackendRequest> requests() const;
    std::size_t request_count() const;
    // Requests whose path (target without query) is path.
    std::vector<BackendRequest> requests_for(std::string_view path) const;
    int open_streams() const { return open_streams_.load(); }
    std::uint64_t connections_accepted() const { return accepted_.load(); }
    // Chunks written on all streams so far.
    std::uint64_t chunks_sent() const { return chunks_sent_.load(); }

    static const std::string& small_body();
    static const std::string& big_body();
    static std::uint64_t fnv1a(std::string_view data, std::uint64_t h = 14695981039346656037ull);

  private:
    void accept_loop();
    void serve(int fd, std::uint64_t id);
    bool stream(int fd, std::uint64_t abort_after);
    void record(BackendRequest r);

    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> open_streams_{0};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> chunks_sent_{0};
    mutable std::mutex mu_;
    std::vector<BackendRequest> requests_;
    std::set<int> fds_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

} // namespace joingate::test
