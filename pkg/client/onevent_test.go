package client_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/client"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// seenEvent is one call of Call.OnEvent.
type seenEvent struct {
	at   time.Duration
	data string
}

func TestOnEvent(t *testing.T) {
	t.Parallel()
	const ttft, gap = 5 * time.Millisecond, 2 * time.Millisecond
	tests := []struct {
		name      string
		script    openaitest.Script
		endpoint  client.Endpoint
		maxTokens int

		wantEvents  int   // data events the server sends, [DONE] included
		wantContent []int // which of them are content chunks, in order
		wantLast    string
		wantClass   string
	}{
		{
			name:      "chat: content, usage, [DONE]",
			script:    openaitest.Script{TTFT: ttft, Gap: gap},
			maxTokens: 3, wantEvents: 5, wantContent: []int{0, 1, 2}, wantLast: "[DONE]\n",
		},
		{
			name:      "role event and keep-alive comments, CRLF",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, RoleFirst: true, KeepAlive: true, CRLF: true},
			maxTokens: 3, wantEvents: 6, wantContent: []int{1, 2, 3}, wantLast: "[DONE]\n",
		},
		{
			name:      "completions without usage or [DONE]",
			script:    openaitest.Script{TTFT: ttft, Gap: gap, Usage: openaitest.UsageNever, NoDone: true},
			endpoint:  client.Completions,
			maxTokens: 2, wantEvents: 2, wantContent: []int{0, 1},
		},
		{
			name:       "an event that fails to decode is seen first",
			script:     openaitest.Script{RawBody: []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {bad\n\n")},
			maxTokens:  3,
			wantEvents: 2, wantContent: []int{0}, wantLast: "{bad\n", wantClass: result.ErrDecode,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.New(t, tt.script)
			c := newClient(t, srv.URL, func(cfg *client.Config) {
				if tt.endpoint != "" {
					cfg.Endpoint = tt.endpoint
				}
			})
			var seen []seenEvent // OnEvent runs on Stream's goroutine: no lock needed
			call := client.Call{Prompt: prompt, MaxTokens: tt.maxTokens, OnEvent: func(at time.Duration, data []byte) {
				seen = append(seen, seenEvent{at, string(bytes.Clone(data))})
			}}
			r := stream(t, t.Context(), c, call)
			if r.ErrClass != tt.wantClass {
				t.Fatalf("Stream: class %q (err %q), want %q", r.ErrClass, r.Err, tt.wantClass)
			}
			if len(seen) != tt.wantEvents {
				t.Fatalf("OnEvent called %d times (%+v), want %d", len(seen), seen, tt.wantEvents)
			}
			if len(r.TokenTimes) != len(tt.wantContent) {
				t.Fatalf("len(TokenTimes) = %d, want %d", len(r.TokenTimes), len(tt.wantContent))
			}
			for k, i := range tt.wantContent {
				if seen[i].at != r.TokenTimes[k] {
					t.Errorf("OnEvent arrival of event %d = %v, want TokenTimes[%d] = %v", i, seen[i].at, k, r.TokenTimes[k])
				}
			}
			for i := 1; i < len(seen); i++ {
				if seen[i].at < seen[i-1].at {
					t.Errorf("OnEvent arrival %d = %v before arrival %d = %v", i, seen[i].at, i-1, seen[i-1].at)
				}
			}
			if last := seen[len(seen)-1].data; tt.wantLast != "" && last != tt.wantLast {
				t.Errorf("last OnEvent data = %q, want %q", last, tt.wantLast)
			}
		})
	}
}
