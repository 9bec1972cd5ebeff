// Unit tests of the sans-I/O HTTP codec: request/response heads, the smuggling rules of
// DESIGN §10, head rewriting (stamps, hop-by-hop, X-Joingate-*), chunked framing, and the
// error table.
#include <gtest/gtest.h>

#include <string>

#include "proxy/errors.hpp"
#include "proxy/http.hpp"

using namespace joingate;
using http::Framing;
using http::HeadError;
using http::Parse;

namespace {

struct Parsed {
    Parse result;
    HeadError error;
    http::Head head;
};

Parsed req(std::string_view text, http::Limits limits = {}) {
    Parsed p;
    p.result = http::parse_request(text, limits, p.head, p.error);
    return p;
}

} // namespace

TEST(HttpRequest, ParsesOriginFormWithFields) {
    std::string text = "GET /raft/stream/msgapp/8e9e HTTP/1.1\r\nHost: 10.0.0.12:2380\r\n"
                       "X-Server-Version: 3.4.23\r\n\r\n";
    std::string wire = text + "NEXT"; // bytes after the head are not part of it
    auto p = req(wire);
    ASSERT_EQ(p.result, Parse::complete);
    EXPECT_EQ(p.head.method, "GET");
    EXPECT_EQ(p.head.target, "/raft/stream/msgapp/8e9e");
    EXPECT_EQ(p.head.host, "10.0.0.12:2380");
    EXPECT_EQ(p.head.get("x-server-version"), "3.4.23");
    EXPECT_EQ(p.head.framing, Framing::none);
    EXPECT_TRUE(p.head.keep_alive);
    EXPECT_EQ(p.head.size, text.size());
}

TEST(HttpRequest, IncompleteUntilBlankLine) {
    EXPECT_EQ(req("GET / HTTP/1.1\r\nHost: a\r\n").result, Parse::incomplete);
    EXPECT_EQ(req("GET / HTT").result, Parse::incomplete);
    EXPECT_EQ(req("").result, Parse::incomplete);
}

