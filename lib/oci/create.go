package oci

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/hook"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fifoName is the start gate in the state directory: the init opens it for
// writing before it execs the process, and start opens it for reading.
const fifoName = "exec.fifo"

// createOptions are create's (and run's) own options.
type createOptions struct {
	bundle, pidFile, consoleSocket string
	preserveFDs                    int
	detach                         bool // run's --detach; create takes it and never stays anyway
}

// create makes the container: its init runs the chain up to the start
// gate, and is left to the caller's subreaper; no barco process stays.
func create(g *globals, id string, o createOptions) error {
	c, _, err := createLocked(g, id, o)
	if err != nil {
		return err
	}
	c.close()
	return nil
}

// createLocked is create, and returns the container still locked, with
// the state it saved: run starts it from there, without taking the lock
// again and reading back what it has just written.
func createLocked(g *globals, id string, o createOptions) (_ *Container, _ *State, err error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	bundle := o.bundle
	if bundle == "" {
		bundle = "."
	}
	bundleAbs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, nil, err
	}
	// The runtime spec's state holds the bundle's absolute path.
	bundle = bundleAbs
	// Before anything is opened: an unopened descriptor in the range
	// would otherwise be one of barco's own, passed to the container.
	for fd := 3; fd < 3+o.preserveFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, nil, fmt.Errorf("--preserve-fds %d: descriptor %d is not open", o.preserveFDs, fd)
		}
	}
	spec, raw, err := loadConfig(bundleAbs)
	if err != nil {
		return nil, nil, err
	}
	consoleFD, err := createConsoleSocket(spec, o.consoleSocket)
	if err != nil {
		return nil, nil, err
	}
	if consoleFD >= 0 {
		defer unix.Close(consoleFD)
	}
	c, err := newContainer(g.root, id)
	if err != nil {
		return nil, nil, err
	}
	st := &State{State: specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating,
		Bundle: bundle, Annotations: spec.Annotations}, Created: time.Now().UTC(), Owner: "root",
		Rootfs: spec.Root.Path, Hooks: spec.Hooks, Config: raw}
	defer func() {
		if err != nil {
			c.destroy(st, g)
			c.close()
		}
	}()
	ch, err := translate(spec, bundleAbs, id, c.path("pid"))
	if err != nil {
		return nil, nil, err
	}
	dirs, err := ch.cgroup.Dirs()
	if err != nil {
		return nil, nil, err
	}
	// Recorded before they exist: delete --force after a create killed
	// halfway still finds them.
	st.CgroupDirs = dirsToRemove(dirs, cgroup.OwnParent())
	if err := c.save(st); err != nil {
		return nil, nil, err
	}
	if err := runChain(g, c, ch, o.preserveFDs, consoleFD); err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(c.path("pid"))
	if err != nil {
		return nil, nil, fmt.Errorf("pid of the init: %w", err)
	}
	st.Pid, err = strconv.Atoi(string(data))
	if err != nil {
		return nil, nil, fmt.Errorf("pid of the init: %q: %w", data, err)
	}
	st.InitStart = startTime(st.Pid)
	writePidsLimit(dirs, ch.cgroup.Limits.Pids)
	st.Status = specs.StateCreated
	if err := c.save(st); err != nil {
		return nil, nil, err
	}
	if o.pidFile != "" {
		if err := writeFileAtomic(o.pidFile, []byte(strconv.Itoa(st.Pid))); err != nil {
			return nil, nil, fmt.Errorf("--pid-file: %w", err)
		}
	}
	return c, st, nil
}

