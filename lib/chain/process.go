package chain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Process is the life of one process of the chain: the stages it runs, one
// after the other (see Link), and what they share until it execs or exits.
//
// A stage's life in it goes:
//
//  1. start: debug logging for the stage; in the first process inside
//     barco-ns's namespaces, the handshake and setup (NSSetup);
//  2. parse: the stage's options; --help and --version end it here;
//  3. Main: the stage's work, which registers what must be undone if the
//     process does not exec (OnFailure) and ends in Exec;
//  4. Exec: one of three ends, chosen there and only there: the next
//     stage runs in this process (it is linked), the next stage's binary
//     is exec'd (it is not), or PROGRAM is exec'd;
//  5. return: when Main returns (an error, or the status of a linked stage
//     that ran to its end), the undo work registered since step 1 runs,
//     last first, and the status goes to the stage before it in this
//     process, or to Main's caller, which exits with it.
//
// A successful exec ends the process image and with it all of the above:
// the next program needs what the undo work would take away.
//
// Nothing of it is package state, so a test runs a stage in-process with
// its own arguments and stdio (see Run).
type Process struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Log is the running stage's debug log.
	Log *Log

	linked map[string]func() *Stage // the stages built into this binary
	// stepStages are the stages built in for their Steps only (StepsOnly).
	stepStages map[string]func() *Stage
	helpers    []*Stage       // of those, the ones with a Helper
	carried    map[string]int // stage name -> fd of its carried copy
	cleanups   []func()       // OnFailure's undo work, in order
	placer     Placer         // see PlaceChildren
	// supervisor catches the forwarded signals from the first stage that
	// asks for it on; a later stage in this process forwards them.
	supervisor *Supervisor
	// parentDeathSignal is the signal this process gets when its parent
	// dies. The kernel keeps it per thread and clears it on any change of
	// credentials, and a Go program may exec from another thread than the
	// one it started on: Exec sets it again on the thread that execs, so
	// that a container never outlives its supervisor.
	parentDeathSignal int
	// detached is set in the first process of a detached barco-ns, which
	// must outlive it (see armParentDeath).
	detached bool
	// found is PROGRAM as FindProgram found it: the name, then the path.
	found [2]string
	// gate is the start gate's write end once Gate passed it, else -1.
	gate int
}

// Stdio is the standard input, output and error a Process gives its stages.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// NewProcess is the state of this process at its start: the stages carried
// to it (BARCO_STAGE_FDS) and its parent-death signal.
func NewProcess(stdio Stdio) *Process {
	p := &Process{Stdin: stdio.In, Stdout: stdio.Out, Stderr: stdio.Err,
		linked: map[string]func() *Stage{}, stepStages: map[string]func() *Stage{}, carried: parseStageFDs(os.Getenv(StageFDsEnv)), gate: -1}
	_ = unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&p.parentDeathSignal)), 0, 0, 0)
	return p
}

