package report

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestRenderersStayInChart keeps measuring packages free of presentation:
// of the module's pkg/ packages only report/chart may depend, even
// indirectly, on the renderers (go-echarts, chromedp, golang.org/x/image,
// and gonum, which drew the PNG fallback before the built-in renderer). The
// benchmarks describe their charts with Chart and Series from this package.
//
// It runs "go list" from PATH rather than runtime.GOROOT()/bin/go, which
// is deprecated: go test puts the GOROOT/bin that built the test first on
// PATH, so this is the same toolchain.
func TestRenderersStayInChart(t *testing.T) {
	t.Parallel()
	const module = "github.com/veeksha-go/veeksha"
	renderers := []string{"github.com/go-echarts/", "github.com/chromedp/", "golang.org/x/image/", "gonum.org/"}
	allowed := module + "/pkg/report/chart"

	cmd := exec.CommandContext(t.Context(), "go", "list",
		"-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", module+"/pkg/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}

	benches := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, deps := fields[0], fields[1:]
		if strings.HasPrefix(pkg, module+"/pkg/bench/") {
			benches++
		}
		if pkg == allowed {
			continue
		}
		var bad []string
		for _, d := range deps {
			for _, r := range renderers {
				if strings.HasPrefix(d, r) {
					bad = append(bad, d)
					break
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %d renderer packages (first %s); only %s may import them", pkg, len(bad), bad[0], allowed)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Guard against a pattern that silently stops matching the benchmarks.
	if benches == 0 {
		t.Fatalf("go list %s/pkg/... listed no pkg/bench package", module)
	}
}