// runChain runs the chain with the container's stdio (create's own fds
// 0-2, unchanged) until its init waits at the start gate. The stages
// report on a pipe of their own, not on that stdio. barco-cgroup and
// barco-ns are linked into barco and run in this process (see runStages):
// the init is this process's child, left to the caller's subreaper when
// create returns.
func runChain(g *globals, c *Container, ch *stageChain, preserve, consoleFD int) error {
	if err := unix.Mkfifo(c.path(fifoName), 0o622); err != nil {
		return fmt.Errorf("start gate: %w", err)
	}
	// mkfifo takes the umask off; the container's root, whoever it is on
	// the host, must be able to open it for writing.
	if err := os.Chmod(c.path(fifoName), 0o622); err != nil {
		return fmt.Errorf("start gate: %w", err)
	}
	fifo, err := unix.Open(c.path(fifoName), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start gate: %w", err)
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		unix.Close(fifo)
		return fmt.Errorf("report pipe: %w", err)
	}
	r := os.NewFile(uintptr(pipe[0]), "report")
	defer r.Close()
	report := pipe[1]

	if consoleFD >= 0 {
		// barco-mount takes it by its number, as barco run -t hands it
		// over; a copy, which the chain closes once it passes it on.
		dup, err := unix.FcntlInt(uintptr(consoleFD), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			unix.Close(report)
			unix.Close(fifo)
			return fmt.Errorf("console socket: %w", err)
		}
		consoleFD = dup
		withConsoleSocket(ch, strconv.Itoa(consoleFD), ch.consoleSize)
	}
	argv := chain.JoinStages(ch.stages)
	env := append([]string{}, ch.env...)
	if preserve > 0 {
		env = append(env, chain.PreserveFDsEnv+"="+strconv.Itoa(preserve))
	}
	// Passed on at these numbers by each stage that starts the next as a
	// child (barco-ns), which then closes them, and closed before PROGRAM.
	chainFDs := strconv.Itoa(report) + "," + strconv.Itoa(fifo)
	if consoleFD >= 0 {
		chainFDs += "," + strconv.Itoa(consoleFD)
	}
	hookFDs, err := hookSetsInFDs(env)
	closeChainFDs := func() {
		unix.Close(report)
		unix.Close(fifo)
		if consoleFD >= 0 {
			unix.Close(consoleFD)
		}
		for _, fd := range hookFDs {
			unix.Close(fd)
		}
	}
	if err != nil {
		closeChainFDs()
		return err
	}
	for _, fd := range hookFDs {
		chainFDs += "," + strconv.Itoa(fd)
	}
	env = append(env, chain.ReportFDEnv+"="+strconv.Itoa(report), chain.StartFDEnv+"="+strconv.Itoa(fifo),
		chain.ChainFDsEnv+"="+chainFDs)
	if g.debug {
		env = append(env, "BARCO_DEBUG=1")
	}
	g.debugf("create %s: %s", c.ID, strings.Join(argv, " "))
	var status int
	if g.proc.IsLinked(argv[0]) {
		// What a stage failed before passing on (barco-ns closes them
		// once its child has them, and a memfd of hooks once read).
		var left []int
		status, left = g.runStages(argv, env)
		for _, fd := range left {
			unix.Close(fd)
		}
	} else {
		// BARCO_EXEC_STAGES=1: the first stage's own binary, as a child,
		// and every stage after it so too. Exec would replace this
		// process, and its work after the chain with it.
		env = append(env, chain.ExecStagesEnv+"=1")
		files := chain.Files(preserve, chain.ParseChainFDs(chainFDs))
		status, err = g.forkStages(argv, env, files)
		// This process's copies.
		closeChainFDs()
		if err != nil {
			return err
		}
	}
	var lines []string
	ready := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == "ready" {
			ready = true
			break
		}
		lines = append(lines, sc.Text())
	}
	if ready && status == 0 {
		return nil
	}
	if len(lines) > 0 {
		// The stage's own line: "barco-mount: rootfs ...".
		return &chain.Error{Code: chain.ExitFailed, Err: errors.New(strings.Join(lines, "; "))}
	}
	return fmt.Errorf("the chain of stages ended before the container was created (exit status %d)", status)
}

// runStages runs the chain argv, whose first stages are linked into this
// binary, in this process, with env as its environment, and returns its
// status and the chain's descriptors the stages left open here. It runs
// on a thread of its own that ends with it: what the stages do to their
// thread (namespaces joined for the child, v1 cgroups moved into) goes with
// that thread. The environment and arguments the stages take over are
// this process's again afterwards.
func (g *globals) runStages(argv, env []string) (status int, left []int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the Go runtime ends a thread whose goroutine
		// exits locked to it.
		runtime.LockOSThread()
		savedEnv, savedArgs := os.Environ(), os.Args
		defer func() {
			os.Args = savedArgs
			os.Clearenv()
			for _, kv := range savedEnv {
				if k, v, ok := strings.Cut(kv, "="); ok {
					os.Setenv(k, v)
				}
			}
		}()
		var err error
		status, err = g.proc.Exec(argv, env)
		if err != nil {
			// Not a linked stage, which the chain's first always is.
			fmt.Fprintf(g.stderr, "barco: %v\n", err)
			status = chain.ExitCode(err)
		}
		left = chain.ParseChainFDs(os.Getenv(chain.ChainFDsEnv))
	}()
	<-done
	return status, left
}

