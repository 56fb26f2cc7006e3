package sysprog

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"barco/lib/forkexec"
	"golang.org/x/sys/unix"
)

const enosys = syscall.ENOSYS

// spawnStackSize is the child's stack: the interpreter is nosplit code,
// whose frames the linker bounds to a few hundred bytes.
const spawnStackSize = 64 << 10

// Child is a child that Spawn started, which runs concurrently with this
// process, in its memory, until it execs or ends.
type Child struct {
	Pid   int
	PidFD int // a pidfd of the child, which Kill signals
	args  *spawnArgs
	stack []byte
	// report is the read end of the child's report pipe, or -1 once it
	// has been read to its end.
	report int
}

// spawnArgs is what the child's entry is given: memory of the parent's
// that it only reads.
type spawnArgs struct {
	p      *Program
	report int
}

// spawned holds the arguments, and so the programs, of the children of
// Spawn not yet released: a child runs its program in this process's
// memory, which the collector would free and reuse once the caller drops
// its Child, as a caller that leaves its child at a start gate (an OCI
// create) does before it exits.
var spawned = struct {
	sync.Mutex
	args map[*spawnArgs]struct{}
}{args: map[*spawnArgs]struct{}{}}

// Spawn clones a child that runs p, with the flags of clone3(2) (the
// CLONE_NEW* of the namespaces to make; CLONE_VM, CLONE_PIDFD and
// CLONE_INTO_CGROUP are added here) and into the cgroup v2 directory open
// at cgroupFD if it is not -1. Unlike Start's, the child runs on a stack of
// its own, alongside this process, which goes on as soon as the clone
// returns: its program may wait for what this process does after (a
// blocking read on a pipe, say), and may end in a continuation that this
// process builds meanwhile (Then). Until its exec the child shares this
// process's memory, but not its descriptors, which are copied at the
// clone as by a fork, nor its signal handlers, which p resets first
// (Builder.DefaultSignals: not ResetSignals, whose runtime hook reads
// what this process's threads change meanwhile).
//
// The child reports a failure on a close-on-exec pipe above every
// descriptor p lays out; Wait reads it.
func Spawn(p *Program, flags uint64, cgroupFD int) (*Child, error) {
	if !SpawnArch {
		return nil, &os.SyscallError{Syscall: "clone3", Err: enosys}
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	report, err := unix.FcntlInt(uintptr(pipe[1]), unix.F_DUPFD_CLOEXEC, p.maxFD)
	unix.Close(pipe[1])
	if err != nil {
		unix.Close(pipe[0])
		return nil, fmt.Errorf("fcntl F_DUPFD_CLOEXEC: %w", err)
	}
	defer unix.Close(report)
	// Not Go memory: the stack must not move, nor be scanned.
	stack, err := unix.Mmap(-1, 0, spawnStackSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_STACK)
	if err != nil {
		unix.Close(pipe[0])
		return nil, fmt.Errorf("mmap the child's stack: %w", err)
	}
	c := &Child{PidFD: -1, args: &spawnArgs{p: p, report: report}, stack: stack, report: pipe[0]}
	var pidfd int32 = -1
	args := cloneArgs{
		flags:      flags | unix.CLONE_VM | unix.CLONE_PIDFD,
		pidFD:      uint64(uintptr(unsafe.Pointer(&pidfd))),
		exitSignal: uint64(unix.SIGCHLD),
		stack:      uint64(uintptr(unsafe.Pointer(&stack[0]))),
		stackSize:  uint64(len(stack)),
	}
	if cgroupFD >= 0 {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(cgroupFD)
	}
	// No descriptor is made without close-on-exec while the child is
	// cloned, as syscall.ForkExec does; after it, the child's are its own.
	syscall.ForkLock.Lock()
	forkexec.BeforeFork()
	r1, errno := rawCloneOnStack(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), unsafe.Pointer(c.args))
	forkexec.AfterFork()
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(&args)
	if errno != 0 {
		unix.Munmap(stack)
		unix.Close(pipe[0])
		return nil, &os.SyscallError{Syscall: "clone3", Err: syscall.Errno(errno)}
	}
	c.Pid, c.PidFD = int(r1), int(pidfd)
	spawned.Lock()
	spawned.args[c.args] = struct{}{}
	spawned.Unlock()
	return c, nil
}

// cloneArgs is struct clone_args of clone3(2) up to cgroup.
type cloneArgs struct {
	flags, pidFD, childTID, parentTID, exitSignal uint64
	stack, stackSize, tls, setTID, setTIDSize     uint64
	cgroup                                        uint64
}

