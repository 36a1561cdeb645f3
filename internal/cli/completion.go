package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/alecthomas/kong"
)

// completionShells are the shells completionScript writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

// CompletionFlag is a flag that prints a shell completion script for the
// binary and exits 0, the way kong.VersionFlag prints the version. Its
// value names the shell: bash, zsh or fish. Add it to a command struct (or
// to Common, for all three binaries at once):
//
//	Completion CompletionFlag `name:"completion" placeholder:"SHELL" help:"Print a completion script for bash, zsh or fish and exit."`
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
	if !isCompletionShell(shell) {
		return fmt.Errorf("unknown shell %q (want bash, zsh or fish)", shell)
	}
	*c = CompletionFlag(shell)
	return nil
}

// BeforeReset runs once the command line has been read and before any
// default is applied or required flag checked, so `--completion bash`
// works without the flags a run needs. It writes the script to the
// application's stdout and exits 0 through app.Exit.
func (c CompletionFlag) BeforeReset(app *kong.Kong, ctx *kong.Context, trace *kong.Path) error {
	// The receiver is the field's value before parsing; the value given on
	// the command line is in the parse context.
	shell, _ := ctx.FlagValue(trace.Flag).(CompletionFlag)
	script, err := completionScript(app.Model, string(shell))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprint(app.Stdout, script); err != nil {
		return fmt.Errorf("write the %s completion script: %w", shell, err)
	}
	app.Exit(0)
	return nil
}

// completionValues lists the values the shells offer after --completion.
func (CompletionFlag) completionValues() []string { return completionShells }

// valueCompleter is implemented by flag types that know their values
// without an enum tag (CompletionFlag).
type valueCompleter interface {
	completionValues() []string
}

func isCompletionShell(s string) bool {
	for _, sh := range completionShells {
		if s == sh {
			return true
		}
	}
	return false
}

// completionScript returns a completion script for app in shell ("bash",
// "zsh" or "fish"). The script is static: it lists the flags (hidden ones
// left out), completes enum values after the flags that have them, file
// names after flags and arguments of kong's path types (path,
// existingfile, existingdir: directories only) and nothing after other
// flags that take a value. Aliases are accepted before a value but not
// offered. Applications with subcommands are not supported.
func completionScript(app *kong.Application, shell string) (string, error) {
	spec, err := newCompletionSpec(app)
	if err != nil {
		return "", err
	}
	switch shell {
	case "bash":
		return spec.bash(), nil
	case "zsh":
		return spec.zsh(), nil
	case "fish":
		return spec.fish(), nil
	default:
		return "", fmt.Errorf("completion: unknown shell %q (want bash, zsh or fish)", shell)
	}
}

// pathKind says whether a value completes as a file name.
type pathKind int

const (
	notPath pathKind = iota
	anyPath          // files and directories
	dirPath          // directories only
)

// completionFlag is one flag as the scripts see it.
type completionFlag struct {
	long     string   // name without dashes
	short    rune     // 0 when none
	negation string   // "no-quiet" for a negatable bool flag, else ""
	aliases  []string // other long names, without dashes
	help     string   // first sentence of the help, one line
	hasValue bool     // the flag takes a value (it is not a bool or counter)
	values   []string // the values to offer after the flag (enum)
	path     pathKind // the value is a file name
}

// completionArg is one positional argument.
type completionArg struct {
	name     string
	optional bool
	repeated bool
	path     pathKind
}

// completionSpec is what the three script writers need from the kong model.
type completionSpec struct {
	name  string // the binary, as typed
	fn    string // a shell function name derived from name
	flags []completionFlag
	args  []completionArg
}

// safeWord is what flag names and enum values may contain to be written
// unquoted into all three shells' syntax.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9_.:+@%/-]+$`)

