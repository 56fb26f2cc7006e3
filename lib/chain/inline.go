package chain

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// A stage that another stage starts in a child of its own process (barco-ns
// --join, whose child joins namespaces between its fork and its exec) may
// run there as system calls instead of as its binary: its Steps plans its
// work in the parent, from its command line and what the child will hold
// (ChildState), and appends it to the child's program (package sysprog).
// The child then execs PROGRAM itself, and no Go image of the stage starts
// (about 6 ms each on the development VM). This is the "front-built
// program" of docs/raw-init.md, used for exec's barco-caps and
// barco-seccomp.

// ChildState is what the child holds when the steps of the first inline
// stage run: its credentials after the joins, and its root as this
// process reaches it. Each stage's Steps updates it for the next.
type ChildState struct {
	UID, GID   int
	Groups     []int
	Permitted  uint64 // capability sets, bit N for capability N
	Bounding   uint64
	NoNewPrivs bool
	// Root is the child's root directory as a path of this process
	// ("/proc/PID/root"), where a stage reads the container's files.
	Root string
	// ParentPid is this process's pid as the child sees it: 0 from
	// another pid namespace.
	ParentPid int
}

// Inline is what a stage's Steps is given.
type Inline struct {
	State *ChildState
	// Log is the stage's debug log, under its own name.
	Log *Log
}

// ErrNotInline is the error of a Steps that cannot run the stage as steps
// with the options given (a --print, a file to read in the child): the
// stage then runs as its binary.
var ErrNotInline = errors.New("the stage cannot run as steps")

// StageError is the failure of the stage Stage, whose work another stage
// ran as steps: it is reported under Stage's name, as the stage's own
// process would have reported it.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// InlineSteps plans the stages at the head of argv as steps of a child
// that starts with env and the state st, and the exec of the PROGRAM they
// end in. It returns what appends them all to the child's program, or
// ok false when one of them cannot run as steps (it is not linked into
// this binary, has no Steps, or says ErrNotInline): the caller then starts
// argv as it is. An error is a stage's own (an unknown user, a bad
// option), as a *StageError, and nothing is started. detached: the child
// does not die with this process's thread (barco-ns --detach).
func (p *Process) InlineSteps(argv, env []string, st *ChildState, detached bool) (emit func(*sysprog.Builder), ok bool, err error) {
	if !forkexecShared() {
		return nil, false, nil
	}
	var emits []func(*sysprog.Builder)
	var names []string
	for IsStage(argv[0]) {
		mk := p.stepStage(argv[0])
		if mk == nil {
			return nil, false, nil
		}
		stage := mk()
		if stage.Steps == nil || stage.Unparsed {
			return nil, false, nil
		}
		program, done, err := stage.parse(p, argv[1:])
		if done || (err == nil && len(program) == 0) {
			return nil, false, nil
		}
		if err == nil {
			var e func(*sysprog.Builder)
			e, err = stage.Steps(&Inline{State: st, Log: p.Log.as(stage.Name)}, program)
			if errors.Is(err, ErrNotInline) {
				return nil, false, nil
			}
			emits, names = append(emits, e), append(names, stage.Name)
		}
		if err != nil {
			return nil, false, &StageError{Stage: stage.Name, Err: err}
		}
		argv = program
	}
	// PROGRAM is exec'd by the last stage, under its name.
	last := "barco-ns"
	if len(names) > 0 {
		last = names[len(names)-1]
	}
	tail, err := planExec(argv, env, detached, st.ParentPid)
	if err != nil {
		if errors.Is(err, ErrNotInline) {
			return nil, false, nil
		}
		return nil, false, &StageError{Stage: last, Err: err}
	}
	p.Log.Debugf("%s and the exec of %s as steps of the child", strings.Join(names, ", "), argv[0])
	return func(b *sysprog.Builder) {
		for i, e := range emits {
			name := names[i]
			b.WrapErrors(func(err error) error { return &StageError{Stage: name, Err: err} })
			e(b)
		}
		b.WrapErrors(func(err error) error { return &StageError{Stage: last, Err: err} })
		tail(b)
		b.WrapErrors(nil)
	}, true, nil
}

// forkexecShared reports whether sysprog.Start runs its child in this
// process's memory (CLONE_VM), where the exec's failure leaves what the
// parent reads to tell it apart (see emitLookup); elsewhere the stages
// run as binaries.
func forkexecShared() bool { return sysprog.SharedMemory }

