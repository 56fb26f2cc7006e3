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
	// Filtered: a stage's steps load a seccomp filter, which binds the
	// steps after them.
	Filtered bool
	// Namespaces are the CLONE_NEW* flags of the namespaces made for the
	// child (0 for a child that only joins), which a stage's work from
	// the front (Inline.Front) joins.
	Namespaces uintptr
	// SyncFD is the child's end of a socket whose other end the front
	// holds, for a stage's steps that wait for its work (Inline.Front):
	// -1 when there is none, and no stage may have such work.
	SyncFD int
}

// Inline is what a stage's Steps is given.
type Inline struct {
	State *ChildState
	// Log is the stage's debug log, under its own name.
	Log *Log
	// CredentialsChanged is set by a stage whose steps change the
	// child's credentials, which clears its parent-death signal.
	CredentialsChanged bool
	// Front, set by a stage's Steps, is work of the stage that the
	// process which starts the child does for it (see FrontWork).
	Front  FrontWork
	lookup *lookup
	// stage is the stage planned, last the one that execs PROGRAM.
	stage, last string
}

// FrontWork is a stage's work that the process which starts the child
// does, on a thread it has joined to the child's namespaces (all but the
// user and pid ones), given the child's pid and the descriptors the child
// sent it, while the child's steps wait on State.SyncFD (barco-mount's,
// which builds the container's filesystem there: see docs/raw-init.md).
// The stage's steps tell it they are waiting with one byte on the socket,
// which may carry descriptors (SCM_RIGHTS), and go on when they read one
// back. It returns what to run, on the same thread, once the child has
// passed its last report (failed: it failed after the work, which is then
// to be undone). It owns fds.
type FrontWork func(pid int, fds []int) (after func(failed bool), err error)

// InlinePlan is what Process.InlineSteps plans.
type InlinePlan struct {
	// Emit appends the stages' steps and PROGRAM's exec to the child's
	// program.
	Emit func(*sysprog.Builder)
	// Front is a stage's work from the front, or nil (see FrontWork),
	// and FrontStage that stage, under whose name its failure is told.
	Front      FrontWork
	FrontStage string
}

// EmitBeforeFilter appends what the exec's steps do that a seccomp filter
// may deny where the stages' own code makes other calls or none, for a
// stage about to load one: the look-up of PROGRAM in PATH, as FindProgram
// makes it (the exec then runs the file found here), and the marking of
// the descriptors PROGRAM does not get close-on-exec (close_range, where
// Exec walks /proc/self/fd with fcntl).
//
// Their failures are the exec's, told under the name of the stage that
// execs PROGRAM, as Exec tells them.
func (in *Inline) EmitBeforeFilter(b *sysprog.Builder) {
	b.WrapErrors(stageErrors(in.last))
	in.lookup.emit(b)
	in.lookup.emitCloexec(b)
	b.WrapErrors(stageErrors(in.stage))
}