func newCompletionSpec(app *kong.Application) (*completionSpec, error) {
	if app == nil || app.Node == nil {
		return nil, errors.New("completion: no application model")
	}
	if !safeWord.MatchString(app.Name) {
		return nil, fmt.Errorf("completion: binary name %q has characters a script cannot hold", app.Name)
	}
	if len(app.Children) > 0 {
		return nil, fmt.Errorf("completion: %s has subcommands, which are not supported", app.Name)
	}
	s := &completionSpec{
		name: app.Name,
		fn:   "_" + strings.NewReplacer(".", "_", "-", "_", "+", "_", "@", "_", "%", "_", "/", "_", ":", "_").Replace(app.Name),
	}
	for _, f := range app.Flags {
		if f.Hidden {
			continue
		}
		cf := completionFlag{
			long:     f.Name,
			short:    f.Short,
			aliases:  f.Aliases,
			help:     firstSentence(f.Help),
			hasValue: !f.IsBool() && !f.IsCounter(),
			path:     pathKindOf(f.Tag),
		}
		if f.IsBool() && f.Tag.Negatable != "" {
			cf.negation = "no-" + f.Name
			if f.Tag.Negatable != "_" { // kong's marker for the default --no-<name>
				cf.negation = f.Tag.Negatable
			}
		}
		if cf.hasValue {
			cf.values = valuesOf(f)
		}
		for _, w := range append(append([]string{cf.long, cf.negation}, cf.aliases...), cf.values...) {
			if w != "" && !safeWord.MatchString(w) {
				return nil, fmt.Errorf("completion: --%s: %q has characters a script cannot hold", f.Name, w)
			}
		}
		s.flags = append(s.flags, cf)
	}
	for _, p := range app.Positional {
		if !safeWord.MatchString(p.Name) {
			return nil, fmt.Errorf("completion: argument %q has characters a script cannot hold", p.Name)
		}
		s.args = append(s.args, completionArg{
			name:     p.Name,
			optional: !p.Required,
			repeated: p.IsCumulative(),
			path:     pathKindOf(p.Tag),
		})
	}
	return s, nil
}

// valuesOf returns the values to offer after flag f: its enum, or those
// its type lists.
func valuesOf(f *kong.Flag) []string {
	if f.Enum != "" {
		return f.EnumSlice()
	}
	if f.Target.IsValid() && f.Target.CanAddr() {
		if vc, ok := f.Target.Addr().Interface().(valueCompleter); ok {
			return vc.completionValues()
		}
	}
	return nil
}

// pathKindOf maps kong's type tag to a completion kind.
func pathKindOf(t *kong.Tag) pathKind {
	if t == nil {
		return notPath
	}
	switch t.Type {
	case "path", "existingfile", "filecontent":
		return anyPath
	case "existingdir":
		return dirPath
	default:
		return notPath
	}
}

// firstSentence shortens a help text to its first sentence on one line,
// for the shells that show a description beside each flag.
func firstSentence(help string) string {
	help = strings.Join(strings.Fields(help), " ")
	if i := strings.Index(help, ". "); i >= 0 {
		help = help[:i]
	}
	return strings.TrimSuffix(help, ".")
}

// argPath is the completion for words that are neither flags nor flag
// values: the widest path kind among the positional arguments.
func (s *completionSpec) argPath() pathKind {
	k := notPath
	for _, a := range s.args {
		k = max(k, a.path)
	}
	return k
}

