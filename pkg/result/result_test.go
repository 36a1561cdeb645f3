package result

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ms = time.Millisecond

func sample() Request {
	return Request{
		Seq: 3, TargetPromptTokens: 512, PromptTokens: 512, TargetOutputTokens: 4, OutputTokens: 5,
		UsageReported: true, Intended: 100 * ms, Sent: 101 * ms, Headers: 102 * ms, FirstByte: 103 * ms,
		TokenTimes:     []time.Duration{150 * ms, 160 * ms, 180 * ms, 190 * ms},
		TokensPerChunk: []int{1, 1, 2, 1},
		End:            191 * ms, FinishReason: "length", HTTPStatus: 200,
	}
}

func near(a, b time.Duration) bool { d := a - b; return d > -time.Microsecond && d < time.Microsecond }

func TestDerivedMetrics(t *testing.T) {
	t.Parallel()
	r := sample()
	if got, _ := r.TTFC(); got != 49*ms {
		t.Errorf("TTFC = %v, want 49ms", got)
	}
	if got, _ := r.E2E(); got != 89*ms {
		t.Errorf("E2E = %v, want 89ms", got)
	}
	// (190-150) ms over 5-1 tokens.
	if got, _ := r.TPOT(); got != 10*ms {
		t.Errorf("TPOT = %v, want 10ms", got)
	}
	if got, _ := r.Interactivity(); got < 99.999 || got > 100.001 {
		t.Errorf("Interactivity = %v, want 100", got)
	}
	if got, want := r.ChunkGaps(), []time.Duration{10 * ms, 20 * ms, 10 * ms}; !cmp.Equal(got, want) {
		t.Errorf("ChunkGaps = %v, want %v", got, want)
	}
	if got, want := r.TokenGaps(), []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms}; !cmp.Equal(got, want) {
		t.Errorf("TokenGaps = %v, want %v", got, want)
	}
	if got := r.SendLag(); got != ms {
		t.Errorf("SendLag = %v, want 1ms", got)
	}
	var empty Request
	if _, ok := empty.TTFC(); ok {
		t.Errorf("TTFC of a request with no chunks is defined")
	}
	one := Request{OutputTokens: 1, TokenTimes: []time.Duration{ms}}
	if _, ok := one.TPOT(); ok {
		t.Errorf("TPOT of a one-token request is defined")
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	t.Parallel()
	failed := Request{Seq: 4, Warmup: true, TargetPromptTokens: 64, Intended: 5 * ms, Sent: 6 * ms,
		HTTPStatus: 500, Err: "server said no", ErrClass: ErrHTTPStatus, End: 7 * ms}
	shard0 := sample()
	shard0.Shard, shard0.Shards = 0, 3 // shard 0 of 3: its index is kept
	in := []Request{sample(), failed, shard0}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, in); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("WriteJSONL wrote %d lines, want 3", n)
	}
	if lines := strings.Split(buf.String(), "\n"); strings.Contains(lines[0], `"shard"`) || !strings.Contains(lines[2], `"shard":0,"shards":3`) {
		t.Errorf("shard keys: unsharded %q, sharded %q", lines[0], lines[2])
	}
	out, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, cmp.Comparer(near)); diff != "" {
		t.Errorf("round trip changed the requests (-in +out):\n%s", diff)
	}
}

func TestJSONLKeys(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// SPEC §3: the keys other tools read.
	for _, k := range []string{"seq", "warmup", "target_prompt_tokens", "prompt_tokens", "target_output_tokens",
		"output_tokens", "intended_send_s", "send_s", "first_token_s", "token_times_s", "end_s", "ttfc_s",
		"e2e_s", "tpot_s", "tokens_per_chunk", "finish_reason", "http_status", "error", "error_class"} {
		if _, ok := m[k]; !ok {
			t.Errorf("requests.jsonl line lacks key %q", k)
		}
	}
	if got := m["ttfc_s"].(float64); got != 0.049 {
		t.Errorf("ttfc_s = %v, want 0.049", got)
	}
	if m["error"] != nil {
		t.Errorf("error = %v on a successful request, want null", m["error"])
	}
	var noUsage Request
	b, _ = json.Marshal(noUsage)
	if !strings.Contains(string(b), `"prompt_tokens":null`) {
		t.Errorf("unknown prompt_tokens is not null: %s", b)
	}
}

func TestReadJSONLNamesBadLine(t *testing.T) {
	t.Parallel()
	_, err := ReadJSONL(strings.NewReader("{\"seq\":0}\n\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("ReadJSONL(bad line 3) = %v, want an error naming line 3", err)
	}
}

func TestCountErrors(t *testing.T) {
	t.Parallel()
	reqs := []Request{
		{ErrClass: ErrHTTPStatus, HTTPStatus: 500},
		{ErrClass: ErrHTTPStatus, HTTPStatus: 429},
		{ErrClass: ErrHTTPStatus, HTTPStatus: 500},
		{ErrClass: ErrTimeout},
		{ErrClass: ErrTimeout, Warmup: true},
		{},
	}
	c := CountErrors(reqs)
	if got, want := c.String(), "4 failed: 3 http_status (429: 1, 500: 2), 1 timeout"; got != want {
		t.Errorf("CountErrors(...).String() = %q, want %q", got, want)
	}
	if got := CountErrors(nil).String(); got != "no failed requests" {
		t.Errorf("CountErrors(nil).String() = %q", got)
	}
}

func TestShift(t *testing.T) {
	t.Parallel()
	r := sample()
	r.FirstByte = 0 // did not happen: stays zero
	want := sample()
	r.Shift(100 * ms)
	if r.Intended != want.Intended+100*ms || r.Sent != want.Sent+100*ms || r.End != want.End+100*ms || r.FirstByte != 0 ||
		r.TokenTimes[0] != want.TokenTimes[0]+100*ms {
		t.Errorf("Shift(100ms) = %+v from %+v", r, want)
	}
	if a, _ := r.TTFC(); a != func() time.Duration { d, _ := want.TTFC(); return d }() {
		t.Errorf("Shift changed TTFC to %v", a)
	}
}
