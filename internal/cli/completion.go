package cli

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// Shell completion is kongplete's: the shell runs the binary itself with
// the command line in COMP_LINE (bash's `complete -C` protocol), and
// kongplete answers with the flags, enum values and file names that fit.
// --completion SHELL prints the lines that register the binary that way.

// completionShells are the shells --completion writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

// completionPredictors are the kongplete predictors the `predictor` tags
// of the flag structs name.
func completionPredictors() map[string]complete.Predictor {
	return map[string]complete.Predictor{
		"dir":   complete.PredictDirs("*"),
		"shell": complete.PredictSet(completionShells...),
	}
}

// completeLine answers the shell's completion request in COMP_LINE and exits 0
// through the parser's exit function; it runs nothing else.
func completeLine(parser *kong.Kong) {
	kongplete.Complete(parser,
		kongplete.WithPredictors(completionPredictors()),
		kongplete.WithExitFunc(parser.Exit))
}

// executable is the absolute path of the running binary, which the
// completion scripts call back; it is bound into the parser for
// CompletionFlag.BeforeReset.
type executable string

// CompletionFlag is a flag that prints a shell completion script for the
// binary and exits 0, the way kong.VersionFlag prints the version. Its
// value names the shell: bash, zsh or fish. Add it to a command struct (or
// to Common, for all three binaries at once):
//
//	Completion CompletionFlag `name:"completion" placeholder:"SHELL" predictor:"shell" help:"Print a completion script for bash, zsh or fish and exit."`
//
// It takes no enum tag: kong checks an enum even when the flag is absent,
// so the shell is checked by Decode instead.
type CompletionFlag string

// Decode implements kong.MapperValue: it accepts only a known shell, so a
// typo fails at parse time with the list of shells.
func (c *CompletionFlag) Decode(ctx *kong.DecodeContext) error {
	var shell string
	if err := ctx.Scan.PopValueInto("shell", &shell); err != nil {
		return err
	}
	if !slices.Contains(completionShells, shell) {
		return fmt.Errorf("unknown shell %q (want bash, zsh or fish)", shell)
	}
	*c = CompletionFlag(shell)
	return nil
}

// BeforeReset runs once the command line has been read and before any
// default is applied or required flag checked, so `--completion bash`
// works without the flags a run needs. It writes the script to the
// application's stdout and exits 0 through app.Exit.
func (c CompletionFlag) BeforeReset(app *kong.Kong, ctx *kong.Context, trace *kong.Path, bin executable) error {
	// The receiver is the field's value before parsing; the value given on
	// the command line is in the parse context.
	shell, _ := ctx.FlagValue(trace.Flag).(CompletionFlag)
	script, err := completionScript(string(shell), app.Model.Name, string(bin))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprint(app.Stdout, script); err != nil {
		return fmt.Errorf("write the %s completion script: %w", shell, err)
	}
	app.Exit(0)
	return nil
}

// completionScript returns the script that makes shell complete the
// command name by running bin with COMP_LINE set. The scripts are those of
// kongplete.InstallCompletions, which cannot be used as it is: it is a
// subcommand (kong refuses one beside the RUN_DIR argument), it writes the
// script of the login shell rather than of the shell asked for, and it
// does not quote the binary's path. The fish script also puts back the
// "--flag=" that kongplete strips from the word it completes.
func completionScript(shell, name, bin string) (string, error) {
	if !safeWord.MatchString(name) {
		return "", fmt.Errorf("completion: binary name %q has characters a script cannot hold", name)
	}
	if bin == "" {
		bin = name
	}
	// bash and zsh (bashcompinit) run the -C argument as shell code, so
	// the path is quoted once for that code and once for the script.
	cmd := shWord(shWord(bin))
	switch shell {
	case "bash":
		return fmt.Sprintf(`# bash completion for %[1]s.
# Load it now, or from ~/.bashrc:  source <(%[1]s --completion bash)
complete -C %[2]s %[1]s
`, name, cmd), nil
	case "zsh":
		return fmt.Sprintf(`# zsh completion for %[1]s, through bash's protocol.
# Load it now, or from ~/.zshrc after compinit:  source <(%[1]s --completion zsh)
autoload -U +X bashcompinit && bashcompinit
complete -C %[2]s %[1]s
`, name, cmd), nil
	case "fish":
		return fmt.Sprintf(`# fish completion for %[1]s.
# Load it now:    %[1]s --completion fish | source
# Or install it:  %[1]s --completion fish > ~/.config/fish/completions/%[1]s.fish
function __complete_%[1]s
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    # fish completes --flag=value as one word: put --flag= back.
    set -l flag (string match -r -- '^--[^=]+=' (commandline -ct))
    %[2]s | string replace -r -- '^' "$flag"
end
complete -c %[1]s -e
complete -f -c %[1]s -a "(__complete_%[1]s)"
`, name, fishWord(bin)), nil
	default:
		return "", fmt.Errorf("completion: unknown shell %q (want bash, zsh or fish)", shell)
	}
}

// safeWord is what a word may contain to be written unquoted into all
// three shells' syntax.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9_.:+@%/-]+$`)

// shWord quotes s for bash and zsh when it needs it.
func shWord(s string) string {
	if safeWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishWord quotes s for fish, where only \ and ' are special in single
// quotes, when it needs it.
func fishWord(s string) string {
	if safeWord.MatchString(s) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
