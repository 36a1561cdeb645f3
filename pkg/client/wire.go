package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wireTransport sends the requests of a plain-http Client: HTTP/1.1
// written and read by this package over pooled TCP connections, so that a
// stream's bytes go from the socket to the event reader through one buffer
// and one chunked-encoding decoder. net/http's Transport reads every chunk
// through five more layers (the persistent connection, two locked body
// wrappers, its chunked reader and a second buffer) and keeps two goroutines
// per connection; at a few thousand chunks per second on one core that is
// measurable lag in every token time (tools/loadharness: 1.5 µs per chunk,
// README "The client's own overhead"). An https Client, and any Client
// where wireSupported is false, uses net/http's Transport instead.
//
// What it does: HTTP/1.1 keep-alive with an idle pool (most recently used
// first, at most maxIdle, none idle longer than idleTimeout, and a
// connection the server has closed while idle is never reused; one it
// closes between that check and the request fails the request, as with
// net/http, since a POST is not resent), request
// cancellation through the request's context (the connection is closed),
// 1xx answers skipped, response headers bounded by maxHeaderBytes, chunked,
// Content-Length and read-until-close bodies, the httptrace hooks
// GetConn, GotConn, WroteRequest and GotFirstResponseByte, and on Linux
// the kernel's receive time of every read (recvStamps), which the body
// hands to the Client for its stamps (kernelRecv). What it does not:
// proxies (the Client ignores them anyway), TLS, HTTP/2, redirects,
// compression and retries (a benchmark must see each of these as what it
// is, not measure it as the server's time).
type wireTransport struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex
	idle map[string][]*wireConn // by host:port, most recently used last
}

// maxHeaderBytes bounds a response's status line and headers, as net/http's
// Transport does by default.
const maxHeaderBytes = 1 << 20

// wireBufSize is a connection's read buffer.
const wireBufSize = 4096

func newWireTransport(maxIdle int) *wireTransport {
	return &wireTransport{
		dialer:      net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     maxIdle,
		idleTimeout: 90 * time.Second,
		idle:        map[string][]*wireConn{},
	}
}

// wireConn is one pooled connection.
type wireConn struct {
	conn      net.Conn
	stamps    *recvStamps // reads conn with the kernel's receive times; nil where there are none
	lim       limitedConn // what br reads from: the connection, bounded while headers are read
	br        *bufio.Reader
	addr      string
	idleSince time.Time
}

// recvTime is the kernel's receive time of the data of the connection's
// latest read, Unix ns, or 0 when unknown.
func (wc *wireConn) recvTime() int64 {
	if wc.stamps == nil {
		return 0
	}
	return wc.stamps.last
}

// limitedConn reads from a connection, failing once more than left bytes
// were asked for while left is bounded (a negative left means no bound).
type limitedConn struct {
	src  io.Reader // the connection, or its recvStamps
	left int64
}

var errHeadersTooLong = fmt.Errorf("response headers longer than %d bytes", maxHeaderBytes)

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.left >= 0 {
		if l.left == 0 {
			return 0, errHeadersTooLong
		}
		p = p[:min(int64(len(p)), l.left)]
		n, err := l.src.Read(p)
		l.left -= int64(n)
		return n, err
	}
	return l.src.Read(p)
}

// RoundTrip sends req, which must be an http request with a body of known
// length (or none), and returns the response with its headers read. The
// caller reads and closes the body; the connection goes back to the pool
// when the body was read to its end.
func (t *wireTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		closeBody(req)
		return nil, fmt.Errorf("client: the wire transport speaks plain http, not %q", req.URL.Scheme)
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	addr := hostPort(req.URL)
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(addr)
	}
	wc, reused, idleFor, err := t.conn(ctx, addr)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: wc.conn, Reused: reused, WasIdle: reused, IdleTime: idleFor})
	}
	// Cancelling the request closes its connection, which ends a write or
	// read in progress; the context says why.
	stop := context.AfterFunc(ctx, func() { wc.conn.Close() })
	fail := func(err error) (*http.Response, error) {
		closeBody(req)
		stop()
		wc.conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return nil, err
	}
	err = writeRequest(wc.conn, req)
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	if err != nil {
		return fail(fmt.Errorf("write request: %w", err))
	}
	wc.lim.left = maxHeaderBytes
	if _, err := wc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("server closed the connection before answering: %w", io.ErrUnexpectedEOF)
		}
		return fail(err)
	}
	firstRecv := wc.recvTime()
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	res, err := readResponse(wc.br, req)
	if err != nil {
		return fail(err)
	}
	// The headers are read: the body is not bounded. What br already holds
	// of it was counted against the bound, which only headers can reach.
	wc.lim.left = -1
	body := &wireBody{t: t, wc: wc, stop: stop, reuse: !res.Close && !req.Close,
		firstRecv: firstRecv, headersRecv: wc.recvTime()}
	switch {
	case res.Body == http.NoBody || req.Method == http.MethodHead:
		body.left, body.done = 0, true
	case len(res.TransferEncoding) > 0 && res.TransferEncoding[0] == "chunked":
		body.chunked = true
	case res.ContentLength >= 0:
		body.left = res.ContentLength
		body.done = body.left == 0
	default:
		body.left, body.reuse = -1, false // until the server closes the connection
	}
	res.Body = body
	if body.done {
		body.release()
	}
	return res, nil
}

