package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// completionTestCLI has one flag of every kind the scripts treat
// differently. The help texts hold characters that need quoting.
type completionTestCLI struct {
	Verbose    bool           `short:"v" help:"Say more. Much more."`
	Color      bool           `negatable:"" help:"Colour the output."`
	Mode       string         `enum:"fast,slow" default:"fast" help:"How to run: ${enum}."`
	Out        string         `type:"path" aliases:"out_dir" help:"Where to write."`
	Cache      string         `type:"existingdir" help:"A folder."`
	Model      string         `required:"" help:"The model's name [in brackets] with a back\\slash: see --mode."`
	Secret     string         `hidden:"" help:"Not shown."`
	Completion CompletionFlag `help:"Print a completion script."`
	RunDir     string         `arg:"" optional:"" type:"path" help:"A run folder."`
}

// testApp builds the kong model of completionTestCLI named "tapp".
func testApp(t *testing.T) *kong.Kong {
	t.Helper()
	k, err := kong.New(&completionTestCLI{}, kong.Name("tapp"))
	if err != nil {
		t.Fatalf("kong.New: %v", err)
	}
	return k
}

func testScript(t *testing.T, shell string) string {
	t.Helper()
	s, err := completionScript(testApp(t).Model, shell)
	if err != nil {
		t.Fatalf("completionScript(%s) error: %v", shell, err)
	}
	return s
}

func TestCompletionScriptContents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shell string
		want  []string
	}{
		{"bash", []string{
			"complete -F _tapp tapp",
			`compgen -W "fast slow"`, `compgen -W "bash zsh fish"`,
			"--out|--out_dir)", "compgen -d", "compgen -f",
			"--verbose", "-v", "--color", "--no-color", "--mode", "--cache", "--model", "--completion", "--help",
		}},
		{"zsh", []string{
			"#compdef tapp", "compdef _tapp tapp",
			"'(-v --verbose)'{-v,--verbose}'[Say more]'",
			"'--no-color[Colour the output]'",
			"'--mode=[How to run: fast,slow]:mode:(fast slow)'",
			"'--out=[Where to write]:out:_files'",
			"'--cache=[A folder]:cache:_files -/'",
			`'--model=[The model'\''s name \[in brackets\] with a back\\slash: see --mode]:model: '`,
			"'--completion=[Print a completion script]:completion:(bash zsh fish)'",
			"'::run-dir:_files'",
		}},
		{"fish", []string{
			"complete -c tapp -s v -l verbose -d 'Say more'",
			"complete -c tapp -l no-color -d 'Colour the output'",
			"complete -c tapp -l mode -x -a 'fast slow'",
			"complete -c tapp -l out -r -F",
			"complete -c tapp -l cache -x -a '(__fish_complete_directories)'",
			`complete -c tapp -l model -x -d 'The model\'s name [in brackets] with a back\\slash: see --mode'`,
			"complete -c tapp -l completion -x -a 'bash zsh fish'",
			"complete -c tapp -F\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			t.Parallel()
			s := testScript(t, tt.shell)
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("completionScript(%s) lacks %q:\n%s", tt.shell, w, s)
				}
			}
			if strings.Contains(s, "secret") {
				t.Errorf("completionScript(%s) offers the hidden flag --secret:\n%s", tt.shell, s)
			}
		})
	}
}