TEST(HttpRequest, Framing) {
    auto cl = req("POST /raft HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
    ASSERT_EQ(cl.result, Parse::complete);
    EXPECT_EQ(cl.head.framing, Framing::length);
    EXPECT_EQ(cl.head.content_length, 12u);

    auto zero = req("POST /raft HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(zero.head.framing, Framing::none);

    auto ch = req("POST /raft/snapshot HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_EQ(ch.result, Parse::complete);
    EXPECT_EQ(ch.head.framing, Framing::chunked);

    auto gz = req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    EXPECT_EQ(gz.head.framing, Framing::chunked);

    auto same = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    ASSERT_EQ(same.result, Parse::complete) << http::describe(same.error);
    EXPECT_EQ(same.head.content_length, 5u);
}

struct BadCase {
    const char* name;
    const char* text;
    HeadError error;
};

class HttpSmuggling : public ::testing::TestWithParam<BadCase> {};

TEST_P(HttpSmuggling, RejectedWithReason) {
    auto p = req(GetParam().text);
    EXPECT_EQ(p.result, Parse::error) << GetParam().name;
    EXPECT_EQ(p.error, GetParam().error) << GetParam().name << ": " << http::describe(p.error);
    // Every rejection of a malformed head is a 400 that closes the connection.
    if (p.error != HeadError::unsupported_version) {
        EXPECT_EQ(proxy::info(proxy::failure_for(p.error)).status, 400);
        EXPECT_TRUE(proxy::info(proxy::failure_for(p.error)).close);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Design10, HttpSmuggling,
    ::testing::Values(
        BadCase{"te_not_chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                HeadError::te_not_chunked},
        BadCase{"te_chunked_then_identity",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                HeadError::te_not_chunked},
        BadCase{"te_and_cl",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                HeadError::te_and_content_length},
        BadCase{"cl_differs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                HeadError::conflicting_content_length},
        BadCase{"cl_list_differs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n",
                HeadError::conflicting_content_length},
        BadCase{"cl_negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                HeadError::bad_content_length},
        BadCase{"cl_plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
                HeadError::bad_content_length},
        BadCase{"cl_empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
                HeadError::bad_content_length},
        BadCase{"cl_huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
                HeadError::bad_content_length},
        BadCase{"obs_fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", HeadError::obs_fold},
        BadCase{"obs_fold_tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", HeadError::obs_fold},
        BadCase{"no_host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", HeadError::missing_host},
        BadCase{"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HeadError::duplicate_host},
        BadCase{"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HeadError::bad_field_name},
        BadCase{"bare_lf", "GET / HTTP/1.1\nHost: a\r\n\r\n", HeadError::bare_line_feed},
        BadCase{"bare_cr", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HeadError::bare_line_feed},
        BadCase{"bad_version", "GET / HTTP/x.1\r\nHost: a\r\n\r\n", HeadError::bad_version},
        BadCase{"bad_method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HeadError::bad_method},
        BadCase{"two_spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HeadError::bad_request_line},
        BadCase{"control_in_target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", HeadError::bad_target},
        BadCase{"chunked_twice",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::chunked_twice}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(HttpRequest, NulInValueRejected) {
    std::string text("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35);
    auto p = req(text);
    EXPECT_EQ(p.result, Parse::error);
    EXPECT_EQ(p.error, HeadError::bad_field_value);
}

TEST(HttpRequest, Http2IsNotSupported) {
    auto p = req("GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    EXPECT_EQ(p.error, HeadError::unsupported_version);
    EXPECT_EQ(proxy::info(proxy::failure_for(p.error)).status, 505);
}

TEST(HttpRequest, Http10WithoutHostIsFine) {
    auto p = req("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(p.result, Parse::complete);
    EXPECT_EQ(p.head.minor_version, 0);
    EXPECT_FALSE(p.head.keep_alive);
    auto ka = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_TRUE(ka.head.keep_alive);
}

TEST(HttpRequest, ConnectionClose) {
    auto p = req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    EXPECT_FALSE(p.head.keep_alive);
}

TEST(HttpLimits, HeaderBlockOverLimitIs431) {
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\n";
    while (text.size() < 17 * 1024) text += "X-Filler: " + std::string(100, 'a') + "\r\n";
    auto p = req(text); // no blank line yet, already over the limit
    EXPECT_EQ(p.result, Parse::error);
    EXPECT_EQ(p.error, HeadError::header_too_large);
    EXPECT_EQ(proxy::info(proxy::failure_for(p.error)).status, 431);
    // Just under the limit and complete: fine.
    std::string ok = "GET / HTTP/1.1\r\nHost: a\r\nX-Filler: " + std::string(16000, 'a') + "\r\n\r\n";
    EXPECT_EQ(req(ok).result, Parse::complete);
}

TEST(HttpLimits, UriOverLimitIs414) {
    std::string target = "/" + std::string(9000, 'a');
    auto complete = req("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(complete.error, HeadError::uri_too_long);
    EXPECT_EQ(proxy::info(proxy::failure_for(complete.error)).status, 414);
    auto partial = req("GET " + target); // request line still arriving
    EXPECT_EQ(partial.error, HeadError::uri_too_long);
    std::string fits = "/" + std::string(8000, 'a');
    EXPECT_EQ(req("GET " + fits + " HTTP/1.1\r\nHost: a\r\n\r\n").result, Parse::complete);
}

TEST(HttpLimits, TooManyFields) {
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 300; ++i) text += "X: 1\r\n";
    text += "\r\n";
    EXPECT_EQ(req(text).error, HeadError::too_many_fields);
}

TEST(HttpResponse, FramingByStatusAndMethod) {
    http::Head h;
    HeadError e;
    http::Limits l;
    ASSERT_EQ(http::parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", l, "GET", h, e),
              Parse::complete);
    EXPECT_EQ(h.framing, Framing::chunked);
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.reason, "OK");
    ASSERT_EQ(http::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", l, "HEAD", h, e),
              Parse::complete);
    EXPECT_EQ(h.framing, Framing::none);
    ASSERT_EQ(http::parse_response("HTTP/1.1 204 No Content\r\n\r\n", l, "POST", h, e), Parse::complete);
    EXPECT_EQ(h.framing, Framing::none);
    ASSERT_EQ(http::parse_response("HTTP/1.0 200 OK\r\n\r\n", l, "GET", h, e), Parse::complete);
    EXPECT_EQ(h.framing, Framing::close);
    EXPECT_FALSE(h.keep_alive);
    ASSERT_EQ(http::parse_response("HTTP/1.1 412 Precondition Failed\r\nContent-Length: 2\r\n\r\n{}", l,
                                   "GET", h, e),
              Parse::complete);
    EXPECT_EQ(h.status, 412);
    EXPECT_EQ(h.size, std::string_view("HTTP/1.1 412 Precondition Failed\r\nContent-Length: 2\r\n\r\n").size());
    EXPECT_EQ(http::parse_response("HTTP/1.1 20 OK\r\n\r\n", l, "GET", h, e), Parse::error);
    EXPECT_EQ(http::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                                   l, "GET", h, e),
              Parse::error);
}

TEST(HttpAbsoluteTarget, Parses) {
    http::AbsoluteTarget t;
    ASSERT_TRUE(http::parse_absolute_target("http://10.0.0.12:2380/raft/stream/msgapp/8e9e", t));
    EXPECT_EQ(t.authority, "10.0.0.12:2380");
    EXPECT_EQ(t.host, "10.0.0.12");
    EXPECT_EQ(t.port, 2380);
    EXPECT_EQ(t.origin, "/raft/stream/msgapp/8e9e");
    ASSERT_TRUE(http::parse_absolute_target("HTTP://etcd-1.etcd:2380", t));
    EXPECT_EQ(t.origin, "/");
    EXPECT_EQ(t.port, 2380);
    ASSERT_TRUE(http::parse_absolute_target("http://[fd00::1]:2380/members", t));
    EXPECT_EQ(t.host, "fd00::1");
    ASSERT_TRUE(http::parse_absolute_target("http://example/x", t));
    EXPECT_EQ(t.port, 80);
    EXPECT_FALSE(http::parse_absolute_target("/members", t));
    EXPECT_FALSE(http::parse_absolute_target("https://a:1/", t));
    EXPECT_FALSE(http::parse_absolute_target("http://user@a:1/", t));
    EXPECT_FALSE(http::parse_absolute_target("http://a:99999/", t));
    EXPECT_FALSE(http::parse_absolute_target("http://:80/", t));
}

TEST(HttpRewrite, RequestStampedStrippedAndOriginForm) {
    auto p = req("GET http://10.0.0.12:2380/members HTTP/1.1\r\nHost: 10.0.0.12:2380\r\n"
                 "X-Joingate-Version: 9.9.9\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
                 "Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n");
    ASSERT_EQ(p.result, Parse::complete);
    http::Stamp stamp{"etcd-0", "3.4.23", "1-1"};
    std::string out;
    http::write_request_head(out, p.head, "/members", "10.0.0.12:2380", &stamp);
    EXPECT_EQ(out, "GET /members HTTP/1.1\r\nHost: 10.0.0.12:2380\r\nAccept: */*\r\n"
                   "X-Joingate-Member: etcd-0\r\nX-Joingate-Version: 3.4.23\r\nX-Joingate-Protocol: 1-1\r\n\r\n");
    // Inbound to the local peer: no stamp, the caller's X-Joingate-* removed.
    http::write_request_head(out, p.head, p.head.target, {}, nullptr);
    EXPECT_EQ(out.find("X-Joingate"), std::string::npos);
    EXPECT_NE(out.find("Host: 10.0.0.12:2380\r\n"), std::string::npos);
}

TEST(HttpRewrite, ResponseCloseAndDechunk) {
    http::Head h;
    HeadError e;
    ASSERT_EQ(http::parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Joingate-Member: m1\r\n"
                                   "X-Server-Version: 3.4.23\r\n\r\n",
                                   {}, "GET", h, e),
              Parse::complete);
    std::string out;
    http::write_response_head(out, h, false, false, nullptr);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Server-Version: 3.4.23\r\n\r\n");
    http::write_response_head(out, h, true, true, nullptr);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Server-Version: 3.4.23\r\nConnection: close\r\n\r\n");
}

TEST(Chunked, PassesThroughAndFindsEnd) {
    http::ChunkedDecoder d;
    std::string body = "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    std::vector<http::ChunkedDecoder::Span> spans;
    auto r = d.feed(body, &spans);
    EXPECT_EQ(r.status, http::ChunkedDecoder::Status::done);
    EXPECT_EQ(r.consumed, body.size() - 4); // "NEXT" belongs to the next message
    ASSERT_EQ(spans.size(), 2u);
    EXPECT_EQ(body.substr(spans[0].offset, spans[0].size), "hello");
    EXPECT_EQ(body.substr(spans[1].offset, spans[1].size), "abc");
}

TEST(Chunked, ByteAtATime) {
    std::string body = "a\r\n0123456789\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    http::ChunkedDecoder d;
    std::string data;
    for (std::size_t i = 0; i < body.size(); ++i) {
        std::vector<http::ChunkedDecoder::Span> spans;
        auto r = d.feed(std::string_view(body).substr(i, 1), &spans);
        for (auto s : spans) data += body.substr(i + s.offset, s.size);
        ASSERT_EQ(r.consumed, 1u);
        if (i + 1 < body.size()) ASSERT_EQ(r.status, http::ChunkedDecoder::Status::more) << i;
        else ASSERT_EQ(r.status, http::ChunkedDecoder::Status::done);
    }
    EXPECT_EQ(data, "01234567890123456789abcdef");
}

TEST(Chunked, RejectsMalformed) {
    for (std::string bad : {"g\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n", "ffffffffffffffffff\r\n",
                            "\r\n", "5 ;\n"}) {
        http::ChunkedDecoder d;
        EXPECT_EQ(d.feed(bad).status, http::ChunkedDecoder::Status::error) << bad;
        EXPECT_NE(d.error(), nullptr);
    }
}

TEST(ErrorTable, JsonObjectBodies) {
    std::string out;
    proxy::render_failure(out, proxy::Failure::upstream_unreachable, "connect to 10.0.0.1:2380: refused", false);
    EXPECT_EQ(out.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u);
    EXPECT_NE(out.find("Content-Type: application/json\r\n"), std::string::npos);
    auto body = out.substr(out.find("\r\n\r\n") + 4);
    EXPECT_EQ(body, R"({"error":"joingate: upstream_unreachable: connect to 10.0.0.1:2380: refused","reason":"upstream_unreachable"})");
    proxy::render_failure(out, proxy::Failure::bad_request, "x \"quoted\"", false);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos); // 400 always closes
    EXPECT_NE(out.find(R"(x \"quoted\")"), std::string::npos);
    // etcd facts: never 410 or 403 from the proxy's own table.
    for (int f = 0; f <= static_cast<int>(proxy::Failure::body_too_large); ++f) {
        int status = proxy::info(static_cast<proxy::Failure>(f)).status;
        EXPECT_NE(status, 410);
        EXPECT_NE(status, 403);
    }
}

#include "proxy/join_body.hpp"

TEST(JoinBody, Etcd2JoinCommandGetsAndKeepsTheVersion) {
    std::string join = R"({"name":"m3","raftURL":"http://10.0.0.13:7001","etcdURL":"http://10.0.0.13:4001","minVersion":1,"maxVersion":2})";
    EXPECT_EQ(proxy::body_version(join, "/version"), "");
    auto out = proxy::with_body_version(join, "/version", "0.4.6");
    EXPECT_EQ(proxy::body_version(out, "/version"), "0.4.6");
    EXPECT_NE(out.find(R"("name":"m3")"), std::string::npos); // the rest is kept
    // Nested pointers create objects on the way; "~1" is "/".
    auto nested = proxy::with_body_version("{}", "/meta/a~1b", "3.5.0");
    EXPECT_EQ(nested, R"({"meta":{"a/b":"3.5.0"}})");
    // Not a JSON object: left alone.
    EXPECT_EQ(proxy::with_body_version("[1,2]", "/version", "1"), "[1,2]");
    EXPECT_EQ(proxy::with_body_version("not json", "/version", "1"), "not json");
    EXPECT_EQ(proxy::body_version(R"({"version":3})", "/version"), ""); // not a string
}

// Regression (join_body fuzzer): a pointer with raw non-ASCII bytes must not produce a
// body that is no longer JSON.
TEST(JoinBody, NonAsciiPointerLeavesTheBodyAlone) {
    std::string pointer("/a-/b~1c\xff\xff\xff\xff");
    std::string body = R"({"a":{"x":1}})";
    EXPECT_EQ(proxy::with_body_version(body, pointer, "3.4.23"), body);
}

TEST(JoinBody, DeepPointerLeavesTheBodyAlone) {
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "/k";
    EXPECT_EQ(proxy::with_body_version("{}", deep, "1"), "{}");
    std::string ok;
    for (int i = 0; i < 16; ++i) ok += "/k";
    EXPECT_EQ(proxy::body_version(proxy::with_body_version("{}", ok, "1"), ok), "1");
}
