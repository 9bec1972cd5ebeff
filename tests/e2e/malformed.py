#!/usr/bin/env python3
"""Byte-exact malformed-request corpus for joingate's inbound (mTLS) and outbound (plain
forward proxy) listeners, in front of a real etcd (tests/e2e/malformed.sh runs it inside
the member's network namespace).

Every case is one row of CASES: the request bytes, the status joingate must answer
(README "What bad input gets" / DESIGN §10) and whether the connection must be closed.
A closing case also carries a valid request pipelined behind the bad one: it must never
be answered. A case that keeps the connection proves it by answering a valid follow-up
request on the same connection. One line per case; exit 1 when a case fails.

  malformed.py --inbound IP:PORT --outbound IP:PORT --cert C --key K --ca CA
               [--known-bugs NAME,NAME] [--allow-known-bugs]
"""
import argparse
import json
import socket
import ssl
import sys
import time

# Placeholders: {H} the inbound authority (Host of inbound requests), {T} the absolute-form
# prefix of outbound requests (http://<inbound authority>).
STAMP = "X-Joingate-Member: corpus\r\nX-Joingate-Version: 3.4.23\r\n"
GOOD_IN = "GET /version HTTP/1.1\r\nHost: {H}\r\n" + STAMP + "\r\n"
GOOD_OUT = "GET {T}/version HTTP/1.1\r\nHost: {H}\r\n\r\n"


def req_in(line, *headers, body="", stamp=True):
    """An inbound request: LINE, Host, the X-Joingate stamp, HEADERS, BODY."""
    h = "".join(x + "\r\n" for x in headers)
    return line + "\r\nHost: {H}\r\n" + (STAMP if stamp else "") + h + "\r\n" + body


def req_out(line, *headers, body=""):
    h = "".join(x + "\r\n" for x in headers)
    return line + "\r\nHost: {H}\r\n" + h + "\r\n" + body


MANY = tuple("X-Many-%d: v" % i for i in range(300))  # ~4 KiB, far under 16 KiB
HUGE = ("X-Huge: " + "a" * 20000,)                    # one 20 KB field: over 16 KiB
BIGBLOCK = tuple("X-Big-%d: %s" % (i, "b" * 900) for i in range(20))  # 18 KB in 20 fields
LONG_URI = "/version?" + "q" * 9000
URI_8K = "/nope?" + "q" * (8192 - len("/nope?"))       # exactly max_uri_bytes
URI_8K1 = URI_8K + "q"

