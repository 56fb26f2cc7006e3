package chain

import (
	"fmt"
	"os"
	"strconv"

	"barco/lib/hook"
	"golang.org/x/sys/unix"
)

// ReportFDEnv names a descriptor on which the stages report to the program
// that started the chain instead of on stderr, which is then the
// container's own (an OCI runtime's create): each stage's failure line,
// and "ready" once the chain waits at its start gate (StartFDEnv).
const ReportFDEnv = "BARCO_REPORT_FD"

// Both descriptors go down the chain listed in ChainFDsEnv as well.

// StartFDEnv names an O_PATH descriptor of a FIFO, the start gate: before
// it execs PROGRAM, the chain opens the FIFO for writing, which blocks
// until the container is started by opening it for reading, as runc's
// exec.fifo. The container then exists, with PROGRAM not yet run.
const StartFDEnv = "BARCO_START_FD"

// ChainFDEnvs name the descriptors that go down the chain with the
// environment: a stage that starts the next one as a child (barco-ns)
// passes each of them on, and PROGRAM gets none.
var ChainFDEnvs = []string{ReportFDEnv, StartFDEnv}

// reportFD is the descriptor of ReportFDEnv, or -1.
func reportFD() int {
	if v := os.Getenv(ReportFDEnv); v != "" {
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			return fd
		}
	}
	return -1
}

// reportLine writes line where the chain reports: the report descriptor,
// else stderr.
func (p *Process) reportLine(line string) {
	if fd := reportFD(); fd >= 0 {
		if _, err := unix.Write(fd, []byte(line+"\n")); err == nil {
			return
		}
	}
	fmt.Fprintln(p.Stderr, line)
}

// Gate waits at the start gate (StartFDEnv), if the chain has one: it
// reports "ready", closes the report descriptor, since what follows is
// PROGRAM's, and blocks until the container is started. Then it runs the
// start hooks (hook.StartEnv), in the container, with programEnv for a
// hook without an environment, as runc runs startContainer hooks. Exec calls it
// just before PROGRAM, after every stage's work, so that create reports
// any failure: a seccomp filter is in force by then, and must allow the
// open, as with runc's exec.fifo.
func (p *Process) Gate(programEnv []string) error {
	v := os.Getenv(StartFDEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(StartFDEnv)
	fifo, err := strconv.Atoi(v)
	if err != nil || fifo < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", StartFDEnv, v)
	}
	defer unix.Close(fifo)
	defer forgetChainFD(fifo)
	if fd := reportFD(); fd >= 0 {
		p.reportLine("ready")
		os.Unsetenv(ReportFDEnv)
		forgetChainFD(fd)
		unix.Close(fd)
	}
	p.Log.Debugf("wait at the start gate, fd %d", fifo)
	var w int
	for {
		// Reopened through /proc: the O_PATH descriptor cannot be written,
		// and an open for writing blocks until a reader comes.
		w, err = unix.Open("/proc/self/fd/"+v, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("start gate: open fd %d for writing: %w", fifo, err)
	}
	if _, err := unix.Write(w, []byte{0}); err != nil {
		unix.Close(w)
		return fmt.Errorf("start gate: write fd %d: %w", fifo, err)
	}
	// w stays open, close-on-exec: its end tells start that PROGRAM is
	// exec'd, after which the poststart hooks run, as runc's start reads
	// its exec.fifo to the end; GateFailed before it, that it will not be.
	p.gate = w
	return runStartHooks(programEnv)
}

// GateFailed is the byte the chain writes on the start gate after the
// first when PROGRAM will not run: a failure after the gate (a start hook,
// the resource limits, the exec). start then fails, and runs no poststart
// hook, instead of taking the gate's end for the exec.
const GateFailed = 1

// failedAfterGate tells start, if this process passed the gate, that
// PROGRAM will not run.
func (p *Process) failedAfterGate() {
	if p.gate >= 0 {
		_, _ = unix.Write(p.gate, []byte{GateFailed})
		unix.Close(p.gate)
		p.gate = -1
	}
}

// runStartHooks runs the hooks of hook.StartEnv, if any. A pid the state
// lacks (no barco-mount before this stage to read it) is this process's.
func runStartHooks(env []string) error {
	v, ok := os.LookupEnv(hook.StartEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(hook.StartEnv)
	set, err := hook.LoadSet(v)
	if err != nil {
		return fmt.Errorf("%s: %w", hook.StartEnv, err)
	}
	if set.State.Pid == 0 {
		set.State.Pid = os.Getpid()
	}
	defer HideChainFDs()()
	return hook.Run(set.Hooks, set.State, env)
}
