// Package forkexec starts processes with raw system calls between the
// fork and the exec, where package syscall's ForkExec does not fit.
//
// ForkExec is syscall.ForkExec, except for a clone that makes a new user
// namespace: Go forks that one without CLONE_VM|CLONE_VFORK, because its
// own child may wait for the parent to write the uid and gid maps
// (SysProcAttr.UidMappings), which a parent stopped by vfork never would.
// A full fork of a Go process copies its page tables and marks its pages
// copy-on-write, and the parent then takes a fault on each page it writes
// first: about 2 ms on a VM where a fault costs 10 us. barco's children
// exec first and wait for their maps afterwards (barco-ns writes them and
// then hands them on, see package ns), so this package clones them with
// CLONE_VM|CLONE_VFORK as Go clones every other child, and makes in the
// child, from the attributes barco uses, what syscall's child makes.
//
// The runtime's hooks around a fork are here too, for the children that
// lib/sysprog forks.
package forkexec

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"syscall"
	"unsafe"

	"barco/lib/startup"
	"golang.org/x/sys/unix"
)

// The runtime's own hooks around package syscall's fork: before, they
// block every signal on the forking thread and make any growth of its
// stack fail loudly; in the child, they reset the handlers the runtime
// installed and restore the signal mask, before the steps that may take
// a signal (syscall's child calls it after setsid and the process group).
// The runtime keeps them for packages outside the standard library
// (go.dev/issue/67401).

//go:linkname BeforeFork syscall.runtime_BeforeFork
func BeforeFork()

//go:linkname AfterFork syscall.runtime_AfterFork
func AfterFork()

//go:linkname AfterForkInChild syscall.runtime_AfterForkInChild
func AfterForkInChild()

// ForkExec starts path with argv and attr, as syscall.ForkExec does, and
// with CLONE_VM|CLONE_VFORK where syscall.ForkExec would fork: a new user
// namespace, and attributes this package makes in its child (see
// vforkable). It returns once the child has exec'd, or the error that
// stopped it.
func ForkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	if !vforkable(attr) {
		return syscall.ForkExec(path, argv, attr)
	}
	return vforkExec(path, argv, attr)
}

// vforkable reports whether ForkExec clones with CLONE_VM|CLONE_VFORK
// itself: syscall.ForkExec would not, and every attribute set is one the
// child here makes. With any other (one a later Go adds among them),
// syscall.ForkExec starts the child, and forks.
func vforkable(attr *syscall.ProcAttr) bool {
	if !vforkArch || attr == nil || attr.Sys == nil || attr.Sys.Cloneflags&syscall.CLONE_NEWUSER == 0 {
		return false
	}
	s := *attr.Sys
	s.Cloneflags, s.AmbientCaps, s.Setsid, s.Setctty, s.Ctty = 0, nil, false, false, 0
	s.UseCgroupFD, s.CgroupFD = false, 0
	if s.Unshareflags == syscall.CLONE_NEWCGROUP {
		s.Unshareflags = 0
	}
	return reflect.ValueOf(s).IsZero()
}

// NofileForChild is the RLIMIT_NOFILE this process started with, when
// package syscall raised it at its init and it has not been changed
// since: the limit a child it starts by raw system calls gets back before
// its exec, as syscall.ForkExec gives it; nil to leave it. The child sets
// it unless it finds the limit changed since (a prlimit from outside), as
// syscall's child does.
func NofileForChild() *syscall.Rlimit {
	if !startup.NofileOK {
		return nil
	}
	soft, hard := startup.Nofile[0], startup.Nofile[1]
	if hard == 0 || soft >= hard-1 {
		return nil // syscall's init left it
	}
	var now unix.Rlimit
	if unix.Prlimit(0, unix.RLIMIT_NOFILE, nil, &now) != nil || now.Cur != hard-1 || now.Max != hard {
		return nil // not syscall's raise: someone set it since
	}
	return &syscall.Rlimit{Cur: soft, Max: hard}
}

// RestoreNofile gives this process back the RLIMIT_NOFILE it started
// with, when package syscall raised it at its init and nothing changed it
// since, before an exec by raw system calls: syscall.Exec restores it
// itself, and a program started with a soft limit of the hard one minus
// one may break on select(2), which is why the limit was low. It acts at
// its first call only: a process execs once, and a call made before the
// chain's own limits are applied must not be undone by one at the exec.
func RestoreNofile() error {
	restoreOnce.Do(func() {
		lim := NofileForChild()
		if lim == nil {
			return
		}
		if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim.Cur, Max: lim.Max}, nil); err != nil {
			restoreErr = fmt.Errorf("setrlimit RLIMIT_NOFILE %d:%d: %w", lim.Cur, lim.Max, err)
		}
	})
	return restoreErr
}

var (
	restoreOnce sync.Once
	restoreErr  error
)

// RestoreNofileInChild sets lim (from NofileForChild) in a child between
// its fork and its exec, unless the limit changed since the parent
// looked, as syscall's child does: raw system calls only.
//
//go:nosplit
//go:norace
func RestoreNofileInChild(lim *syscall.Rlimit) {
	var now unix.Rlimit
	if lim == nil {
		return
	}
	_, _, err := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&now)), 0, 0)
	if err != 0 || (now.Cur == lim.Max-1 && now.Max == lim.Max) {
		syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(lim)), 0, 0, 0)
	}
}

// LayFiles, in a child between its fork and its exec, puts files[i] on
// descriptor i (-1: closed), and closes those of 0, 1 and 2 beyond files,
// as syscall's child does: first each descriptor in the way out of it,
// above next, keep1 and keep2 among them (the child's own descriptors it
// still needs, updated where they move; nil for none), then each onto its
// number. It changes files. Raw system calls only.
//
//go:nosplit
//go:norace
func LayFiles(files []int, next int, keep1, keep2 *int) syscall.Errno {
	var (
		i   int
		err syscall.Errno
	)
	if keep1 != nil && *keep1 < len(files) {
		if _, _, err = syscall.RawSyscall(unix.SYS_DUP3, uintptr(*keep1), uintptr(next), unix.O_CLOEXEC); err != 0 {
			return err
		}
		*keep1 = next
		next++
	}
	if keep2 != nil && *keep2 < len(files) {
		if _, _, err = syscall.RawSyscall(unix.SYS_DUP3, uintptr(*keep2), uintptr(next), unix.O_CLOEXEC); err != 0 {
			return err
		}
		*keep2 = next
		next++
	}
	for i = 0; i < len(files); i++ {
		if files[i] >= 0 && files[i] < i {
			if _, _, err = syscall.RawSyscall(unix.SYS_DUP3, uintptr(files[i]), uintptr(next), unix.O_CLOEXEC); err != 0 {
				return err
			}
			files[i] = next
			next++
		}
	}
	for i = 0; i < len(files); i++ {
		switch {
		case files[i] < 0:
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(i), 0, 0)
		case files[i] == i:
			// dup3 onto itself would not clear close-on-exec.
			if _, _, err = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0); err != 0 {
				return err
			}
		default:
			if _, _, err = syscall.RawSyscall(unix.SYS_DUP3, uintptr(files[i]), uintptr(i), 0); err != 0 {
				return err
			}
		}
	}
	for i = len(files); i < 3; i++ {
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(i), 0, 0)
	}
	return 0
}

// ReadFull reads len(b) bytes from fd, or up to its end.
func ReadFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
