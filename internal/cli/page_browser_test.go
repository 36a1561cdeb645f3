package cli

import (
	"context"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/report/chart"
	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// pageBrowser opens pages in a headless Chromium and collects what went
// wrong in them: uncaught exceptions, console errors, failed loads. In CI
// (CI set) a missing browser fails the test: the report page must be
// checked there; elsewhere the test is skipped.
type pageBrowser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newPageBrowser(t *testing.T) *pageBrowser {
	t.Helper()
	path, err := chart.FindBrowser("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs a Chromium to test the report page: %v", err)
		}
		t.Skipf("no Chromium to test the report page in: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.WindowSize(1200, 900),
		// The page must render offline: nothing resolves.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
	)...)
	t.Cleanup(cancelAlloc)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	// Starting the browser must not run under a deadline of its own.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	b := &pageBrowser{ctx: bctx}
	messages := chromedp.Console(bctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.add(string(m.Type) + ": " + m.Text + " " + m.URL)
			}
		}
	}()
	t.Cleanup(func() { cancelTab(); <-done })
	return b
}

func (b *pageBrowser) add(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// take returns the problems seen since the last call.
func (b *pageBrowser) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// pageState is what the test reads from the rendered page.
type pageState struct {
	Charts []struct {
		ID    string `json:"id"`
		Drawn bool   `json:"drawn"`
	} `json:"charts"`
	Header  []string   `json:"header"`
	Rows    [][]string `json:"rows"`
	Verdict string     `json:"verdict"`
	// Labels are the point names of the first series of the output
	// throughput vs latency chart, as ECharts holds them.
	Labels []string `json:"labels"`
}

const readPage = `(function () {
  var cells = function (tr) { return Array.prototype.map.call(tr.cells, function (c) { return c.textContent; }); };
  var charts = Array.prototype.map.call(document.querySelectorAll('div[id^="chart_"]'), function (el) {
    var c = el.querySelector("canvas, svg");
    return {id: el.id, drawn: !!c && c.clientWidth > 0 && c.clientHeight > 0 && !!echarts.getInstanceByDom(el)};
  });
  var labels = [];
  var el = document.getElementById("chart_output_throughput_vs_latency");
  if (el && echarts.getInstanceByDom(el)) {
    labels = echarts.getInstanceByDom(el).getOption().series[0].data.map(function (d) { return d.name; });
  }
  return {
    charts: charts,
    header: Array.prototype.map.call(document.querySelectorAll("#results thead th"), function (th) { return th.textContent; }),
    rows: Array.prototype.map.call(document.querySelectorAll("#results tbody tr"), cells),
    verdict: (document.getElementById("verdict") || {}).textContent || "",
    labels: labels
  };
})()`

// The report page of a stress run, opened from a copy of the run folder
// without its plots/ in a real browser: no error, every chart drawn, the
// points labelled with their levels, the results table showing the
// numbers of the results JSON, and sorting by a column.
func TestReportPageInBrowser(t *testing.T) {
	b := newPageBrowser(t)

	// The harness itself sees a failing page, or a clean page would
	// prove nothing.
	bad := "data:text/html," + url.PathEscape(`<script>console.error("x"); throw new Error("boom")</script>`)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(bad)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitFor(func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.problems) >= 2 })
	if got := b.take(); len(got) < 2 {
		t.Fatalf("the browser reported %q for a page that throws and logs an error", got)
	}

	srv := startTestSim(t, simengine.Options{})
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, t.Context(), Stress, stressArgs(srv.BaseURL(), out, "--concurrency-levels", "1", "4", "16")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run, err := filepath.EvalSymlinks(filepath.Join(out, "stress", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the page alone must render: everything is in it.
	copied := filepath.Join(t.TempDir(), "index.html")
	page, err := os.ReadFile(filepath.Join(run, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, page, 0o644); err != nil {
		t.Fatal(err)
	}

	u := url.URL{Scheme: "file", Path: copied}
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u.String())); err != nil {
		t.Fatalf("open %s: %v", u.String(), err)
	}
	st, err := chromedp.Run(b.ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatalf("read %s: %v", u.String(), err)
	}
	if p := b.take(); len(p) > 0 {
		t.Errorf("the page reported errors: %q", p)
	}

	res := readResults[stress.Results](t, filepath.Join(run, stress.ResultsFile))
	charts := stress.Charts(res.Config, res.Results)
	if len(st.Charts) != len(charts) {
		t.Errorf("%d charts on the page, want %d", len(st.Charts), len(charts))
	}
	for i, c := range st.Charts {
		if !c.Drawn {
			t.Errorf("chart %s has no canvas drawn", c.ID)
		}
		if i < len(charts) && c.ID != "chart_"+charts[i].Name {
			t.Errorf("chart %d is %s, want chart_%s", i, c.ID, charts[i].Name)
		}
	}
	if want := []string{"c=1", "c=4", "c=16"}; !slices.Equal(st.Labels, want) {
		t.Errorf("output throughput vs latency points are named %q, want %q", st.Labels, want)
	}
	if st.Verdict == "" {
		t.Error("the page shows no verdict")
	}

	// The table is the console's, from the results JSON.
	want, err := stress.Table(res.Config, res.Results).Grid()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Header, want.Header) {
		t.Errorf("table header %q, want %q", st.Header, want.Header)
	}
	if !slices.EqualFunc(st.Rows, want.Rows, slices.Equal) {
		t.Errorf("table rows\n%q\nwant\n%q", st.Rows, want.Rows)
	}
	// And, read independently of the table code, the numbers are the
	// JSON's: the level and the E2E P50 in ms, to the shown decimals.
	e2e := slices.Index(st.Header, "E2E P50 (ms)")
	if e2e < 0 || len(st.Rows) != len(res.Results) {
		t.Fatalf("no E2E P50 (ms) column in %q, or %d rows for %d points", st.Header, len(st.Rows), len(res.Results))
	}
	for i, p := range res.Results {
		level, err1 := strconv.ParseFloat(st.Rows[i][0], 64)
		ms, err2 := strconv.ParseFloat(st.Rows[i][e2e], 64)
		if err1 != nil || err2 != nil || level != p.Level || math.Abs(ms-1000*p.E2EP50) > 0.005+1e-9 {
			t.Errorf("row %d shows level %q, E2E P50 %q; the JSON has %g, %.4f ms", i, st.Rows[i][0], st.Rows[i][e2e], p.Level, 1000*p.E2EP50)
		}
	}

	// Clicking the header sorts: twice on the level column is descending,
	// in numeric order (as text, "4" would come before "16").
	sel := chromedp.CSS("#results thead th:first-child")
	if err := chromedp.Do(b.ctx, chromedp.Click(sel), chromedp.Click(sel)); err != nil {
		t.Fatalf("sort: %v", err)
	}
	levels, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`Array.prototype.map.call(document.querySelectorAll("#results tbody tr"), function (tr) { return tr.cells[0].textContent; })`))
	if err != nil {
		t.Fatalf("read the sorted table: %v", err)
	}
	if want := []string{"16", "4", "1"}; !slices.Equal(levels, want) {
		t.Errorf("after two clicks on the level header the rows are %q, want %q", levels, want)
	}
	if p := b.take(); len(p) > 0 {
		t.Errorf("sorting reported errors: %q", p)
	}
}

// waitFor polls cond for up to 5 s: browser events arrive asynchronously.
func waitFor(cond func() bool) {
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
