package chain

import (
	"barco/lib/forkexec"
	"barco/lib/hook"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"barco/lib/creds"
	"golang.org/x/sys/unix"
)

// Stages are the names of the barco stage binaries. A bare PROGRAM with one
// of these names is the next stage of the chain, not a container program:
// it is found next to the running stage (or carried across pivot_root, see
// CarryStages) and keeps the chain's file descriptors.
var Stages = []string{"barco-cgroup", "barco-ns", "barco-mount", "barco-caps", "barco-seccomp"}

// PreserveFDsEnv names the variable that tells every stage how many file
// descriptors after stderr (3, 4, ...) the container's program is to keep,
// as runc's --preserve-fds.
const PreserveFDsEnv = "BARCO_PRESERVE_FDS"

// Argv0Env names the variable that gives PROGRAM its argv[0], when it is
// not to be PROGRAM's own name: the original barco's -a. Like
// BARCO_PRESERVE_FDS it is read by whichever stage execs PROGRAM, and is
// not passed on to PROGRAM.
const Argv0Env = "BARCO_ARGV0"

// CreatedFDEnv names the pipe on which barco-mount reports the entries it
// makes in the rootfs to barco-ns (see package mount). It is a stage's
// variable, never given to the container's program.
const CreatedFDEnv = "BARCO_MOUNT_CREATED_FD"

// OneProcEnv marks a GOMAXPROCS=1 that a stage put in the environment of
// the next stage's process: a Go runtime that starts with one P starts
// fewer threads and faults in fewer pages than one that drops the others
// in Main (about 0.5 ms a process on the development VM). The stage that
// execs PROGRAM takes both away again, so that PROGRAM gets the
// environment it was given, with or without a GOMAXPROCS of its own.
const OneProcEnv = "BARCO_GOMAXPROCS"

// DefaultPath is used to find PROGRAM when the environment has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execve is unix.Exec (or execveat on fd >= 0) from a thread that has the
// parent-death signal set. The goroutine stays locked to that thread if
// the exec fails: the process then ends, and the thread with it.
func (p *Process) execve(fd int, path string, argv, env []string, limit *PidsLimit) error {
	if err := creds.LockThread(); err != nil {
		return err
	}
	if p.parentDeathSignal != 0 {
		if err := creds.ParentDeathSignal(p.parentDeathSignal); err != nil {
			return err
		}
	}
	if limit != nil || fd >= 0 {
		// These exec by raw system calls, which leave RLIMIT_NOFILE as
		// package syscall raised it (Exec gave it back already before
		// PROGRAM; this is for a carried stage's exec).
		if err := forkexec.RestoreNofile(); err != nil {
			return err
		}
	}
	if limit != nil {
		return execWithPidsLimit(*limit, fd, path, argv, env)
	}
	if fd >= 0 {
		return execveat(fd, argv, env)
	}
	return unix.Exec(path, argv, env)
}

// IsStage reports whether name, as written on a command line, is a bare
// barco stage name.
func IsStage(name string) bool {
	for _, s := range Stages {
		if name == s {
			return true
		}
	}
	return false
}

// Exec replaces the running stage with argv[0], given the environment env.
//
// A bare stage name runs the carried copy of that stage when there is one,
// else the binary next to the running one, else the first one in PATH; the
// chain's descriptors stay open for it. Any other program is looked up in
// PATH in the current root and starts with fds 0, 1 and 2 only, plus those
// kept by BARCO_PRESERVE_FDS.
//
// A stage linked into the running binary runs in this process instead
// (see Link).
//
// On success Exec does not return, unless the stage ran in this process:
// then it returns the status that stage ended with. Its error carries exit
// status 126 or 127 where PROGRAM could not be executed or found, 125
// otherwise, a stage that could not be started included.
func (p *Process) Exec(argv []string, env []string) (status int, err error) {
	if mk := p.linkedStage(argv[0]); mk != nil {
		return p.runLinked(mk, argv, env)
	}
	if p.placer != nil {
		return 0, fmt.Errorf("exec %s: a stage earlier in this process has work left for its end (PlaceChildren), which an exec would lose", argv[0])
	}
	t, err := p.resolve(argv, env)
	if err != nil {
		return 0, err
	}
	var limit *PidsLimit
	if !IsStage(argv[0]) {
		// PROGRAM starts with the RLIMIT_NOFILE this process was given,
		// not the one package syscall raised it to (syscall.Exec gives it
		// back itself, the raw execs here do not), unless the chain sets
		// one: first, so that the chain's wins.
		if err := forkexec.RestoreNofile(); err != nil {
			return 0, err
		}
		if err := RaiseRlimitsEnv(env); err != nil {
			return 0, err
		}
		// Past the gate, an Exec that returns has not run PROGRAM.
		defer p.failedAfterGate()
		if err := p.Gate(t.env); err != nil {
			return 0, err
		}
		if err := ApplyRlimitsEnv(env); err != nil {
			return 0, err
		}
		l, ok, err := ParsePidsLimit(env)
		if err != nil {
			return 0, err
		}
		if ok {
			limit = &l
			p.Log.Debugf("pids limit %d at the exec", l.Limit)
		}
	}
	argv = ProgramArgv(argv, env)
	p.Log.Debugf("exec %s %q", t.name, argv)
	err = p.execve(t.fd, t.path, argv, t.env, limit)
	if _, told := err.(*Error); told {
		return 0, err
	}
	return 0, StartError(argv[0], t.name, err)
}