// hookSetMaxEnv is the largest hook set passed in the environment: a
// variable holds at most 128 KiB (MAX_ARG_STRLEN), the exec all of them
// and the arguments a quarter of the stack limit.
const hookSetMaxEnv = 32 << 10

// hookSetsInFDs moves each hook set of env (hook.RuntimeEnv, CreateEnv, StartEnv)
// larger than hookSetMaxEnv into a memfd, the variable then naming it
// (see hook.LoadSet), and returns the descriptors, for the chain's.
func hookSetsInFDs(env []string) ([]int, error) {
	var fds []int
	for i, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		if (name != hook.RuntimeEnv && name != hook.CreateEnv && name != hook.StartEnv) || len(v) <= hookSetMaxEnv {
			continue
		}
		fd, value, err := hook.SetInFD([]byte(v))
		if err != nil {
			return fds, fmt.Errorf("%s: %w", name, err)
		}
		fds = append(fds, fd)
		env[i] = name + "=" + value
	}
	return fds, nil
}

// forkStages runs the chain argv from the first stage's binary, next to
// this one, as a child with files as its descriptors, and returns its
// exit status.
func (g *globals) forkStages(argv, env []string, files []uintptr) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	path := filepath.Join(filepath.Dir(self), argv[0])
	// Caught before the start, and passed on to the first stage (barco-ns
	// once barco-cgroup has exec'd it), as the linked stages catch them in
	// this process: a SIGTERM to create must end its hooks and the init,
	// not leave them running without it.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, chain.ForwardedSignals...)
	defer signal.Stop(sigs)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: chain.StageEnv(env), Files: files})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	// Passed on until the child has ended, not once it is reaped, when
	// its pid may be another process's.
	var mu sync.Mutex
	ended := false
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				mu.Lock()
				if sig, ok := s.(syscall.Signal); ok && !ended {
					_ = unix.Kill(pid, sig)
				}
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
	mu.Lock()
	ended = true
	mu.Unlock()
	return chain.ExitStatus(syscall.WaitStatus(waitPid(pid))), nil
}

// writePidsLimit writes the pids limit into the container's cgroup now,
// for `state` and the engines to read it from a created container. The
// chain writes it too, as PROGRAM execs (chain.PidsLimitEnv), which is
// what holds when the init's Go runtime could need more threads than
// the limit leaves it: then this write waits for that one.
func writePidsLimit(dirs []string, limit int64) {
	if limit <= 0 {
		return
	}
	for _, d := range dirs {
		p := filepath.Join(d, "pids.max")
		cur, err := os.ReadFile(filepath.Join(d, "pids.current"))
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
		// The init waits at the start gate on a few threads; its runtime
		// may start some more before the exec.
		if err != nil || limit < n+16 {
			continue
		}
		_ = os.WriteFile(p, []byte(strconv.FormatInt(limit, 10)), 0)
	}
}

// dirsToRemove are what delete removes of dirs: the directories of dirs,
// and of their parents, that do not exist yet, which create makes; and
// barco's own parent (ownParent, see cgroup.OwnParent) of any of them,
// made or not: it is shared by barco's containers, and goes with the last
// of them, which need not be the one whose create made it. Deepest first.
func dirsToRemove(dirs []string, ownParent string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		for p := d; p != "/" && p != "."; p = filepath.Dir(p) {
			_, err := os.Stat(p)
			if err == nil && (p == d || filepath.Base(p) != ownParent) {
				break
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			if err == nil {
				break
			}
		}
	}
	// Deepest first, whatever the hierarchy.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && strings.Count(out[j], "/") > strings.Count(out[j-1], "/"); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
