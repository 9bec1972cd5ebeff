#!/usr/bin/env python3
"""Slow and idle clients against joingate's inbound listener (tests/e2e/faults_load.sh).

  slowclients.py --addr IP:PORT --halfopen N --slowloris N --cert C --key K --ca CA --hold S
      N TCP connections that never start the TLS handshake (half-open handshakes) and N
      mTLS connections that send a request head one byte a second and never finish it
      (slowloris); after S seconds prints how many joingate closed.
  slowclients.py --addr IP:PORT --hog N --hold S
      N plain TCP connections held open for S seconds (or until stdin closes); prints how
      many connected.
"""
import argparse
import select
import socket
import ssl
import sys
import time


def connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, port))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--halfopen", type=int, default=0)
    ap.add_argument("--slowloris", type=int, default=0)
    ap.add_argument("--hog", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--hold", type=float, default=15)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    port = int(port)

    if a.hog:
        socks, refused = [], 0
        for _ in range(a.hog):
            try:
                socks.append(connect(host, port))
            except OSError:
                refused += 1
        print("hog connected=%d refused=%d" % (len(socks), refused), flush=True)
        end = time.monotonic() + a.hold
        while time.monotonic() < end:
            r, _, _ = select.select([sys.stdin], [], [], 0.2)
            if r and not sys.stdin.readline():
                break
        for s in socks:
            s.close()
        return 0

    t0 = time.monotonic()
    half, slow = [], []
    for _ in range(a.halfopen):
        half.append(connect(host, port))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    head = b"GET /version HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Slow: " + b"a" * 64
    for _ in range(a.slowloris):
        s = ctx.wrap_socket(connect(host, port), server_hostname=host)
        s.sendall(head[:1])
        slow.append([s, 1])
    opened = time.monotonic() - t0
    print("opened halfopen=%d slowloris=%d in %.1fs" % (len(half), len(slow), opened), flush=True)

    closed_half = closed_slow = 0
    alive_half = {s.fileno(): s for s in half}
    alive_slow = {e[0].fileno(): e for e in slow}
    end = time.monotonic() + a.hold
    next_drip = time.monotonic() + 1
    while time.monotonic() < end and (alive_half or alive_slow):
        fds = list(alive_half) + list(alive_slow)
        r = poll_ready(fds)
        for fd in r:
            if fd in alive_half:
                s = alive_half.pop(fd)
                closed_half += 1
                s.close()
            elif fd in alive_slow:
                # Readable is not closed: a TLS 1.3 server may send a session ticket after
                # the handshake. Closed is a read that ends (b'' or an error).
                e = alive_slow[fd]
                try:
                    e[0].setblocking(False)
                    data = e[0].recv(4096)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                except OSError:
                    data = b""
                finally:
                    e[0].setblocking(True)
                if data:
                    continue  # an answer to an incomplete head would be a bug; keep polling
                alive_slow.pop(fd)
                closed_slow += 1
                e[0].close()
        if time.monotonic() >= next_drip:  # one more byte a second: never a whole head
            next_drip += 1
            for fd, e in list(alive_slow.items()):
                if e[1] < len(head):
                    try:
                        e[0].sendall(head[e[1]:e[1] + 1])
                        e[1] += 1
                    except OSError:
                        alive_slow.pop(fd)
                        closed_slow += 1
    print("closed_by_server halfopen=%d/%d slowloris=%d/%d after %.1fs" %
          (closed_half, len(half), closed_slow, len(slow), time.monotonic() - t0 - opened), flush=True)
    return 0




def poll_ready(fds):
    """select() cannot take descriptors above 1024: poll instead."""
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in p.poll(200)]


if __name__ == "__main__":
    sys.exit(main())