// Prepare does what Exec does before the exec itself, for a stage that
// starts PROGRAM as a child instead: it returns the file to execute for
// argv[0] and the environment to give it, and for a program that is not a
// stage it marks every descriptor but 0, 1, 2 and the kept ones
// close-on-exec. A carried stage is returned as its /proc/self/fd path.
// The child's command line is ProgramArgv(argv, env), with env as given
// here.
func (p *Process) Prepare(argv []string, env []string) (path string, childEnv []string, err error) {
	t, err := p.resolve(argv, env)
	return t.path, t.env, err
}

// target is what argv[0] resolves to.
type target struct {
	name string   // for messages: the path, or the carried stage's name
	path string   // the file to execute
	fd   int      // the carried stage's descriptor, or -1
	env  []string // the environment to give it
}

// FindProgram looks PROGRAM (argv[0], not a stage) up in env's PATH now,
// for a stage about to load what may deny the lookup's system calls (a
// seccomp filter): Exec then executes the file found here, as runc looks
// its process up before it loads its filter.
func (p *Process) FindProgram(argv []string, env []string) error {
	if IsStage(argv[0]) {
		return nil
	}
	path, err := LookPath(argv[0], envValue(env, "PATH", DefaultPath))
	if err != nil {
		return err
	}
	p.found = [2]string{argv[0], path}
	return nil
}

func (p *Process) resolve(argv []string, env []string) (target, error) {
	name := argv[0]
	pathList := envValue(env, "PATH", DefaultPath)
	if !IsStage(name) {
		path, err := p.found[1], error(nil)
		if p.found[0] != name || path == "" {
			path, err = LookPath(name, pathList)
		}
		if err != nil {
			return target{}, err
		}
		if err := closeExtraFDs(env); err != nil {
			return target{}, err
		}
		return target{name: path, path: path, fd: -1, env: programEnv(env)}, nil
	}
	env = StageEnv(env)
	if len(p.carried) > 0 {
		env = withEnv(env, StageFDsEnv, formatStageFDs(p.carried))
	}
	if fd, ok := p.carried[name]; ok {
		return target{name: name + " (carried, fd " + strconv.Itoa(fd) + ")", path: "/proc/self/fd/" + strconv.Itoa(fd), fd: fd, env: env}, nil
	}
	path, err := stagePath(name, pathList)
	if err != nil {
		// The chain failed, not PROGRAM: 125, whatever LookPath said.
		var e *Error
		if errors.As(err, &e) {
			err = e.Err
		}
		if len(p.carried) > 0 {
			return target{}, &Error{Code: ExitFailed, Err: err, Hint: "barco-mount carries only the stages named after it on its command line"}
		}
		return target{}, &Error{Code: ExitFailed, Err: err}
	}
	return target{name: path, path: path, fd: -1, env: env}, nil
}

// ProgramArgv is the command line PROGRAM starts with: argv, with argv[0]
// replaced by BARCO_ARGV0 from env when it is set there (the path to
// execute stays argv[0]). A stage's command line is left as it is.
func ProgramArgv(argv, env []string) []string {
	v, ok := lookupEnv(env, Argv0Env)
	if !ok || IsStage(argv[0]) {
		return argv
	}
	return append([]string{v}, argv[1:]...)
}

// stagePath finds a stage binary: next to the running executable first, so
// that a chain built from one bin/ directory stays in it, then in PATH.
func stagePath(name, pathList string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return LookPath(name, pathList)
}

