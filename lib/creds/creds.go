// Package creds changes the credentials of the calling thread: the
// capability sets, the uid, gid and supplementary groups, the ambient set,
// no-new-privs and the parent-death signal.
//
// The rule every stage keeps: credentials are per thread in Linux, and Go's
// own wrappers (syscall.Setresuid and the like) change every thread of the
// process by signalling each, which cost a stage milliseconds per start. So
// a stage changes them on one thread only: it locks its goroutine to its
// thread (runtime.LockOSThread) for good, changes the credentials there,
// does nothing else that could move its work to another thread, and execs
// the next program from that same thread. execve ends every other thread,
// and the new program gets the credentials of the one that called it. The
// other threads keep the credentials the stage began with until then, and
// run only the Go runtime, or undo work that needs exactly those (see
// chain.Process.OnFailure).
//
// Every function here acts on the calling thread only, with the raw
// syscall. The rule is checked: LockThread makes the calling goroutine's
// thread the process's credentials thread, and every function that changes
// credentials fails, changing nothing, on any other thread.
package creds

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lockedTID is the thread LockThread locked, 0 before.
var lockedTID atomic.Int32

// ErrNotLockedThread is the error of a change of credentials on a thread
// that LockThread did not lock.
var ErrNotLockedThread = errors.New("credentials change on a thread that is not the locked credentials thread (creds.LockThread)")

// LockThread locks the calling goroutine to its thread for good and makes
// that thread the one whose credentials change. A second call on the same
// thread does nothing more; on another thread it fails, since the process
// would then have two threads with changed credentials and exec from one.
func LockThread() error {
	runtime.LockOSThread()
	tid := int32(unix.Gettid())
	if lockedTID.CompareAndSwap(0, tid) || lockedTID.Load() == tid {
		return nil
	}
	runtime.UnlockOSThread()
	return fmt.Errorf("lock thread %d for credentials: thread %d already is", tid, lockedTID.Load())
}

// onLockedThread checks that the caller runs on the LockThread thread.
func onLockedThread() error {
	if tid := lockedTID.Load(); tid == 0 || tid != int32(unix.Gettid()) {
		return ErrNotLockedThread
	}
	return nil
}

// Sets are the permitted, effective and inheritable capability sets, one
// bit per capability number.
type Sets struct {
	Permitted, Effective, Inheritable uint64
}

// Get reads the calling thread's capability sets.
func Get() (Sets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return Sets{}, os.NewSyscallError("capget", err)
	}
	join := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	return Sets{
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Effective:   join(data[0].Effective, data[1].Effective),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}, nil
}

// Set sets the calling thread's capability sets. The error is the bare
// errno, for the caller to say which change failed.
func Set(s Sets) error {
	if err := onLockedThread(); err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Permitted: uint32(s.Permitted), Effective: uint32(s.Effective), Inheritable: uint32(s.Inheritable)},
		{Permitted: uint32(s.Permitted >> 32), Effective: uint32(s.Effective >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	return unix.Capset(&hdr, &data[0])
}

func thread(nr, a1, a2, a3 uintptr) error {
	if err := onLockedThread(); err != nil {
		return err
	}
	if _, _, errno := unix.RawSyscall(nr, a1, a2, a3); errno != 0 {
		return errno
	}
	return nil
}

// SetGroups sets the supplementary groups of the calling thread. The error
// is the bare errno, for the caller to name the operation.
func SetGroups(gids []int) error {
	list := make([]uint32, len(gids))
	for i, g := range gids {
		list[i] = uint32(g)
	}
	var ptr uintptr
	if len(list) > 0 {
		ptr = uintptr(unsafe.Pointer(&list[0]))
	}
	return thread(unix.SYS_SETGROUPS, uintptr(len(list)), ptr, 0)
}

// SetGID sets the real, effective and saved gid of the calling thread.
func SetGID(gid int) error {
	return thread(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid))
}

// SetUID sets the real, effective and saved uid of the calling thread.
func SetUID(uid int) error {
	return thread(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid))
}

// ClearAmbient empties the ambient set.
func ClearAmbient() error {
	if err := onLockedThread(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
	}
	return nil
}

// NoNewPrivs sets no_new_privs, which every later exec keeps.
func NoNewPrivs() error {
	if err := onLockedThread(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}

// ParentDeathSignal sets the signal the calling thread's process gets when
// the thread that forked it ends. The kernel clears it on every change of
// credentials, so a stage sets it again after one, on the thread that
// execs.
func ParentDeathSignal(sig int) error {
	if err := onLockedThread(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", err)
	}
	return nil
}