// stageErrors wraps a step's error as the failure of the stage name.
func stageErrors(name string) func(error) error {
	return func(err error) error { return &StageError{Stage: name, Err: err} }
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
func (p *Process) InlineSteps(argv, env []string, st *ChildState, detached bool) (plan *InlinePlan, ok bool, err error) {
	if !sysprog.SharedMemory {
		// The look-up's failure is read in the child's memory.
		return nil, false, nil
	}
	plan = &InlinePlan{}
	type planned struct {
		stage   *Stage
		program []string
	}
	var stages []planned
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
		if err != nil {
			return nil, false, &StageError{Stage: stage.Name, Err: err}
		}
		if done || len(program) == 0 {
			return nil, false, nil
		}
		stages = append(stages, planned{stage, program})
		argv = program
	}
	// PROGRAM is exec'd by the last stage, under its name.
	last := "barco-ns"
	if len(stages) > 0 {
		last = stages[len(stages)-1].stage.Name
	}
	tail, l, err := planExec(argv, env, last)
	if err != nil {
		if errors.Is(err, ErrNotInline) {
			return nil, false, nil
		}
		return nil, false, &StageError{Stage: last, Err: err}
	}
	emits := make([]func(*sysprog.Builder), len(stages))
	names := make([]string, len(stages))
	// The parent-death signal goes after the last change of credentials,
	// which clears it (0: before every stage), and with it a check that
	// the parent still lives, unless a filter loaded before it could
	// deny that: then as the stages set it, without the check.
	check, checkParent := 0, true
	for i, s := range stages {
		in := &Inline{State: st, Log: p.Log.as(s.stage.Name), lookup: l, stage: s.stage.Name, last: last}
		filtered := st.Filtered
		e, err := s.stage.Steps(in, s.program)
		if errors.Is(err, ErrNotInline) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, &StageError{Stage: s.stage.Name, Err: err}
		}
		emits[i], names[i] = e, s.stage.Name
		if in.Front != nil {
			if plan.Front != nil || st.SyncFD < 0 {
				return nil, false, nil
			}
			plan.Front, plan.FrontStage = in.Front, s.stage.Name
		}
		if in.CredentialsChanged {
			check, checkParent = i+1, !filtered
		}
	}
	p.Log.Debugf("%s and the exec of %s as steps of the child", strings.Join(names, ", "), argv[0])
	plan.Emit = func(b *sysprog.Builder) {
		for i := 0; i <= len(emits); i++ {
			if i == check {
				emitNotDumpable(b)
				if !detached {
					emitParentDeath(b, argv[0], st.ParentPid, checkParent)
				}
			}
			if i == len(emits) {
				break
			}
			b.WrapErrors(stageErrors(names[i]))
			emits[i](b)
		}
		b.WrapErrors(stageErrors(last))
		tail(b)
		b.WrapErrors(nil)
	}
	return plan, true, nil
}

// emitNotDumpable appends PR_SET_DUMPABLE 0, after the last change of
// credentials: the child runs in its parent's memory, and until its exec
// its executable is the host's barco; a change of its uids or gids makes
// it dumpable again where fs.suid_dumpable is 1, and a process of the
// container with its uid could then read that memory, or open that
// executable through /proc/PID/exe (CVE-2019-5736), while it waits at the
// start gate.
func emitNotDumpable(b *sysprog.Builder) {
	b.Sys("prctl PR_SET_DUMPABLE", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_DUMPABLE), sysprog.Int(0), sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
	b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_DUMPABLE 0: %w", errno) })
}

// emitParentDeath appends the parent-death signal, SIGKILL, and when
// checkParent, a check that the parent (parent, as the child sees its
// pid) has not died before it was set, which would leave the child to
// run on.
func emitParentDeath(b *sysprog.Builder, name string, parent int, checkParent bool) {
	b.Sys("prctl PR_SET_PDEATHSIG", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_PDEATHSIG), sysprog.Int(int(unix.SIGKILL)),
		sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
	b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", errno) })
	if !checkParent {
		return
	}
	orphaned, alive := b.Label(), b.Label()
	ppid := b.Sys("getppid", unix.SYS_GETPPID)
	b.JumpUnless(ppid.Result(), sysprog.Int(parent), orphaned)
	b.Jump(alive)
	b.Mark(orphaned)
	b.Fail("parent", unix.ESRCH)
	b.Explain(func(syscall.Errno) error { return fmt.Errorf("the parent ended before the exec of %s", name) })
	b.Mark(alive)
}

