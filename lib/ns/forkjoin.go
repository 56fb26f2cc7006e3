package ns

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"barco/lib/forkexec"
	"golang.org/x/sys/unix"
)

// Joining a user namespace needs a process with one thread
// (setns(2): EINVAL otherwise), and joining a mount namespace one whose
// working directory and root are its own, which no thread of a Go program
// has. A Go program never has a single thread, so these two joins are made
// by the child itself, between its fork and its exec, as runc's C
// constructor (nsexec) and util-linux's nsenter make them: forkJoined
// forks a copy of this process and runs childJoin in it, which may only
// make raw system calls on memory prepared before the fork, as Go's own
// syscall.forkAndExecInChild does.

// joinChild is the work of the child of forkJoined, all of it made before
// the fork: the child may not allocate memory, grow its stack or take a
// lock.
type joinChild struct {
	userFD, mntFD int   // namespaces to join, -1 for none
	dir           *byte // working directory after the joins, nil to keep
	setsid        bool
	setctty       bool  // fd 0 becomes the controlling terminal
	files         []int // files[i] becomes the child's fd i
	nextFD        int   // above every descriptor of files
	exe           int   // the executable, opened before the mount ns changes
	argv, env     []*byte
	empty         *byte           // "", the path execveat takes with AT_EMPTY_PATH
	pipe          int             // write end: a failed step, as a joinFailure
	nofile        *syscall.Rlimit // see forkexec.NofileForChild
}

// Steps of the child, as it reports a failure.
const (
	stepUser = iota + 1
	stepGroups
	stepGID
	stepUID
	stepMount
	stepChdir
	stepSetsid
	stepFiles
	stepCtty
	stepExec
)

var stepNames = map[uint32]string{
	stepUser: "join the user namespace", stepGroups: "setgroups in the joined user namespace",
	stepGID: "become gid 0 of the joined user namespace", stepUID: "become uid 0 of the joined user namespace",
	stepMount: "join the mount namespace", stepChdir: "change to the working directory",
	stepSetsid: "setsid", stepFiles: "arrange the descriptors", stepCtty: "take fd 0 as controlling terminal (TIOCSCTTY)",
	stepExec: "exec",
}

// joinFailure is what the child writes on its pipe when a step fails.
type joinFailure struct {
	Step, Errno uint32
}

// forkJoined starts path (argv, attr.Env, attr.Files) as a child that
// first joins the user namespace open at userFD (and becomes root of it,
// which the exec then gives every capability there), then the mount
// namespace at mntFD, changes to attr.Dir, leads a new session with
// attr.Sys.Setsid and takes fd 0 as its controlling terminal with
// attr.Sys.Setctty. The other namespaces are the forking thread's, as with
// syscall.ForkExec. It returns once the child has exec'd, or with the
// step that failed.
//
// The executable is opened before the fork and run with execveat, since
// the host's paths are gone once the mount namespace is joined.
func forkJoined(path string, argv []string, attr *syscall.ProcAttr, userFD, mntFD int) (int, error) {
	c := &joinChild{userFD: userFD, mntFD: mntFD, nextFD: 0, nofile: forkexec.NofileForChild()}
	var err error
	if c.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return 0, err
	}
	if c.env, err = syscall.SlicePtrFromStrings(attr.Env); err != nil {
		return 0, err
	}
	if c.empty, err = syscall.BytePtrFromString(""); err != nil {
		return 0, err
	}
	if attr.Dir != "" {
		if c.dir, err = syscall.BytePtrFromString(attr.Dir); err != nil {
			return 0, err
		}
	}
	if attr.Sys != nil {
		c.setsid, c.setctty = attr.Sys.Setsid, attr.Sys.Setctty
	}
	c.exe, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(c.exe)
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(pipe[0])
	c.pipe = pipe[1]
	c.files = make([]int, len(attr.Files))
	c.nextFD = len(attr.Files)
	for i, fd := range attr.Files {
		c.files[i] = int(fd)
		c.nextFD = max(c.nextFD, int(fd)+1)
	}
	for _, fd := range []int{c.exe, c.pipe, userFD, mntFD} {
		c.nextFD = max(c.nextFD, fd+1)
	}

	// No descriptor is made without close-on-exec while the child is
	// forked, as syscall.ForkExec does.
	syscall.ForkLock.Lock()
	pid, errno := forkJoin(c)
	syscall.ForkLock.Unlock()
	unix.Close(pipe[1])
	runtime.KeepAlive(c)
	if errno != 0 {
		return 0, &os.SyscallError{Syscall: "fork", Err: errno}
	}
	var f joinFailure
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
	if err != nil || n != int(unsafe.Sizeof(f)) {
		return 0, fmt.Errorf("child %d: no report of its start (%v)", pid, err)
	}
	return 0, &joinError{Step: stepNames[f.Step], Err: syscall.Errno(f.Errno)}
}

// joinError is a failed step of the child of forkJoined.
type joinError struct {
	Step string
	Err  syscall.Errno
}

func (e *joinError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *joinError) Unwrap() error { return e.Err }

// forkJoin forks; the child runs childJoin and never returns.
//
//go:norace
func forkJoin(c *joinChild) (pid int, errno syscall.Errno) {
	var r1 uintptr
	forkexec.BeforeFork()
	r1, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || r1 != 0 {
		// The parent, or no child.
		forkexec.AfterFork()
		return int(r1), errno
	}
	childJoin(c)
	return 0, 0
}

// childJoin is the child of forkJoin: raw system calls only, on c, which
// the parent made. Every function it calls is nosplit, so the linker
// proves that it fits in the stack it has.
//
//go:nosplit
//go:norace
func childJoin(c *joinChild) {
	var (
		step   uint32
		err1   syscall.Errno
		files  []int
		next   int
		pipe   int
		exe    int
		report joinFailure
	)
	files, next, pipe, exe = c.files, c.nextFD, c.pipe, c.exe
	if c.userFD >= 0 {
		step = stepUser
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.userFD), unix.CLONE_NEWUSER, 0); err1 != 0 {
			goto fail
		}
		// Root of the namespace, as runc's exec: the host's root is not
		// mapped there, and an exec as an unmapped uid would drop every
		// capability. The stages after set the process's own user.
		step = stepGroups
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); err1 != 0 && err1 != syscall.EPERM {
			goto fail
		}
		step = stepGID
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0); err1 != 0 {
			goto fail
		}
		step = stepUID
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); err1 != 0 {
			goto fail
		}
	}
	if c.mntFD >= 0 {
		step = stepMount
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.mntFD), unix.CLONE_NEWNS, 0); err1 != 0 {
			goto fail
		}
	}
	if c.dir != nil {
		step = stepChdir
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(c.dir)), 0, 0); err1 != 0 {
			goto fail
		}
	}
	if c.setsid {
		step = stepSetsid
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0); err1 != 0 {
			goto fail
		}
	}
	step = stepFiles
	if err1 = forkexec.LayFiles(files, next, &pipe, &exe); err1 != 0 {
		goto fail
	}
	if c.setctty {
		step = stepCtty
		if _, _, err1 = syscall.RawSyscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0); err1 != 0 {
			goto fail
		}
	}
	forkexec.RestoreNofileInChild(c.nofile)
	forkexec.AfterForkInChild()
	step = stepExec
	_, _, err1 = syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(exe), uintptr(unsafe.Pointer(c.empty)),
		uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.env[0])), unix.AT_EMPTY_PATH, 0)

fail:
	report.Step, report.Errno = step, uint32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(pipe), uintptr(unsafe.Pointer(&report)), unsafe.Sizeof(report))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}
