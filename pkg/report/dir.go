package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// TimeLayout is the layout of a run folder's name: the run's start in UTC,
// e.g. "2026-03-07_23-07-30".
const TimeLayout = "2006-01-02_15-04-05"

// LatestName is the name of the symbolic link, beside the run folders of a
// benchmark, that points at the newest finished run.
const LatestName = "latest"

// StagingSuffix is appended to a run folder's name while the run writes into
// it. A folder with this suffix is an unfinished (or crashed) run.
const StagingSuffix = ".partial"

// maxAttempts bounds the search for a free folder name (_2, _3, ...).
const maxAttempts = 1000

// Dir is one run's output folder. Create makes it under a staging name
// (<ts>.partial) and Finish renames it to its final name (<ts>), so a crash
// never leaves a half-written folder that looks complete.
//
// A Dir is not safe for concurrent use by several goroutines for Finish;
// WriteFile may be called concurrently for different files before Finish.
type Dir struct {
	parent   string // <base>/<bench>
	name     string // final bare folder name: <ts> or <ts>_N
	finished bool
}

// Create makes a new run folder for bench under base: it creates
// <base>/<bench>/<ts>.partial, where <ts> is now in UTC formatted with
// TimeLayout. When that name, or the final name <ts>, is taken (two runs in
// the same second, or a concurrent process), it tries <ts>_2, <ts>_3 and so
// on. The claim relies on os.Mkdir failing with fs.ErrExist, so two
// processes never get the same folder.
func Create(base, bench string, now time.Time) (*Dir, error) {
	if base == "" {
		return nil, errors.New("create run folder: output dir is empty")
	}
	if bench == "" || bench != filepath.Base(bench) || bench == "." || bench == ".." {
		return nil, fmt.Errorf("create run folder: bench name %q is not a plain folder name", bench)
	}
	parent := filepath.Join(base, bench)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create run folder in %s: %w", parent, err)
	}
	ts := now.UTC().Format(TimeLayout)
	for i := 1; i <= maxAttempts; i++ {
		name := ts
		if i > 1 {
			name = ts + "_" + strconv.Itoa(i)
		}
		staging := filepath.Join(parent, name+StagingSuffix)
		err := os.Mkdir(staging, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue // another run (maybe in another process) holds this name
		}
		if err != nil {
			return nil, fmt.Errorf("create run folder %s: %w", staging, err)
		}
		// We hold <name>.partial. Only its holder renames it to <name>, so if
		// <name> does not exist now, no other run can finish under it.
		if _, err := os.Lstat(filepath.Join(parent, name)); err == nil {
			if err := os.Remove(staging); err != nil {
				return nil, fmt.Errorf("release run folder %s: %w", staging, err)
			}
			continue // a finished run already has this name
		} else if !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(staging)
			return nil, fmt.Errorf("check run folder %s: %w", filepath.Join(parent, name), err)
		}
		return &Dir{parent: parent, name: name}, nil
	}
	return nil, fmt.Errorf("create run folder in %s: %d folders named %s_N already exist", parent, maxAttempts, ts)
}

// Name is the run folder's final bare name, e.g. "2026-03-07_23-07-30" or
// "2026-03-07_23-07-30_2".
func (d *Dir) Name() string { return d.name }

// Path is where files are written now: the staging folder before Finish,
// the final folder after it.
func (d *Dir) Path() string {
	if d.finished {
		return d.FinalPath()
	}
	return filepath.Join(d.parent, d.name+StagingSuffix)
}

// FinalPath is where the run folder is after Finish.
func (d *Dir) FinalPath() string { return filepath.Join(d.parent, d.name) }

// WriteFile writes the file rel (a slash- or OS-separated path inside the
// run folder, e.g. "plots/x.png") atomically: it creates the parent folders,
// lets write fill a temporary file in the same folder, syncs it to disk and
// renames it to its name. Readers see the old file or the whole new one,
// never part of it; on error nothing is left behind.
func (d *Dir) WriteFile(rel string, write func(io.Writer) error) error {
	rel = filepath.FromSlash(rel)
	if rel == "" || !filepath.IsLocal(rel) {
		return fmt.Errorf("write %q: not a relative path inside the run folder", rel)
	}
	return WriteFileAtomic(filepath.Join(d.Path(), rel), write)
}

// WriteFileAtomic writes the file at path atomically, as Dir.WriteFile
// does, creating its parent folders. The file gets mode 0644.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("write %q: no file name", path)
	}
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Finish renames the staging folder to its final name and points
// <base>/<bench>/latest at it. The link is relative (its target is the bare
// folder name), so the whole output folder can be moved or copied, and it is
// replaced atomically: a new link is made under a temporary name and renamed
// over `latest`. Calling Finish again does nothing.
//
// An error about `latest` leaves the run folder complete under its final
// name; the error says so.
func (d *Dir) Finish() error {
	if d.finished {
		return nil
	}
	final := d.FinalPath()
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("finish run: %s already exists", final)
	}
	if err := os.Rename(d.Path(), final); err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	d.finished = true
	if err := d.linkLatest(); err != nil {
		return fmt.Errorf("run complete in %s, but %w", final, err)
	}
	if err := syncDir(d.parent); err != nil {
		return fmt.Errorf("run complete in %s, but sync %s: %w", final, d.parent, err)
	}
	return nil
}

// linkLatest makes `latest` point at d.name. The temporary link gets a
// random name, so concurrent runs (in this process or others) never share
// it, and a stale one left by a crashed run is never in the way.
func (d *Dir) linkLatest() error {
	latest := filepath.Join(d.parent, LatestName)
	for range maxAttempts {
		tmp := filepath.Join(d.parent, "."+LatestName+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		err := os.Symlink(d.name, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("point %s at %s: %w", latest, d.name, err)
		}
		if err := os.Rename(tmp, latest); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("point %s at %s: %w", latest, d.name, err)
		}
		return nil
	}
	return fmt.Errorf("point %s at %s: no free temporary name", latest, d.name)
}

// syncDir flushes a folder's entries (renames, new links) to disk. Windows
// cannot sync a folder, and does not need to.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Resolve finds an earlier run folder of bench under base, for
// --validate-only and --resume-dir. An empty arg or "latest" means the
// folder <base>/<bench>/latest points at; any other arg must be an existing
// folder (a path to a `latest` link is followed). It returns the folder's
// path.
func Resolve(base, bench, arg string) (string, error) {
	if arg == "" || arg == LatestName {
		parent := filepath.Join(base, bench)
		dir, err := followLink(filepath.Join(parent, LatestName))
		if err != nil {
			return "", fmt.Errorf("no earlier %s run in %s: %w", bench, parent, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("no earlier %s run in %s: %w", bench, parent, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("no earlier %s run in %s: %s is not a folder", bench, parent, dir)
		}
		return dir, nil
	}
	dir, err := followLink(arg)
	if err != nil {
		return "", fmt.Errorf("run folder %s: %w", arg, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("run folder %s: %w", arg, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("run folder %s is not a folder", arg)
	}
	return dir, nil
}

// followLink returns path itself, or, when path is a symbolic link, the
// path it points at (a relative target is taken from the link's folder).
func followLink(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := os.Readlink(path)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	return target, nil
}