// bash writes the bash script. It needs bash 4 (compopt, mapfile) and no
// bash-completion package.
func (s *completionSpec) bash() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s (bash 4 or later).\n", s.name)
	fmt.Fprintf(&b, "# Load it now:    source <(%s --completion bash)\n", s.name)
	fmt.Fprintf(&b, "# Or install it:  %s --completion bash > ~/.local/share/bash-completion/completions/%s\n", s.name, s.name)
	fmt.Fprintf(&b, "%s() {\n", s.fn)
	b.WriteString(`    local cur=${COMP_WORDS[COMP_CWORD]} prev= prefix=
    if ((COMP_CWORD > 0)); then prev=${COMP_WORDS[COMP_CWORD-1]}; fi
    # --flag=value: readline splits the word at "=" (COMP_WORDBREAKS),
    # unless the user removed "=" from it.
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*} prefix=${cur%%=*}= cur=${cur#*=}
    fi
    case $prev in
`)
	const in1, in2 = "        ", "            " // case branch, and if inside it
	var free []string                           // flags whose value is free text: nothing to offer
	for _, f := range s.flags {
		switch {
		case !f.hasValue:
		case len(f.values) > 0:
			fmt.Fprintf(&b, "    %s)\n%s%s;;\n", strings.Join(flagSpellings(f), "|"), bashWords(in1, f.values), in1)
		case f.path != notPath:
			fmt.Fprintf(&b, "    %s)\n%s%s;;\n", strings.Join(flagSpellings(f), "|"), bashFiles(in1, f.path), in1)
		default:
			free = append(free, flagSpellings(f)...)
		}
	}
	if len(free) > 0 {
		fmt.Fprintf(&b, "    %s)\n%sCOMPREPLY=() ;;\n", strings.Join(free, "|"), in1)
	}
	var words []string
	for _, f := range s.flags {
		words = append(words, "--"+f.long)
		if f.negation != "" {
			words = append(words, "--"+f.negation)
		}
		if f.short != 0 {
			words = append(words, "-"+string(f.short))
		}
	}
	b.WriteString("    *)\n")
	if k := s.argPath(); k != notPath {
		// The command takes a path argument: a word that does not start
		// with "-" is one.
		fmt.Fprintf(&b, "%sif [[ $cur == -* ]]; then\n%s%selse\n%s%sfi\n", in1, bashWords(in2, words), in1, bashFiles(in2, k), in1)
	} else {
		b.WriteString(bashWords(in1, words))
	}
	b.WriteString(in1 + ";;\n")
	b.WriteString("    esac\n")
	b.WriteString("    if [[ -n $prefix ]]; then COMPREPLY=(\"${COMPREPLY[@]/#/$prefix}\"); fi\n")
	b.WriteString("}\n")
	fmt.Fprintf(&b, "complete -F %s %s\n", s.fn, s.name)
	return b.String()
}

// flagSpellings lists every way a value flag can be typed, for bash's case.
func flagSpellings(f completionFlag) []string {
	names := []string{"--" + f.long}
	for _, a := range f.aliases {
		names = append(names, "--"+a)
	}
	if f.short != 0 {
		names = append(names, "-"+string(f.short))
	}
	return names
}

// bashWords is a script line, indented by indent, that offers the words
// starting with $cur.
func bashWords(indent string, words []string) string {
	return fmt.Sprintf("%smapfile -t COMPREPLY < <(compgen -W %q -- \"$cur\")\n", indent, strings.Join(words, " "))
}

// bashFiles is two script lines, indented by indent, that offer file
// names (directories only for dirPath); -o filenames makes bash quote the
// names and add "/" to folders.
func bashFiles(indent string, k pathKind) string {
	opt := "-f"
	if k == dirPath {
		opt = "-d"
	}
	return indent + "compopt -o filenames 2>/dev/null\n" + indent + "mapfile -t COMPREPLY < <(compgen " + opt + " -- \"$cur\")\n"
}

