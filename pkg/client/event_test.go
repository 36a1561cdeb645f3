package client

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// event is one SSE data payload and whether it carries generated text.
type event struct {
	data    string
	content bool
}

// TestStreamStateTokens feeds event sequences to streamState and checks
// what it derives: content chunk times, usage, tokens per chunk, finish
// reason.
func TestStreamStateTokens(t *testing.T) {
	t.Parallel()
	role := event{`{"choices":[{"delta":{"role":"assistant","content":""}}]}`, false}
	a := event{`{"choices":[{"delta":{"content":"a"}}]}`, true}
	last := event{`{"choices":[{"delta":{"content":"z"},"finish_reason":"length"}]}`, true}
	// u is a chat chunk with text and cumulative usage.
	u := func(text string, completion int) event {
		return event{`{"choices":[{"delta":{"content":"` + text + `"}}],"usage":{"prompt_tokens":9,"completion_tokens":` +
			strconv.Itoa(completion) + `}}`, text != ""}
	}
	// final is the usage-only chunk that ends a stream.
	final := func(completion int) event {
		return event{`{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":` + strconv.Itoa(completion) + `}}`, false}
	}
	tests := []struct {
		name   string
		events []event
		want   result.Request // the fields fill sets, without TokenTimes
	}{
		{
			name:   "no usage: output is the chunk count",
			events: []event{role, a, a, last},
			want:   result.Request{OutputTokens: 3, FinishReason: "length"},
		},
		{
			name:   "usage in the final chunk only: no tokens per chunk",
			events: []event{role, a, a, last, final(7)},
			want:   result.Request{OutputTokens: 7, PromptTokens: 9, UsageReported: true, FinishReason: "length"},
		},
		{
			name:   "cumulative usage on every chunk",
			events: []event{u("", 0), u("ab", 2), u("c", 3), u("def", 6), final(6)},
			want: result.Request{OutputTokens: 6, PromptTokens: 9, UsageReported: true,
				TokensPerChunk: []int{2, 1, 3}},
		},
		{
			name:   "a token without text is carried to the next chunk",
			events: []event{u("a", 1), u("", 2), u("bc", 4)},
			want: result.Request{OutputTokens: 4, PromptTokens: 9, UsageReported: true,
				TokensPerChunk: []int{1, 3}},
		},
		{
			name:   "tokens after the last content chunk go to it",
			events: []event{u("a", 1), u("b", 2), final(3)},
			want: result.Request{OutputTokens: 3, PromptTokens: 9, UsageReported: true,
				TokensPerChunk: []int{1, 2}},
		},
		{
			name:   "one content chunk without usage: no tokens per chunk",
			events: []event{u("a", 1), a, u("b", 3)},
			want:   result.Request{OutputTokens: 3, PromptTokens: 9, UsageReported: true},
		},
		{
			name:   "usage that stops growing gives zero-token chunks, as reported",
			events: []event{u("a", 1), u("b", 1), u("c", 1), final(1)},
			want:   result.Request{OutputTokens: 1, PromptTokens: 9, UsageReported: true, TokensPerChunk: []int{1, 0, 0}},
		},
		{
			name:   "usage going down is not cumulative: no tokens per chunk",
			events: []event{u("a", 2), u("b", 1)},
			want:   result.Request{OutputTokens: 1, PromptTokens: 9, UsageReported: true},
		},
		{
			name: "reasoning, reasoning_content and completions text count; null and empty do not",
			events: []event{
				{`{"choices":[{"delta":{"reasoning_content":"r"}}]}`, true},
				{`{"choices":[{"delta":{"reasoning":"r"}}]}`, true},
				{`{"choices":[{"text":"t","finish_reason":null}]}`, true},
				{`{"choices":[{"delta":{"content":null}}]}`, false},
				{`{"choices":[{"delta":{}}]}`, false},
				{`{"choices":[{"text":""}]}`, false},
				{`{"choices":null}`, false},
				{`{}`, false},
			},
			want: result.Request{OutputTokens: 3},
		},
		{
			name: "last non-empty finish_reason wins",
			events: []event{
				{`{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}`, true},
				{`{"choices":[{"delta":{},"finish_reason":""}]}`, false},
			},
			want: result.Request{OutputTokens: 1, FinishReason: "stop"},
		},
		{
			name:   `"error": null and blank data are ignored`,
			events: []event{{`{"choices":[{"delta":{"content":"a"}}],"error":null}`, true}, {" \n", false}},
			want:   result.Request{OutputTokens: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var st streamState
			for i, ev := range tt.events {
				at := time.Duration(i+1) * time.Millisecond
				if class, msg := st.add([]byte(ev.data), at); class != "" {
					t.Fatalf("add(%s) = %q, %q, want no failure", ev.data, class, msg)
				}
				if ev.content {
					tt.want.TokenTimes = append(tt.want.TokenTimes, at)
				}
			}
			var got result.Request
			st.fill(&got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fill after %d events (-want +got):\n%s", len(tt.events), diff)
			}
		})
	}
}

func TestStreamStateFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data      string
		wantClass string
		wantMsg   string
	}{
		{`{"choices":[{"delta":{"content":"a"`, result.ErrDecode, "decode event"},
		{`not json`, result.ErrDecode, "not json"},
		{`42`, result.ErrDecode, "decode event"},
		{`{"choices":[{"delta":{"content":7}}]}`, result.ErrDecode, "decode event"},
		{`{"error":{"message":"boom","code":500}}`, result.ErrStream, "boom"},
		{`{"error":"plain words"}`, result.ErrStream, "plain words"},
		{`{"error":{"code":500}}`, result.ErrStream, `{"code":500}`},
		{`{"object":"error","message":"vllm says no","code":400}`, result.ErrStream, "vllm says no"},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			t.Parallel()
			var st streamState
			class, msg := st.add([]byte(tt.data), time.Millisecond)
			if class != tt.wantClass || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("add(%s) = %q, %q, want %q and a message containing %q", tt.data, class, msg, tt.wantClass, tt.wantMsg)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		body string
		want string
	}{
		{`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, "Rate limit reached"},
		{`{"object":"error","message":"The model does not exist.","type":"NotFoundError","code":404}`, "The model does not exist."},
		{`{"error":"model not found"}`, "model not found"},
		{`{"detail":"Not Found"}`, "Not Found"},
		{`{"detail":[{"loc":["body","model"],"msg":"field required"}]}`, `[{"loc":["body","model"],"msg":"field required"}]`},
		{"404 page not found\n", "404 page not found"},
		{"<html>\n<body>Bad Gateway</body>\n</html>", "<html> <body>Bad Gateway</body> </html>"},
		{"", "(empty body)"},
		{long, strings.Repeat("x", excerptLen) + "..."},
		{"caf\xc3", "caf?"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := errorMessage([]byte(tt.body)); got != tt.want {
				t.Errorf("errorMessage(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestIsDone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want bool
	}{
		{"[DONE]\n", true},
		{"[DONE]", true},
		{" [DONE] \r\n", true},
		{"[DONE]x", false},
		{`{"choices":[]}`, false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isDone([]byte(tt.data)); got != tt.want {
			t.Errorf("isDone(%q) = %v, want %v", tt.data, got, tt.want)
		}
	}
}