func TestCompletionScriptErrors(t *testing.T) {
	t.Parallel()
	type withCommand struct {
		Run struct{} `cmd:"" help:"Run."`
	}
	type badEnum struct {
		Mode string `enum:"a b,c" default:"c"`
	}
	tests := []struct {
		name  string
		cli   any
		shell string
		want  string
	}{
		{"unknown shell", &completionTestCLI{}, "tcsh", `unknown shell "tcsh"`},
		{"subcommands", &withCommand{}, "bash", "subcommands"},
		{"unquotable enum value", &badEnum{}, "zsh", `"a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := kong.New(tt.cli, kong.Name("tapp"))
			if err != nil {
				t.Fatalf("kong.New: %v", err)
			}
			_, err = completionScript(k.Model, tt.shell)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("completionScript(%s) error = %v, want one containing %q", tt.shell, err, tt.want)
			}
		})
	}
	if _, err := completionScript(nil, "bash"); err == nil {
		t.Errorf("completionScript(nil, bash) error = nil, want an error")
	}
}

// errExit carries kong's exit code out of a parse, as run does.
type errExit int

// parseCLI parses args into completionTestCLI and reports whether kong
// asked to exit, with which code, and what it printed.
func parseCLI(t *testing.T, args ...string) (code int, exited bool, stdout string, err error) {
	t.Helper()
	var out bytes.Buffer
	k, err := kong.New(&completionTestCLI{}, kong.Name("tapp"), kong.Writers(&out, &out),
		kong.Exit(func(c int) { panic(errExit(c)) }))
	if err != nil {
		t.Fatalf("kong.New: %v", err)
	}
	defer func() {
		if p := recover(); p != nil {
			c, ok := p.(errExit)
			if !ok {
				panic(p)
			}
			code, exited, stdout = int(c), true, out.String()
		}
	}()
	_, err = k.Parse(args)
	return 0, false, out.String(), err
}

func TestCompletionFlag(t *testing.T) {
	t.Parallel()
	for _, shell := range completionShells {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			// --model is required: the script must print without it.
			code, exited, out, err := parseCLI(t, "--completion", shell)
			if err != nil || !exited || code != 0 {
				t.Fatalf("parse --completion %s = exit %v code %d err %v, want exit 0", shell, exited, code, err)
			}
			if want := testScript(t, shell); out != want {
				t.Errorf("--completion %s printed:\n%s\nwant:\n%s", shell, out, want)
			}
		})
	}
	t.Run("unknown shell", func(t *testing.T) {
		t.Parallel()
		_, exited, _, err := parseCLI(t, "--model", "m", "--completion", "tcsh")
		if exited || err == nil || !strings.Contains(err.Error(), `unknown shell "tcsh"`) {
			t.Errorf("parse --completion tcsh = exited %v err %v, want a parse error naming the shell", exited, err)
		}
	})
	t.Run("absent", func(t *testing.T) {
		t.Parallel()
		_, exited, _, err := parseCLI(t, "--model", "m")
		if exited || err != nil {
			t.Errorf("parse without --completion = exited %v err %v, want a normal parse", exited, err)
		}
	})
}

// shellOrSkip returns the path of a shell, or skips the test when it is
// not installed (bash always is; zsh and fish may not be).
func shellOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return p
}

func TestCompletionSyntax(t *testing.T) {
	t.Parallel()
	check := map[string][]string{"bash": {"-n"}, "zsh": {"-n"}, "fish": {"--no-execute"}}
	for _, shell := range completionShells {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			bin := shellOrSkip(t, shell)
			f := filepath.Join(t.TempDir(), "completion."+shell)
			if err := os.WriteFile(f, []byte(testScript(t, shell)), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.CommandContext(t.Context(), bin, append(check[shell], f)...).CombinedOutput(); err != nil {
				t.Errorf("%s %v rejects the script: %v\n%s", shell, check[shell], err, out)
			}
		})
	}
}

// completionDir is a folder with two files and a subfolder whose name has
// a space, for file-name completion.
func completionDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"alpha.txt", "beta.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "a dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The bash script, run by bash on a simulated command line (COMP_WORDS
// split the way readline splits it), offers the right words.
func TestCompletionBash(t *testing.T) {
	t.Parallel()
	bash := shellOrSkip(t, "bash")
	dir := completionDir(t)
	script := filepath.Join(dir, "tapp.bash")
	if err := os.WriteFile(script, []byte(testScript(t, "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		words []string // the command line; the last word is being completed
		want  []string
	}{
		{"long flag prefix", []string{"tapp", "--co"}, []string{"--color", "--completion"}},
		{"negation", []string{"tapp", "--no-"}, []string{"--no-color"}},
		{"short flags listed", []string{"tapp", "-"}, []string{"--cache", "--color", "--completion", "--help", "--mode", "--model", "--no-color", "--out", "--verbose", "-h", "-v"}},
		{"enum value", []string{"tapp", "--mode", ""}, []string{"fast", "slow"}},
		{"enum value prefix", []string{"tapp", "--mode", "s"}, []string{"slow"}},
		{"enum after = split", []string{"tapp", "--mode", "=", ""}, []string{"fast", "slow"}},
		{"enum after = cursor on =", []string{"tapp", "--mode", "="}, []string{"fast", "slow"}},
		{"enum after = split with prefix", []string{"tapp", "--mode", "=", "f"}, []string{"fast"}},
		{"enum in one word", []string{"tapp", "--mode=s"}, []string{"--mode=slow"}},
		{"shells", []string{"tapp", "-v", "--completion", "z"}, []string{"zsh"}},
		{"path flag", []string{"tapp", "--out", "al"}, []string{"alpha.txt"}},
		{"path flag by alias", []string{"tapp", "--out_dir", "b"}, []string{"beta.json"}},
		{"directory flag", []string{"tapp", "--cache", ""}, []string{"a dir"}},
		{"free text flag", []string{"tapp", "--model", ""}, nil},
		{"path argument", []string{"tapp", "--model", "m", ""}, []string{"a dir", "alpha.txt", "beta.json", "tapp.bash"}},
		{"bool flag then argument", []string{"tapp", "-v", "al"}, []string{"alpha.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The words go in as arguments, so no quoting is needed.
			prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tapp; printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.CommandContext(t.Context(), bash, append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, tt.words...)...)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bash: %v", err)
			}
			var got []string
			if s := strings.TrimSuffix(string(out), "\n"); s != "" {
				got = strings.Split(s, "\n")
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("complete %q = %q, want %q", tt.words, got, tt.want)
			}
		})
	}
}

// The fish script, asked through fish's own `complete -C`, offers the
// right words with their descriptions.
func TestCompletionFish(t *testing.T) {
	t.Parallel()
	fish := shellOrSkip(t, "fish")
	dir := completionDir(t)
	script := filepath.Join(dir, "tapp.fish")
	if err := os.WriteFile(script, []byte(testScript(t, "fish")), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"long flag prefix", "tapp --mod", []string{"--mode\tHow to run: fast,slow", "--model\tThe model's name [in brackets] with a back\\slash: see --mode"}},
		{"enum value", "tapp --mode ", []string{"fast\tHow to run: fast,slow", "slow\tHow to run: fast,slow"}},
		{"free text flag", "tapp --model ", nil},
		{"path flag", "tapp --out al", []string{"alpha.txt"}},
		{"directory flag", "tapp --cache ", []string{"a dir/\tDirectory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, tt.line)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("fish: %v", err)
			}
			var got []string
			if s := strings.TrimSuffix(string(out), "\n"); s != "" {
				got = strings.Split(s, "\n")
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("complete -C %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// Once a binary's command struct embeds CompletionFlag, --completion
// prints a script that lists its own flags.
func TestCompletionBinaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bench Bench
		cmd   any
		flag  string // one of the binary's own flags
	}{
		{Prefill, PrefillCmd{}, "input-lengths"},
		{Decode, DecodeCmd{}, "batch-sizes"},
		{Stress, StressCmd{}, "concurrency-levels"},
	}
	for _, tt := range tests {
		t.Run(string(tt.bench), func(t *testing.T) {
			t.Parallel()
			if !hasField(reflect.TypeOf(tt.cmd), reflect.TypeFor[CompletionFlag]()) {
				t.Skipf("%T has no CompletionFlag field yet", tt.cmd)
			}
			for _, shell := range completionShells {
				code, stdout, stderr := runCLI(t, t.Context(), tt.bench, "--completion", shell)
				if code != ExitOK {
					t.Fatalf("%s --completion %s: exit %d, stderr:\n%s", tt.bench.Binary(), shell, code, stderr)
				}
				// Flag names without dashes: fish writes "-l api-base".
				for _, want := range []string{tt.bench.Binary(), tt.flag, "api-base", "output-dir", "completion"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("%s --completion %s lacks %q:\n%s", tt.bench.Binary(), shell, want, stdout)
					}
				}
			}
		})
	}
}

// hasField reports whether struct type st has a field of type ft, itself
// or in an embedded struct (Common).
func hasField(st, ft reflect.Type) bool {
	for f := range st.Fields() {
		if f.Type == ft || (f.Anonymous && f.Type.Kind() == reflect.Struct && hasField(f.Type, ft)) {
			return true
		}
	}
	return false
}
