package client

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestTokenTimesAreKernelReceiveTimes: a token that reaches the machine
// while the client is busy with the one before is stamped when it
// arrived, not when the client got to read it. The server sends two
// tokens 10 ms apart; the client spends 300 ms on the first (its OnEvent
// hook sleeps), so a stamp taken when it reads the second is 300 ms late.
func TestTokenTimesAreKernelReceiveTimes(t *testing.T) {
	t.Parallel()
	needWire(t)
	if runtime.GOOS != "linux" {
		t.Skip("kernel receive times are read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const busy = 300 * time.Millisecond
	secondSent := make(chan time.Time, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := readRawRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		// The stream's three events (two tokens, [DONE]), each sent as
		// one HTTP chunk at its own time.
		events := strings.SplitAfter(sseTokens(2), "\n\n")
		chunk := func(e string) string { return hexSize(len(e)) + "\r\n" + e + "\r\n" }
		_, _ = io.WriteString(conn, sseHead+"Transfer-Encoding: chunked\r\n\r\n"+chunk(events[0]))
		time.Sleep(10 * time.Millisecond)
		secondSent <- time.Now()
		_, _ = io.WriteString(conn, chunk(events[1]))
		// [DONE] after the client read the second token: sent while it
		// waits, the two would share one receive time (see recvStamps).
		time.Sleep(2 * busy)
		_, _ = io.WriteString(conn, chunk(events[2])+"0\r\n\r\n")
	}()

	c, err := New(Config{BaseURL: "http://" + ln.Addr().String() + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var readSecond time.Duration
	events := 0
	r := c.Stream(t.Context(), began, Call{Seq: 1, Prompt: "hi", MaxTokens: 2, OnEvent: func(time.Duration, []byte) {
		events++
		switch events {
		case 1:
			time.Sleep(busy)
		case 2:
			readSecond = time.Since(began)
		}
	}})
	if !r.OK() || len(r.TokenTimes) != 2 {
		t.Fatalf("stream: %d token times, class %q, err %q; want 2 and success", len(r.TokenTimes), r.ErrClass, r.Err)
	}
	sent := (<-secondSent).Sub(began)
	got := r.TokenTimes[1]
	t.Logf("second token: sent %v, stamped %v, read %v", sent, got, readSecond)
	if got < sent-time.Millisecond || got > sent+busy/2 {
		t.Errorf("second token stamped at %v; the server sent it at %v and the client read it at %v (want the stamp within %v after the send)",
			got, sent, readSecond, busy/2)
	}
	if readSecond < r.TokenTimes[0]+busy {
		t.Errorf("the client read the second token at %v, before its %v on the first (stamped %v): the test did not delay the read", readSecond, busy, r.TokenTimes[0])
	}
	if !(r.Sent <= r.FirstByte && r.FirstByte <= r.Headers && r.Headers <= r.TokenTimes[0] && r.TokenTimes[0] <= r.TokenTimes[1] && r.TokenTimes[1] <= r.End) {
		t.Errorf("times out of order: sent %v, first byte %v, headers %v, tokens %v, end %v", r.Sent, r.FirstByte, r.Headers, r.TokenTimes, r.End)
	}
}