// planExec plans the exec of PROGRAM (argv) with the environment env, as
// Exec makes it: the chain's resource limits, the close-on-exec of every
// descriptor above the kept ones, the parent-death signal (unless
// detached), the look-up in PATH and the exec. The start gate and a pids
// limit are not steps: ErrNotInline.
func planExec(argv, env []string, detached bool, parent int) (func(*sysprog.Builder), error) {
	for _, k := range []string{StartFDEnv, PidsLimitEnv} {
		if _, set := lookupEnv(env, k); set {
			return nil, ErrNotInline
		}
	}
	keep := 0
	if v := envValue(env, PreserveFDsEnv, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s=%q: not a count of descriptors", PreserveFDsEnv, v)
		}
		keep = n
	}
	// close_range with CLOSE_RANGE_CLOEXEC (Linux 5.11) on a range that
	// holds no descriptor: without it, Exec walks /proc/self/fd, which
	// steps cannot.
	if err := unix.CloseRange(^uint(0)-1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, ErrNotInline
	}
	limits, err := rlimitsEnv(env)
	if err != nil {
		return nil, err
	}
	name := argv[0]
	argvArg, err := sysprog.CStrings(ProgramArgv(argv, env))
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", name, err)
	}
	envArg, err := sysprog.CStrings(programEnv(env))
	if err != nil {
		return nil, fmt.Errorf("exec %s: environment: %w", name, err)
	}
	var candidates []string
	if strings.Contains(name, "/") {
		candidates = []string{name}
	} else {
		for _, dir := range filepath.SplitList(envValue(env, "PATH", DefaultPath)) {
			if dir == "" {
				dir = "."
			}
			candidates = append(candidates, filepath.Join(dir, name))
		}
	}
	paths := make([]sysprog.Arg, len(candidates))
	for i, c := range candidates {
		if paths[i], err = sysprog.CString(c); err != nil {
			return nil, execError(c, unix.EINVAL)
		}
	}
	return func(b *sysprog.Builder) {
		for _, l := range limits {
			lim := &unix.Rlimit{Cur: l.Soft, Max: l.Hard}
			b.Sys("setrlimit "+l.Name, unix.SYS_PRLIMIT64, sysprog.Int(0), sysprog.Int(l.Resource), sysprog.Ptr(unsafe.Pointer(lim)), sysprog.Int(0))
			b.Explain(func(errno syscall.Errno) error {
				return fmt.Errorf("setrlimit %s %d:%d: %w", l.Name, l.Soft, l.Hard, errno)
			})
		}
		first := 3 + keep
		b.Sys("close_range", unix.SYS_CLOSE_RANGE, sysprog.Int(first), sysprog.Imm(^uintptr(0)), sysprog.Int(unix.CLOSE_RANGE_CLOEXEC))
		b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("close_range %d..: %w", first, errno) })
		if !detached {
			// Set after the last change of credentials, which clears it;
			// a parent that died before cannot send it any more.
			b.Sys("prctl PR_SET_PDEATHSIG", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_PDEATHSIG), sysprog.Int(int(unix.SIGKILL)),
				sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
			b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", errno) })
			orphaned, alive := b.Label(), b.Label()
			ppid := b.Sys("getppid", unix.SYS_GETPPID)
			b.JumpUnless(ppid.Result(), sysprog.Int(parent), orphaned)
			b.Jump(alive)
			b.Mark(orphaned)
			b.Fail("parent", unix.ESRCH)
			b.Explain(func(syscall.Errno) error {
				return fmt.Errorf("the parent ended before the exec of %s", name)
			})
			b.Mark(alive)
		}
		emitLookup(b, name, candidates, paths, argvArg, envArg)
	}, nil
}

// emitLookup appends the exec of the first of candidates (the PATH's
// files named name, or name itself when it has a slash) that can be
// executed, with the errors and statuses of LookPath and Exec: a file
// that exists but fails with ENOENT (its interpreter is missing) ends the
// search, as does any error but ENOENT, ENOTDIR and EACCES; the first
// EACCES (a directory, or no x bit) is the error when nothing is found.
//
// execvp(3)'s way, an exec of each candidate, instead of LookPath's stat
// and access of each: no step depends on what an earlier one read. What
// the failure message needs (which candidate was refused, and whether it
// is a directory) the child leaves in memory this process reads, which
// is its own (see forkexecShared).
func emitLookup(b *sysprog.Builder, name string, candidates []string, paths []sysprog.Arg, argvArg, envArg sysprog.Arg) {
	type refusal struct {
		marked uintptr
		stat   unix.Statx_t
	}
	refused := make([]*refusal, len(candidates))
	for i, c := range candidates {
		r := (*refusal)(b.Bytes(int(unsafe.Sizeof(refusal{}))))
		refused[i] = r
		missing, denied, next := b.Label(), b.Label(), b.Label()
		b.Sys("exec "+c, unix.SYS_EXECVE, paths[i], argvArg, envArg)
		b.On(unix.ENOENT, missing)
		b.On(unix.ENOTDIR, missing)
		b.On(unix.EACCES, denied)
		b.Explain(func(errno syscall.Errno) error { return execError(c, errno) })
		b.Mark(missing)
		b.Sys("access "+c, unix.SYS_FACCESSAT, sysprog.Int(unix.AT_FDCWD), paths[i], sysprog.Int(unix.X_OK))
		b.OnAny(next)
		b.Fail("exec "+c, unix.ENOENT)
		b.Explain(func(errno syscall.Errno) error { return execError(c, errno) })
		b.Mark(denied)
		b.Store(unsafe.Pointer(&r.marked), 1)
		b.Sys("stat "+c, unix.SYS_STATX, sysprog.Int(unix.AT_FDCWD), paths[i], sysprog.Int(0), sysprog.Int(unix.STATX_TYPE),
			sysprog.Ptr(unsafe.Pointer(&r.stat)))
		b.OnAny(sysprog.Next)
		b.Mark(next)
	}
	b.Fail("exec "+name, unix.ENOENT)
	b.Explain(func(errno syscall.Errno) error {
		for i, r := range refused {
			if r.marked != 0 {
				return deniedError(candidates[i], &r.stat)
			}
		}
		if len(candidates) == 1 && candidates[0] == name {
			return execError(name, errno)
		}
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("exec %s: not found in PATH", name)}
	})
}

// deniedError is the error of an exec of path refused with EACCES, whose
// statx st read (Mask 0 if it could not): a directory is EISDIR, as
// LookPath says.
func deniedError(path string, st *unix.Statx_t) error {
	if st.Mask&unix.STATX_TYPE != 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return execError(path, unix.EISDIR)
	}
	return execError(path, unix.EACCES)
}

// as is a log for the stage name, writing where l writes; nil when l is.
func (l *Log) as(name string) *Log {
	if l == nil {
		return nil
	}
	return newLog(name, l.w)
}
