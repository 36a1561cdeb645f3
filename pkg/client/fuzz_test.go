package client_test

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// FuzzStream sends raw bytes as the SSE body of a 200 response, through a
// real loopback connection, and checks that the record is sane: Stream
// does not panic, OnAccepted runs once, times are ordered, there are no
// more content chunks than data lines, and the class is a known one.
// Run with: go test -run '^$' -fuzz FuzzStream -fuzztime 60s ./pkg/client
func FuzzStream(f *testing.F) {
	seeds := []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n: keep-alive\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"error\":null}\r\n\r\n",
		"data: {\"choices\":[{\"text\":\"t\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n",
		"event: message\nid: 1\nretry: 10\ndata: {\"choices\":\ndata: [{\"delta\":{\"reasoning_content\":\"r\"}}]}\n\n",
		"data: {\"error\":{\"message\":\"boom\"}}\n\n",
		"data: {\"object\":\"error\",\"message\":\"no\"}\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"\n\n",
		"data:\n\ndata: \n\n:\n\n\n\n",
		"data: [DONE]\n\n",
		"\r\r\ndata: {}\r\rdata: {}\n\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	var bodies sync.Map // X-Request-Id -> []byte
	srv := openaitest.NewFunc(f, func(r openaitest.Received) openaitest.Script {
		b, _ := bodies.Load(r.Header.Get("X-Request-Id"))
		body, _ := b.([]byte)
		if body == nil {
			body = []byte{}
		}
		return openaitest.Script{RawBody: body}
	})
	c, err := client.New(client.Config{BaseURL: srv.URL, Model: openaitest.DefaultModel, RequestTimeout: 10 * time.Second, MaxConcurrency: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	var seq atomic.Int64
	known := map[string]bool{"": true, result.ErrStream: true, result.ErrDecode: true, result.ErrNoContent: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		n := int(seq.Add(1))
		bodies.Store(strconv.Itoa(n), body)
		defer bodies.Delete(strconv.Itoa(n))
		accepted := 0
		began := time.Now()
		r := c.Stream(t.Context(), began, client.Call{Seq: n, Prompt: "p", MaxTokens: 4, OnAccepted: func() { accepted++ }})
		if accepted != 1 {
			t.Errorf("OnAccepted called %d times, want 1", accepted)
		}
		checkOrder(t, r)
		if !known[r.ErrClass] {
			t.Errorf("ErrClass = %q (Err %q), want one of %v", r.ErrClass, r.Err, known)
		}
		if r.HTTPStatus != 200 {
			t.Errorf("HTTPStatus = %d, want 200", r.HTTPStatus)
		}
		if got, max := len(r.TokenTimes), dataLines(body); got > max {
			t.Errorf("%d content chunks from a body with %d data lines", got, max)
		}
		if !r.UsageReported && r.OutputTokens != len(r.TokenTimes) {
			t.Errorf("without usage OutputTokens = %d, want the chunk count %d", r.OutputTokens, len(r.TokenTimes))
		}
	})
}

// dataLines counts the lines whose field name is "data", split the way the
// SSE decoder splits them (on \n, dropping a trailing \r): each event
// needs at least one.
func dataLines(body []byte) int {
	n := 0
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		name, _, _ := bytes.Cut(line, []byte(":"))
		if string(name) == "data" {
			n++
		}
	}
	return n
}

// BenchmarkStreamLoopback runs whole requests against openaitest over
// loopback. The server shares the machine, so the numbers are an upper
// bound of the client's cost: per request (one-token streams) and per
// chunk (long streams sent as fast as the server can write them).
// Run with: go test -run '^$' -bench StreamLoopback ./pkg/client
func BenchmarkStreamLoopback(b *testing.B) {
	for _, tokens := range []int{1, 1000} {
		b.Run("tokens="+strconv.Itoa(tokens), func(b *testing.B) {
			srv := openaitest.New(b, openaitest.Script{Tokens: tokens})
			c, err := client.New(client.Config{BaseURL: srv.URL, Model: openaitest.DefaultModel, NonStandard: true})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			began := time.Now()
			n := 0
			for b.Loop() {
				r := c.Stream(b.Context(), began, client.Call{Seq: n, Prompt: "a b c", MaxTokens: tokens})
				if !r.OK() || len(r.TokenTimes) != tokens {
					b.Fatalf("Stream = %d chunks, %q %q, want %d chunks", len(r.TokenTimes), r.ErrClass, r.Err, tokens)
				}
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/request")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*tokens), "ns/chunk")
			if conns := srv.Conns(); conns != 1 {
				b.Errorf("%d sequential requests opened %d connections, want 1", n, conns)
			}
		})
	}
}
