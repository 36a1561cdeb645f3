package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

func TestNativeRoot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "v1", in: "http://127.0.0.1:11434/v1", want: "http://127.0.0.1:11434"},
		{name: "v1 slash", in: "http://127.0.0.1:11434/v1/", want: "http://127.0.0.1:11434"},
		{name: "root", in: "http://127.0.0.1:11434", want: "http://127.0.0.1:11434"},
		{name: "behind a prefix", in: "https://host/ollama/v1", want: "https://host/ollama"},
		{name: "query dropped", in: "http://h:1/v1?x=1", want: "http://h:1"},
		{name: "no scheme", in: "127.0.0.1:11434/v1", wantErr: true},
		{name: "other scheme", in: "ftp://h/v1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := nativeRoot(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("nativeRoot(%q) error = %v, want error %t", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("nativeRoot(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// doneLine is a final /api/chat line with server metrics in nanoseconds.
const doneLine = `{"message":{"role":"assistant","content":""},"done":true,"done_reason":"length",` +
	`"total_duration":900000000,"load_duration":100000000,"prompt_eval_count":64,` +
	`"prompt_eval_duration":200000000,"eval_count":4,"eval_duration":300000000}` + "\n"

func TestReadChatStream(t *testing.T) {
	t.Parallel()
	content := func(s string) string {
		return `{"message":{"role":"assistant","content":"` + s + `"},"done":false}` + "\n"
	}
	tests := []struct {
		name       string
		body       string
		wantChunks int
		wantErr    string
	}{
		{name: "ok", body: content("a") + content("b") + "\n" + content("c") + doneLine, wantChunks: 3},
		{name: "empty deltas are not chunks", body: content("") + content("a") + content("") + doneLine, wantChunks: 1},
		{name: "server error", body: content("a") + `{"error":"model unloaded"}` + "\n", wantErr: "model unloaded"},
		{name: "cut before done", body: content("a") + content("b"), wantErr: "before its done line"},
		{name: "not json", body: content("a") + "<html>\n", wantErr: "decode /api/chat line"},
		{name: "no text", body: doneLine, wantErr: "no generated text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r, err := readChatStream(strings.NewReader(tt.body), began, nativeResult{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readChatStream(%q) error = %v, want one containing %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readChatStream(%q) error = %v", tt.body, err)
			}
			if r.Chunks != tt.wantChunks {
				t.Errorf("Chunks = %d, want %d", r.Chunks, tt.wantChunks)
			}
			if r.FirstChunk <= 0 || r.LastChunk < r.FirstChunk {
				t.Errorf("FirstChunk, LastChunk = %v, %v, want 0 < first <= last", r.FirstChunk, r.LastChunk)
			}
			want := serverTimings{Total: 900 * time.Millisecond, Load: 100 * time.Millisecond, PromptEvalCount: 64,
				PromptEval: 200 * time.Millisecond, EvalCount: 4, Eval: 300 * time.Millisecond}
			if r.Server != want || r.DoneReason != "length" {
				t.Errorf("Server, DoneReason = %+v, %q, want %+v, %q", r.Server, r.DoneReason, want, "length")
			}
		})
	}
}