// planExec plans the exec of PROGRAM (argv) with the environment env, as
// Exec makes it: the chain's resource limits, the close-on-exec of every
// descriptor above the kept ones, the start gate if the chain has one,
// and the exec of the file the look-up l finds, which the tail makes
// itself unless a stage did first (Inline.EmitBeforeFilter), and so for the
// close-on-exec marking. last is the stage
// that execs PROGRAM. A pids limit is not steps: ErrNotInline.
func planExec(argv, env []string, last string) (tail func(*sysprog.Builder), l *lookup, err error) {
	if _, set := lookupEnv(env, PidsLimitEnv); set {
		return nil, nil, ErrNotInline
	}
	gate, err := planGate(env, last, argv[0])
	if err != nil {
		return nil, nil, err
	}
	keep := 0
	if v := envValue(env, PreserveFDsEnv, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("%s=%q: not a count of descriptors", PreserveFDsEnv, v)
		}
		keep = n
	}
	// close_range with CLOSE_RANGE_CLOEXEC (Linux 5.11) on a range that
	// holds no descriptor: without it, Exec walks /proc/self/fd, which
	// steps cannot.
	if err := unix.CloseRange(^uint(0)-1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, nil, ErrNotInline
	}
	limits, err := rlimitsEnv(env)
	if err != nil {
		return nil, nil, err
	}
	name := argv[0]
	argvArg, err := sysprog.CStrings(ProgramArgv(argv, env))
	if err != nil {
		return nil, nil, fmt.Errorf("exec %s: %w", name, err)
	}
	envArg, err := sysprog.CStrings(programEnv(env))
	if err != nil {
		return nil, nil, fmt.Errorf("exec %s: environment: %w", name, err)
	}
	if l, err = planLookup(name, envValue(env, "PATH", DefaultPath)); err != nil {
		return nil, nil, err
	}
	l.firstCloexec = 3 + keep
	return func(b *sysprog.Builder) {
		if !l.emitted {
			l.emit(b)
		}
		for _, lim := range limits {
			r := &unix.Rlimit{Cur: lim.Soft, Max: lim.Hard}
			b.Sys("setrlimit "+lim.Name, unix.SYS_PRLIMIT64, sysprog.Int(0), sysprog.Int(lim.Resource), sysprog.Ptr(unsafe.Pointer(r)), sysprog.Int(0))
			b.Explain(func(errno syscall.Errno) error {
				return fmt.Errorf("setrlimit %s %d:%d: %w", lim.Name, lim.Soft, lim.Hard, errno)
			})
		}
		if !l.cloexecEmitted {
			l.emitCloexec(b)
		}
		if gate != nil {
			gate.emitWait(b)
		}
		exec := b.Sys("exec "+name, unix.SYS_EXECVE, sysprog.Load(unsafe.Pointer(&l.found.path), 0), argvArg, envArg)
		b.Explain(func(errno syscall.Errno) error { return execError(l.candidates[l.found.index], errno) })
		if gate != nil {
			b.OnAny(sysprog.Next)
			gate.emitFailed(b, exec)
		}
	}, l, nil
}

// gate is the start gate as steps (see Process.Gate): the fifo to open
// for writing, and the report descriptor to say "ready" on, both as the
// child numbers them. Past the gate the chain's report is closed, and a
// failure is told by the child itself on its stderr, as Process.run
// tells it there: prefix and the errno's text.
type gate struct {
	fifo, report int
	path         sysprog.Arg
	stage, name  string
	w            sysprog.Ref // the fifo opened for writing
}

func planGate(env []string, last, name string) (*gate, error) {
	v, ok := lookupEnv(env, StartFDEnv)
	if !ok {
		return nil, nil
	}
	g := &gate{report: -1, stage: last, name: name}
	var err error
	if g.fifo, err = strconv.Atoi(v); err != nil || g.fifo < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", StartFDEnv, v)
	}
	if v, ok := lookupEnv(env, ReportFDEnv); ok {
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			g.report = fd
		}
	}
	g.path = sysprog.FixedString("/proc/self/fd/" + v)
	return g, nil
}

