package ns

import (
	"fmt"
	"os"
	"syscall"

	"barco/lib/chain"
	"barco/lib/forkexec"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// Joining a user namespace needs a process with one thread
// (setns(2): EINVAL otherwise), and joining a mount namespace one whose
// working directory and root are its own, which no thread of a Go program
// has. A Go program never has a single thread, so these two joins are made
// by the child itself, between its fork and its exec, as runc's C
// constructor (nsexec) and util-linux's nsenter make them: forkJoined
// builds the child's work as a program of system calls (package sysprog)
// and forks a copy of this process that runs it, as Go's own
// syscall.forkAndExecInChild runs its steps.

// The child's steps, as a failure names them.
const (
	stepUser   = "join the user namespace"
	stepGroups = "setgroups in the joined user namespace"
	stepGID    = "become gid 0 of the joined user namespace"
	stepUID    = "become uid 0 of the joined user namespace"
	stepMount  = "join the mount namespace"
	stepChdir  = "change to the working directory"
	stepSetsid = "setsid"
	stepFiles  = "arrange the descriptors"
	stepCtty   = "take fd 0 as controlling terminal (TIOCSCTTY)"
	stepExec   = "exec"
)

// forkJoined starts path (argv, attr.Env, attr.Files) as a child that
// first joins the user namespace open at userFD (and becomes root of it,
// which the exec then gives every capability there), then the mount
// namespace at mntFD, changes to attr.Dir, leads a new session with
// attr.Sys.Setsid and takes fd 0 as its controlling terminal with
// attr.Sys.Setctty. The other namespaces are the forking thread's, as with
// syscall.ForkExec. It returns once the child has exec'd, or with the
// step that failed, as a *sysprog.StepError.
//
// The executable is opened before the fork and run with execveat, since
// the host's paths are gone once the mount namespace is joined. With
// inline, path and argv are unused: the child runs inline's steps (the
// next stages' work and PROGRAM's exec, see chain.Process.InlineSteps)
// after its joins instead.
func forkJoined(path string, argv []string, attr *syscall.ProcAttr, userFD, mntFD int, inline func(*sysprog.Builder)) (int, error) {
	exe := -1
	if inline == nil {
		var err error
		if exe, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return 0, &os.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(exe)
	}
	p, err := joinProgram(exe, argv, attr, userFD, mntFD, inline)
	if err != nil {
		return 0, err
	}
	return sysprog.Start(p)
}

// joinProgram is the child's work for forkJoined, exe the executable, or
// inline's steps in its place (see chain.Process.InlineSteps).
func joinProgram(exe int, argv []string, attr *syscall.ProcAttr, userFD, mntFD int, inline func(*sysprog.Builder)) (*sysprog.Program, error) {
	var b sysprog.Builder
	if userFD >= 0 {
		b.Sys(stepUser, unix.SYS_SETNS, sysprog.Int(userFD), sysprog.Int(unix.CLONE_NEWUSER))
		// Root of the namespace, as runc's exec: the host's root is not
		// mapped there, and an exec as an unmapped uid would drop every
		// capability. The stages after set the process's own user.
		b.Sys(stepGroups, unix.SYS_SETGROUPS, sysprog.Int(0), sysprog.Int(0))
		b.On(unix.EPERM, sysprog.Next)
		b.Sys(stepGID, unix.SYS_SETRESGID, sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
		b.Sys(stepUID, unix.SYS_SETRESUID, sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
	}
	if mntFD >= 0 {
		b.Sys(stepMount, unix.SYS_SETNS, sysprog.Int(mntFD), sysprog.Int(unix.CLONE_NEWNS))
	}
	if attr.Dir != "" {
		dir, err := sysprog.CString(attr.Dir)
		if err != nil {
			return nil, fmt.Errorf("working directory %q: %w", attr.Dir, err)
		}
		b.Sys(stepChdir, unix.SYS_CHDIR, dir)
	}
	if attr.Sys != nil && attr.Sys.Setsid {
		b.Sys(stepSetsid, unix.SYS_SETSID)
	}
	files := make([]int, len(attr.Files))
	next := max(len(files), exe+1, userFD+1, mntFD+1)
	for i, fd := range attr.Files {
		files[i] = int(fd)
		next = max(next, int(fd)+1)
	}
	if exe >= 0 {
		b.Files(stepFiles, files, next, &exe)
	} else {
		b.Files(stepFiles, files, next)
	}
	if attr.Sys != nil && attr.Sys.Setctty {
		b.Sys(stepCtty, unix.SYS_IOCTL, sysprog.Int(0), sysprog.Int(unix.TIOCSCTTY), sysprog.Int(0))
	}
	b.RestoreNofile(forkexec.NofileForChild())
	b.ResetSignals()
	if inline != nil {
		inline(&b)
		return b.Program(chain.ExitFailed)
	}
	empty, err := sysprog.CString("")
	if err != nil {
		return nil, err
	}
	argvArg, err := sysprog.CStrings(argv)
	if err != nil {
		return nil, fmt.Errorf("argv: %w", err)
	}
	envArg, err := sysprog.CStrings(attr.Env)
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	b.Sys(stepExec, unix.SYS_EXECVEAT, sysprog.Int(exe), empty, argvArg, envArg, sysprog.Int(unix.AT_EMPTY_PATH))
	return b.Program(253)
}