// PreservedFDs is the count of descriptors after stderr that the program
// keeps (BARCO_PRESERVE_FDS); 0 when unset or malformed.
func PreservedFDs() int {
	n, err := strconv.Atoi(os.Getenv(PreserveFDsEnv))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// checkPreservedFDs fails naming the first descriptor that
// BARCO_PRESERVE_FDS keeps and that is not open: a child started with it
// would fail with a bare EBADF.
func checkPreservedFDs() error {
	n := PreservedFDs()
	for fd := 3; fd < 3+n; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("%s=%d: descriptor %d is not open", PreserveFDsEnv, n, fd)
		}
	}
	return nil
}

// LookPath finds name as execvp(3) does: a name with a slash is used as is,
// any other is searched in the colon-separated pathList.
func LookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		if err := isExecutable(name); err != nil {
			return "", execError(name, err)
		}
		return name, nil
	}
	var denied error
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := isExecutable(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) && denied == nil {
			denied = execError(p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &Error{Code: ExitNotFound, Err: fmt.Errorf("exec %s: not found in PATH", name)}
}

func isExecutable(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	return unix.Access(path, unix.X_OK)
}

func execError(path string, err error) error {
	if err == nil {
		return nil
	}
	code := ExitCannotExec
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		code = ExitNotFound
	}
	return &Error{Code: code, Err: &os.PathError{Op: "exec", Path: path, Err: err}}
}

// closeExtraFDs marks every descriptor from 3 up close-on-exec, except the
// ones BARCO_PRESERVE_FDS keeps. Marking rather than closing leaves the Go
// runtime's own descriptors usable until the exec.
func closeExtraFDs(env []string) error {
	keep := 0
	if v := envValue(env, PreserveFDsEnv, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%q: not a count of descriptors", PreserveFDsEnv, v)
		}
		keep = n
	}
	first := uint(3 + keep)
	err := unix.CloseRange(first, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11 (ENOSYS, EINVAL), and a seccomp filter loaded
	// by an earlier stage that denies close_range, with any errno: walk
	// the open descriptors.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= int(first) {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

func envValue(env []string, key, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return def
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func withoutEnv(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}

func withEnv(env []string, key, value string) []string {
	return append(withoutEnv(env, key), key+"="+value)
}

// StageEnv is env for a new process of a stage: with GOMAXPROCS=1 unless
// env has a GOMAXPROCS (see OneProcEnv). Every start of a stage's binary
// goes through it; PROGRAM's environment through programEnv.
func StageEnv(env []string) []string {
	if _, set := lookupEnv(env, "GOMAXPROCS"); set {
		return env
	}
	return append(env[:len(env):len(env)], "GOMAXPROCS=1", OneProcEnv+"=1")
}

// programEnv is env for PROGRAM: without the chain's own variables (its
// debug switch among them: --debug is barco's, not the container's), nor
// the GOMAXPROCS a stage put there.
func programEnv(env []string) []string {
	if _, ours := lookupEnv(env, OneProcEnv); ours {
		env = withoutEnv(env, "GOMAXPROCS")
	}
	return withoutEnv(env, "BARCO_DEBUG", StageFDsEnv, PreserveFDsEnv, ExecStagesEnv, CreatedFDEnv, IdmappedFDsEnv, ReportFDEnv,
		StartFDEnv, ChainFDsEnv, Argv0Env, PidsLimitEnv, RlimitsEnv, OneProcEnv, CgroupParentEnv, hook.StartEnv, hook.CreateEnv, hook.RuntimeEnv)
}

// execveat runs the executable open at fd; x/sys/unix has no wrapper for it.
func execveat(fd int, argv, env []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	empty, _ := syscall.BytePtrFromString("")
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return errno
}

// ExecError is the error of an exec of PROGRAM at path that failed with
// err, carrying exit status 127 for a missing file and 126 otherwise.
func ExecError(path string, err error) error { return execError(path, err) }

// StageExecError is the error of an exec of a stage at path (or of the
// start of a process that was to exec it) that failed with err: the chain
// itself failed, status 125, whatever the cause. 126 and 127 are
// PROGRAM's: a stage that cannot start (no memory, a bad descriptor) is
// not a program that cannot be executed.
func StageExecError(path string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: ExitFailed, Err: e.Err, Hint: e.Hint}
	}
	return &Error{Code: ExitFailed, Err: &os.PathError{Op: "exec", Path: path, Err: err}}
}

// StartError is StageExecError when argv0, the command line's first word,
// names a stage, and ExecError otherwise.
func StartError(argv0, path string, err error) error {
	if IsStage(argv0) {
		return StageExecError(path, err)
	}
	return execError(path, err)
}