// zsh writes the zsh script, built on _arguments. It works both sourced
// (after compinit) and autoloaded from a file named _<binary> in $fpath.
func (s *completionSpec) zsh() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n", s.name)
	fmt.Fprintf(&b, "# zsh completion for %s.\n", s.name)
	fmt.Fprintf(&b, "# Load it now (after compinit):  source <(%s --completion zsh)\n", s.name)
	fmt.Fprintf(&b, "# Or install it:  %s --completion zsh > \"${fpath[1]}/_%s\"\n", s.name, s.name)
	fmt.Fprintf(&b, "%s() {\n    _arguments -s -S \\\n", s.fn)
	for _, f := range s.flags {
		desc := "[" + zshQuote(zshBracket(f.help)) + "]"
		var value string
		if f.hasValue {
			action := " "
			switch {
			case len(f.values) > 0:
				action = "(" + strings.Join(f.values, " ") + ")"
			case f.path == dirPath:
				action = "_files -/"
			case f.path == anyPath:
				action = "_files"
			}
			value = ":" + f.long + ":" + action
		}
		switch {
		case f.short != 0 && f.hasValue:
			fmt.Fprintf(&b, "        '(-%c --%s)'{-%c+,--%s=}'%s%s' \\\n", f.short, f.long, f.short, f.long, desc, value)
		case f.short != 0:
			fmt.Fprintf(&b, "        '(-%c --%s)'{-%c,--%s}'%s' \\\n", f.short, f.long, f.short, f.long, desc)
		case f.hasValue:
			fmt.Fprintf(&b, "        '--%s=%s%s' \\\n", f.long, desc, value)
		default:
			fmt.Fprintf(&b, "        '--%s%s' \\\n", f.long, desc)
		}
		if f.negation != "" {
			fmt.Fprintf(&b, "        '--%s%s' \\\n", f.negation, desc)
		}
	}
	for _, a := range s.args {
		colons := ":"
		switch {
		case a.repeated:
			colons = "*:"
		case a.optional:
			colons = "::"
		}
		action := " "
		switch a.path {
		case anyPath:
			action = "_files"
		case dirPath:
			action = "_files -/"
		}
		fmt.Fprintf(&b, "        '%s%s:%s' \\\n", colons, a.name, action)
	}
	b.WriteString("        && return 0\n}\n")
	// Autoloaded from $fpath, this file is the body of the completion
	// function and must complete now; sourced, it registers the function.
	fmt.Fprintf(&b, "if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n    %s \"$@\"\nelse\n    compdef %s %s\nfi\n", s.fn, s.fn, s.name)
	return b.String()
}

// zshBracket escapes the characters that end or open an _arguments
// description.
func zshBracket(s string) string {
	return strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`).Replace(s)
}

// zshQuote makes s safe inside a single-quoted zsh word.
func zshQuote(s string) string {
	return strings.ReplaceAll(s, "'", `'\''`)
}

// fish writes the fish script.
func (s *completionSpec) fish() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# fish completion for %s.\n", s.name)
	fmt.Fprintf(&b, "# Load it now:    %s --completion fish | source\n", s.name)
	fmt.Fprintf(&b, "# Or install it:  %s --completion fish > ~/.config/fish/completions/%s.fish\n", s.name, s.name)
	fmt.Fprintf(&b, "complete -c %s -e\n", s.name)
	// No file names unless an argument or flag is a path.
	fmt.Fprintf(&b, "complete -c %s -f\n", s.name)
	if k := s.argPath(); k != notPath {
		if k == dirPath {
			fmt.Fprintf(&b, "complete -c %s -a '(__fish_complete_directories)'\n", s.name)
		} else {
			fmt.Fprintf(&b, "complete -c %s -F\n", s.name)
		}
	}
	for _, f := range s.flags {
		line := "complete -c " + s.name
		if f.short != 0 {
			line += " -s " + string(f.short)
		}
		line += " -l " + f.long
		if f.hasValue {
			switch {
			case len(f.values) > 0:
				line += " -x -a '" + strings.Join(f.values, " ") + "'"
			case f.path == dirPath:
				line += " -x -a '(__fish_complete_directories)'"
			case f.path == anyPath:
				line += " -r -F"
			default:
				line += " -x"
			}
		}
		line += " -d " + fishQuote(f.help)
		b.WriteString(line + "\n")
		if f.negation != "" {
			fmt.Fprintf(&b, "complete -c %s -l %s -d %s\n", s.name, f.negation, fishQuote(f.help))
		}
	}
	return b.String()
}

// fishQuote single-quotes s for fish, where only \ and ' are special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
