package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// rawServer is a loopback server that speaks HTTP/1.1 by hand, so that a
// test can send exactly the bytes it wants, framing errors included.
type rawServer struct {
	url   string
	conns atomic.Int32

	mu       sync.Mutex
	requests []rawRequest
}

// hangUpMarker, at the end of an answer, makes rawServer close the
// connection after writing the rest.
const hangUpMarker = "<hang up>"

// rawRequest is one request as the server read it.
type rawRequest struct {
	head []string // request line, then header lines, without line ends
	body []byte
}

// newRawServer answers every request with respond(n), n counting requests
// from 0, on connections it keeps open until an answer says "Connection:
// close" or ends in hangUpMarker, or the client closes them.
func newRawServer(t *testing.T, respond func(n int) string) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String() + "/v1"}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			wg.Go(func() { s.serve(conn, respond) })
		}
	})
	return s
}

func (s *rawServer) serve(conn net.Conn, respond func(n int) string) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := readRawRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		answer, hangUp := strings.CutSuffix(respond(n), hangUpMarker)
		if _, err := io.WriteString(conn, answer); err != nil || hangUp || strings.Contains(answer, "Connection: close") {
			return
		}
	}
}

func (s *rawServer) received() []rawRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rawRequest(nil), s.requests...)
}

func readRawRequest(br *bufio.Reader) (rawRequest, error) {
	var req rawRequest
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return req, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		req.head = append(req.head, line)
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			length, _ = strconv.Atoi(v)
		}
	}
	req.body = make([]byte, length)
	_, err := io.ReadFull(br, req.body)
	return req, err
}

// needWire skips a test of the wire transport where the Client does not
// use it.
func needWire(t *testing.T) {
	t.Helper()
	if !wireSupported {
		t.Skip("the wire transport is not used on this system")
	}
}

// sseTokens is the event stream of n content chunks, the last with
// finish_reason "length", then [DONE].
func sseTokens(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		finish := "null"
		if i == n {
			finish = `"length"`
		}
		fmt.Fprintf(&b, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"},\"finish_reason\":%s}]}\n\n", i, finish)
	}
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

// chunked frames body in HTTP/1.1 chunks of the given sizes (the rest in
// one last chunk), each size line written as sizeLine formats it.
func chunked(body string, sizes []int, sizeLine func(int) string, trailer string) string {
	var b strings.Builder
	for _, n := range sizes {
		n = min(n, len(body))
		if n == 0 {
			break
		}
		b.WriteString(sizeLine(n) + "\r\n" + body[:n] + "\r\n")
		body = body[n:]
	}
	if body != "" {
		b.WriteString(sizeLine(len(body)) + "\r\n" + body + "\r\n")
	}
	b.WriteString("0\r\n" + trailer + "\r\n")
	return b.String()
}

func hexSize(n int) string { return strconv.FormatInt(int64(n), 16) }

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"

// streamOnce sends one streamed request of maxTokens through c.
func streamOnce(t *testing.T, c *Client, maxTokens int) result.Request {
	t.Helper()
	return c.Stream(t.Context(), time.Now(), Call{Seq: 1, Prompt: "hello", MaxTokens: maxTokens})
}