// emitWait appends Gate's work: "ready" on the report descriptor, which
// is then closed, with the child's report pipe, and the open of the fifo
// for writing, which blocks until start opens it for reading, then the
// byte that tells start the gate is passed.
func (g *gate) emitWait(b *sysprog.Builder) {
	if g.report >= 0 {
		ready := []byte("ready\n")
		b.Sys("report ready", unix.SYS_WRITE, sysprog.Int(g.report), sysprog.Ptr(unsafe.Pointer(&ready[0])), sysprog.Int(len(ready)))
		b.OnAny(sysprog.Next)
		b.Sys("close the report descriptor", unix.SYS_CLOSE, sysprog.Int(g.report))
		b.OnAny(sysprog.Next)
	}
	b.CloseReport()
	openFailed, writeFailed, passed := b.Label(), b.Label(), b.Label()
	g.w = b.Sys("start gate: open for writing", unix.SYS_OPENAT, sysprog.Int(unix.AT_FDCWD), g.path, sysprog.Int(unix.O_WRONLY|unix.O_CLOEXEC))
	b.Blocking()
	b.OnAny(sysprog.Next)
	b.JumpUnless(sysprog.ErrnoOf(g.w), sysprog.Int(0), openFailed)
	zero := []byte{0}
	w := b.Sys("start gate: write", unix.SYS_WRITE, g.w.Result(), sysprog.Ptr(unsafe.Pointer(&zero[0])), sysprog.Int(1))
	b.OnAny(sysprog.Next)
	b.JumpUnless(sysprog.ErrnoOf(w), sysprog.Int(0), writeFailed)
	b.Jump(passed)
	b.Mark(writeFailed)
	emitTold(b, fmt.Sprintf("%s: start gate: write fd %d: ", g.stage, g.fifo), w, ExitFailed)
	b.Mark(openFailed)
	emitTold(b, fmt.Sprintf("%s: start gate: open fd %d for writing: ", g.stage, g.fifo), g.w, ExitFailed)
	b.Mark(passed)
}

// emitFailed appends what follows a failed exec past the gate: the byte
// that tells start PROGRAM will not run (GateFailed), and the failure's
// line on stderr.
func (g *gate) emitFailed(b *sysprog.Builder, exec sysprog.Ref) {
	failed := []byte{GateFailed}
	b.Sys("start gate: failed", unix.SYS_WRITE, g.w.Result(), sysprog.Ptr(unsafe.Pointer(&failed[0])), sysprog.Int(1))
	b.OnAny(sysprog.Next)
	emitTold(b, g.stage+": exec "+g.name+": ", exec, ExitCannotExec)
}

// emitTold appends the steps of a child that tells its failure itself,
// past its report: prefix and the text of r's errno as a line on stderr,
// and its end with status.
func emitTold(b *sysprog.Builder, prefix string, r sysprog.Ref, status int) {
	line := []byte(prefix)
	b.Sys("tell the failure", unix.SYS_WRITE, sysprog.Int(2), sysprog.Ptr(unsafe.Pointer(&line[0])), sysprog.Int(len(line)))
	b.OnAny(sysprog.Next)
	b.WriteErrno(2, r)
	nl := []byte("\n")
	b.Sys("tell the failure", unix.SYS_WRITE, sysprog.Int(2), sysprog.Ptr(unsafe.Pointer(&nl[0])), sysprog.Int(1))
	b.OnAny(sysprog.Next)
	b.Sys("exit", unix.SYS_EXIT_GROUP, sysprog.Int(status))
}

// lookup is LookPath as steps: the candidates, the files of each PATH
// directory named name (or name itself, with a slash), are each checked
// with statx and access; the first that is not a directory and can be
// executed is found.
type lookup struct {
	name       string
	candidates []string
	paths      []sysprog.Arg
	// found is where the steps leave the candidate found: its path (the
	// address of its C string) and its index. Word-sized fields, the
	// memory a child's Store writes.
	found *struct{ path, index uintptr }
	// refused are the errnos of each candidate's refusal (0: none), which
	// the parent reads in the memory its child shared (SharedMemory).
	refused []*uintptr
	emitted bool
	// firstCloexec is the first descriptor PROGRAM does not get.
	firstCloexec   int
	cloexecEmitted bool
}

