package chain

import (
	"fmt"
	"io"
	"os"
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
	// Main is the stage's work, given PROGRAM and its arguments; it
	// normally ends in Exec and does not return.
	Main func(program []string) error
	// Helper, if set, returns the work of a helper process the stage
	// re-executes its binary as (barco-ns's child), or nil when this
	// process is not one.
	Helper func() func() error
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

// Parse parses the command line (without argv[0]) and returns PROGRAM and
// its arguments. It handles --help and --version itself, by printing and
// exiting 0.
func (st *Stage) Parse(args []string) ([]string, error) {
	var help, version bool
	// --help and --version are parsed like any option but listed apart.
	opts := Options{list: st.Options.list[:len(st.Options.list):len(st.Options.list)]}
	opts.Bool(&help, "help", 'h', "print this help and exit")
	opts.Bool(&version, "version", 0, "print the version and exit")
	rest, err := opts.Parse(args)
	switch {
	case help:
		st.WriteHelp(os.Stdout)
		Exit(0)
	case version:
		fmt.Printf("%s %s\n", st.Name, Version)
		Exit(0)
	case err != nil:
		return nil, err
	case len(rest) == 0 && !st.NoProgram:
		return nil, &OptionError{Msg: "no PROGRAM given"}
	}
	return rest, nil
}

// Main is the whole life of a stage binary: run st with the command line
// of this process. linked makes the later stages built into the same
// binary known to Exec, which then runs them in this process (see Link).
func Main(st *Stage, linked ...func() *Stage) {
	Link(linked...)
	RunHelpers(st)
	st.Run(os.Args[1:])
}

// RunHelpers runs the helper of st or of a linked stage if this process
// was started as one (see Stage.Helper), and then does not return.
func RunHelpers(st *Stage) {
	for _, s := range append([]*Stage{st}, helpers...) {
		if s == nil || s.Helper == nil {
			continue
		}
		if run := s.Helper(); run != nil {
			s.RunHelper(run)
		}
	}
}

// Run sets up debug logging, parses args (the command line without
// argv[0]), calls st.Main with PROGRAM and its arguments, and exits 125
// with one line on stderr if anything fails. It does not return.
//
// Run does not lock the main goroutine to its thread: the first goroutine
// started afterwards would then need a new thread, which costs more than a
// stage's own work. A child started with a parent-death signal is tied to
// the thread that started it; that is safe here because the Go runtime
// never ends a thread unless a goroutine exits while locked to it, which no
// stage does. A stage that changes per-thread state locks its thread itself.
func (st *Stage) Run(args []string) {
	st.start()
	program, err := st.Parse(args)
	if err != nil {
		Fail(st.Name, err)
	}
	if err := st.Main(program); err != nil {
		Fail(st.Name, err)
	}
	Exit(0)
}

// RunHelper is Run for a helper process that a stage re-executes itself as
// (barco-ns's child inside the namespaces): no command line to parse, the
// same failure handling.
func (st *Stage) RunHelper(run func() error) {
	st.start()
	if err := run(); err != nil {
		Fail(st.Name, err)
	}
	Exit(0)
}

func (st *Stage) start() {
	initDebug(st.Name)
	if v := os.Getenv(NSSetupEnv); v != "" {
		if err := doNSSetup(v); err != nil {
			Fail(st.Name, err)
		}
	}
	if Carried() {
		// A host binary running inside the container: keep the container's
		// processes out of our /proc entries (CVE-2019-5736).
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			Fail(st.Name, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err))
		}
	}
}
