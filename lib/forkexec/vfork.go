//go:build amd64 || arm64

package forkexec

import (
	"errors"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const vforkArch = true

// VforkArch is whether RawVforkSyscall is there for this architecture.
const VforkArch = vforkArch

// RawVforkSyscall makes a system call that may return twice on one stack,
// as clone with CLONE_VM|CLONE_VFORK does: first in the child, then, once
// the child has exec'd or exited, in the parent. It keeps its return
// address out of the stack across the call (vfork_amd64.s, vfork_arm64.s),
// as package syscall's own does (asm_linux_amd64.s, asm_linux_arm64.s).
// Its caller is built as vfork below is: a noinline frame of its own,
// which in the parent uses only the call's results, and in the child
// calls nosplit code that never returns.
func RawVforkSyscall(trap, a1, a2, a3 uintptr) (r1, errno uintptr)

// cloneArgs is struct clone_args of clone3(2) up to cgroup.
type cloneArgs struct {
	flags, pidFD, childTID, parentTID, exitSignal uint64
	stack, stackSize, tls, setTID, setTIDSize     uint64
	cgroup                                        uint64
}

type capHeader struct {
	version uint32
	pid     int32
}

type capData struct{ effective, permitted, inheritable uint32 }

// vforkChild is all the work of the child, made before the clone: the
// child may not allocate, take a lock or grow its stack, and until its
// exec it runs in this process's memory, where it writes nothing that the
// parent reads afterwards.
type vforkChild struct {
	clone      cloneArgs
	path       *byte
	argv, envv []*byte
	dir        *byte   // nil: stay
	files      []int   // files[i] becomes the child's fd i (-1: closed); the child moves entries
	nextFD     int     // above every descriptor in files and pipe
	pipe       int     // write end: the errno of the step that failed
	setsid     bool    //
	setctty    bool    // ctty, a descriptor of the child, becomes its controlling terminal
	ctty       int     //
	unshare    uintptr // after the clone: CLONE_NEWCGROUP, once the child is in its cgroup
	ambient    []uintptr
	nofile     *syscall.Rlimit // restored before the exec, nil: left as it is
}

// vforkExec is ForkExec for the attributes vforkable accepts; its steps
// are syscall.forkAndExecInChild1's, in the same order.
func vforkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	sys := attr.Sys
	c := &vforkChild{setsid: sys.Setsid, setctty: sys.Setctty, ctty: sys.Ctty, unshare: sys.Unshareflags,
		ambient: sys.AmbientCaps}
	c.clone = cloneArgs{flags: uint64(sys.Cloneflags) | unix.CLONE_VM | unix.CLONE_VFORK, exitSignal: uint64(unix.SIGCHLD)}
	if sys.UseCgroupFD {
		c.clone.flags |= unix.CLONE_INTO_CGROUP
		c.clone.cgroup = uint64(sys.CgroupFD)
	}
	var err error
	if c.path, err = syscall.BytePtrFromString(path); err != nil {
		return 0, err
	}
	if c.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return 0, err
	}
	if c.envv, err = syscall.SlicePtrFromStrings(attr.Env); err != nil {
		return 0, err
	}
	if attr.Dir != "" {
		if c.dir, err = syscall.BytePtrFromString(attr.Dir); err != nil {
			return 0, err
		}
	}
	if sys.Setctty && sys.Ctty >= len(attr.Files) {
		//lint:ignore ST1005 syscall.ForkExec's words, so that both say the same
		return 0, errors.New("Setctty set but Ctty not valid in child")
	}
	c.nofile = NofileForChild()
	c.files = make([]int, len(attr.Files))
	c.nextFD = len(attr.Files)
	for i, fd := range attr.Files {
		c.files[i] = int(fd)
		c.nextFD = max(c.nextFD, int(fd)+1)
	}

	// No descriptor is made without close-on-exec while the child lives
	// here, as in syscall.ForkExec.
	syscall.ForkLock.Lock()
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		syscall.ForkLock.Unlock()
		return 0, err
	}
	c.pipe = pipe[1]
	c.nextFD = max(c.nextFD, pipe[1]+1)
	pid, errno := vfork(c)
	syscall.ForkLock.Unlock()
	unix.Close(pipe[1])
	defer unix.Close(pipe[0])
	if errno != 0 {
		return 0, errno
	}
	// The parent runs again once the child has exec'd, which closed its
	// end of the pipe, or has written why it could not and exited.
	var childErr uintptr
	n, rerr := ReadFull(pipe[0], unsafe.Slice((*byte)(unsafe.Pointer(&childErr)), unsafe.Sizeof(childErr)))
	if rerr == nil && n == 0 {
		return int(pid), nil
	}
	var ws unix.WaitStatus
	for {
		if _, werr := unix.Wait4(int(pid), &ws, 0, nil); werr != unix.EINTR {
			break
		}
	}
	if rerr != nil || n != int(unsafe.Sizeof(childErr)) {
		if rerr == nil {
			rerr = unix.EPIPE
		}
		return 0, &os.SyscallError{Syscall: "read of the child's start", Err: rerr}
	}
	return 0, syscall.Errno(childErr)
}