// emitCloexec appends the marking close-on-exec of every descriptor from
// l.firstCloexec up.
func (l *lookup) emitCloexec(b *sysprog.Builder) {
	l.cloexecEmitted = true
	first := l.firstCloexec
	b.Sys("close_range", unix.SYS_CLOSE_RANGE, sysprog.Int(first), sysprog.Imm(^uintptr(0)), sysprog.Int(unix.CLOSE_RANGE_CLOEXEC))
	b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("close_range %d..: %w", first, errno) })
}

func planLookup(name, pathList string) (*lookup, error) {
	l := &lookup{name: name}
	if strings.Contains(name, "/") {
		l.candidates = []string{name}
	} else {
		for _, dir := range filepath.SplitList(pathList) {
			if dir == "" {
				dir = "."
			}
			l.candidates = append(l.candidates, filepath.Join(dir, name))
		}
	}
	for _, c := range l.candidates {
		a, err := sysprog.CString(c)
		if err != nil {
			return nil, execError(c, unix.EINVAL)
		}
		l.paths = append(l.paths, a)
	}
	return l, nil
}

// emit appends the look-up: LookPath's checks of each candidate in turn,
// and its failure, with its message and status, when none is found. A
// name with a slash is its only candidate, whose every failure is the
// error; in PATH, ENOENT and ENOTDIR pass on to the next candidate, and
// any other refusal too, the first of them being the error if nothing is
// found.
func (l *lookup) emit(b *sysprog.Builder) {
	l.emitted = true
	l.found = (*struct{ path, index uintptr })(b.Bytes(16))
	size := int(unsafe.Sizeof(unix.Statx_t{}))
	mode := unsafe.Offsetof(unix.Statx_t{}.Mode)
	search := !strings.Contains(l.name, "/")
	found := b.Label()
	for i, c := range l.candidates {
		refused := (*uintptr)(b.Bytes(8))
		l.refused = append(l.refused, refused)
		next, statFailed, notDir, denied := b.Label(), b.Label(), b.Label(), b.Label()
		stx := b.Bytes(size)
		st := b.Sys("stat "+c, unix.SYS_STATX, sysprog.Int(unix.AT_FDCWD), l.paths[i], sysprog.Int(0), sysprog.Int(unix.STATX_TYPE), sysprog.Ptr(stx))
		if search {
			b.On(unix.ENOENT, next)
			b.On(unix.ENOTDIR, next)
		}
		b.OnAny(statFailed)
		b.JumpUnlessMasked(sysprog.Load(stx, mode), unix.S_IFMT, sysprog.Imm(unix.S_IFDIR), notDir)
		b.Store(unsafe.Pointer(refused), sysprog.Imm(uintptr(unix.EISDIR)))
		b.Jump(next)
		b.Mark(statFailed)
		b.Store(unsafe.Pointer(refused), sysprog.ErrnoOf(st))
		b.Jump(next)
		b.Mark(notDir)
		acc := b.Sys("access "+c, unix.SYS_FACCESSAT, sysprog.Int(unix.AT_FDCWD), l.paths[i], sysprog.Int(unix.X_OK))
		b.OnAny(denied)
		b.Store(unsafe.Pointer(&l.found.path), l.paths[i])
		b.Store(unsafe.Pointer(&l.found.index), sysprog.Imm(uintptr(i)))
		b.Jump(found)
		b.Mark(denied)
		b.Store(unsafe.Pointer(refused), sysprog.ErrnoOf(acc))
		b.Mark(next)
	}
	b.Fail("look up "+l.name, unix.ENOENT)
	b.Explain(func(syscall.Errno) error {
		for i, r := range l.refused {
			if *r != 0 {
				return execError(l.candidates[i], syscall.Errno(*r))
			}
		}
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("exec %s: not found in PATH", l.name)}
	})
	b.Mark(found)
}

// as is a log for the stage name, writing where l writes; nil when l is.
func (l *Log) as(name string) *Log {
	if l == nil {
		return nil
	}
	return newLog(name, l.w)
}
