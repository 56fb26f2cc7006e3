package chain

import (
	"fmt"
	"io"
	"strings"

	"barco/lib/sysprog"
)

// Version is set at build time by the Makefile.
var Version = "dev"

// Stage is the description of one barco stage binary: what --help prints
// and how its command line is parsed.
type Stage struct {
	Name     string // "barco-ns"
	Synopsis string // after the name: "[OPTIONS] [--] PROGRAM [ARG...]"
	Summary  string // one paragraph: what the stage does
	Example  string // one or more example command lines
	Notes    string // optional paragraph after the options
	Options  Options
	// NoProgram is set by stages that may run without a PROGRAM (a
	// --print mode, say); they check for it themselves.
	NoProgram bool
	// Unparsed gives Main the whole command line, for a command that
	// parses it itself (barco, whose subcommands are stages).
	Unparsed bool
	// Main is the stage's work in the process p, given PROGRAM and its
	// arguments. It returns the status for the process to exit with, or
	// an error for p to report as the stage's one line. Most stages end
	// in p.Exec, which does not return when it execs, and otherwise
	// returns what the next stage, run in this process, ended with.
	Main func(p *Process, program []string) (int, error)
	// Helper, if set, returns the work of a helper process the stage
	// re-executes its binary as (barco-ns's child), or nil when this
	// process is not one.
	Helper func() func(p *Process) (int, error)
	// Steps, if set, plans the stage's work for a child that a stage
	// before it starts, as steps of the child's program (see
	// Process.InlineSteps), given PROGRAM: it returns what appends them,
	// and updates in.State to what the child holds after them. Its error
	// is the stage's own, or ErrNotInline.
	Steps func(in *Inline, program []string) (func(*sysprog.Builder), error)

	stepsOnly bool // see StepsOnly
}

// WriteHelp prints the usage text.
func (st *Stage) WriteHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n\nOptions:\n", st.Name, st.Synopsis, strings.TrimSpace(st.Summary))
	var help, version bool
	opts := Options{list: st.Options.list[:len(st.Options.list):len(st.Options.list)]}
	opts.Bool(&help, "help", 'h', "print this help and exit")
	opts.Bool(&version, "version", 0, "print the version and exit")
	opts.WriteHelp(w)
	if st.Notes != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(st.Notes))
	}
	fmt.Fprintf(w, "\nExit status: 125 if %s itself fails, 126 if PROGRAM cannot be executed,\n"+
		"127 if PROGRAM is not found, 128+N if PROGRAM is killed by signal N, else PROGRAM's status.\n"+
		"BARCO_DEBUG=1 logs each step on stderr.\n", st.Name)
	if st.Example != "" {
		fmt.Fprintf(w, "\nExample:\n")
		for _, l := range strings.Split(strings.TrimSpace(st.Example), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(l))
		}
	}
}

// parse parses the command line (without argv[0]) and returns PROGRAM and
// its arguments. --help and --version print on p.Stdout and set done.
func (st *Stage) parse(p *Process, args []string) (program []string, done bool, err error) {
	var help, version bool
	// --help and --version are parsed like any option but listed apart.
	opts := Options{list: st.Options.list[:len(st.Options.list):len(st.Options.list)]}
	opts.Bool(&help, "help", 'h', "print this help and exit")
	opts.Bool(&version, "version", 0, "print the version and exit")
	rest, err := opts.Parse(args)
	switch {
	case help:
		st.WriteHelp(p.Stdout)
		return nil, true, nil
	case version:
		fmt.Fprintf(p.Stdout, "%s %s\n", st.Name, Version)
		return nil, true, nil
	case err != nil:
		return nil, false, err
	case len(rest) == 0 && !st.NoProgram:
		return nil, false, &OptionError{Msg: "no PROGRAM given"}
	}
	return rest, false, nil
}

// JoinStages joins the argv of each stage into one command line, "--"
// between stages: the form every stage takes its next one in.
func JoinStages(stages [][]string) []string {
	var argv []string
	for i, st := range stages {
		if i > 0 {
			argv = append(argv, "--")
		}
		argv = append(argv, st...)
	}
	return argv
}
