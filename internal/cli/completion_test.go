package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testMainEnv makes the test binary run as a benchmark binary (its value
// names the benchmark), so that a shell can call it back for completions.
const testMainEnv = "VEEKSHA_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if b := os.Getenv(testMainEnv); b != "" {
		os.Exit(Main(Bench(b), os.Args[1:], os.Stdout, os.Stderr, Build{Version: "test"}))
	}
	if os.Getenv(testSimEnv) != "" {
		os.Exit(serveTestSim())
	}
	os.Exit(m.Run())
}

// lines splits a command's output into sorted lines.
func lines(out string) []string {
	var got []string
	if s := strings.TrimSuffix(out, "\n"); s != "" {
		got = strings.Split(s, "\n")
	}
	slices.Sort(got)
	return got
}

// completionDir is a folder with a file and two subfolders, one with a
// space in its name, for folder-name completion; the test runs in it.
func completionDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alpha.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a dir", "sub"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// completeCLI runs benchmark b in-process as a shell asking for
// completions of line with the cursor at point, and returns its exit code,
// the words it offered and stderr.
func completeCLI(t *testing.T, b Bench, line string, point int) (int, []string, string) {
	t.Helper()
	t.Setenv("COMP_LINE", line)
	t.Setenv("COMP_POINT", strconv.Itoa(point))
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, now: time.Now, completing: true}
	code := run(t.Context(), b, nil, e)
	return code, lines(out.String()), errOut.String()
}

// kongplete answers from the binaries' own flag structs. Not parallel:
// COMP_LINE is in the process environment, where kongplete reads it.
func TestCompleteLine(t *testing.T) {
	t.Chdir(completionDir(t))
	tests := []struct {
		name  string
		bench Bench
		line  string
		point int // cursor position; -1 for the end of the line
		want  []string
	}{
		{"flag prefix", Prefill, "veeksha.microbench.prefill --endp", -1, []string{"--endpoint"}},
		{"own flag", Decode, "veeksha.microbench.decode --batch-s", -1, []string{"--batch-sizes"}},
		{"own flags", Stress, "veeksha.microbench.stress --concurrency-", -1, []string{"--concurrency-levels", "--concurrency-max", "--concurrency-min", "--concurrency-points"}},
		{"short flags", Prefill, "veeksha.microbench.prefill -", -1, nil}, // checked below
		{"enum value", Prefill, "veeksha.microbench.prefill --endpoint ", -1, []string{"chat", "completions"}},
		{"enum after =", Decode, "veeksha.microbench.decode -q --log-level=w", -1, []string{"warn"}},
		{"shells", Stress, "veeksha.microbench.stress --completion ", -1, []string{"bash", "fish", "zsh"}},
		{"folders only", Prefill, "veeksha.microbench.prefill --output-dir ", -1, []string{"./", "a dir/", "sub/"}},
		{"folder prefix", Prefill, "veeksha.microbench.prefill --output-dir s", -1, []string{"sub/"}},
		{"free text", Prefill, "veeksha.microbench.prefill --model ", -1, nil},
		{"argument", Prefill, "veeksha.microbench.prefill --validate-only ", -1, nil},
		{"cursor inside the line", Prefill, "veeksha.microbench.prefill --endpoint c --seed 1", len("veeksha.microbench.prefill --endpoint c"), []string{"chat", "completions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			point := tt.point
			if point < 0 {
				point = len(tt.line)
			}
			code, got, stderr := completeCLI(t, tt.bench, tt.line, point)
			if code != ExitOK || stderr != "" {
				t.Fatalf("complete %q: exit %d, stderr %q", tt.line, code, stderr)
			}
			if tt.name == "short flags" {
				for _, w := range []string{"-q", "-h", "--quiet", "--input-lengths", "--completion"} {
					if !slices.Contains(got, w) {
						t.Errorf("complete %q = %q, lacks %q", tt.line, got, w)
					}
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("complete %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// COMP_LINE is read by Main only: a run in-process with it set in the
// environment parses its arguments as usual.
func TestCompleteOnlyWhenAsked(t *testing.T) {
	t.Setenv("COMP_LINE", "veeksha.microbench.prefill --endp")
	code, stdout, stderr := runCLI(t, t.Context(), Prefill, "--version")
	if code != ExitOK || !strings.Contains(stdout, "test") || strings.Contains(stdout, "--endpoint") {
		t.Errorf("--version with COMP_LINE set: exit %d, stdout %q, stderr %q; want the version", code, stdout, stderr)
	}
}

func TestCompletionFlag(t *testing.T) {
	t.Parallel()
	for _, b := range []Bench{Prefill, Decode, Stress} {
		for _, shell := range completionShells {
			t.Run(string(b)+"/"+shell, func(t *testing.T) {
				t.Parallel()
				// A run needs no flag to print the script.
				code, stdout, stderr := runCLI(t, t.Context(), b, "--completion", shell)
				if code != ExitOK {
					t.Fatalf("--completion %s: exit %d, stderr:\n%s", shell, code, stderr)
				}
				want, err := completionScript(shell, b.Binary(), "")
				if err != nil {
					t.Fatal(err)
				}
				if stdout != want {
					t.Errorf("--completion %s printed:\n%s\nwant:\n%s", shell, stdout, want)
				}
			})
		}
	}
	t.Run("unknown shell", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := runCLI(t, t.Context(), Prefill, "--completion", "tcsh")
		if code != ExitUsage || !strings.Contains(stderr, `unknown shell "tcsh"`) {
			t.Errorf("--completion tcsh: exit %d, stderr %q; want a usage error naming the shell", code, stderr)
		}
	})
}

func TestCompletionScriptQuoting(t *testing.T) {
	t.Parallel()
	bin := `/opt/it's here/veeksha.microbench.prefill`
	tests := []struct{ shell, want string }{
		{"bash", `complete -C ''\''/opt/it'\''\'\'''\''s here/veeksha.microbench.prefill'\''' veeksha.microbench.prefill`},
		{"zsh", `complete -C ''\''/opt/it'\''\'\'''\''s here/veeksha.microbench.prefill'\''' veeksha.microbench.prefill`},
		{"fish", `    '/opt/it\'s here/veeksha.microbench.prefill' | string replace`},
	}
	for _, tt := range tests {
		s, err := completionScript(tt.shell, "veeksha.microbench.prefill", bin)
		if err != nil || !strings.Contains(s, tt.want) {
			t.Errorf("completionScript(%s) = %v:\n%s\nwant a line with %s", tt.shell, err, s, tt.want)
		}
	}
	if _, err := completionScript("tcsh", "veeksha.microbench.prefill", bin); err == nil {
		t.Errorf("completionScript(tcsh) error = nil, want an error")
	}
	if _, err := completionScript("bash", "a b", bin); err == nil {
		t.Errorf(`completionScript(bash, "a b") error = nil, want an error`)
	}
}

// shellOrSkip returns the path of a shell, or skips the test when it is
// not installed (bash always is; zsh and fish may not be). In CI, where
// .ci/run installs them, a missing shell fails the test instead.
func shellOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil && os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed: .ci/run installs it", name)
	}
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return p
}

// installedScript writes the script --completion shell prints for a
// prefill binary whose path needs quoting (a link to the test binary,
// which TestMain turns into the benchmark), and returns the script's path.
func installedScript(t *testing.T, shell string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "it's here")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, Prefill.Binary())
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, now: time.Now, executable: bin}
	if code := run(t.Context(), Prefill, []string{"--completion", shell}, e); code != ExitOK {
		t.Fatalf("--completion %s: exit %d, stderr:\n%s", shell, code, errOut.String())
	}
	script := filepath.Join(t.TempDir(), "completion."+shell)
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return script
}

// shellCompletion runs a shell program with args in a folder made by
// completionDir, with the test binary set to run as prefill, and returns
// its sorted output lines.
func shellCompletion(t *testing.T, shell string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, args...)
	cmd.Dir = completionDir(t)
	cmd.Env = append(os.Environ(), testMainEnv+"="+string(Prefill))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, stderr.String())
	}
	return lines(string(out))
}