// conn returns an idle connection to addr that the server has not closed,
// or a new one. idleFor is how long a reused connection was idle.
func (t *wireTransport) conn(ctx context.Context, addr string) (wc *wireConn, reused bool, idleFor time.Duration, err error) {
	for {
		wc = t.popIdle(addr)
		if wc == nil {
			break
		}
		idleFor = time.Since(wc.idleSince)
		if idleFor <= t.idleTimeout && wc.br.Buffered() == 0 && connAlive(wc.conn) {
			return wc, true, idleFor, nil
		}
		// The pool gives the most recently used connection first: the
		// ones left have been idle longer, past the server's keep-alive
		// timeout too. Dropping them all (closed off the request's path)
		// saves this request a check of each.
		t.dropIdle(addr, wc)
		break
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, 0, err
	}
	wc = &wireConn{conn: conn, addr: addr, stamps: newRecvStamps(conn)}
	wc.lim = limitedConn{src: conn, left: -1}
	if wc.stamps != nil {
		wc.lim.src = wc.stamps
	}
	wc.br = bufio.NewReaderSize(&wc.lim, wireBufSize)
	return wc, false, 0, nil
}

func (t *wireTransport) popIdle(addr string) *wireConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[addr]
	if len(list) == 0 {
		return nil
	}
	wc := list[len(list)-1]
	list[len(list)-1] = nil
	t.idle[addr] = list[:len(list)-1]
	return wc
}

// dropIdle closes dead and every idle connection to addr, in a goroutine
// of its own.
func (t *wireTransport) dropIdle(addr string, dead *wireConn) {
	t.mu.Lock()
	old := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	go func() {
		dead.conn.Close()
		for _, wc := range old {
			wc.conn.Close()
		}
	}()
}

// putIdle pools wc, or closes it when the pool is full.
func (t *wireTransport) putIdle(wc *wireConn) {
	t.mu.Lock()
	if len(t.idle[wc.addr]) < t.maxIdle {
		wc.idleSince = time.Now()
		t.idle[wc.addr] = append(t.idle[wc.addr], wc)
		wc = nil
	}
	t.mu.Unlock()
	if wc != nil {
		wc.conn.Close()
	}
}

// CloseIdleConnections closes the pooled connections. Connections in use
// go back to the pool when their response ends, as with net/http: the
// Client may go on sending (WithModel shares the transport).
func (t *wireTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*wireConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, wc := range list {
			wc.conn.Close()
		}
	}
}

// closeBody closes req's body, as a RoundTripper must, also on failure.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// hostPort is the address to dial for u: its host and port, the http
// default port when it has none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// writeRequest writes req's request line, headers and body: the headers
// are req.Header's, plus Host and Content-Length.
func writeRequest(conn net.Conn, req *http.Request) error {
	if req.Body != nil && req.ContentLength < 0 {
		return errors.New("client: the wire transport needs a body of known length")
	}
	head := make([]byte, 0, 256)
	head = append(head, req.Method...)
	head = append(head, ' ')
	head = append(head, req.URL.RequestURI()...)
	head = append(head, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	head = append(head, host...)
	head = append(head, "\r\n"...)
	for _, name := range slices.Sorted(maps.Keys(req.Header)) {
		for _, v := range req.Header[name] {
			if strings.ContainsAny(name, "\r\n: ") || strings.ContainsAny(v, "\r\n") {
				return fmt.Errorf("client: invalid request header %q", name)
			}
			head = append(head, name...)
			head = append(head, ": "...)
			head = append(head, v...)
			head = append(head, "\r\n"...)
		}
	}
	if req.Body != nil || req.Method == http.MethodPost {
		head = append(head, "Content-Length: "...)
		head = strconv.AppendInt(head, max(req.ContentLength, 0), 10)
		head = append(head, "\r\n"...)
	}
	head = append(head, "\r\n"...)
	if req.Body == nil || req.ContentLength == 0 {
		_, err := conn.Write(head)
		return err
	}
	var body []byte
	if rb, ok := req.Body.(requestBody); ok && int64(len(rb.b)) == req.ContentLength {
		body = rb.b // the Client's own body: its bytes as they are
	} else {
		body = make([]byte, req.ContentLength)
		_, err := io.ReadFull(req.Body, body)
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("read request body of %d bytes: %w", req.ContentLength, err)
		}
	}
	bufs := net.Buffers{head, body}
	_, err := bufs.WriteTo(conn)
	return err
}

