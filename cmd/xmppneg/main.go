// Command xmppneg negotiates XMPP server-to-server federation for real
// between in-process endpoints and checks the outcome against the Lync
// Server 2013 negotiation matrix. Run "xmppneg help" for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/report"
	"xmppneg/scenarios"
)

// Exit codes shared by every command.
const (
	exitOK          = 0
	exitFail        = 1 // the configuration is invalid or a negotiation failed
	exitUsage       = 2
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM, as shells report it
)

// command is one subcommand: its flags are defined in setup, which returns
// the function to run once they are parsed.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis
	example string
	setup   func(fs *flag.FlagSet, env *env) func(args []string) int
	// cmdletTail makes everything from a New-/Set-CsXmppAllowedPartner
	// word to the end one argument, the cmdlet line, unparsed as flags:
	// its -Parameters are PowerShell's, not the command's.
	cmdletTail bool
}

// env is what a command writes to.
type env struct {
	stdout, stderr io.Writer
	color          bool
}

func (e *env) errorf(format string, a ...any) {
	fmt.Fprintf(e.stderr, "xmppneg: "+format+"\n", a...)
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A sweep keeps one small record per negotiation, but each
		// negotiation leaves ~100 KB of garbage (TLS, XML); with the
		// default GC pacing the heap of a 100,000-negotiation run grew to
		// twice what it holds (334 MB resident for pairwise --repeat 4).
		// A soft limit makes the collector work before that; a run that
		// holds more than this still gets the memory it needs.
		debug.SetMemoryLimit(memoryLimit)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// memoryLimit is the soft memory limit of a run (see main).
const memoryLimit = 256 << 20

// run is main without the process: tests call it directly.
func run(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, color: useColor(stdout)}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "version", "--version", "-version":
		for _, a := range args[1:] {
			if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
				fmt.Fprintf(stdout, "Usage: xmppneg version\n\n%s\n\nExample:\n  xmppneg version\n  xmppneg --version\n", versionSummary)
				return exitOK
			}
		}
		if args[0] == "version" && len(args) > 1 {
			e.errorf("version takes no arguments (see 'xmppneg version --help')")
			return exitUsage
		}
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return runCommand(c, []string{"--help"}, e)
			}
		}
		usage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		var names []string
		for _, c := range commands {
			names = append(names, c.name)
		}
		hint := ""
		if near := policy.Closest(args[0], names); near != "" {
			hint = fmt.Sprintf("; did you mean %q?", near)
		}
		e.errorf("unknown command %q%s (run 'xmppneg help' for the list)", args[0], hint)
		return exitUsage
	}
	return runCommand(c, args[1:], e)
}

// versionSummary says what the version command prints.
const versionSummary = "Print the version and the revision it was built from (also --version)."

// versionString is the module version and the VCS revision the binary
// was built from, as the Go toolchain recorded them.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "xmppneg (no build information)"
	}
	s := "xmppneg " + bi.Main.Version
	var rev, at, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		s += fmt.Sprintf(" (revision %.12s, %s%s)", rev, at, dirty)
	}
	return s + " " + bi.GoVersion
}

func runCommand(c *command, args []string, e *env) int {
	fs := flag.NewFlagSet("xmppneg "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	do := c.setup(fs, e)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: xmppneg %s %s\n\n%s\n\nFlags:\n", c.name, c.usage, c.summary)
		printFlags(w, fs)
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example))
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			// Asked for: help goes to stdout, once.
			help(e.stdout)
			return exitOK
		}
	}
	var tail []string
	if c.cmdletTail {
		for i, a := range args {
			if lyncpartner.IsCmdlet(a) {
				args, tail = args[:i], []string{strings.Join(args[i:], " ")}
				break
			}
		}
	}
	// The flag package prints the whole help on any error; one line that
	// names the bad flag (and the nearest good one) is what a person needs.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	if err := checkFlagNames(fs, args); err != nil {
		var nv *noValueError
		if errors.As(err, &nv) && c.cmdletTail {
			// A command that reads the cmdlet's words: $true typed into
			// a POSIX shell vanished.
			e.errorf("%v: %s", err, posixDollarHint)
			return exitUsage
		}
		e.errorf("%v (see 'xmppneg %s --help')", err, c.name)
		return exitUsage
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		e.errorf("%v (see 'xmppneg %s --help')", err, c.name)
		return exitUsage
	}
	return do(append(positional, tail...))
}

// printFlags lists the flags as the usage lines and docs/cli.md write
// them: --name VALUE, and -o, -v, -j for the one-letter ones.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  " + flagName(f.Name)
		if name != "" {
			line += " " + strings.ToUpper(name)
		}
		fmt.Fprintf(w, "%s\n      %s", line, strings.ReplaceAll(usage, "\n", "\n      "))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" && !strings.Contains(usage, "(default") {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// flagName is how help, usage lines and errors write a flag: -o, but
// --out.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// checkFlagNames finds the first flag in args that the command does not
// define, and names the closest one it does.
func checkFlagNames(fs *flag.FlagSet, args []string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			msg := fmt.Sprintf("unknown flag %s", flagName(name))
			if near := policy.Closest(name, names); near != "" {
				msg += fmt.Sprintf("; did you mean %s?", flagName(near))
			}
			return errors.New(msg)
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			if i+1 == len(args) {
				return &noValueError{name}
			}
			i++ // its value
		}
	}
	return nil
}

// noValueError is a flag given last, without its value.
type noValueError struct{ name string }

func (e *noValueError) Error() string { return flagName(e.name) + " has no value" }

// parseInterspersed parses flags wherever they stand among the
// positional arguments, as in "xmppneg run pairwise -o html"; after "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "xmppneg: real XMPP server-to-server negotiations, checked against the Lync Server 2013 matrix.")
	fmt.Fprintln(w, "\nUsage: xmppneg COMMAND [flags]\n\nCommands:")
	cs := append([]*command{}, commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "version", versionSummary)
	fmt.Fprintln(w, "\nRun 'xmppneg COMMAND --help' for a command's flags and an example.")
}

// useColor reports whether w is a terminal that wants colour: never when
// NO_COLOR is set (https://no-color.org) or TERM is dumb.
func useColor(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// paint wraps s in an ANSI colour when e writes to a terminal.
func (e *env) paint(color, s string) string {
	return scenarios.Style{Color: e.color}.Paint(color, s)
}

// answerFormats are the formats of a command that prints one answer,
// not a report (check, explain, negotiate, profiles): text or JSON.
var answerFormats = []report.Format{report.Text, report.JSON}

// formatUsage is formats as a usage line writes them: "text|json".
func formatUsage(formats ...report.Format) string {
	return strings.Join(report.Names(formats...), "|")
}

// outputFlag defines -o with the given formats, the first being the
// default: a report's are its writers' (report.Writers.Formats), so that
// the help, the accepted values and docs/cli.md come from that one table.
func outputFlag(fs *flag.FlagSet, fmts ...report.Format) *string {
	formats := report.Names(fmts...)
	o := formats[0]
	fs.Func("o", "output `format`: "+strings.Join(formats, ", ")+" (default "+formats[0]+")", func(v string) error {
		for _, f := range formats {
			if v == f {
				o = v
				return nil
			}
		}
		return fmt.Errorf("unknown format %q: accepted formats are %s", v, strings.Join(formats, ", "))
	})
	return &o
}

// noArgs reports extra positional arguments as a usage error.
func noArgs(e *env, args []string) bool {
	if len(args) > 0 {
		e.errorf("unexpected argument %q", args[0])
		return false
	}
	return true
}
