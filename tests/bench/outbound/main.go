// bench-outbound load generator: plain-HTTP forward-proxy requests, as etcd sends them
// through HTTP_PROXY (absolute-form request target), keep-alive, closed loop.
//
//	bench-outbound-load -proxy 127.0.0.1:2390 -target 127.0.0.1:2380 -c 32 -d 10s \
//	    -warmup 2s -cpu a=PID -cpu b=PID
//
// Sends "GET http://<target>/small HTTP/1.1" to -proxy on -c connections for -d after
// -warmup, and prints one JSON object: requests/s, latency percentiles (1 µs histogram up
// to 200 ms), errors by kind, and the CPU time of the given pid groups (sum of
// /proc/PID/task/*/schedstat) over the measured window, per request and as cores busy.
// Standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ---- CPU accounting --------------------------------------------------------------

type cpuGroup struct {
	name string
	pids []int
}

type cpuFlag []cpuGroup

func (c *cpuFlag) String() string { return fmt.Sprint(*c) }

func (c *cpuFlag) Set(s string) error {
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want NAME=PID[,PID...], got %q", s)
	}
	var g cpuGroup
	g.name = name
	for _, p := range strings.Split(list, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return fmt.Errorf("bad pid %q", p)
		}
		g.pids = append(g.pids, v)
	}
	*c = append(*c, g)
	return nil
}

// cpuNs: summed on-CPU time (ns) of the pids and all their threads, from
// /proc/PID/task/TID/schedstat, falling back to /proc/PID/stat utime+stime (100 Hz).
func cpuNs(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		got := false
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					total += v
					got = true
				}
			}
		}
		if got {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 13 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += (u + st) * 10_000_000
		}
	}
	return total
}

// ---- minimal HTTP/1.1 client -------------------------------------------------------

type hconn struct {
	c  net.Conn
	br *bufio.Reader
}

var errProto = errors.New("bad_response")

func dial(addr string) (*hconn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &hconn{c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// roundTrip writes req and reads one response, discarding its body.
func (h *hconn) roundTrip(req []byte) (status int, closeConn bool, err error) {
	if _, err = h.c.Write(req); err != nil {
		return
	}
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, true, errProto
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, true, errProto
	}
	closeConn = line[7] == '0'
	clen := int64(-1)
	chunked := false
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		k, v := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if clen, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return status, true, errProto
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				closeConn = true
			}
		}
	}
	switch {
	case chunked:
		err = discardChunked(h.br)
	case clen >= 0:
		_, err = h.br.Discard(int(clen))
	default:
		_, err = io.Copy(io.Discard, h.br)
		closeConn = true
	}
	return
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		s := strings.TrimSpace(string(line))
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		sz, err := strconv.ParseInt(s, 16, 64)
		if err != nil {
			return errProto
		}
		if sz == 0 {
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(l) <= 2 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(sz) + 2); err != nil {
			return err
		}
	}
}

// ---- latency histogram: 1 µs buckets up to 200 ms ----------------------------------

const histN = 200_000

type hist struct {
	b    []uint32
	n    uint64
	over uint64
	max  int64
}

func (h *hist) add(us int64) {
	h.n++
	if us > h.max {
		h.max = us
	}
	if us < 0 {
		us = 0
	}
	if us >= histN {
		h.over++
		return
	}
	h.b[us]++
}

func (h *hist) merge(o *hist) {
	for i, v := range o.b {
		h.b[i] += v
	}
	h.n += o.n
	h.over += o.over
	if o.max > h.max {
		h.max = o.max
	}
}

func (h *hist) pct(p float64) int64 {
	if h.n == 0 {
		return -1
	}
	target := uint64(float64(h.n)*p/100.0 + 0.5)
	if target < 1 {
		target = 1
	}
	var acc uint64
	for i, v := range h.b {
		acc += uint64(v)
		if acc >= target {
			return int64(i)
		}
	}
	return h.max
}

// ---- main --------------------------------------------------------------------------

