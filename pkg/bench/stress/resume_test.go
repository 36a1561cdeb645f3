package stress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
)

// writeLevel saves a level as a run does: its records, then (when the
// level ended) its level.json.
func writeLevel(t *testing.T, dir string, run LevelRun, ended bool) {
	t.Helper()
	cfg := Config{TrafficMode: run.Config.TrafficMode}
	folder := filepath.Join(dir, cfg.LevelName(run.Level))
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(folder, RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := result.WriteJSONL(f, run.Requests); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !ended {
		return
	}
	lf, err := os.Create(filepath.Join(folder, LevelFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := report.WriteJSON(lf, struct {
		LevelRun
		Point Point `json:"point"`
	}{run, Analyze(run)}); err != nil {
		t.Fatal(err)
	}
}

// An unfinished run (a .partial folder without results, killed during
// its second level) resumes: the ended level is reused with its records,
// the unfinished one is left to run again, and the workload shape comes
// from the level's conditions.
func TestLoadResumeUnfinished(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "2026-12-01_10-00-00.partial")
	cond := LevelRunConditions{InputLength: 64, OutputLength: 4, TrafficMode: FixedClients, PointDuration: sec(10), WarmupDuration: sec(2), GracePeriod: sec(1)}
	done := LevelRun{Level: 1, Index: 0, EndReason: result.EndCompleted, Config: cond}
	for i := range 12 {
		done.Requests = append(done.Requests, req(i, 2*time.Second+time.Duration(i)*500*time.Millisecond))
	}
	writeLevel(t, dir, done, true)
	running := LevelRun{Level: 2, Index: 1, Config: cond, Requests: done.Requests[:3]}
	writeLevel(t, dir, running, false)

	r, err := LoadResume(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Unfinished || len(r.Levels) != 1 || r.Levels[0].Level != 1 || len(r.Levels[0].Requests) != 12 {
		t.Fatalf("resume = unfinished %v, %d levels (%+v), want level 1 with its 12 records", r.Unfinished, len(r.Levels), r.Levels)
	}
	if r.Shape != (Shape{InputLength: 64, OutputLength: 4, TrafficMode: FixedClients}) {
		t.Errorf("shape = %+v", r.Shape)
	}

	// Nothing given: the resumed run's workload is taken.
	cfg := baseConfig()
	cfg.InputLength, cfg.OutputLength, cfg.TrafficMode = DefaultInputLength, DefaultOutputLength, FixedRate
	none := func(string) bool { return false }
	warnings, err := r.Adopt(&cfg, none)
	if err != nil || cfg.InputLength != 64 || cfg.OutputLength != 4 || cfg.TrafficMode != FixedClients || len(warnings) != 0 {
		t.Errorf("Adopt = %v, %v; cfg %d/%d/%s", warnings, err, cfg.InputLength, cfg.OutputLength, cfg.TrafficMode)
	}
	// Given and equal: fine; given and different: refused.
	cfg = baseConfig()
	cfg.InputLength = 64
	if _, err := r.Adopt(&cfg, func(f string) bool { return f == "input-length" }); err != nil {
		t.Errorf("explicit equal --input-length refused: %v", err)
	}
	cfg.OutputLength = 8
	_, err = r.Adopt(&cfg, func(f string) bool { return f == "output-length" })
	if err == nil || !strings.Contains(err.Error(), "--output-length 4, this run asks for 8") {
		t.Errorf("explicit conflicting --output-length: %v", err)
	}
	// Other durations: a warning per reused level.
	cfg = baseConfig()
	cfg.PointDuration = sec(30)
	warnings, err = r.Adopt(&cfg, none)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "c=1 was measured with --point-duration 10s") {
		t.Errorf("durations differ: warnings %q, err %v", warnings, err)
	}

	// A folder with no ended level has nothing to resume.
	empty := filepath.Join(t.TempDir(), "x.partial")
	writeLevel(t, empty, running, false)
	if _, err := LoadResume(empty); err == nil || !strings.Contains(err.Error(), "nothing to resume") {
		t.Errorf("LoadResume(no ended level) = %v", err)
	}
}
