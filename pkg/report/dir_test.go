package report

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// runStart is a fixed start time; the local zone is not UTC, so a test
// catches a folder named in local time.
var runStart = time.Date(2026, 3, 7, 23, 7, 30, 0, time.FixedZone("X", 2*3600))

// entries lists the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	return names
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestCreateFinishLatest(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	d, err := Create(base, "prefill", runStart)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parent := filepath.Join(base, "prefill")
	if got, want := d.Path(), filepath.Join(parent, "2026-03-07_21-07-30.partial"); got != want {
		t.Errorf("Path() = %s, want %s", got, want)
	}
	if got, want := d.FinalPath(), filepath.Join(parent, "2026-03-07_21-07-30"); got != want {
		t.Errorf("FinalPath() = %s, want %s", got, want)
	}
	if err := d.WriteFile("a.json", writeString("{}\n")); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	// Before Finish, only the staging name exists: a crash here leaves no
	// folder that looks complete, and no latest link.
	if got, want := entries(t, parent), []string{"2026-03-07_21-07-30.partial"}; !slices.Equal(got, want) {
		t.Errorf("before Finish: %s holds %v, want %v", parent, got, want)
	}
	if err := d.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got, want := entries(t, parent), []string{"2026-03-07_21-07-30", "latest"}; !slices.Equal(got, want) {
		t.Errorf("after Finish: %s holds %v, want %v", parent, got, want)
	}
	target, err := os.Readlink(filepath.Join(parent, "latest"))
	if err != nil {
		t.Fatalf("Readlink(latest): %v", err)
	}
	if target != "2026-03-07_21-07-30" {
		t.Errorf("latest -> %q, want the bare relative name %q", target, "2026-03-07_21-07-30")
	}
	b, err := os.ReadFile(filepath.Join(parent, "latest", "a.json"))
	if err != nil || string(b) != "{}\n" {
		t.Errorf("latest/a.json = %q, %v; want %q", b, err, "{}\n")
	}
	if got := d.Path(); got != d.FinalPath() {
		t.Errorf("Path() after Finish = %s, want %s", got, d.FinalPath())
	}
	if err := d.Finish(); err != nil {
		t.Errorf("second Finish: %v, want nil", err)
	}
}

