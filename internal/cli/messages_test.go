package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
)

// promptWords is the number of words in a completion request's prompt.
func promptWords(r openaitest.Received) int {
	n := 0
	if msgs, ok := r.JSON()["messages"].([]any); ok {
		for _, m := range msgs {
			if c, ok := m.(map[string]any)["content"].(string); ok {
				n += len(strings.Fields(c))
			}
		}
	}
	return n
}

// Setup messages say what happened: a timeout is a timeout, one
// malformed event is not a server that cannot stream, a server that
// streams even when asked not to is measured, and an HTML page names
// its content type.
func TestSetupMessages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script func(openaitest.Received) openaitest.Script
		code   int
		want   []string
		not    []string
	}{
		{
			name: "long prompt answered after the timeout",
			script: func(r openaitest.Received) openaitest.Script {
				if promptWords(r) > 300 {
					return openaitest.Script{HeaderDelay: 5 * time.Second}
				}
				return openaitest.Script{}
			},
			code: ExitUsage,
			want: []string{"--input-lengths 512: the server did not answer a prompt of that length in time", "timeout (no data for 1s)"},
			not:  []string{"refused"},
		},
		{
			name: "one malformed event in the preflight",
			script: func(r openaitest.Received) openaitest.Script {
				if r.N == 0 {
					return openaitest.Script{Fault: openaitest.Fault{Kind: openaitest.Malformed}}
				}
				return openaitest.Script{}
			},
			code: ExitOK,
		},
		{
			name: "malformed events every time",
			script: func(openaitest.Received) openaitest.Script {
				return openaitest.Script{Fault: openaitest.Fault{Kind: openaitest.Malformed}}
			},
			code: ExitUsage,
			want: []string{"streamed, but each of its test requests failed (decode"},
			not:  []string{`"stream": true`},
		},
		{
			name: "streams even when asked not to, no /tokenize",
			script: func(openaitest.Received) openaitest.Script {
				return openaitest.Script{IgnoreStreamFalse: true, NoTokenize: true}
			},
			code: ExitOK,
		},
		{
			name: "an HTML page",
			script: func(openaitest.Received) openaitest.Script {
				return openaitest.Script{ContentType: "text/html", RawBody: []byte("<html><body>Welcome to nginx</body></html>")}
			},
			code: ExitUsage,
			want: []string{"Content-Type text/html, not text/event-stream", "Welcome to nginx", "is --api-base"},
			not:  []string{`"stream": true`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewFunc(t, tc.script)
			out := t.TempDir()
			code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--api-base", srv.URL, "--input-lengths", "64", "512",
				"--samples-per-length", "2", "--request-timeout", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stderr, n) {
					t.Errorf("stderr says %q:\n%s", n, stderr)
				}
			}
			if code == ExitUsage && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("the error is not one line:\n%s", stderr)
			}
			if tc.name == "streams even when asked not to, no /tokenize" {
				res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", prefill.ResultsFile))
				if res.Settings.LengthSource != "usage_probe" {
					t.Errorf("length_source %q, want usage_probe", res.Settings.LengthSource)
				}
			}
		})
	}
}