// Main is the whole life of a stage binary: run st with the command line
// of this process, or the helper this process was started as, and exit
// with the status. linked are the later stages built into the same binary,
// which Exec then runs in this process (see Link).
//
// A stage computes nothing in parallel: it makes system calls one after
// the other and waits. So it runs on one P (a stage's process started by
// another starts on one, see OneProcEnv; the first drops to one as it
// begins, see package oneproc, which every cmd/ imports), which spares the
// runtime the threads and the per-P caches of a second one: each costs
// page faults, and on a virtual machine a fault may cost 10 us, about a
// quarter of a start here (make bench: faults per run).
func Main(st *Stage, linked ...func() *Stage) {
	p := NewProcess(Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	p.Link(linked...)
	if status, ok := p.RunHelper(st); ok {
		os.Exit(status)
	}
	os.Exit(p.Run(st, os.Args[1:]))
}

// Run runs st with the command line args (without argv[0]) in this
// process and returns the status to exit with: one line on p.Stderr and
// 125 (or the error's own status) if the stage fails. It returns only if
// the stage did not exec.
//
// Run does not lock the goroutine to its thread: the first goroutine
// started afterwards would then need a new thread, which costs more than a
// stage's own work. A child started with a parent-death signal is tied to
// the thread that started it; that is safe here because the Go runtime
// never ends a thread unless a goroutine exits while locked to it, which no
// stage does. A stage that changes credentials locks its thread itself
// (see package creds).
func (p *Process) Run(st *Stage, args []string) int {
	return p.run(st, func() (int, error) {
		if st.Unparsed {
			return st.Main(p, args)
		}
		program, done, err := st.parse(p, args)
		if done || err != nil {
			return 0, err
		}
		return st.Main(p, program)
	})
}

// RunHelper runs the helper of st or of a linked stage if this process was
// started as one (see Stage.Helper), and returns its status and true; else
// it returns false.
func (p *Process) RunHelper(st *Stage) (int, bool) {
	for _, s := range append([]*Stage{st}, p.helpers...) {
		if s == nil || s.Helper == nil {
			continue
		}
		if work := s.Helper(); work != nil {
			return p.run(s, func() (int, error) { return work(p) }), true
		}
	}
	return 0, false
}

// run is steps 1, 3 and 5 of a stage's life around work.
func (p *Process) run(st *Stage, work func() (int, error)) int {
	outer := p.Log
	p.Log = newLog(st.Name, p.Stderr)
	defer func() { p.Log = outer }()
	mark := len(p.cleanups)
	status, err := p.start()
	if err == nil {
		status, err = p.guard(work)
	}
	if err != nil {
		if !errors.Is(err, ErrReported) {
			name := st.Name
			// A later stage's failure, in work this stage ran for it.
			var se *StageError
			if errors.As(err, &se) {
				name, err = se.Stage, se.Err
			}
			p.reportLine(fmt.Sprintf("%s: %v", name, err))
		}
		status = ExitCode(err)
	}
	p.undo(mark)
	return status
}

// guard runs work, and turns a panic in it into the stage's error: a
// failure is one line, never a Go stack dump (BARCO_DEBUG=1 prints the
// stack too), and the undo work still runs.
func (p *Process) guard(work func() (int, error)) (status int, err error) {
	defer func() {
		if r := recover(); r != nil {
			if p.Log.On() {
				p.Log.Debugf("panic: %v\n%s", r, debug.Stack())
			}
			status, err = 0, fmt.Errorf("internal error: %v (a bug in barco; BARCO_DEBUG=1 shows where)", r)
		}
	}()
	return work()
}

func (p *Process) start() (int, error) {
	// Checked first, before this stage opens anything that could take a
	// missing descriptor's number.
	if err := checkPreservedFDs(); err != nil {
		return 0, err
	}
	if v := os.Getenv(NSSetupEnv); v != "" {
		if err := p.nsSetup(v); err != nil {
			return 0, err
		}
	}
	if p.Carried() {
		// A host binary running inside the container: keep the container's
		// processes out of our /proc entries (CVE-2019-5736).
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
		}
	}
	return 0, nil
}

// OnFailure registers undo to run if this process ends instead of
// exec'ing: after an error in this stage, in a stage linked after it, or
// in the exec of PROGRAM. A successful exec drops it, since the next
// program needs what undo would take away (barco-mount's mount points).
// The last registered runs first, when the stage that registered it
// returns.
func (p *Process) OnFailure(undo func()) { p.cleanups = append(p.cleanups, undo) }

// DropOnFailure forgets the undo work registered with OnFailure, for a
// stage that is about to make it unsafe to run: a seccomp filter applies
// to every thread, and may deny the undo's syscalls or kill the thread that
// tries them. What is left is then the supervisor's to remove (barco-ns
// removes barco-mount's mount points).
func (p *Process) DropOnFailure() { p.cleanups = nil }

// undo runs the undo work registered after the first mark, last first, and
// forgets it. It runs on another thread than the caller's: a stage changes
// the credentials of its own locked thread only (barco-caps), and the undo
// needs the privileges the stage began with.
func (p *Process) undo(mark int) {
	if mark >= len(p.cleanups) {
		return
	}
	work := p.cleanups[mark:]
	p.cleanups = p.cleanups[:mark]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := len(work) - 1; i >= 0; i-- {
			work[i]()
		}
	}()
	<-done
}