// vfork clones the child; in the child it runs vforkChildExec, which never
// returns. It is a frame of its own, kept apart from the caller's by
// noinline: the child runs on this stack until its exec, so the parent
// must not use anything the child may write in its frame after the
// clone; it uses only the clone's results, which the parent writes once
// it runs again (syscall.forkAndExecInChild1 is built the same way).
//
//go:noinline
//go:norace
//go:nocheckptr
func vfork(c *vforkChild) (pid uintptr, errno syscall.Errno) {
	var e uintptr
	BeforeFork()
	if c.clone.flags&unix.CLONE_INTO_CGROUP != 0 || c.clone.flags&unix.CLONE_NEWTIME != 0 {
		pid, e = RawVforkSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&c.clone)), unsafe.Sizeof(c.clone), 0)
	} else {
		pid, e = RawVforkSyscall(unix.SYS_CLONE, uintptr(c.clone.flags)|uintptr(unix.SIGCHLD), 0, 0)
	}
	if e != 0 || pid != 0 {
		AfterFork()
		return pid, syscall.Errno(e)
	}
	vforkChildExec(c)
	return 0, 0
}

// vforkChildExec is the child: raw system calls on c. Every function it
// calls is nosplit, so the linker proves that it fits in the stack it has.
//
//go:nosplit
//go:norace
//go:nocheckptr
func vforkChildExec(c *vforkChild) {
	var (
		err1  syscall.Errno
		i     int
		c1    uintptr
		files []int
		next  int
		pipe  int
		hdr   capHeader
		data  [2]capData
	)
	files, next, pipe = c.files, c.nextFD, c.pipe
	if len(c.ambient) > 0 {
		if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); err1 != 0 {
			goto fail
		}
	}
	if c.setsid {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0); err1 != 0 {
			goto fail
		}
	}
	AfterForkInChild()
	if c.unshare != 0 {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_UNSHARE, c.unshare, 0, 0); err1 != 0 {
			goto fail
		}
	}
	if len(c.ambient) > 0 {
		// Into permitted and inheritable first, or they cannot be raised.
		hdr.version = unix.LINUX_CAPABILITY_VERSION_3
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err1 != 0 {
			goto fail
		}
		for i = 0; i < len(c.ambient); i++ {
			c1 = c.ambient[i]
			if c1 < 64 {
				data[(c1>>5)&1].permitted |= 1 << (c1 & 31)
				data[(c1>>5)&1].inheritable |= 1 << (c1 & 31)
			}
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err1 != 0 {
			goto fail
		}
		for i = 0; i < len(c.ambient); i++ {
			if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c.ambient[i], 0, 0, 0); err1 != 0 {
				goto fail
			}
		}
	}
	if c.dir != nil {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(c.dir)), 0, 0); err1 != 0 {
			goto fail
		}
	}
	if err1 = LayFiles(files, next, &pipe, nil); err1 != 0 {
		goto fail
	}
	if c.setctty {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_IOCTL, uintptr(c.ctty), unix.TIOCSCTTY, 1); err1 != 0 {
			goto fail
		}
	}
	RestoreNofileInChild(c.nofile)
	_, _, err1 = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.envv[0])))

fail:
	c1 = uintptr(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(pipe), uintptr(unsafe.Pointer(&c1)), unsafe.Sizeof(c1))
	for {
		syscall.RawSyscall(unix.SYS_EXIT, 253, 0, 0)
	}
}
