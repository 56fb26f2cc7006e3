package sysprog

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"barco/lib/forkexec"
	"golang.org/x/sys/unix"
)

// Run runs p in this process and returns the step that failed, as a
// *StepError or as Builder.Explain made it. A program that ends with an
// exec that succeeds does not return. A step marked Blocking is made
// through the runtime; the others are raw, holding this goroutine's thread
// and the runtime's P until they return.
func Run(p *Program) error {
	if p.childOnly {
		return errors.New("sysprog: a program for a child of Spawn, run in the process")
	}
	report := -1
	if i, errno := p.run(false, &report); i >= 0 {
		return p.err(i, errno)
	}
	return nil
}

// err is the error of step i, failed with errno.
func (p *Program) err(i int, errno syscall.Errno) error {
	var err error = &StepError{Step: p.names[i], Err: errno}
	if p.errs[i] != nil {
		err = p.errs[i](errno)
	}
	if p.wraps[i] != nil {
		err = p.wraps[i](err)
	}
	return err
}

// SharedMemory is whether the child of Start runs in this process's
// memory, where its parent reads what its steps wrote (results, Store)
// once Start returns: where package forkexec has a vfork (see fork).
const SharedMemory = forkexec.VforkArch

// Start clones a child that runs p, and returns its pid once the child
// has exec'd or ended, or the step that failed, as Run does; the child
// that failed is reaped. The child runs in this process's memory until
// its exec, on this thread's stack, while this thread waits (see fork),
// with its descriptors, in its namespaces; it reports a failure on a
// close-on-exec pipe above every descriptor p lays out. p must not wait
// for anything this process would do meanwhile.
func Start(p *Program) (int, error) {
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(pipe[0])
	report, err := unix.FcntlInt(uintptr(pipe[1]), unix.F_DUPFD_CLOEXEC, p.maxFD)
	unix.Close(pipe[1])
	if err != nil {
		return 0, fmt.Errorf("fcntl F_DUPFD_CLOEXEC: %w", err)
	}

	// No descriptor is made without close-on-exec while the child is
	// forked, as syscall.ForkExec does.
	syscall.ForkLock.Lock()
	pid, errno := fork(p, report)
	syscall.ForkLock.Unlock()
	unix.Close(report)
	runtime.KeepAlive(p)
	if errno != 0 {
		return 0, &os.SyscallError{Syscall: "fork", Err: errno}
	}
	var f failure
	n, err := forkexec.ReadFull(pipe[0], unsafe.Slice((*byte)(unsafe.Pointer(&f)), unsafe.Sizeof(f)))
	if err == nil && n == 0 {
		return pid, nil
	}
	// The child exits after it reports; it is ours to reap.
	var ws unix.WaitStatus
	for {
		if _, werr := unix.Wait4(pid, &ws, 0, nil); werr != unix.EINTR {
			break
		}
	}
	if err != nil || n != int(unsafe.Sizeof(f)) || int(f.Step) >= len(p.names) {
		return 0, fmt.Errorf("child %d: no report of its start (%v)", pid, err)
	}
	return 0, p.err(int(f.Step), syscall.Errno(f.Errno))
}

// failure is what a child writes on its report pipe when a step of the
// program Part (0, or a continuation: see Child.Then) fails.
type failure struct {
	Part, Step, Errno uint32
}

// fork clones the child, which runs p and never returns. Where package
// forkexec has a vfork for the architecture, the clone is
// CLONE_VM|CLONE_VFORK, as Go clones its own children: the child runs on
// this goroutine's stack, in this process's memory, and this thread waits
// until the child has exec'd or exited. A fork would copy this process's
// page tables, and this process would then take a copy-on-write fault on
// each page it writes first (about 10 us each on a virtual machine). So a
// program that Start runs must not wait for anything its parent does
// after the clone. Elsewhere it is a fork.
//
// It is a frame of its own (noinline), as forkexec's vfork: in the parent
// it uses nothing after the clone but the clone's results.
//
//go:noinline
//go:norace
//go:nocheckptr
func fork(p *Program, report int) (pid int, errno syscall.Errno) {
	var r1, e uintptr
	forkexec.BeforeFork()
	if forkexec.VforkArch {
		r1, e = forkexec.RawVforkSyscall(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_VFORK|uintptr(unix.SIGCHLD), 0, 0)
	} else {
		r1, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		e = uintptr(errno)
	}
	if e != 0 || r1 != 0 {
		// The parent, or no child.
		forkexec.AfterFork()
		return int(r1), syscall.Errno(e)
	}
	p.child(report)
	return 0, 0
}