// The scripts, loaded by the shell, make it call the binary back and offer
// what the binary answers. Only a terminal makes bash complete, so the
// test reads the command the script registered (complete -p) and runs it
// the way bash does: as shell code, with COMP_LINE and COMP_POINT set and
// the command, the word and the word before it as arguments. zsh runs it
// through compgen -C of its bashcompinit; fish completes a line itself
// with complete -C.
func TestCompletionShells(t *testing.T) {
	t.Parallel()
	type completion struct {
		line, word string // word: the word being completed, split at = the way bash splits it
		want       []string
	}
	common := []completion{
		{"veeksha.microbench.prefill --endp", "--endp", []string{"--endpoint"}},
		{"veeksha.microbench.prefill --endpoint ", "", []string{"chat", "completions"}},
		{"veeksha.microbench.prefill -q --output-dir s", "s", []string{"sub/"}},
		{"veeksha.microbench.prefill --model ", "", nil},
	}
	// zsh's bashcompinit splits the answer at spaces: "a dir/" would come
	// back as "a" and "dir/".
	spaced := completion{"veeksha.microbench.prefill -q --output-dir a", "a", []string{"a dir/"}}
	// The command registered for the prefill binary: what bash and zsh
	// eval, with COMP_LINE set, when completing.
	const bashCmd = `capture() { local OPTIND o; while getopts C: o; do [[ $o == C ]] && cmd=$OPTARG; done; }
spec=$(complete -p veeksha.microbench.prefill) || exit 3
eval "capture ${spec#complete }"`
	tests := []struct {
		shell string
		prog  string // $1 the script, $2 the line, $3 the word
		extra []completion
	}{
		{"bash", `source "$1"
` + bashCmd + `
export COMP_LINE=$2 COMP_POINT=${#2}
eval "$cmd veeksha.microbench.prefill \"\$3\" prev"`, []completion{
			spaced, {"veeksha.microbench.prefill --endpoint=c", "c", []string{"chat", "completions"}},
		}},
		{"zsh", `autoload -U compinit && compinit -u -D
source $1
a=(${(z)_comps[veeksha.microbench.prefill]})
[[ $a[1] == _bash_complete ]] || exit 3
shift a
export COMP_LINE=$2 COMP_POINT=${#2}
compgen ${(Q)a[@]} -- $3`, nil},
		{"fish", `source $argv[1]; complete -C $argv[2]`, []completion{
			spaced,
			{"veeksha.microbench.prefill --endpoint=c", "", []string{"--endpoint=chat", "--endpoint=completions"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			t.Parallel()
			sh := shellOrSkip(t, tt.shell)
			script := installedScript(t, tt.shell)
			for _, c := range append(common, tt.extra...) {
				var args []string
				switch tt.shell {
				case "bash":
					args = []string{"--norc", "--noprofile", "-c", tt.prog, "bash", script, c.line, c.word}
				case "zsh":
					args = []string{"-f", "-c", tt.prog, "zsh", script, c.line, c.word}
				case "fish":
					args = []string{"--no-config", "-c", tt.prog, script, c.line}
				}
				if got := shellCompletion(t, sh, args...); !slices.Equal(got, c.want) {
					t.Errorf("%s: complete %q = %q, want %q", tt.shell, c.line, got, c.want)
				}
			}
		})
	}
}