// TestChat runs nativeClient.chat against a loopback server that holds
// the first token back: the client's TTFC must cover that delay, and the
// request must carry what Ollama's OpenAI layer would set.
func TestChat(t *testing.T) {
	t.Parallel()
	const delay = 30 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Stream   bool   `json:"stream"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
			Options map[string]float64 `json:"options"`
		}
		if r.URL.Path != "/api/chat" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if req.Model != "m" || !req.Stream || len(req.Messages) != 1 || req.Messages[0].Content != "hi" ||
			req.Options["num_predict"] != 4 || req.Options["temperature"] != 1 || req.Options["top_p"] != 1 {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		time.Sleep(delay)
		for range 4 {
			io.WriteString(w, `{"message":{"content":"x"},"done":false}`+"\n")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, doneLine)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, model string
		wantErr     string
	}{
		{name: "ok", model: "m"},
		{name: "http error", model: "other", wantErr: "HTTP 418"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &nativeClient{root: srv.URL, model: tt.model, hc: srv.Client()}
			r, err := c.chat(t.Context(), time.Now(), "hi", 4)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("chat() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("chat() error = %v", err)
			}
			if r.TTFC() < delay {
				t.Errorf("TTFC() = %v, want >= %v (the server's delay)", r.TTFC(), delay)
			}
			if r.Chunks != 4 || r.Server.EvalCount != 4 {
				t.Errorf("Chunks, eval_count = %d, %d, want 4, 4", r.Chunks, r.Server.EvalCount)
			}
		})
	}
}

// nativeStep is the client-side time per token of mkPair's native requests.
const nativeStep = 9 * time.Millisecond

// mkPair builds a pair whose OpenAI-path request has the given TTFC and
// TPOT (n tokens, one per chunk) and whose native request has the given
// client TTFC, nativeStep per token, and server figures.
func mkPair(length int, ttfc, tpot time.Duration, n int, nativeTTFC time.Duration, s serverTimings) pair {
	ours := result.Request{Seq: 1, TargetPromptTokens: length, PromptTokens: length, UsageReported: true, OutputTokens: n, Sent: time.Second}
	for i := range n {
		ours.TokenTimes = append(ours.TokenTimes, ours.Sent+ttfc+time.Duration(i)*tpot)
	}
	first := time.Second + nativeTTFC
	native := nativeResult{Sent: time.Second, FirstChunk: first, LastChunk: first + time.Duration(n-1)*nativeStep,
		Chunks: n, DoneReason: "length", Server: s}
	return pair{length: length, ours: ours, native: native}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := serverTimings{Total: 1000 * time.Millisecond, Load: 90 * time.Millisecond, PromptEvalCount: 64,
		PromptEval: 20 * time.Millisecond, EvalCount: 11, Eval: 80 * time.Millisecond}
	pairs := []pair{
		mkPair(64, 115*time.Millisecond, 10*time.Millisecond, 11, 113*time.Millisecond, s),
		mkPair(64, 125*time.Millisecond, 10*time.Millisecond, 11, 117*time.Millisecond, s),
		mkPair(64, 120*time.Millisecond, 10*time.Millisecond, 11, 115*time.Millisecond, s),
	}
	stopped := mkPair(256, 115*time.Millisecond, 10*time.Millisecond, 11, 113*time.Millisecond, s)
	stopped.native.DoneReason = "stop" // its last step was an end-of-sequence token, which sends no text
	pairs = append(pairs, stopped)
	rows := summarize([]int{64, 256, 1024}, pairs)
	if len(rows) != 3 || rows[1].pairs != 1 || rows[2].pairs != 0 {
		t.Fatalf("summarize() = %d rows, want 3 rows with 3, 1 and 0 pairs", len(rows))
	}
	if rows[1].nativeTPOT != 0 || rows[1].ourTPOT == 0 {
		t.Errorf("summarize() for a native early stop: nativeTPOT, ourTPOT = %v, %v, want 0 (left out), non-zero", rows[1].nativeTPOT, rows[1].ourTPOT)
	}
	r := rows[0]
	near := func(got, want float64) bool { return got > want-1e-9 && got < want+1e-9 }
	checks := []struct {
		name      string
		got, want float64
	}{
		{"ourTTFC", r.ourTTFC, 0.120},
		{"nativeTTFC", r.nativeTTFC, 0.115},
		{"serverTTFC", r.serverTTFC, 0.110},
		{"ourGap", r.ourGap, 0.010},
		{"nativeGap", r.nativeGap, 0.005},
		{"outside", r.outside, 1 - 0.09 - 0.02 - 0.08},
		{"ourTPOT", r.ourTPOT, 0.010},
		{"evalPerTok", r.evalPerTok, 0.080 / 11},
		{"evalPerStep", r.evalPerStep, 0.008},
		{"ourTPOTGap", r.ourTPOTGap, 0.002},
		{"nativeTPOT", r.nativeTPOT, nativeStep.Seconds()},
		{"nativeTPOTGap", r.nativeTPOTGap, 0.001},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("summarize() %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if r.pairs != 3 || r.evalCount != 11 {
		t.Errorf("summarize() pairs, evalCount = %d, %d, want 3, 11", r.pairs, r.evalCount)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	s := serverTimings{Load: 90 * time.Millisecond, PromptEvalCount: 64, PromptEval: 20 * time.Millisecond, EvalCount: 11}
	good := mkPair(64, 115*time.Millisecond, 10*time.Millisecond, 11, 113*time.Millisecond, s)
	tests := []struct {
		name   string
		mutate func(p *pair)
		want   string // "" = no problem
	}{
		{name: "good", mutate: func(*pair) {}},
		{name: "openai prompt length off", mutate: func(p *pair) { p.ours.PromptTokens = 65 }, want: "usage.prompt_tokens = 65"},
		{name: "no usage", mutate: func(p *pair) { p.ours.UsageReported = false }, want: "reported false"},
		{name: "native prompt length off", mutate: func(p *pair) { p.native.Server.PromptEvalCount = 63 }, want: "prompt_eval_count = 63"},
		{name: "client shorter than server", mutate: func(p *pair) { p.native.FirstChunk = p.native.Sent + 100*time.Millisecond }, want: "client TTFC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := good
			p.ours.TokenTimes = append([]time.Duration(nil), good.ours.TokenTimes...)
			tt.mutate(&p)
			got := check([]pair{p})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("check() = %q, want no problem", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("check() = %q, want one problem containing %q", got, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []int
	}{
		{name: "defaults", want: []int{64, 256, 1024}},
		{name: "lengths", args: []string{"-lengths", "100, 200"}, want: []int{100, 200}},
		{name: "bad length", args: []string{"-lengths", "100,x"}, wantErr: `"x" is not a positive integer`},
		{name: "one output token", args: []string{"-output-tokens", "1"}, wantErr: "-output-tokens 1"},
		{name: "no reps", args: []string{"-reps", "0"}, wantErr: "-reps 0"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q) error = %v", tt.args, err)
			}
			if len(o.lengths) != len(tt.want) {
				t.Fatalf("parseFlags(%q) lengths = %v, want %v", tt.args, o.lengths, tt.want)
			}
			for i := range tt.want {
				if o.lengths[i] != tt.want[i] {
					t.Errorf("parseFlags(%q) lengths = %v, want %v", tt.args, o.lengths, tt.want)
				}
			}
		})
	}
}
