package chain

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecStagesEnv names the variable that, set to 1, makes Exec execute
// every stage's own binary, even one linked into the running binary.
const ExecStagesEnv = "BARCO_EXEC_STAGES"

// linked maps a stage name to the constructor of that stage, for the
// stages built into the running binary besides its own.
var linked = map[string]func() *Stage{}

// helpers are the linked stages that have a Helper.
var helpers []*Stage

// Link builds the given stages into this binary. When Exec is asked to
// run one of them by its bare name, it runs it in this process instead:
// same pid, same descriptors, the environment and command line Exec was
// given, as after an exec of the stage's binary, which is built from the
// same code. Each process image costs about a millisecond of Go runtime
// start, which is most of a stage's cost; a binary links the stages that
// follow it in the standard chain.
//
// What exec would reset does not matter between stages: they install no
// signal handlers, and credentials and capabilities are set per thread on
// a locked thread that the next stage then runs on (see barco-caps), the
// way they reach the final exec. The running image is a host binary, as
// a carried stage is, and becomes non-dumpable for the same reason.
func Link(makers ...func() *Stage) {
	for _, mk := range makers {
		st := mk()
		linked[st.Name] = mk
		if st.Helper != nil {
			helpers = append(helpers, st)
		}
	}
}

// linkedStage returns the constructor of the stage named name if it is
// built into this binary and may run in this process.
func linkedStage(name string) func() *Stage {
	if os.Getenv(ExecStagesEnv) == "1" {
		return nil
	}
	return linked[name]
}

// IsLinked reports whether Exec would run the stage name in this process.
func IsLinked(name string) bool { return linkedStage(name) != nil }

// runLinked runs the linked stage argv[0] in this process, as Exec would
// have run its binary. It does not return.
func runLinked(mk func() *Stage, argv, env []string) error {
	st := mk()
	Debugf("continue as %s %q in this process", st.Name, argv[1:])
	if err := setEnviron(env); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	os.Args = argv
	st.Run(argv[1:])
	panic("unreachable")
}

// setEnviron makes env the environment of this process. Of a variable
// set twice the first value counts, as in a Go program started with env.
func setEnviron(env []string) error {
	os.Clearenv()
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, set := os.LookupEnv(k); set {
			continue
		}
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("setenv %s: %w", k, err)
		}
	}
	return nil
}

// A Placer starts the child of a stage that runs in this process after the
// stage that set it (barco-ns after barco-cgroup): where that earlier stage
// would have put the child it no longer forks itself. It does what
// syscall.ForkExec does.
type Placer func(path string, argv []string, attr *syscall.ProcAttr) (int, error)

var (
	placer   Placer
	atExit   []func(status int) int
	cleanups []func()
	exiting  bool
)

// OnFailure registers undo to run if this process exits instead of
// exec'ing: after an error in this stage, in a stage linked after it, or
// in the exec of PROGRAM. A successful exec drops it, since the next
// program needs what undo would take away (barco-mount's mount points).
// The last registered runs first.
func OnFailure(undo func()) { cleanups = append(cleanups, undo) }

// DropOnFailure forgets the undo work registered with OnFailure, for a
// stage that is about to make it unsafe to run: a seccomp filter applies
// to every thread, and may deny the undo's syscalls or kill the thread that
// tries them. What is left is then the supervisor's to remove (barco-ns
// removes barco-mount's mount points).
func DropOnFailure() { cleanups = nil }

// PlaceChildren makes ForkExec start children through p, and Exit run
// done first, for a stage that hands its process to a linked stage that
// forks: it keeps its place in the chain, around that stage's child, with
// one fork and one process image less. done gets the status the process
// is about to exit with and returns the one to exit with.
func PlaceChildren(p Placer, done func(status int) int) {
	placer = p
	atExit = append(atExit, done)
}

// ForkExec starts a child as syscall.ForkExec, placed by the earlier stage
// in this process if there is one (see PlaceChildren).
func ForkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	if placer != nil {
		return placer(path, argv, attr)
	}
	return syscall.ForkExec(path, argv, attr)
}

// Exit ends the process with status, after the undo work registered with
// OnFailure and the work that earlier stages in this process left for its
// end (see PlaceChildren), last first.
func Exit(status int) {
	if !exiting {
		exiting = true
		if len(cleanups) > 0 {
			// On another thread than the caller's: a stage changes the
			// credentials of its own locked thread only (barco-caps), and
			// the undo needs the privileges the stage began with.
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := len(cleanups) - 1; i >= 0; i-- {
					cleanups[i]()
				}
			}()
			<-done
		}
		for i := len(atExit) - 1; i >= 0; i-- {
			status = atExit[i](status)
		}
	}
	os.Exit(status)
}