// TestWireRequest checks the bytes the wire transport writes: the request
// line, Host, the Client's headers in order, Content-Length and the body
// Prepare serialized.
func TestWireRequest(t *testing.T) {
	t.Parallel()
	needWire(t)
	srv := newRawServer(t, func(int) string {
		return sseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunked(sseTokens(2), nil, hexSize, "")
	})
	c, err := New(Config{BaseURL: srv.url, Model: "m", APIKey: "k", RunID: "run"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := streamOnce(t, c, 2)
	if !r.OK() || len(r.TokenTimes) != 2 {
		t.Fatalf("stream: class %q, err %q, %d tokens; want success with 2", r.ErrClass, r.Err, len(r.TokenTimes))
	}
	call, err := c.Prepare(Call{Seq: 1, Prompt: "hello", MaxTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server got %d requests, want 1", len(got))
	}
	host := strings.TrimSuffix(strings.TrimPrefix(srv.url, "http://"), "/v1")
	want := []string{
		"POST /v1/chat/completions HTTP/1.1",
		"Host: " + host,
		"Accept: text/event-stream",
		"Authorization: Bearer k",
		"Content-Type: application/json",
		"User-Agent: veeksha-go",
		"X-Request-Id: run-1",
		"Content-Length: " + strconv.Itoa(len(call.Body)),
	}
	if strings.Join(got[0].head, "\n") != strings.Join(want, "\n") {
		t.Errorf("request head:\n%s\nwant:\n%s", strings.Join(got[0].head, "\n"), strings.Join(want, "\n"))
	}
	if !bytes.Equal(got[0].body, call.Body) {
		t.Errorf("request body %s, want %s", got[0].body, call.Body)
	}
}

// TestWireBodies reads the same events framed every way HTTP/1.1 allows,
// and checks which framings leave the connection for the next request.
func TestWireBodies(t *testing.T) {
	t.Parallel()
	needWire(t)
	events := sseTokens(3)
	tests := []struct {
		name     string
		response string
		conns    int32 // connections for two requests in a row
	}{
		{"one chunk per event", sseHead + "Transfer-Encoding: chunked\r\n\r\n" +
			chunked(events, []int{strings.Index(events, "\n\n") + 2}, hexSize, ""), 1},
		{"events split across chunks, extensions, upper-case hex, trailers", sseHead + "Transfer-Encoding: chunked\r\n\r\n" +
			chunked(events, []int{7, 1, 60, 200}, func(n int) string { return strings.ToUpper(hexSize(n)) + ";ext=1 " }, "X-Trailer: a\r\nY: b\r\n"), 1},
		{"Content-Length", sseHead + "Content-Length: " + strconv.Itoa(len(events)) + "\r\n\r\n" + events, 1},
		{"100 Continue first", "HTTP/1.1 100 Continue\r\n\r\n" + sseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunked(events, nil, hexSize, ""), 1},
		{"until the server closes", sseHead + "Connection: close\r\n\r\n" + events, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(int) string { return tt.response })
			c, err := New(Config{BaseURL: srv.url, Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for range 2 {
				r := streamOnce(t, c, 3)
				if !r.OK() || len(r.TokenTimes) != 3 || r.FinishReason != "length" {
					t.Fatalf("stream: class %q, err %q, %d tokens, finish %q; want success, 3 tokens, length",
						r.ErrClass, r.Err, len(r.TokenTimes), r.FinishReason)
				}
			}
			if n := srv.conns.Load(); n != tt.conns {
				t.Errorf("two requests in a row opened %d connections, want %d", n, tt.conns)
			}
		})
	}
}

// TestWireBroken: a body cut or framed wrongly fails the request with what
// went wrong, after the tokens that did arrive.
func TestWireBroken(t *testing.T) {
	t.Parallel()
	needWire(t)
	events := sseTokens(3)
	first := events[:strings.Index(events, "\n\n")+2]
	tests := []struct {
		name     string
		response string
		tokens   int
		class    string
		errHas   string
	}{
		{"size not hexadecimal", sseHead + "Transfer-Encoding: chunked\r\n\r\n" + hexSize(len(first)) + "\r\n" + first + "\r\nzz\r\n", 1, result.ErrStream, "malformed chunked encoding"},
		{"no CRLF after the data", sseHead + "Transfer-Encoding: chunked\r\n\r\n" + hexSize(len(first)) + "\r\n" + first + "xx", 1, result.ErrStream, "malformed chunked encoding"},
		{"closed inside a chunk", sseHead + "Transfer-Encoding: chunked\r\n\r\n" + hexSize(len(first)) + "\r\n" + first + "\r\n400\r\ndata: {", 1, result.ErrStream, "unexpected EOF"},
		{"closed inside a Content-Length body", sseHead + "Content-Length: 9999\r\n\r\n" + first, 1, result.ErrStream, "unexpected EOF"},
		{"closed before any answer", "", 0, result.ErrConnect, "closed the connection before answering"},
		{"headers too long", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", 0, result.ErrConnect, "headers longer than"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 0, result.ErrConnect, "switched protocols"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(int) string { return tt.response + hangUpMarker })
			c, err := New(Config{BaseURL: srv.url, Model: "m", RequestTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := streamOnce(t, c, 3)
			if r.ErrClass != tt.class || !strings.Contains(r.Err, tt.errHas) || len(r.TokenTimes) != tt.tokens {
				t.Errorf("stream: class %q, err %q, %d tokens; want class %q, an error with %q, %d tokens",
					r.ErrClass, r.Err, len(r.TokenTimes), tt.class, tt.errHas, tt.tokens)
			}
		})
	}
}

// TestWireStaleConnection: a connection the server closed while it was
// idle (a keep-alive timeout) is not used for the next request.
func TestWireStaleConnection(t *testing.T) {
	t.Parallel()
	needWire(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				// One answer per connection, then a close once the
				// connection has been idle for 20 ms, without saying so
				// in the answer: as a server's keep-alive timeout does.
				defer conn.Close()
				br := bufio.NewReader(conn)
				if _, err := readRawRequest(br); err != nil {
					return
				}
				io.WriteString(conn, sseHead+"Transfer-Encoding: chunked\r\n\r\n"+chunked(sseTokens(1), nil, hexSize, ""))
				time.Sleep(20 * time.Millisecond)
			}()
		}
	}()
	c, err := New(Config{BaseURL: "http://" + ln.Addr().String() + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if r := streamOnce(t, c, 1); !r.OK() {
			t.Fatalf("request %d: class %q, err %q", i, r.ErrClass, r.Err)
		}
		time.Sleep(100 * time.Millisecond) // the server has closed the idle connection by now
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("3 requests opened %d connections, want 3 (a closed idle connection is not reused)", n)
	}
}

// TestWireRedirect: a redirect is recorded, not followed.
func TestWireRedirect(t *testing.T) {
	t.Parallel()
	needWire(t)
	srv := newRawServer(t, func(int) string {
		return "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere/v1/chat/completions\r\nContent-Length: 0\r\n\r\n"
	})
	c, err := New(Config{BaseURL: srv.url, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := streamOnce(t, c, 1)
	if r.ErrClass != result.ErrHTTPStatus || r.HTTPStatus != 307 || !strings.Contains(r.Err, "redirect to http://elsewhere/v1/chat/completions") {
		t.Errorf("stream: class %q, status %d, err %q; want http_status 307 naming the redirect", r.ErrClass, r.HTTPStatus, r.Err)
	}
	if n := len(srv.received()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

// TestWireInvalidHeader: a header value that would end the header early
// (an API key with a line break) is refused, not written.
func TestWireInvalidHeader(t *testing.T) {
	t.Parallel()
	needWire(t)
	srv := newRawServer(t, func(int) string { return sseHead + "Content-Length: 0\r\n\r\n" })
	c, err := New(Config{BaseURL: srv.url, Model: "m", APIKey: "k\r\nX-Evil: 1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := streamOnce(t, c, 1)
	if r.OK() || !strings.Contains(r.Err, "invalid request header") {
		t.Errorf("stream: class %q, err %q; want a failure naming the invalid header", r.ErrClass, r.Err)
	}
	if n := len(srv.received()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

// TestStreamHTTPS: an https base URL streams through net/http's transport.
func TestStreamHTTPS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseTokens(2))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.wire != nil {
		t.Fatal("an https Client has a wire transport")
	}
	c.tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	r := streamOnce(t, c, 2)
	if !r.OK() || len(r.TokenTimes) != 2 {
		t.Errorf("stream: class %q, err %q, %d tokens; want success with 2", r.ErrClass, r.Err, len(r.TokenTimes))
	}
}

func TestChunkSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want int64
		ok   bool
	}{
		{"1a\r\n", 26, true},
		{"1A;name=value\r\n", 26, true},
		{"0\r\n", 0, true},
		{"ff \t\r\n", 255, true},
		{"fffffffffffffff\r\n", 1<<60 - 1, true},
		{"1000000000000000\r\n", 0, false}, // 16 digits could overflow
		{"\r\n", 0, false},
		{"1a\n", 0, false},
		{"-1\r\n", 0, false},
		{"0x1a\r\n", 0, false},
	}
	for _, tt := range tests {
		got, err := chunkSize([]byte(tt.line))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("chunkSize(%q) = %d, %v; want %d, ok %v", tt.line, got, err, tt.want, tt.ok)
		}
	}
}

func TestHostPort(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://localhost:8000/v1": "localhost:8000",
		"http://localhost/v1":      "localhost:80",
		"http://[::1]:8000/v1":     "[::1]:8000",
		"http://[::1]/v1":          "[::1]:80",
		"http://10.0.0.1/v1":       "10.0.0.1:80",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(u); got != want {
			t.Errorf("hostPort(%s) = %q, want %q", in, got, want)
		}
	}
}

// TestWireExactRead: a caller that reads exactly a Content-Length body and
// closes it frees the connection for the next request; a zero-length read
// returns at once.
func TestWireExactRead(t *testing.T) {
	t.Parallel()
	needWire(t)
	srv := newRawServer(t, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" })
	c, err := New(Config{BaseURL: srv.url, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 2 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.url+"/models", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.wire.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := res.Body.Read(nil); n != 0 || err != nil {
			t.Errorf("request %d: Read(nil) = %d, %v; want 0, nil", i, n, err)
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(res.Body, b); err != nil || string(b) != "hello" {
			t.Fatalf("request %d: body %q, %v", i, b, err)
		}
		res.Body.Close()
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("two exactly read bodies used %d connections, want 1", n)
	}
}
