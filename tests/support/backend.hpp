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
// A test can add fixed answers for any method and path (answer()), checked before the
// endpoints above; act_as_etcd3() and act_as_etcd2() use them to impersonate the local
// etcd that joingate probes for its version and role.
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
    std::string body; // the first max_recorded_body bytes of the body
    static constexpr std::size_t max_recorded_body = 256 * 1024;
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

    // Answers `method path` (the path without its query) with this status, body and
    // Content-Type from now on, instead of the built-in endpoints; replaces an earlier
    // answer for the same method and path.
    void answer(const std::string& method, const std::string& path, int status, std::string body,
                std::string content_type = "application/json");
    void clear_answer(const std::string& method, const std::string& path);
    // The local etcd 3 as joingate's probes see it: POST /v3/maintenance/status answers
    // {"header":{"member_id":"1"},"leader":"1"} when `leader`, else "leader":"2";
    // GET /version answers {"etcdserver":version,"etcdcluster":"3.4.0"}. Call again to
    // change the answers (a leader change, an upgrade).
    void act_as_etcd3(bool leader, const std::string& version = "3.4.23");
    // The local etcd 0.4 (etcd2 profile) as joingate's leader probe sees it:
    // GET /v2/stats/self answers {"name":...,"state":"StateLeader"} or "StateFollower".
    void act_as_etcd2(bool leader);

    static const std::string& small_body();
    static const std::string& big_body();
    static std::uint64_t fnv1a(std::string_view data, std::uint64_t h = 14695981039346656037ull);

  private:
    void accept_loop();
    void serve(int fd, std::uint64_t id);
    bool stream(int fd, std::uint64_t abort_after);
    void record(BackendRequest r);
    struct Answer {
        int status = 200;
        std::string body, content_type;
    };
    std::optional<Answer> answer_for(const std::string& method, const std::string& path) const;

    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> open_streams_{0};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> chunks_sent_{0};
    mutable std::mutex mu_;
    std::vector<BackendRequest> requests_;
    std::vector<std::pair<std::string, Answer>> answers_; // "METHOD path" -> answer
    std::set<int> fds_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

} // namespace joingate::test