func TestSameSecondRunsGetDistinctFolders(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	// First run finishes, second is still running, third starts: all in the
	// same second. Names must differ whether the earlier one finished or not.
	d1, err := Create(base, "decode", runStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Finish(); err != nil {
		t.Fatal(err)
	}
	d2, err := Create(base, "decode", runStart)
	if err != nil {
		t.Fatal(err)
	}
	d3, err := Create(base, "decode", runStart)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{d1.Name(), d2.Name(), d3.Name()}
	want := []string{"2026-03-07_21-07-30", "2026-03-07_21-07-30_2", "2026-03-07_21-07-30_3"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if err := d3.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := d2.Finish(); err != nil {
		t.Fatal(err)
	}
	// latest follows the last Finish.
	target, err := os.Readlink(filepath.Join(base, "decode", "latest"))
	if err != nil || target != d2.Name() {
		t.Errorf("latest -> %q, %v; want %q", target, err, d2.Name())
	}
}

func TestCreateConcurrent(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	const n = 16
	dirs := make([]*Dir, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dirs[i], errs[i] = Create(base, "stress", runStart)
			if errs[i] == nil && i%2 == 0 {
				errs[i] = dirs[i].Finish()
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, d := range dirs {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		if seen[d.Name()] {
			t.Errorf("two runs got folder %s", d.Name())
		}
		seen[d.Name()] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct folders, want %d", len(seen), n)
	}
}

func TestFinishReplacesStaleTempLinks(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	parent := filepath.Join(base, "prefill")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crashed run: the original tool's temp name, one like
	// ours, and an old latest pointing at a missing folder.
	for _, name := range []string{"latest.tmp", ".latest.tmp-stale"} {
		if err := os.Symlink("gone", filepath.Join(parent, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("gone", filepath.Join(parent, "latest")); err != nil {
		t.Fatal(err)
	}
	d, err := Create(base, "prefill", runStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(); err != nil {
		t.Fatalf("Finish with stale links: %v", err)
	}
	target, err := os.Readlink(filepath.Join(parent, "latest"))
	if err != nil || target != d.Name() {
		t.Errorf("latest -> %q, %v; want %q", target, err, d.Name())
	}
	want := []string{".latest.tmp-stale", d.Name(), "latest", "latest.tmp"}
	if got := entries(t, parent); !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v (no new temp link left behind)", parent, got, want)
	}
}

func TestFinishRefusesExistingFinalFolder(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	d, err := Create(base, "prefill", runStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d.FinalPath(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Finish over an existing folder = %v, want an 'already exists' error", err)
	}
	if _, err := os.Stat(d.Path()); err != nil {
		t.Errorf("staging folder lost after failed Finish: %v", err)
	}
}

func TestCreateBadInput(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	tests := []struct{ name, base, bench string }{
		{"empty base", "", "prefill"},
		{"empty bench", base, ""},
		{"bench with separator", base, "a/b"},
		{"bench dotdot", base, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d, err := Create(tt.base, tt.bench, runStart); err == nil {
				t.Errorf("Create(%q, %q) = %s, want an error", tt.base, tt.bench, d.Path())
			}
		})
	}
	// A file where the bench folder should be.
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(file, "prefill", runStart); err == nil {
		t.Errorf("Create under a file: want an error")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	d, err := Create(base, "prefill", runStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("plots/sub/x.txt", writeString("one")); err != nil {
		t.Fatalf("WriteFile into new folders: %v", err)
	}
	if err := d.WriteFile("plots/sub/x.txt", writeString("two")); err != nil {
		t.Fatalf("WriteFile over a file: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(d.Path(), "plots", "sub", "x.txt"))
	if err != nil || string(got) != "two" {
		t.Errorf("x.txt = %q, %v; want %q", got, err, "two")
	}
	fi, err := os.Stat(filepath.Join(d.Path(), "plots", "sub", "x.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("mode = %v, want 0644", got)
	}

	// A failing writer leaves the old content and no temp file.
	boom := errors.New("boom")
	err = d.WriteFile("plots/sub/x.txt", func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteFile with failing writer = %v, want it to wrap %v", err, boom)
	}
	got, _ = os.ReadFile(filepath.Join(d.Path(), "plots", "sub", "x.txt"))
	if string(got) != "two" {
		t.Errorf("after failed write x.txt = %q, want %q", got, "two")
	}
	if got, want := entries(t, filepath.Join(d.Path(), "plots", "sub")), []string{"x.txt"}; !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v (no temp files)", got, want)
	}

	for _, rel := range []string{"", "../escape.txt", "/abs.txt", "a/../../b"} {
		if err := d.WriteFile(rel, writeString("x")); err == nil {
			t.Errorf("WriteFile(%q) = nil, want an error", rel)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "prefill", "escape.txt")); err == nil {
		t.Errorf("WriteFile escaped the run folder")
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	d, err := Create(base, "stress", runStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	final := d.FinalPath()
	tests := []struct {
		name, bench, arg string
		want             string // "" = error
		wantErr          string
	}{
		{name: "empty means latest", bench: "stress", arg: "", want: final},
		{name: "latest", bench: "stress", arg: "latest", want: final},
		{name: "path to the latest link", bench: "stress", arg: filepath.Join(base, "stress", "latest"), want: final},
		{name: "run folder", bench: "stress", arg: final, want: final},
		{name: "no earlier run", bench: "decode", arg: "", wantErr: "no earlier decode run in " + filepath.Join(base, "decode")},
		{name: "missing folder", bench: "stress", arg: filepath.Join(base, "nope"), wantErr: filepath.Join(base, "nope")},
		{name: "a file", bench: "stress", arg: file, wantErr: "is not a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(base, tt.bench, tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Resolve(%q) = %q, %v; want an error containing %q", tt.arg, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Resolve(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
			}
		})
	}
}

func TestResolveDanglingLatest(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	parent := filepath.Join(base, "prefill")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone", filepath.Join(parent, "latest")); err != nil {
		t.Fatal(err)
	}
	if got, err := Resolve(base, "prefill", "latest"); err == nil || !strings.Contains(err.Error(), "no earlier prefill run") {
		t.Errorf("Resolve with dangling latest = %q, %v; want a 'no earlier prefill run' error", got, err)
	}
}