# name, listener, request, expected status, close ("yes" | "no" | "any"), checks
#   checks: reason=R (JSON "reason" of joingate's answer), noheader=H (absent from the
#   answer), header=H (present), responses=N (answers to a pipelined request, default 1)
CASES = [
    # ---- baselines: the corpus must see real answers from etcd through joingate
    ("in_baseline_get_version", "in", GOOD_IN, 200, "no", ["header=X-Joingate-Version"]),
    ("in_baseline_404_path", "in", req_in("GET /nope HTTP/1.1"), 404, "no", []),
    ("in_baseline_cl_body", "in", req_in("POST /nope HTTP/1.1", "Content-Length: 5", body="hello"), 404, "no", []),
    ("in_baseline_chunked_body", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="5\r\nhello\r\n0\r\n\r\n"), 404, "no", []),
    ("in_pipelined_three_good", "in", GOOD_IN * 3, 200, "no", ["responses=3", "statuses=200,200,200"]),
    # ---- Content-Length / Transfer-Encoding (request smuggling)
    ("in_cl_and_te", "in",
     req_in("POST /nope HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
     400, "yes", ["reason=bad_request"]),
    ("in_te_and_cl_order", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", "Content-Length: 5", body="0\r\n\r\n"),
     400, "yes", ["reason=bad_request"]),
    ("in_te_gzip_only", "in", req_in("POST /nope HTTP/1.1", "Transfer-Encoding: gzip", body=""), 400, "yes", []),
    ("in_te_chunked_then_gzip", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked, gzip", body="0\r\n\r\n"), 400, "yes", []),
    ("in_te_two_fields_last_identity", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: identity", body="0\r\n\r\n"),
     400, "yes", []),
    ("in_te_chunked_twice", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked, chunked", body="0\r\n\r\n"), 400, "yes", []),
    ("in_te_space_before_colon", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding : chunked", body="0\r\n\r\n"), 400, "yes", []),
    ("in_cl_duplicate_differing", "in",
     req_in("POST /nope HTTP/1.1", "Content-Length: 5", "Content-Length: 6", body="hello!"), 400, "yes", []),
    ("in_cl_list_differing", "in", req_in("POST /nope HTTP/1.1", "Content-Length: 5, 6", body="hello!"), 400, "yes", []),
    ("in_cl_duplicate_equal", "in",
     req_in("POST /nope HTTP/1.1", "Content-Length: 5", "Content-Length: 5", body="hello"), 404, "no", []),
    ("in_cl_negative", "in", req_in("POST /nope HTTP/1.1", "Content-Length: -1"), 400, "yes", []),
    ("in_cl_plus_sign", "in", req_in("POST /nope HTTP/1.1", "Content-Length: +5", body="hello"), 400, "yes", []),
    ("in_cl_hex", "in", req_in("POST /nope HTTP/1.1", "Content-Length: 0x5", body="hello"), 400, "yes", []),
    ("in_cl_empty", "in", req_in("POST /nope HTTP/1.1", "Content-Length: "), 400, "yes", []),
    ("in_cl_overflow_20_digits", "in",
     req_in("POST /nope HTTP/1.1", "Content-Length: 99999999999999999999", body="x"), 400, "yes", []),
    # ---- header syntax
    ("in_obs_fold", "in", req_in("GET /version HTTP/1.1", "X-A: b", " folded"), 400, "yes", ["reason=bad_request"]),
    ("in_obs_fold_tab", "in", req_in("GET /version HTTP/1.1", "X-A: b", "\tfolded"), 400, "yes", []),
    ("in_nul_in_value", "in", req_in("GET /version HTTP/1.1", "X-A: b\x00c"), 400, "yes", []),
    ("in_nul_in_name", "in", req_in("GET /version HTTP/1.1", "X-\x00A: b"), 400, "yes", []),
    ("in_control_char_in_value", "in", req_in("GET /version HTTP/1.1", "X-A: b\x01c"), 400, "yes", []),
    ("in_bare_cr_in_value", "in", req_in("GET /version HTTP/1.1", "X-A: b\rc"), 400, "yes", []),
    ("in_bare_lf_in_value", "in", req_in("GET /version HTTP/1.1", "X-A: b\nX-B: c"), 400, "yes", []),
    ("in_bare_lf_line_endings", "in", "GET /version HTTP/1.1\nHost: {H}\n\n", 400, "yes", []),
    ("in_bare_lf_after_request_line", "in", "GET /version HTTP/1.1\nHost: {H}\r\n\r\n", 400, "yes", []),
    ("in_field_without_colon", "in", req_in("GET /version HTTP/1.1", "X-No-Colon"), 400, "yes", []),
    ("in_empty_field_name", "in", req_in("GET /version HTTP/1.1", ": v"), 400, "yes", []),
    ("in_bad_char_in_name", "in", req_in("GET /version HTTP/1.1", "X{A}: v"), 400, "yes", []),
    ("in_missing_host", "in", "GET /version HTTP/1.1\r\n" + STAMP + "\r\n", 400, "yes", []),
    ("in_two_hosts", "in", req_in("GET /version HTTP/1.1", "Host: evil.example"), 400, "yes", []),
    ("in_huge_header_field", "in", req_in("GET /version HTTP/1.1", *HUGE), 431, "yes", ["reason=header_too_large"]),
    ("in_huge_header_block", "in", req_in("GET /version HTTP/1.1", *BIGBLOCK), 431, "yes", []),
    ("in_many_headers_300", "in", req_in("GET /version HTTP/1.1", *MANY), 431, "yes", []),
    # ---- request line
    ("in_uri_over_8k", "in", req_in("GET " + LONG_URI + " HTTP/1.1"), 414, "yes", ["reason=uri_too_long"]),
    ("in_uri_exactly_8k", "in", req_in("GET " + URI_8K + " HTTP/1.1"), 404, "no", []),
    ("in_uri_8k_plus_1", "in", req_in("GET " + URI_8K1 + " HTTP/1.1"), 414, "yes", []),
    ("in_request_line_64k_no_crlf", "in", "GET /" + "a" * 65536, 414, "yes", []),
    ("in_method_10k", "in", req_in("G" * 10000 + " /version HTTP/1.1"), 414, "yes", []),
    ("in_bad_method_char", "in", req_in("G@T /version HTTP/1.1"), 400, "yes", []),
    ("in_double_space", "in", req_in("GET  /version HTTP/1.1"), 400, "yes", []),
    ("in_space_in_target", "in", req_in("GET /ver sion HTTP/1.1"), 400, "yes", []),
    ("in_http09", "in", "GET /version\r\n\r\n", 400, "yes", []),
    ("in_bad_version_token", "in", req_in("GET /version HTTP/1.x"), 400, "yes", []),
    ("in_lowercase_version", "in", req_in("GET /version http/1.1"), 400, "yes", []),
    ("in_http2_request_line", "in", req_in("GET /version HTTP/2.0"), 505, "yes", ["reason=version_not_supported"]),
    ("in_http2_preface", "in", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "yes", []),
    ("in_http3", "in", req_in("GET /version HTTP/3.0"), 505, "yes", []),
    # ---- HTTP/1.0 and upgrades
    ("in_http10_no_host", "in", "GET /version HTTP/1.0\r\n" + STAMP + "\r\n", 200, "yes", []),
    ("in_http10_with_host", "in", req_in("GET /version HTTP/1.0"), 200, "yes", []),
    ("in_http10_keep_alive", "in", req_in("GET /version HTTP/1.0", "Connection: keep-alive"), 200, "any", []),
    ("in_connection_upgrade_websocket", "in",
     req_in("GET /version HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"),
     200, "no", ["noheader=Upgrade"]),
    ("in_connection_upgrade_h2c", "in",
     req_in("GET /version HTTP/1.1", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAAQAAP__"), 200, "no", ["noheader=Upgrade"]),
    ("in_connection_close", "in", req_in("GET /version HTTP/1.1", "Connection: close"), 200, "yes", []),
    # ---- chunked framing (the head is fine; the body is not)
    ("in_chunk_size_not_hex", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="zz\r\nhello\r\n0\r\n\r\n"), 400, "yes", []),
    ("in_chunk_size_negative", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="-5\r\nhello\r\n0\r\n\r\n"), 400, "yes", []),
    ("in_chunk_size_0x_prefix", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="0x5\r\nhello\r\n0\r\n\r\n"), 400, "yes", []),
    ("in_chunk_size_overflow", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="fffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
     400, "yes", []),
    ("in_chunk_size_64bit_wrap", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="10000000000000005\r\nhello\r\n0\r\n\r\n"),
     400, "yes", []),
    ("in_chunk_missing_crlf_after_data", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="5\r\nhelloXX0\r\n\r\n"), 400, "yes", []),
    ("in_chunk_bare_lf", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="5\nhello\n0\n\n"), 400, "yes", []),
    ("in_chunk_extension_ok", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="5;name=value\r\nhello\r\n0\r\n\r\n"),
     404, "no", []),
    ("in_chunk_extension_quoted", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body='5;a="b;c"\r\nhello\r\n0;z\r\n\r\n'),
     404, "no", []),
    ("in_chunk_extension_8k", "in",
     req_in("POST /nope HTTP/1.1", "Transfer-Encoding: chunked", body="5;" + "e" * 8192 + "\r\nhello\r\n0\r\n\r\n"),
     400, "yes", []),
    # ---- versions on join traffic (mode leader: a version that does not parse is unknown
    #      and refused, 412 without X-Server-Version; the connection is kept)
    ("in_join_valid_server_version", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-ok", "X-Server-Version: 3.4.23", stamp=False),
     200, "no", []),
    ("in_join_server_version_garbage", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv1", "X-Server-Version: garbage", stamp=False),
     412, "no", ["reason=rejected", "noheader=X-Server-Version"]),
    ("in_join_server_version_two_parts", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv2", "X-Server-Version: 3.4", stamp=False),
     412, "no", ["reason=rejected"]),
    ("in_join_server_version_overflow", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv3",
            "X-Server-Version: 99999999999999999999999.0.0", stamp=False), 412, "no", ["reason=rejected"]),
    ("in_join_server_version_1k", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv4", "X-Server-Version: 3." + "4" * 1024 + ".0",
            stamp=False), 412, "no", ["reason=rejected"]),
    ("in_join_server_version_older", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv5", "X-Server-Version: 3.3.0", stamp=False),
     412, "no", ["reason=rejected"]),
    ("in_join_server_version_empty", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv6", "X-Server-Version: ", stamp=False),
     412, "no", ["reason=rejected"]),
    ("in_join_server_version_ctl", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-sv7", "X-Server-Version: 3.4.23\x7f", stamp=False),
     400, "yes", []),
    ("in_join_no_version", "in", req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-nv", stamp=False),
     412, "no", ["reason=rejected"]),
    ("in_join_joingate_version_garbage", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-jv1", "X-Joingate-Version: 3.4.23garbage",
            stamp=False), 412, "no", ["reason=rejected"]),
    ("in_join_joingate_version_semver_junk", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-jv2", "X-Joingate-Version: v3.4.23-",
            stamp=False), 412, "no", ["reason=rejected"]),
    ("in_join_joingate_version_beats_server", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-jv3", "X-Joingate-Version: 3.3.0",
            "X-Server-Version: 3.4.23", stamp=False), 412, "no", ["reason=rejected"]),
    ("in_join_joingate_protocol_garbage", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-jp", "X-Joingate-Version: 3.4.23",
            "X-Joingate-Protocol: 9-1x", stamp=False), 200, "no", []),
    ("in_join_bad_version_then_good", "in",
     req_in("GET /raft/probing HTTP/1.1", "X-Joingate-Member: m-pp", "X-Joingate-Version: nope", stamp=False)
     + GOOD_IN, 412, "no", ["responses=2", "statuses=412,200"]),
    # ---- pipelining after an error: nothing after the bad request is answered
    ("in_pipelined_good_bad_good", "in",
     GOOD_IN + req_in("GET /version HTTP/1.1", "X-A: b", " fold") + GOOD_IN, 200, "yes",
     ["responses=2", "statuses=200,400"]),
    ("in_pipelined_smuggle_attempt", "in",
     req_in("POST /nope HTTP/1.1", "Content-Length: 44", "Transfer-Encoding: chunked",
            body="0\r\n\r\nGET /members HTTP/1.1\r\nHost: {H}\r\n\r\n"), 400, "yes", []),

    # ---- outbound: the local etcd's forward proxy, same rules
    ("out_baseline_absolute", "out", GOOD_OUT, 200, "no", ["noheader=X-Joingate-Version"]),
    ("out_pipelined_three_good", "out", GOOD_OUT * 3, 200, "no", ["responses=3", "statuses=200,200,200"]),
    ("out_origin_form", "out", req_out("GET /version HTTP/1.1"), 400, "no", ["reason=not_proxy_request"]),
    ("out_connect", "out", "CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n\r\n", 405, "yes", ["reason=method_not_allowed"]),
    ("out_cl_and_te", "out",
     req_out("POST {T}/nope HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: chunked", body="0\r\n\r\n"),
     400, "yes", ["reason=bad_request"]),
    ("out_te_not_chunked", "out", req_out("POST {T}/nope HTTP/1.1", "Transfer-Encoding: gzip"), 400, "yes", []),
    ("out_cl_duplicate_differing", "out",
     req_out("POST {T}/nope HTTP/1.1", "Content-Length: 5", "Content-Length: 6", body="hello!"), 400, "yes", []),
    ("out_obs_fold", "out", req_out("GET {T}/version HTTP/1.1", "X-A: b", " folded"), 400, "yes", []),
    ("out_nul_in_value", "out", req_out("GET {T}/version HTTP/1.1", "X-A: b\x00c"), 400, "yes", []),
    ("out_bare_lf", "out", "GET {T}/version HTTP/1.1\nHost: {H}\n\n", 400, "yes", []),
    ("out_missing_host", "out", "GET {T}/version HTTP/1.1\r\n\r\n", 400, "yes", []),
    ("out_huge_header_field", "out", req_out("GET {T}/version HTTP/1.1", *HUGE), 431, "yes", []),
    ("out_many_headers_300", "out", req_out("GET {T}/version HTTP/1.1", *MANY), 431, "yes", []),
    ("out_uri_over_8k", "out", req_out("GET {T}" + LONG_URI + " HTTP/1.1"), 414, "yes", []),
    ("out_http2", "out", req_out("GET {T}/version HTTP/2.0"), 505, "yes", []),
    ("out_http10_absolute", "out", "GET {T}/version HTTP/1.0\r\n\r\n", 200, "yes", []),
    ("out_connection_upgrade", "out",
     req_out("GET {T}/version HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket"), 200, "no", ["noheader=Upgrade"]),
    ("out_chunk_size_not_hex", "out",
     req_out("POST {T}/nope HTTP/1.1", "Transfer-Encoding: chunked", body="zz\r\nhello\r\n0\r\n\r\n"), 400, "yes", []),
    ("out_chunk_extension_ok", "out",
     req_out("POST {T}/nope HTTP/1.1", "Transfer-Encoding: chunked", body="5;ext=1\r\nhello\r\n0\r\n\r\n"),
     404, "no", []),
    ("out_userinfo_authority", "out", req_out("GET http://user@{H}/version HTTP/1.1"), 400, "any", []),
    ("out_pipelined_good_bad_good", "out",
     GOOD_OUT + req_out("GET {T}/version HTTP/1.1", "X-A: b\x00") + GOOD_OUT, 200, "yes",
     ["responses=2", "statuses=200,400"]),
]