type worker struct {
	h      hist
	reqs   uint64
	errs   map[string]uint64
	status map[int]uint64
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, errProto):
		return "bad_response"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	case strings.Contains(err.Error(), "refused"):
		return "refused"
	}
	return "other"
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench-outbound-load: ")
	proxy := flag.String("proxy", "", "first hop, host:port (plain HTTP)")
	target := flag.String("target", "", "authority in the absolute-form request target, host:port")
	path := flag.String("path", "/small", "request path")
	conns := flag.Int("c", 32, "keep-alive connections (closed loop, one request in flight each)")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up before measuring")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request read/write deadline")
	var groups cpuFlag
	flag.Var(&groups, "cpu", "NAME=PID[,PID...]: measure the CPU time of these processes (repeatable)")
	flag.Parse()
	if *proxy == "" || *target == "" || *conns < 1 {
		flag.Usage()
		os.Exit(2)
	}
	req := []byte("GET http://" + *target + *path + " HTTP/1.1\r\nHost: " + *target +
		"\r\nUser-Agent: bench-outbound\r\nAccept-Encoding: gzip\r\n\r\n")

	var measuring, stop int32
	ws := make([]*worker, *conns)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{h: hist{b: make([]uint32, histN)}, errs: map[string]uint64{}, status: map[int]uint64{}}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hc *hconn
			for atomic.LoadInt32(&stop) == 0 {
				t0 := time.Now()
				if hc == nil {
					var err error
					if hc, err = dial(*proxy); err != nil {
						if atomic.LoadInt32(&measuring) == 1 {
							w.errs["dial:"+errKind(err)]++
						}
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				hc.c.SetDeadline(t0.Add(*timeout))
				status, closeConn, err := hc.roundTrip(req)
				m := atomic.LoadInt32(&measuring) == 1 && atomic.LoadInt32(&stop) == 0
				if err != nil {
					if m {
						w.errs[errKind(err)]++
					}
					hc.c.Close()
					hc = nil
					continue
				}
				if m {
					w.status[status]++
					if status == 200 {
						w.reqs++
						w.h.add(time.Since(t0).Microseconds())
					} else {
						w.errs["status_"+strconv.Itoa(status)]++
					}
				}
				if closeConn {
					hc.c.Close()
					hc = nil
				}
			}
			if hc != nil {
				hc.c.Close()
			}
		}()
	}

	time.Sleep(*warm)
	cpu0 := make([]int64, len(groups))
	for i, g := range groups {
		cpu0[i] = cpuNs(g.pids)
	}
	t0 := time.Now()
	atomic.StoreInt32(&measuring, 1)
	time.Sleep(*dur)
	atomic.StoreInt32(&stop, 1)
	elapsed := time.Since(t0).Seconds()
	cpu1 := make([]int64, len(groups))
	for i, g := range groups {
		cpu1[i] = cpuNs(g.pids)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*timeout + time.Second):
		log.Print("some connections did not finish their last request")
	}

	all := hist{b: make([]uint32, histN)}
	var reqs, nerr uint64
	errs := map[string]uint64{}
	status := map[string]uint64{}
	for _, w := range ws {
		all.merge(&w.h)
		reqs += w.reqs
		for k, v := range w.errs {
			errs[k] += v
			nerr += v
		}
		for k, v := range w.status {
			status[strconv.Itoa(k)] += v
		}
	}
	out := map[string]interface{}{
		"proxy": *proxy, "target": *target, "path": *path, "conns": *conns,
		"duration_s": elapsed, "requests": reqs, "rps": float64(reqs) / elapsed,
		"errors": nerr, "error_kinds": errs, "status": status,
		"p50_us": all.pct(50), "p90_us": all.pct(90), "p99_us": all.pct(99), "max_us": all.max,
	}
	var totalNs int64
	per := map[string]interface{}{}
	for i, g := range groups {
		ns := cpu1[i] - cpu0[i]
		totalNs += ns
		e := map[string]float64{"util": float64(ns) / 1e9 / elapsed}
		if reqs > 0 {
			e["us_per_req"] = float64(ns) / 1e3 / float64(reqs)
		}
		per[g.name] = e
	}
	if len(groups) > 0 {
		out["cpu"] = per
		out["cpu_util"] = float64(totalNs) / 1e9 / elapsed
		if reqs > 0 {
			out["cpu_us_per_req"] = float64(totalNs) / 1e3 / float64(reqs)
		}
	}
	b, _ := json.Marshal(out)
	os.Stdout.Write(append(b, '\n'))
}
