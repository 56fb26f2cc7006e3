package chain

import (
	"barco/lib/forkexec"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecStagesEnv names the variable that, set to 1, makes Exec execute
// every stage's own binary, even one linked into the running binary.
const ExecStagesEnv = "BARCO_EXEC_STAGES"

// CgroupParentEnv names the variable that replaces barco-cgroup's default
// parent cgroup (cgroup.ParentEnv). The stages pass it on; PROGRAM does
// not get it.
const CgroupParentEnv = "BARCO_CGROUP_PARENT"

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
func (p *Process) Link(makers ...func() *Stage) {
	for _, mk := range makers {
		st := mk()
		if st.stepsOnly {
			p.stepStages[st.Name] = mk
			continue
		}
		p.linked[st.Name] = mk
		if st.Helper != nil {
			p.helpers = append(p.helpers, st)
		}
	}
}

// linkedStage returns the constructor of the stage named name if it is
// built into this binary and may run in this process.
func (p *Process) linkedStage(name string) func() *Stage {
	if os.Getenv(ExecStagesEnv) == "1" {
		return nil
	}
	return p.linked[name]
}

// StepsOnly is mk for Link, for a stage linked for its Steps alone (see
// Process.InlineSteps): Exec still runs the stage's own binary.
func StepsOnly(mk func() *Stage) func() *Stage {
	return func() *Stage {
		st := mk()
		st.stepsOnly = true
		return st
	}
}

// stepStage returns the constructor of the stage named name if it is
// built into this binary and may run as steps of a child.
func (p *Process) stepStage(name string) func() *Stage {
	if mk := p.linkedStage(name); mk != nil || os.Getenv(ExecStagesEnv) == "1" {
		return mk
	}
	return p.stepStages[name]
}

// IsLinked reports whether Exec would run the stage name in this process.
func (p *Process) IsLinked(name string) bool { return p.linkedStage(name) != nil }

// runLinked runs the linked stage argv[0] in this process, as Exec would
// have run its binary, and returns the status it ended with.
func (p *Process) runLinked(mk func() *Stage, argv, env []string) (int, error) {
	st := mk()
	p.Log.Debugf("continue as %s %q in this process", st.Name, argv[1:])
	if err := setEnviron(env); err != nil {
		return 0, err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	os.Args = argv
	return p.Run(st, argv[1:]), nil
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
// would have put the child it no longer forks itself. ForkExec does what
// forkexec.ForkExec does; Spawn starts a child with spawn, which clones
// it into the cgroup v2 directory open at cgroupFD (-1: none), as
// sysprog.Spawn does, and which execs no stage: it is one task until it
// execs PROGRAM, so that a pids limit applies from its start.
type Placer interface {
	ForkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error)
	Spawn(spawn func(cgroupFD int) (int, error)) (int, error)
}

// PlaceChildren makes ForkExec and Spawn start children through place, for
// a stage that hands its process to a linked stage that forks (barco-cgroup
// to barco-ns): it keeps its place in the chain, around that stage's child,
// with one fork and one process image less. The stage runs the linked
// stage with Exec, which then refuses to exec anything, and when Exec
// returns, calls PlaceChildren(nil) and finishes its own work.
func (p *Process) PlaceChildren(place Placer) { p.placer = place }

// Placed reports whether ForkExec starts children through an earlier
// stage's Placer.
func (p *Process) Placed() bool { return p.placer != nil }

// Spawn starts a child with spawn (see Placer), placed by the earlier
// stage in this process if there is one.
func (p *Process) Spawn(spawn func(cgroupFD int) (int, error)) (int, error) {
	if p.placer != nil {
		return p.placer.Spawn(spawn)
	}
	return spawn(-1)
}

// ForkExec starts a child as forkexec.ForkExec, placed by the earlier stage
// in this process if there is one (see PlaceChildren).
func (p *Process) ForkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	if p.placer != nil {
		return p.placer.ForkExec(path, argv, attr)
	}
	return forkexec.ForkExec(path, argv, attr)
}