class Closed(Exception):
    pass


class Conn:
    def __init__(self, addr, tls_ctx, server_name):
        host, port = addr.rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=5)
        self.sock = tls_ctx.wrap_socket(raw, server_hostname=server_name) if tls_ctx else raw
        self.buf = b""
        self.eof = False
        self.rst = False

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return False  # joingate may answer and close before it read everything

    def fill(self, timeout):
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None
        except ssl.SSLWantReadError:
            return None
        except (ConnectionResetError, ssl.SSLError, OSError):
            self.eof = self.rst = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def response(self, deadline):
        """One response: (status, headers dict lower-case -> list, body bytes) or None."""
        while b"\r\n\r\n" not in self.buf:
            r = self.fill(max(0.05, deadline - time.monotonic()))
            if r is None and time.monotonic() >= deadline:
                return None
            if r is False:
                if b"\r\n\r\n" not in self.buf:
                    return None
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        self.buf = rest
        if "content-length" in headers:
            n = int(headers["content-length"][0])
            while len(self.buf) < n:
                if not self.fill(max(0.05, deadline - time.monotonic())):
                    if time.monotonic() >= deadline or self.eof:
                        return None
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])):
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self.fill(max(0.05, deadline - time.monotonic())):
                        return None
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(size_line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    if not self.fill(max(0.05, deadline - time.monotonic())):
                        return None
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
                if n == 0:
                    break
        else:
            body = b""
            if status not in (204, 304) and status >= 200:  # until close
                while self.fill(max(0.05, deadline - time.monotonic())):
                    pass
                body, self.buf = self.buf, b""
        return status, headers, body

    def closed_within(self, seconds):
        """True when the peer closes (FIN or RST) within SECONDS with nothing more sent."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r = self.fill(deadline - time.monotonic())
            if r is False:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


SEEN = {}  # (listener, status) -> answers received, follow-ups included


def run_case(case, args, tls_ctx):
    name, listener, request, want_status, want_close, checks = case
    subst = lambda s: s.replace("{T}", "http://" + args.inbound).replace("{H}", args.inbound)
    request = subst(request)
    good = subst(GOOD_IN if listener == "in" else GOOD_OUT).encode("latin-1")
    addr = args.inbound if listener == "in" else args.outbound
    opts = dict(c.split("=", 1) for c in checks)
    n_resp = int(opts.get("responses", "1"))
    conn = Conn(addr, tls_ctx if listener == "in" else None, args.inbound.rsplit(":", 1)[0])
    problems = []
    try:
        data = request.encode("latin-1")
        closing = want_close == "yes"
        # a closing case carries a valid request behind it that must never be answered
        if closing:
            data += good
        conn.send(data)
        deadline = time.monotonic() + 8
        responses = []
        for _ in range(n_resp):
            r = conn.response(deadline)
            if r is None:
                break
            responses.append(r)
            SEEN[(listener, r[0])] = SEEN.get((listener, r[0]), 0) + 1
        if not responses:
            problems.append("no response" + (" (connection reset)" if conn.rst else
                                              " (closed)" if conn.eof else " (timeout)"))
            return name, listener, None, None, problems
        status, headers, body = responses[0]
        if status != want_status:
            detail = body[:160].decode("latin-1", "replace").replace("\n", " ")
            problems.append("status %d, want %d (%s)" % (status, want_status, detail))
        if len(responses) != n_resp:
            problems.append("%d responses, want %d" % (len(responses), n_resp))
        if "statuses" in opts:
            got = ",".join(str(r[0]) for r in responses)
            if got != opts["statuses"]:
                problems.append("pipelined answers %s, want %s" % (got, opts["statuses"]))
        if "reason" in opts:
            try:
                got = json.loads(body).get("reason")
            except ValueError:
                got = None
            if got != opts["reason"]:
                problems.append("reason %r, want %r" % (got, opts["reason"]))
        for c in checks:
            k, v = c.split("=", 1)
            if k == "noheader" and v.lower() in headers:
                problems.append("answer has %s: %s" % (v, headers[v.lower()]))
            if k == "header" and v.lower() not in headers:
                problems.append("answer lacks %s" % v)
        # how the connection ended
        closed = conn.closed_within(3 if closing else 0.3)
        extra = conn.buf
        if closing:
            if extra:
                problems.append("answered after the error: %r" % extra[:60])
            if not closed:
                problems.append("connection still open 3 s after the error")
        elif want_close == "no":
            if closed:
                problems.append("connection closed, want kept")
            else:  # kept: the same connection answers a valid request
                conn.send(good)
                r = conn.response(time.monotonic() + 5)
                if r is not None:
                    SEEN[(listener, r[0])] = SEEN.get((listener, r[0]), 0) + 1
                if r is None or r[0] != 200:
                    problems.append("follow-up on the kept connection: %s" % (r[0] if r else "no answer"))
        state = ("reset" if conn.rst else "closed") if closed else "open"
        return name, listener, status, state, problems
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inbound", required=True)
    ap.add_argument("--outbound", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--known-bugs", default="")
    ap.add_argument("--allow-known-bugs", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--counts", default="", help="write 'LISTENER STATUS N' lines of every answer seen")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for c in CASES:
            print(c[0])
        return 0
    known = {k for k in args.known_bugs.split(",") if k}
    names = {c[0] for c in CASES}
    unknown = known - names
    if unknown:
        print("KNOWN_BUGS names no case: %s" % ", ".join(sorted(unknown)))
        return 1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    only = {o for o in args.only.split(",") if o}
    failed = bugs = passed = 0
    for case in CASES:
        if only and case[0] not in only:
            continue
        name, listener, status, state, problems = run_case(case, args, ctx)
        want = "%d %s" % (case[3], {"yes": "closed", "no": "kept", "any": "either"}[case[4]])
        got = "%s %s" % (status if status is not None else "---", state or "-")
        if name in known:
            if problems:
                bugs += 1
                tag = "KNOWN-BUG"
            else:
                failed += 1
                tag = "FIXED?"
                problems = ["passes but is listed in KNOWN_BUGS: remove it from the list"]
        elif problems:
            failed += 1
            tag = "FAIL"
        else:
            passed += 1
            tag = "PASS"
        line = "%-9s %-3s %-40s want %-11s got %-12s" % (tag, listener, name, want, got)
        if problems:
            line += " " + "; ".join(problems)
        print(line, flush=True)
    if args.counts:
        with open(args.counts, "w") as f:
            for (l, st), n in sorted(SEEN.items()):
                f.write("%s %d %d\n" % (l if l == "in" else "ou", st, n))
    print("malformed corpus: %d passed, %d failed, %d known bugs (to fix)" % (passed, failed, bugs))
    if failed or (bugs and not args.allow_known_bugs):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