// child runs p in the child of fork: it reports the step that failed on
// report and exits with p's status, or exits 0 when p ends without an
// exec.
//
//go:nosplit
//go:norace
func (p *Program) child(report int) {
	var f failure
	for q := p; q != nil; q = q.next {
		i, errno := q.run(true, &report)
		if i >= 0 {
			f.Step, f.Errno = uint32(i), uint32(errno)
			if report >= 0 {
				syscall.RawSyscall(unix.SYS_WRITE, uintptr(report), uintptr(unsafe.Pointer(&f)), unsafe.Sizeof(f))
			}
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(q.status), 0, 0)
			}
		}
		f.Part++
	}
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// run runs p's steps and returns the one that failed, with its errno, or
// -1. report is the child's report pipe, which a step may close (-1
// then). In a child (inChild), it makes raw system calls only, on memory made
// before the fork; it allocates nothing and writes no Go pointer, and
// every function it calls is nosplit, so the linker proves that it fits
// in the stack it has. validate proved every index in range.
//
//go:nosplit
//go:norace
func (p *Program) run(inChild bool, report *int) (int, syscall.Errno) {
	var (
		i, to int
		s     *step
		r1    uintptr
		errno syscall.Errno
	)
	for i < len(p.steps) {
		s = &p.steps[i]
		switch s.op {
		case opSys:
			if s.blocking && !inChild {
				r1, _, errno = syscall.Syscall6(s.nr, p.value(&s.args[0]), p.value(&s.args[1]), p.value(&s.args[2]),
					p.value(&s.args[3]), p.value(&s.args[4]), p.value(&s.args[5]))
			} else {
				r1, _, errno = syscall.RawSyscall6(s.nr, p.value(&s.args[0]), p.value(&s.args[1]), p.value(&s.args[2]),
					p.value(&s.args[3]), p.value(&s.args[4]), p.value(&s.args[5]))
			}
			if errno != 0 {
				to = -1
				switch {
				case s.on[0].errno == errno || s.on[0].errno == anyErrno:
					to = s.on[0].to
				case s.on[1].errno == errno || s.on[1].errno == anyErrno:
					to = s.on[1].to
				case s.on[2].errno == errno || s.on[2].errno == anyErrno:
					to = s.on[2].to
				}
				if to < 0 {
					return i, errno
				}
				p.errnos[i] = uintptr(errno)
				i = to
				continue
			}
			p.slots[i] = r1
		case opJumpUnless:
			if p.value(&s.args[0])&s.mask != p.value(&s.args[1]) {
				i = s.to
				continue
			}
		case opResetSignals:
			if inChild {
				forkexec.AfterForkInChild()
			}
		case opExitOnSignal:
			if inChild {
				_, _, errno = syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s.nr, p.value(&s.args[0]), 0, 8, 0, 0)
				if errno != 0 {
					return i, errno
				}
			}
		case opFail:
			return i, syscall.Errno(s.nr)
		case opStore:
			*(*uintptr)(s.args[0].p) = p.value(&s.args[1])
		case opCloseReport:
			if *report >= 0 {
				syscall.RawSyscall(unix.SYS_CLOSE, uintptr(*report), 0, 0)
				*report = -1
			}
		case opCloseFrom:
			if from := p.value(&s.args[0]); *report < 0 || uintptr(*report) < from {
				_, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, from, ^uintptr(0), 0)
			} else {
				_, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, from, uintptr(*report)-1, 0)
				if errno == 0 {
					_, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(*report)+1, ^uintptr(0), 0)
				}
			}
			if errno != 0 {
				return i, errno
			}
		case opWriteErrno:
			if e := p.value(&s.args[1]); e < uintptr(len(p.texts)) && len(p.texts[e]) > 0 {
				syscall.RawSyscall(unix.SYS_WRITE, p.value(&s.args[0]), uintptr(unsafe.Pointer(&p.texts[e][0])), uintptr(len(p.texts[e])))
			}
		}
		i++
	}
	return -1, 0
}

// value is the value of a when its step runs.
//
//go:nosplit
//go:norace
func (p *Program) value(a *Arg) uintptr {
	switch a.kind {
	case kindPtr:
		return uintptr(a.p)
	case kindSlot:
		return p.slots[a.v]
	case kindLoad:
		return *(*uintptr)(a.p)
	case kindErrno:
		return p.errnos[a.v]
	}
	return a.v
}
