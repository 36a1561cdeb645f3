package client

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
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
		event := func(i int, finish string) string {
			e := fmt.Sprintf("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"},\"finish_reason\":%s}]}\n\n", i, finish)
			return fmt.Sprintf("%x\r\n%s\r\n", len(e), e)
		}
		_, _ = io.WriteString(conn, sseHead+"Transfer-Encoding: chunked\r\n\r\n"+event(1, "null"))
		time.Sleep(10 * time.Millisecond)
		secondSent <- time.Now()
		_, _ = io.WriteString(conn, event(2, `"length"`))
		// [DONE] after the client read the second token: sent while it
		// waits, the two would share one receive time (see recvStamps).
		time.Sleep(2 * busy)
		done := "data: [DONE]\n\n"
		_, _ = io.WriteString(conn, fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(done), done))
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
