package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/internal/openaitest"
	"github.com/veeksha-go/veeksha/pkg/bench/decode"
	"github.com/veeksha-go/veeksha/pkg/bench/prefill"
	"github.com/veeksha-go/veeksha/pkg/simengine"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// Checks never vanish: against a server without /metrics, prefix_cache
// and server_batch are SKIP with the reason, in the console table and in
// validation.json, and the run still passes (exit 0).
func TestServerChecksSkipWithoutMetrics(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewFunc(t, func(openaitest.Received) openaitest.Script {
		return openaitest.Script{TTFT: 2 * time.Millisecond, Gap: time.Millisecond}
	})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Decode, "--api-base", srv.URL, "--batch-sizes", "2",
		"--input-lengths", "64", "--samples-per-length", "5", "--output-dir", out, "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d, want %d: a SKIP never fails a run\nstdout:\n%s\nstderr:\n%s", code, ExitOK, stdout, stderr)
	}
	rep := readResults[validate.Report](t, filepath.Join(out, "decode", "latest", "validation.json"))
	for _, title := range []string{"prefix_cache [bs=2,il=64]", "server_batch [bs=2,il=64]"} {
		c, ok := findCheck(&rep, title)
		if !ok || c.Status != validate.Skip || !strings.Contains(c.Detail, "/metrics was not scraped") {
			t.Errorf("%s = %+v (found %v), want SKIP: the server has no /metrics", title, c, ok)
		}
	}
	for _, want := range []string{"SKIP", "prefix_cache", "server_batch", "2 skipped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the console lacks %q:\n%s", want, stdout)
		}
	}
}

// A point far shorter than the 200 ms scrape interval still gets its
// prefix_cache verdict: the runner scrapes /metrics at the point's start
// and end. server_batch is there too, evaluated or SKIP with the reason.
func TestShortPointKeepsServerChecks(t *testing.T) {
	t.Parallel()
	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--api-base", srv.BaseURL(), "--input-lengths", "64",
		"--samples-per-length", "1", "--warmup-requests", "0", "--output-tokens", "1", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res := readResults[prefill.Results](t, filepath.Join(out, "prefill", "latest", "prefill_results.json"))
	if res.Server == nil || !res.Server.Bracketed || res.Server.PrefixHits == nil {
		t.Fatalf("server metrics %+v, want counters from before and after the point", res.Server)
	}
	if c, ok := findCheck(res.Validation, "prefix_cache"); !ok || c.Status != validate.Pass {
		t.Errorf("prefix_cache = %+v (found %v), want PASS from the point's start and end scrapes", c, ok)
	}

	out = t.TempDir()
	code, stdout, stderr = runCLI(t, t.Context(), Decode, "--api-base", srv.BaseURL(), "--batch-sizes", "1",
		"--input-lengths", "64", "--samples-per-length", "1", "--engine-chunk-size", "512", "--output-dir", out, "--quiet", "--max-client-lag", "10s")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dres := readResults[decode.Results](t, filepath.Join(out, "decode", "latest", "decode_results.json"))
	c, ok := findCheck(dres.Validation, "server_batch [bs=1,il=64]")
	switch {
	case !ok:
		t.Errorf("server_batch vanished from %+v", dres.Validation.Checks)
	case c.Status == validate.Skip && !strings.Contains(c.Detail, "no /metrics scrape while the point's requests ran"):
		t.Errorf("server_batch = %+v: a SKIP without the reason", c)
	case c.Status != validate.Skip && c.Status != validate.Pass:
		t.Errorf("server_batch = %+v, want PASS or SKIP", c)
	}
	if c, ok := findCheck(dres.Validation, "prefix_cache [bs=1,il=64]"); !ok || c.Status != validate.Pass {
		t.Errorf("prefix_cache [bs=1,il=64] = %+v (found %v), want PASS", c, ok)
	}
}