// readResponse reads a response's status line and headers, skipping 1xx
// informational answers.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read response headers: %w", err)
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("read response headers: the server switched protocols (HTTP 101)")
		case res.StatusCode >= 100 && res.StatusCode < 200:
			continue
		}
		return res, nil
	}
}

// wireBody is a response body read straight from its connection's buffer.
// Read and Close must be called from one goroutine (the Client reads each
// stream in one); the request's context, not Close, aborts a read.
type wireBody struct {
	t    *wireTransport
	wc   *wireConn
	stop func() bool // ends the request's cancellation hook

	chunked bool
	started bool  // a chunk's size line was read
	left    int64 // bytes left in the current chunk or the body; -1 until close
	done    bool  // the body was read to its end
	reuse   bool  // the connection may serve another request after the body
	err     error
	closed  bool

	// The kernel's receive times (Unix ns, 0 when unknown) of the reads
	// that brought the answer's first byte, completed its headers, and
	// of the latest read that returned body bytes (kernelRecv).
	firstRecv, headersRecv, recv int64
}

func (b *wireBody) firstByteRecv() int64 { return b.firstRecv }
func (b *wireBody) headerRecv() int64    { return b.headersRecv }
func (b *wireBody) lastRecv() int64      { return b.recv }

var errMalformedChunk = errors.New("malformed chunked encoding")

func (b *wireBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read of a closed response body")
	}
	if len(p) == 0 {
		return 0, nil // nothing asked: no framing is read, nothing waited for
	}
	for b.err == nil && !b.done {
		if b.chunked && b.left == 0 {
			if err := b.nextChunk(); err != nil {
				b.err = err
				break
			}
			continue
		}
		want := int64(len(p))
		if b.left >= 0 {
			want = min(want, b.left)
		}
		n, err := b.wc.br.Read(p[:want])
		if b.left >= 0 {
			b.left -= int64(n)
		}
		switch {
		case err == io.EOF && b.left < 0:
			b.done = true // a body read until the server closed
		case err == io.EOF:
			b.err = io.ErrUnexpectedEOF
		case err != nil:
			b.err = err
		case !b.chunked && b.left == 0:
			// The last bytes of a Content-Length body come with io.EOF,
			// so a caller that stops at them still frees the connection.
			b.recv = b.wc.recvTime()
			b.done = true
			b.release()
			return n, io.EOF
		}
		if n > 0 {
			b.recv = b.wc.recvTime()
			return n, nil
		}
	}
	if b.done {
		b.release()
		return 0, io.EOF
	}
	return 0, b.err
}

// nextChunk reads the end of the current chunk (if any) and the next
// chunk's size line; after the last chunk it reads the trailers and marks
// the body done.
func (b *wireBody) nextChunk() error {
	br := b.wc.br
	if b.started { // the CRLF that ends a chunk's data
		crlf, err := br.Peek(2)
		if err != nil {
			return chunkErr(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return errMalformedChunk
		}
		_, _ = br.Discard(2)
	}
	b.started = true
	line, err := br.ReadSlice('\n')
	if err != nil {
		return chunkErr(err)
	}
	size, err := chunkSize(line)
	if err != nil {
		return err
	}
	if size > 0 {
		b.left = size
		return nil
	}
	for { // the last chunk: trailers up to an empty line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return chunkErr(err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			b.done = true
			return nil
		}
	}
}

func chunkErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, bufio.ErrBufferFull):
		return errMalformedChunk // a size or trailer line longer than the buffer
	}
	return err
}

// chunkSize parses a chunk's size line: hexadecimal digits, optional
// extensions after ';', CRLF.
func chunkSize(line []byte) (int64, error) {
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return 0, errMalformedChunk
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, errMalformedChunk
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, errMalformedChunk
		}
	}
	return n, nil
}

// release hands the connection back once the body was read to its end.
func (b *wireBody) release() {
	if b.wc == nil {
		return
	}
	wc := b.wc
	b.wc = nil
	// stop is false when the request's context ended (and closed the
	// connection) first.
	if b.stop() && b.reuse {
		b.t.putIdle(wc)
		return
	}
	wc.conn.Close()
}

// Close ends the body: a connection whose body was not read to its end is
// closed (what is left of the answer is not wanted), otherwise pooled.
func (b *wireBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	switch {
	case b.wc == nil:
	case b.done:
		b.release()
	default:
		b.stop()
		b.wc.conn.Close()
		b.wc = nil
	}
	return nil
}
