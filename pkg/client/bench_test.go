package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// vllmBody is a chat stream shaped like vLLM's with continuous usage
// stats: a role-only event, n content chunks of about 250 bytes, a
// usage-only chunk and [DONE].
func vllmBody(n int) []byte {
	var b bytes.Buffer
	const head = `data: {"id":"chatcmpl-8f3c0b1e9a6d4e2fb1c5a7d9e0f12345","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct","choices":[{"index":0,"delta":`
	fmt.Fprintf(&b, `%s{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":512,"total_tokens":512,"completion_tokens":0}}`+"\n\n", head)
	for i := 1; i <= n; i++ {
		finish := "null"
		if i == n {
			finish = `"length"`
		}
		fmt.Fprintf(&b, `%s{"content":" the"},"logprobs":null,"finish_reason":%s}],"usage":{"prompt_tokens":512,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n",
			head, finish, 512+i, i)
	}
	fmt.Fprintf(&b, `data: {"id":"chatcmpl-8f3c0b1e9a6d4e2fb1c5a7d9e0f12345","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct","choices":[],"usage":{"prompt_tokens":512,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 512+n, n)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkRead measures the per-chunk hot path: SSE decoding, the arrival
// stamp and the JSON decode of each event, reading an in-memory body. The
// few allocations per request (reader, buffers, token-time slices) are
// spread over its 1,000 chunks in allocs/chunk.
// Run with: go test -run '^$' -bench Read -cpu 1 ./pkg/client
func BenchmarkRead(b *testing.B) {
	const chunks = 1000
	body := vllmBody(chunks)
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	began := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		// The body is watched for inactivity, as Stream watches it.
		dog := newWatchdog(time.Minute, cancel)
		res := &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"text/event-stream"}},
			Body:       dog.watch(io.NopCloser(bytes.NewReader(body))),
		}
		r := result.Request{TargetOutputTokens: chunks} // as Stream sets it from Call.MaxTokens
		c.read(ctx, ctx, cancel, res, arrivalClock{began: began}, nil, &r)
		dog.stop()
		if !r.OK() || len(r.TokenTimes) != chunks {
			b.Fatalf("read = %d chunks, class %q, err %q, want %d chunks and success", len(r.TokenTimes), r.ErrClass, r.Err, chunks)
		}
		n++
	}
	runtime.ReadMemStats(&after)
	total := float64(n * chunks)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/chunk")
	b.ReportMetric(total/b.Elapsed().Seconds(), "chunks/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/chunk")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/chunk")
}
