package client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// cannedServer answers every request on its connections with one fixed
// HTTP/1.1 response, allocating nothing per request, so that a benchmark's
// allocations and CPU are the client's.
func cannedServer(tb testing.TB, response []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(conn, response)
		}
	}()
	return "http://" + ln.Addr().String() + "/v1"
}

// serveCanned reads requests (headers, then Content-Length bytes of
// body) and writes response after each.
func serveCanned(conn net.Conn, response []byte) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		length := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if _, err := br.Discard(length); err != nil {
			return
		}
		if _, err := conn.Write(response); err != nil {
			return
		}
	}
}

// chunkedSSE is an HTTP/1.1 200 response carrying body as one
// chunked-encoding chunk per SSE event.
func chunkedSSE(body []byte) []byte {
	var sizes []int
	for _, ev := range bytes.SplitAfter(body, []byte("\n\n")) {
		if len(ev) > 0 {
			sizes = append(sizes, len(ev))
		}
	}
	return []byte(sseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunked(string(body), sizes, hexSize, ""))
}

// BenchmarkRequest measures what one short streamed request costs the
// client, sending included: Stream for a 2-token answer from a canned
// loopback server, next to a bare net/http request and bufio line loop on
// the same server. The difference is the client's per-request overhead,
// which a burst of N requests pays N times before its last one is read.
// Run with: go test -run '^$' -bench Request -cpu 1 ./pkg/client
func BenchmarkRequest(b *testing.B) {
	url := cannedServer(b, chunkedSSE(vllmBody(2)))
	call := Call{Prompt: string(bytes.Repeat([]byte("x"), 4096)), MaxTokens: 2}
	b.Run("client", func(b *testing.B) {
		c, err := New(Config{BaseURL: url, Model: "m", NonStandard: true, RunID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		prepared, err := c.Prepare(call)
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			r := c.Stream(b.Context(), began, prepared)
			if !r.OK() || len(r.TokenTimes) != 2 {
				b.Fatalf("class %q, err %q, %d chunks", r.ErrClass, r.Err, len(r.TokenTimes))
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		c, err := New(Config{BaseURL: url, Model: "m", NonStandard: true})
		if err != nil {
			b.Fatal(err)
		}
		prepared, err := c.Prepare(call)
		if err != nil {
			b.Fatal(err)
		}
		hc := &http.Client{Transport: newTransport(1)}
		defer hc.CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			bareRequest(b, hc, url+"/chat/completions", prepared.Body)
		}
	})
}

// bareRequest sends body and reads the answer's lines, stamping each data
// line, as the load harness's bare reader does.
func bareRequest(b *testing.B, hc *http.Client, url string, body []byte) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	res, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReaderSize(res.Body, sseBufSize)
	chunks := 0
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			_ = time.Now()
			if bytes.Contains(line, []byte("[DONE]")) {
				_, _ = io.Copy(io.Discard, br)
				break
			}
			chunks++
		}
		if err != nil {
			b.Fatalf("after %d chunks: %v", chunks, err)
		}
	}
}