// spawnChild is the child's entry, on its own stack (rawCloneOnStack).
//
//lint:ignore U1000 called from spawn_amd64.s
//go:nosplit
//go:norace
//go:nocheckptr
func spawnChild(a *spawnArgs) {
	a.p.child(a.report)
}

// Then makes next the program the child runs once the steps of the one
// it runs now are done. It must come before the child can reach their
// end: p's last step waits for this process (a read of a pipe that this
// process writes after Then), which also orders the child's read of next
// after this write.
func (c *Child) Then(next *Program) {
	q := c.args.p
	for q.next != nil {
		q = q.next
	}
	q.next = next
}

// Wait waits until the child has exec'd or closed its end of the report
// pipe (a step may: see Builder.Reported), and returns nil, or the step
// that failed, as Run does; the child that failed is reaped. Either way,
// the child's program is this process's to keep alive until the child
// execs (see Release).
func (c *Child) Wait() error {
	if c.report < 0 {
		return nil
	}
	var f failure
	n, err := forkexec.ReadFull(c.report, unsafe.Slice((*byte)(unsafe.Pointer(&f)), unsafe.Sizeof(f)))
	unix.Close(c.report)
	c.report = -1
	if err == nil && n == 0 {
		return nil
	}
	c.reap()
	q := c.args.p
	for i := uint32(0); i < f.Part && q != nil; i++ {
		q = q.next
	}
	if err != nil || n != int(unsafe.Sizeof(f)) || q == nil || int(f.Step) >= len(q.names) {
		return fmt.Errorf("child %d: no report of its failure (%v)", c.Pid, err)
	}
	return q.err(int(f.Step), syscall.Errno(f.Errno))
}

// Kill kills the child and reaps it, for a parent that fails while the
// child waits for it.
func (c *Child) Kill() {
	_ = unix.PidfdSendSignal(c.PidFD, unix.SIGKILL, nil, 0)
	c.reap()
	if c.report >= 0 {
		unix.Close(c.report)
		c.report = -1
	}
}

func (c *Child) reap() {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	c.forget()
}

// forget lets the program of the child, which has exec'd or ended, go.
func (c *Child) forget() {
	spawned.Lock()
	delete(spawned.args, c.args)
	spawned.Unlock()
}

// Release frees the child's stack and lets its program go, once the child
// has exec'd or ended, and closes the pidfd. A child still running its
// steps would be left without them: a parent that leaves before then
// (an OCI create, whose init waits at its start gate) just exits, and the
// child keeps the memory it shares, where its program stays (spawned)
// however the parent drops its Child.
func (c *Child) Release() {
	if c.PidFD >= 0 {
		unix.Close(c.PidFD)
		c.PidFD = -1
	}
	if c.stack != nil {
		unix.Munmap(c.stack)
		c.stack = nil
	}
	c.forget()
}

// DefaultSignals appends, for a child of Spawn, the reset to SIG_DFL of
// every signal this process handles, as read when it is called (the Go
// runtime's handlers, those of os/signal), and returns what appends the
// unblocking of the signals that the calling thread does not block, to
// come once the child has installed the handlers of its own
// (ExitOnSignal): Spawn clones the child with every signal blocked.
// Unlike ResetSignals, which calls the runtime's after-fork hook, it
// reads nothing of the runtime's in the child, which runs alongside its
// parent, whose threads change what that hook reads. Its program runs in
// a child only: Run refuses it.
func (b *Builder) DefaultSignals() (unblock func()) {
	b.p.childOnly = true
	var dfl *[4]uintptr
	for sig := 1; sig <= 64; sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		var old [4]uintptr
		if _, _, errno := syscall.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno != 0 {
			continue
		}
		if old[0] == sigDefault || old[0] == sigIgnore {
			continue
		}
		if dfl == nil {
			dfl = (*[4]uintptr)(b.Bytes(32))
		}
		b.Sys("reset the handler of "+syscall.Signal(sig).String(), unix.SYS_RT_SIGACTION,
			Int(sig), Ptr(unsafe.Pointer(dfl)), Int(0), Int(8))
	}
	mask := (*uint64)(b.Bytes(8))
	if _, _, errno := syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, 0, uintptr(unsafe.Pointer(mask)), 8, 0, 0); errno != 0 {
		*mask = 0
	}
	return func() {
		b.Sys("restore the signal mask", unix.SYS_RT_SIGPROCMASK, Int(unix.SIG_SETMASK), Ptr(unsafe.Pointer(mask)), Int(0), Int(8))
	}
}

// SIG_DFL and SIG_IGN, as the handler of a struct sigaction.
const (
	sigDefault = 0
	sigIgnore  = 1
)
