package chain

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
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
}

// WriteHelp prints the usage text.
func (st *Stage) WriteHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n\nOptions:\n", st.Name, st.Synopsis, strings.TrimSpace(st.Summary))
	st.Options.WriteHelp(w)
	fmt.Fprintf(w, "  %-*s  %s\n", 0, "-h, --help", "print this help and exit")
	fmt.Fprintf(w, "  %-*s  %s\n", 0, "    --version", "print the version and exit")
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

// Parse parses the command line (without argv[0]) and returns PROGRAM and
// its arguments. It handles --help and --version itself, by printing and
// exiting 0.
func (st *Stage) Parse(args []string) ([]string, error) {
	var help, version bool
	st.Options.Bool(&help, "help", 'h', "")
	st.Options.Bool(&version, "version", 0, "")
	rest, err := st.Options.Parse(args)
	// The two were declared last; drop them again so that help does not list them twice.
	st.Options.list = st.Options.list[:len(st.Options.list)-2]
	switch {
	case help:
		st.WriteHelp(os.Stdout)
		os.Exit(0)
	case version:
		fmt.Printf("%s %s\n", st.Name, Version)
		os.Exit(0)
	case err != nil:
		return nil, err
	case len(rest) == 0 && !st.NoProgram:
		return nil, &OptionError{Msg: "no PROGRAM given"}
	}
	return rest, nil
}

// Run is the whole life of a stage's main: set up debug logging, parse the
// command line, call run with PROGRAM and its arguments, and exit 125 with
// one line on stderr if anything fails. run normally ends in Exec and does
// not return.
//
// Run locks the main goroutine to its thread for good: a child started with
// a parent-death signal is tied to the thread that started it, and per-thread
// state (namespaces, credentials) must be set on the thread that execs.
func (st *Stage) Run(run func(program []string) error) {
	runtime.LockOSThread()
	initDebug(st.Name)
	if Carried() {
		// A host binary running inside the container: keep the container's
		// processes out of our /proc entries (CVE-2019-5736).
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			Fail(st.Name, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err))
		}
	}
	program, err := st.Parse(os.Args[1:])
	if err != nil {
		Fail(st.Name, err)
	}
	if err := run(program); err != nil {
		Fail(st.Name, err)
	}
	os.Exit(0)
}
