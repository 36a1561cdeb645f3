package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// fakeServer answers GET /v1/models with models (a JSON body) or
// modelsStatus, and POST /v1/chat/completions with chatStatus and chatBody.
type fakeServer struct {
	modelsStatus int
	models       string
	chatStatus   int
	chatBody     string
}

func (f fakeServer) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			w.WriteHeader(f.modelsStatus)
			_, _ = io.WriteString(w, f.models)
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.chatStatus)
			_, _ = io.WriteString(w, f.chatBody)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// The setup errors pkg/client finds reach the user as one-line hints that
// name the flag to change.
func TestSetupHints(t *testing.T) {
	t.Parallel()
	const listed = `{"object":"list","data":[{"id":"m","object":"model"}]}`
	const apiErr = `{"error":{"message":"%s"}}`
	tests := []struct {
		name  string
		srv   fakeServer
		model string
		want  string
	}{
		{"key refused on the list", fakeServer{401, "", 200, ""}, "",
			"refused the API key: set --api-key or VEEKSHA_API_KEY"},
		{"no models listed", fakeServer{200, `{"object":"list","data":[]}`, 200, ""}, "",
			"lists no models: name one with --model"},
		{"no list", fakeServer{500, "", 200, ""}, "",
			"/v1/models (list models: "},
		// Not in the list: tried anyway (hosted APIs take aliases they do
		// not list); this server then fails the preflight, and the error
		// says the model was not listed.
		{"model not served", fakeServer{200, listed, 200, ""}, "other",
			`and --model "other" is not in the server's list; it lists: `},
		{"model unknown to the endpoint", fakeServer{500, "", 404, strings.Replace(apiErr, "%s", "model x not found", 1)}, "x",
			`--model "x": the server does not know it (HTTP 404: model x not found)`},
		{"key refused on the endpoint", fakeServer{200, listed, 403, ""}, "",
			"the server refused the API key (403): set --api-key or VEEKSHA_API_KEY"},
		{"method not allowed", fakeServer{200, listed, 405, ""}, "",
			"/v1/chat/completions answered 405: this server has no chat endpoint (try --endpoint completions, or check --api-base)"},
		{"other status", fakeServer{200, listed, 422, strings.Replace(apiErr, "%s", "bad field", 1)}, "",
			"the server answered 422 to a test request at "},
		{"not streaming", fakeServer{200, listed, 200, `{"choices":[{"message":{"content":"hi"}}]}`}, "",
			`it must support "stream": true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			args := []string{"--output-dir", out, "--request-timeout", "10", "--api-base", tt.srv.start(t)}
			if tt.model != "" {
				args = append(args, "--model", tt.model)
			}
			code, stdout, stderr := runCLI(t, t.Context(), Prefill, args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
			}
			// The last line is the error; a warning may come before it
			// (a model list that cannot be read, with --model given).
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, "error: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last line of stderr %q does not contain %q", last, tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a setup failure created %d entries in the output dir", len(entries))
			}
		})
	}
}
