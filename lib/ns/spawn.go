package ns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"barco/lib/chain"
	"barco/lib/creds"
	"barco/lib/hook"
	"barco/lib/mount"
	"barco/lib/sysprog"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Kinds are the namespace kinds by their util-linux unshare names.
var Kinds = []struct {
	Name  string
	Short rune
	Flag  uintptr
	Help  string
}{
	{"user", 'U', unix.CLONE_NEWUSER, "new user namespace, with the uid/gid maps below"},
	{"pid", 'p', unix.CLONE_NEWPID, "new pid namespace: PROGRAM is PID 1"},
	{"mount", 'm', unix.CLONE_NEWNS, "new mount namespace"},
	{"uts", 'u', unix.CLONE_NEWUTS, "new UTS namespace (hostname)"},
	{"ipc", 'i', unix.CLONE_NEWIPC, "new IPC namespace"},
	{"net", 'n', unix.CLONE_NEWNET, "new network namespace, with loopback up"},
	{"cgroup", 'C', unix.CLONE_NEWCGROUP, "new cgroup namespace, rooted at the current cgroup"},
	{"time", 'T', unix.CLONE_NEWTIME, "new time namespace"},
}

// Config is what barco-ns was asked for.
type Config struct {
	Flags    uintptr // CLONE_NEW* of the namespaces to create
	Hostname string
	UIDMaps  []IDMap // with CLONE_NEWUSER
	GIDMaps  []IDMap
	UID, GID int  // credentials to take before exec; -1 leaves them
	Init     bool // run a minimal init as PID 1
	Program  []string
	Maps     MapWriter // writes the maps; see Config.mapWriter when nil
	// Caller is the unprivileged caller and the ids it owns; nil for
	// root, who may map any range.
	Caller *Caller
	// Idmap are directories to hand the child as read-only idmapped
	// mounts through the new user namespace (see idmappedMounts).
	Idmap []string
	// PIDFile, when set, gets the child's pid (bare digits, as runc's).
	PIDFile string
	// Joins are existing namespaces the child is made in.
	Joins []Join
	// Rlimits are the resource limits PROGRAM starts with.
	Rlimits []chain.Rlimit
	// OOMScoreAdj, when set, is the child's oom_score_adj.
	OOMScoreAdj *int
	// Sysctls are "key=value" settings the child makes in its namespaces
	// (see chain.SysctlEnv).
	Sysctls []string
	// Detach returns once the child is set up, instead of supervising it:
	// the child outlives barco-ns, and is reparented to the nearest
	// subreaper (an OCI engine's shim), which waits for it.
	Detach bool
	// Workdir, when set, is the child's working directory, entered after
	// the namespaces (a path of the joined mount namespace, with one).
	Workdir string
	// Ctty makes fd 0, a terminal, the child's controlling terminal.
	Ctty bool
	// StdioFD, when above 2, is the descriptor the child gets as its 0, 1
	// and 2 instead of barco-ns's own (0 leaves them): the OCI exec's
	// terminal, when barco-ns runs in the process of barco exec, whose own
	// stdio is its caller's.
	StdioFD int
	// Hooks run once the child exists in its namespaces, before it sets
	// them up, each with HookState on its stdin, its pid the child's (the
	// OCI prestart and createRuntime hooks).
	Hooks     []specs.Hook
	HookState specs.State
}

// childEnv marks barco-ns re-executed as the first process inside its
// namespaces, for a PROGRAM that is not a barco stage: "exec" or "init".
const childEnv = "BARCO_NS_CHILD"

// Validate checks the configuration before any namespace exists.
func (c *Config) Validate() error {
	if c.Hostname != "" && c.Flags&unix.CLONE_NEWUTS == 0 {
		return errors.New("--hostname needs a new UTS namespace (-u)")
	}
	if len(c.Hostname) > 64 || strings.ContainsAny(c.Hostname, ",= \t\n/") {
		return fmt.Errorf("--hostname %q: not a hostname (at most 64 letters, digits, - and .)", c.Hostname)
	}
	for _, j := range c.Joins {
		if c.Flags&j.Flag != 0 {
			return fmt.Errorf("--join %s=%s: and a new %s namespace exclude each other", j.Name, j.Path, j.Name)
		}
		if j.inChild() && c.Flags != 0 {
			return fmt.Errorf("--join %s=%s: no new namespace with a joined user or mount namespace (the child joins those itself, after its fork)", j.Name, j.Path)
		}
		if j.inChild() && c.Init {
			return fmt.Errorf("--join %s=%s: --init runs only in namespaces of barco-ns's own making or joined on its thread", j.Name, j.Path)
		}
	}
	for _, kv := range c.Sysctls {
		// The host's own, without a namespace of the container's.
		net := strings.HasPrefix(kv, "net.")
		if net && c.Flags&unix.CLONE_NEWNET == 0 {
			return fmt.Errorf("--sysctl %s: a net.* sysctl needs a new network namespace (-n)", kv)
		}
		if !net && c.Flags&unix.CLONE_NEWIPC == 0 {
			return fmt.Errorf("--sysctl %s: an IPC sysctl needs a new IPC namespace (-i)", kv)
		}
	}
	if c.Flags&unix.CLONE_NEWUSER == 0 && len(c.Idmap) > 0 {
		return errors.New("--idmap needs a new user namespace (-U)")
	}
	if c.Caller != nil && len(c.Idmap) > 0 {
		return chain.Errorf("without it, the uid map alone shows the caller's own files as owned by the container's root",
			"--idmap %s: idmapped mounts need root (ext4 and most disk filesystems take an idmap only from CAP_SYS_ADMIN in the initial user namespace)", c.Idmap[0])
	}
	var err error
	if c.Idmap, err = idmapDirs(c.Idmap); err != nil {
		return err
	}
	if c.Flags&unix.CLONE_NEWUSER == 0 {
		if len(c.UIDMaps) > 0 || len(c.GIDMaps) > 0 {
			return errors.New("uid/gid maps need a new user namespace (-U)")
		}
		return nil
	}
	if err := ValidateIDMaps("uid", c.UIDMaps); err != nil {
		return err
	}
	if err := ValidateIDMaps("gid", c.GIDMaps); err != nil {
		return err
	}
	if c.Caller != nil {
		if err := c.Caller.CheckOwned(c.UIDMaps, c.GIDMaps); err != nil {
			return chain.WithHint(err, "an administrator gives ranges with usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST USER")
		}
	}
	if c.UID >= 0 && !Maps(c.UIDMaps, uint32(c.UID)) {
		return c.unmappedHint(fmt.Errorf("--uid %d: not mapped by the uid map %v", c.UID, c.UIDMaps))
	}
	if c.GID >= 0 && !Maps(c.GIDMaps, uint32(c.GID)) {
		return c.unmappedHint(fmt.Errorf("--gid %d: not mapped by the gid map %v", c.GID, c.GIDMaps))
	}
	return nil
}

// unmappedHint says why an id is not mapped when the caller has no
// subordinate range: its container has only its root.
func (c *Config) unmappedHint(err error) error {
	if c.Caller == nil || c.Caller.HasRanges() {
		return err
	}
	return chain.WithHint(err, fmt.Sprintf("uid %d has no range in %s, so the container has its root alone; an administrator adds one with usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST USER",
		c.Caller.UID, c.Caller.SubUIDFile))
}

// Run starts PROGRAM in the new namespaces and waits for it, forwarding
// signals; it returns the status to exit with.
//
// The first process in the namespaces is PROGRAM itself when it is a barco
// stage, else barco-ns re-executed (a Go process cannot unshare its own
// namespaces, and it can run the init). That process first does the setup
// barco-ns hands it in BARCO_NS_SETUP (see chain.NSSetup): it waits until
// the uid and gid maps are written (the handshake), sets the hostname,
// brings up loopback and takes its credentials.
func Run(p *chain.Process, c *Config) (int, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if st, ok := c.linkedState(); ok {
		if status, err, ran := c.tryLinked(p, st); ran {
			return status, err
		}
	}
	userns := c.Flags&unix.CLONE_NEWUSER != 0
	sup := p.Supervisor()
	// With barco-mount next, and the first process in the namespaces (not
	// --init's, which would hold the socket and start barco-mount without
	// it), the hooks wait until it has built the container's filesystem,
	// as runc runs them once its mounts are made (a prestart hook may
	// mount into the root, and barco-mount's own /dev would cover what it
	// put there before).
	deferHooks := len(c.Hooks) > 0 && !c.Init && filepath.Base(c.Program[0]) == "barco-mount"
	// A plain pipe, or a socket pair when the handshake carries idmapped
	// mounts or the child answers (deferHooks): an *os.File would set up
	// the runtime's poller for one byte.
	var pipe [2]int
	if len(c.Idmap) > 0 || deferHooks {
		var err error
		if pipe, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0); err != nil {
			return 0, fmt.Errorf("handshake socket pair: %w", err)
		}
	} else if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("handshake pipe: %w", err)
	}
	r, w := pipe[0], pipe[1]
	defer unix.Close(w)

	files := chain.ChildFiles(true)
	if c.StdioFD > 2 {
		files[0], files[1], files[2] = uintptr(c.StdioFD), uintptr(c.StdioFD), uintptr(c.StdioFD)
	}
	setup := chain.NSSetup{SyncFD: len(files), UID: c.UID, GID: c.GID, Hostname: c.Hostname,
		Loopback: c.Flags&unix.CLONE_NEWNET != 0, Idmapped: len(c.Idmap), Detached: c.Detach, RuntimeHooks: deferHooks}
	files = append(files, uintptr(r))
	// A barco-mount in the chain reports the entries it creates in the
	// rootfs, which only this side of the mount namespace can remove once
	// the container is gone (see mount.CreatedFDEnv).
	created := -1
	var createdEnv string
	if chain.IsStage(c.Program[0]) && c.Flags&unix.CLONE_NEWPID != 0 && !c.Detach {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			unix.Close(r)
			return 0, fmt.Errorf("pipe for created entries: %w", err)
		}
		created = p[0]
		// Read once the child is gone, without waiting for a writer.
		_ = unix.SetNonblock(created, true)
		defer unix.Close(created)
		defer unix.Close(p[1])
		createdEnv = mount.CreatedFDEnv + "=" + strconv.Itoa(len(files))
		files = append(files, uintptr(p[1]))
	}
	if userns {
		// Become the mapped root unless told otherwise, as unshare --map-root.
		if setup.UID < 0 {
			setup.UID = 0
		}
		if setup.GID < 0 {
			setup.GID = 0
		}
	}

	// The stages after this one, as steps of a child that only joins
	// namespaces, where they can be: the child then execs PROGRAM itself,
	// with no handshake, as it has no setup to wait for.
	var inline func(*sysprog.Builder)
	if st, ok := c.inlineState(); ok {
		plan, ok, err := p.InlineSteps(c.Program, c.inlineEnv(), st, c.Detach)
		if err != nil {
			unix.Close(r)
			return 0, err
		}
		if ok {
			inline = plan.Emit
		}
	}

	// Past a joined mount namespace the host's files are gone: the next
	// stages go with the child as carried files, as across barco-mount's
	// pivot_root, and so does barco-ns itself when it is to exec a PROGRAM
	// that is not a stage, which it then finds in the container's root.
	selfPath := "/proc/self/exe"
	if c.joinsMount() && inline == nil {
		if err := p.CarryStages(c.Program); err != nil {
			unix.Close(r)
			return 0, err
		}
		if !chain.IsStage(c.Program[0]) {
			var err error
			if selfPath, err = p.CarrySelf("barco-ns"); err != nil {
				unix.Close(r)
				return 0, err
			}
		}
	}
	env := os.Environ()
	var path string
	var err error
	argv := c.Program
	if chain.IsStage(c.Program[0]) && !c.Init {
		if path, env, err = p.Prepare(c.Program, env); err != nil {
			unix.Close(r)
			return 0, err
		}
	} else {
		mode := "exec"
		if c.Init {
			mode = "init"
			if chain.IsStage(c.Program[0]) {
				// The init's child is the next stage, not the container's
				// program: it keeps the chain's environment and descriptors.
				mode = "init-stage"
			}
		}
		path = selfPath
		if c.Init && !ownerUnmapped("/proc/self/exe", c) {
			// The init stays as PID 1 for the container's whole life: run
			// it from a sealed file, so that nothing inside can rewrite the
			// host's barco-ns through /proc/1/exe (CVE-2019-5736).
			sealed, how, err := chain.Sealed("/proc/self/exe", "barco-ns")
			if err != nil {
				unix.Close(r)
				return 0, err
			}
			p.Log.Debugf("init: barco-ns from %s", how)
			defer sealed.Close()
			path = fmt.Sprintf("/proc/self/fd/%d", sealed.Fd())
		}
		argv = append([]string{"barco-ns"}, c.Program...)
		if chain.IsStage(c.Program[0]) {
			// The init runs from a sealed file and cannot find the stages
			// next to itself: name the one to run by its path.
			if argv[1], _, err = p.Prepare(c.Program, env); err != nil {
				unix.Close(r)
				return 0, err
			}
		}
		env = append(chain.StageEnv(env), childEnv+"="+mode)
	}
	env = append(env, chain.NSSetupEnv+"="+setup.String())
	if createdEnv != "" {
		// Replacing one a chain around this one passed down: the first
		// of two entries is the one a Go program reads.
		env = withEnv(env, mount.CreatedFDEnv, strings.TrimPrefix(createdEnv, mount.CreatedFDEnv+"="))
	}

	// A pids limit left for PROGRAM (see chain.PidsLimitEnv) goes on to
	// the child; this process's own tasks come on top, since it is in the
	// cgroup too when it has one (stages exec'd, not linked).
	// A detached barco-ns leaves at once, and counts for nothing.
	if env, files, err = chain.PassPidsLimit(env, files, p.Log, !c.Detach); err != nil {
		unix.Close(r)
		return 0, err
	}
	if len(c.Rlimits) > 0 {
		// Set by the stage that execs PROGRAM, just before the exec.
		env = withEnv(env, chain.RlimitsEnv, c.rlimitsValue())
	}
	if c.OOMScoreAdj != nil {
		// Inherited by the child, as the rlimits are.
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*c.OOMScoreAdj)), 0); err != nil {
			unix.Close(r)
			return 0, fmt.Errorf("oom_score_adj %d: %w", *c.OOMScoreAdj, err)
		}
	}
	if len(c.Sysctls) > 0 {
		env = withEnv(env, chain.SysctlEnv, strings.Join(c.Sysctls, "\n"))
	}
	ambient, err := childAmbientCaps(userns)
	if err != nil {
		unix.Close(r)
		return 0, err
	}
	if inline != nil {
		p.Log.Debugf("clone %s, then the steps", flagNames(c.Flags))
	} else {
		p.Log.Debugf("clone %s, then exec %s", flagNames(c.Flags), path)
	}
	// The child takes its cgroup namespace once it is in its cgroup, which
	// an earlier stage in this process may choose as it clones it (see
	// Process.ForkExec): the namespace's root is the cgroup of the process
	// that makes it.
	//
	// The child leads a new session, as runc and crun make a container's
	// process: sharing the caller's session and process group would let
	// it signal them (kill 0; SIGCONT to any process of the session) and
	// push input into the caller's terminal (TIOCSTI). The caller's
	// terminal then signals barco-ns alone, which forwards the signal once.
	cgroupns := c.Flags & unix.CLONE_NEWCGROUP
	if err := enter(c.Joins); err != nil {
		unix.Close(r)
		return 0, err
	}
	attr := &syscall.ProcAttr{
		Dir:   c.Workdir,
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{Cloneflags: c.Flags &^ cgroupns, Unshareflags: cgroupns, AmbientCaps: ambient, Setsid: true,
			Setctty: c.Ctty, Ctty: 0},
	}
	var pid int
	if c.joinsInChild() {
		pid, err = c.forkJoinedChild(p, path, argv, attr, inline)
	} else {
		pid, err = p.ForkExec(path, argv, attr)
	}
	unix.Close(r)
	if err != nil && c.joinsInChild() {
		return 0, err
	}
	if err != nil {
		return 0, cloneError(c.Flags, path, err)
	}
	// Passed on; kept open until the child is set up, so that a failure
	// until then is reported where the chain reports (create's pipe),
	// and out of the hooks' reach.
	chain.HideChainFDs()
	p.Log.Debugf("child pid %d", pid)

	if userns {
		mw := c.mapWriter()
		p.Log.Debugf("write maps uid %v gid %v (%T)", c.UIDMaps, c.GIDMaps, mw)
		if err := mw.WriteMaps(pid, c.UIDMaps, c.GIDMaps); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = sup.Wait(pid)
			if _, ok := mw.(HelperMapWriter); ok {
				return 0, err
			}
			return 0, chain.WithHint(err, "root can map any range; others their own id, and their ranges in /etc/subuid and /etc/subgid through newuidmap")
		}
	}
	// Before the handshake, so that the file is there by the time the
	// child can run anything.
	if c.PIDFile != "" {
		if err := writePIDFile(c.PIDFile, pid); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = sup.Wait(pid)
			return 0, err
		}
	}
	if len(c.Hooks) > 0 && !deferHooks {
		if _, err := c.runHooks(p, sup, pid, -1); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = sup.Wait(pid)
			return 0, err
		}
	}
	// The write end stays open for as long as barco-ns lives: the child
	// reads its end of file as barco-ns's death.
	if inline != nil {
		p.Log.Debugf("child %d runs PROGRAM", pid)
	} else if err := handshake(w, pid, c.Idmap); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = sup.Wait(pid)
		return 0, err
	}
	if deferHooks {
		built, err := c.runHooks(p, sup, pid, w)
		if built {
			// The child undoes what it built when they failed, and ends
			// without a word: the failure is the hooks', told here.
			if herr := chain.HooksDone(w, err == nil); err == nil {
				err = herr
			}
		}
		if err != nil {
			if !built {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			_, _ = sup.Wait(pid)
			return 0, err
		}
	}
	chain.CloseChainFDs()
	if c.Detach {
		p.Log.Debugf("child %d set up; detached", pid)
		sup.Release()
		return 0, nil
	}
	ws, err := sup.Wait(pid)
	if err != nil {
		return 0, err
	}
	p.Log.Debugf("child exited: %v", ws)
	if created >= 0 {
		// The child was PID 1 of the new pid namespace: nothing of the
		// container is left to use the mount points.
		mount.RemoveCreated(created, p.Log)
	}
	return chain.ExitStatus(ws), nil
}

// runHooks runs c.Hooks for the child pid, once it reports on builtFD
// that its filesystem is built, if builtFD is not -1. It reports whether
// the child got that far: a child that ended before it reported its own
// failure, and runHooks then runs nothing and returns no error.
//
// The hooks run from another goroutine, and so another thread: this one
// may be locked in the namespaces of --join, and the hooks are the
// runtime's, to run in its own namespaces. A signal that asks barco-ns to
// end ends them, and a child not yet built.
func (c *Config) runHooks(p *chain.Process, sup *chain.Supervisor, pid, builtFD int) (bool, error) {
	st := c.HookState
	st.Pid = pid
	ctx, cancel := context.WithCancel(context.Background())
	var waiting atomic.Bool
	waiting.Store(builtFD >= 0)
	built := builtFD < 0
	done := make(chan error, 1)
	go func() {
		if builtFD >= 0 {
			ok, err := chain.WaitBuilt(builtFD)
			waiting.Store(false)
			if !ok {
				done <- err
				return
			}
			built = true
		}
		p.Log.Debugf("run %d hooks for child %d", len(c.Hooks), pid)
		done <- hook.RunContext(ctx, c.Hooks, st, nil)
	}()
	stopped := make(chan os.Signal, 1)
	go func() {
		defer close(stopped)
		if sig, ok := sup.Stopping(ctx); ok {
			stopped <- sig
			cancel()
			if waiting.Load() {
				// Its end of the socket closes with it.
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}()
	err := <-done
	cancel()
	// The watcher is gone before Wait forwards signals again.
	if sig, ok := <-stopped; ok {
		err = fmt.Errorf("hooks: stopped by %v", sig)
	}
	if !built && err == nil {
		p.Log.Debugf("child %d ended before its filesystem was built: no hooks", pid)
	}
	return built, err
}

// joinsInChild reports whether the child joins a user or mount namespace
// itself (see forkJoined).
func (c *Config) joinsInChild() bool {
	for _, j := range c.Joins {
		if j.inChild() {
			return true
		}
	}
	return false
}

func (c *Config) joinsMount() bool {
	for _, j := range c.Joins {
		if j.Flag == unix.CLONE_NEWNS {
			return true
		}
	}
	return false
}

// forkJoinedChild starts the child with forkJoined, in the user and mount
// namespaces of c.Joins.
func (c *Config) forkJoinedChild(p *chain.Process, path string, argv []string, attr *syscall.ProcAttr, inline func(*sysprog.Builder)) (int, error) {
	if p.Placed() {
		return 0, errors.New("--join user or mnt: the child cannot be started by an earlier stage in this process (barco-cgroup without --exec or --join)")
	}
	fds := map[uintptr]int{unix.CLONE_NEWUSER: -1, unix.CLONE_NEWNS: -1}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, j := range c.Joins {
		if j.inChild() {
			fd, err := openJoin(j)
			if err != nil {
				return 0, err
			}
			fds[j.Flag] = fd
		}
	}
	pid, err := forkJoined(path, argv, attr, fds[unix.CLONE_NEWUSER], fds[unix.CLONE_NEWNS], inline)
	if err != nil {
		var se *chain.StageError
		if errors.As(err, &se) {
			return 0, err
		}
		var je *sysprog.StepError
		if errors.As(err, &je) {
			switch je.Step {
			case stepUser, stepMount:
				return 0, fmt.Errorf("--join %s: %w", c.joinsText(), err)
			case stepChdir:
				return 0, fmt.Errorf("--workdir %s: %w", c.Workdir, err)
			case stepUID, stepGID:
				return 0, chain.WithHint(err, "the joined user namespace must map uid and gid 0")
			}
		}
		return 0, fmt.Errorf("start %s: %w", c.Program[0], err)
	}
	return pid, nil
}

func (c *Config) joinsText() string {
	var parts []string
	for _, j := range c.Joins {
		if j.inChild() {
			parts = append(parts, j.Name+"="+j.Path)
		}
	}
	return strings.Join(parts, " ")
}

// writePIDFile writes pid to path as bare digits, as runc does, through a
// rename, so that a reader never sees a partial file.
func writePIDFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// handshake tells the child pid that its maps are written, with the
// idmapped mounts of dirs, made now that its user namespace has them.
func handshake(w, pid int, dirs []string) error {
	if len(dirs) == 0 {
		if _, err := unix.Write(w, []byte{1}); err != nil {
			return fmt.Errorf("handshake with child %d: %w", pid, err)
		}
		return nil
	}
	fds, err := idmappedMounts(pid, dirs)
	if err != nil {
		return err
	}
	defer closeAll(fds)
	if err := unix.Sendmsg(w, []byte{1}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("handshake with child %d: %w", pid, err)
	}
	return nil
}

func cloneError(flags uintptr, path string, err error) error {
	if _, ok := err.(*chain.Error); ok {
		// Told already, by the stage that placed the child (barco-cgroup).
		return err
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
		return chain.StageExecError(path, err)
	}
	err = &os.SyscallError{Syscall: "clone " + flagNames(flags), Err: err}
	switch {
	case errors.Is(err, unix.EPERM):
		return chain.WithHint(err, "creating these namespaces needs root, or unprivileged user namespaces enabled (sysctl kernel.unprivileged_userns_clone, AppArmor's restrict_unprivileged_userns)")
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EUSERS):
		return chain.WithHint(err, "a namespace limit is reached: see /proc/sys/user/max_*_namespaces")
	case errors.Is(err, unix.EINVAL):
		return chain.WithHint(err, "the kernel may lack a namespace kind (CONFIG_USER_NS, CONFIG_TIME_NS, ...)")
	}
	return err
}

func flagNames(flags uintptr) string {
	if flags == 0 {
		return "(no new namespace)"
	}
	return chain.FlagNames(flags, cloneFlags)
}

var cloneFlags = []chain.Flag[uintptr]{
	{Bit: unix.CLONE_NEWUSER, Name: "CLONE_NEWUSER"}, {Bit: unix.CLONE_NEWPID, Name: "CLONE_NEWPID"},
	{Bit: unix.CLONE_NEWNS, Name: "CLONE_NEWNS"}, {Bit: unix.CLONE_NEWUTS, Name: "CLONE_NEWUTS"},
	{Bit: unix.CLONE_NEWIPC, Name: "CLONE_NEWIPC"}, {Bit: unix.CLONE_NEWNET, Name: "CLONE_NEWNET"},
	{Bit: unix.CLONE_NEWCGROUP, Name: "CLONE_NEWCGROUP"}, {Bit: unix.CLONE_NEWTIME, Name: "CLONE_NEWTIME"},
}

// DefaultMaps fills in the maps of a new user namespace that were not
// given: with mapRoot, container 0 is the caller; otherwise, for root, its
// subordinate ranges (subuid, subgid files) or FallbackRange, and for an
// unprivileged caller, container 0 is the caller and its subordinate
// ranges follow (Caller.Maps). A gid map not given copies the uid map when
// that was given. For an unprivileged caller it sets Caller, by which
// Validate checks that the maps are the caller's to make.
func (c *Config) DefaultMaps(mapRoot bool, subuid, subgid, passwd string) error {
	if c.Flags&unix.CLONE_NEWUSER == 0 {
		if mapRoot {
			return errors.New("--map-root needs a new user namespace (-U)")
		}
		return nil
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if uid != 0 {
		caller, err := ReadCaller(uid, gid, subuid, subgid, passwd)
		if err != nil {
			return err
		}
		c.Caller = caller
	}
	if mapRoot {
		if len(c.UIDMaps) > 0 || len(c.GIDMaps) > 0 {
			return errors.New("--map-root and --uid-map/--gid-map exclude each other")
		}
		c.UIDMaps = []IDMap{{Container: 0, Host: uid, Size: 1}}
		c.GIDMaps = []IDMap{{Container: 0, Host: gid, Size: 1}}
		return nil
	}
	if len(c.UIDMaps) > 0 && len(c.GIDMaps) == 0 {
		c.GIDMaps = c.UIDMaps
	}
	if len(c.GIDMaps) > 0 && len(c.UIDMaps) == 0 {
		c.UIDMaps = c.GIDMaps
	}
	if len(c.UIDMaps) > 0 {
		return nil
	}
	if c.Caller != nil {
		c.UIDMaps, c.GIDMaps = c.Caller.Maps()
		return nil
	}
	name := UserName(passwd, uid)
	var err error
	if c.UIDMaps, err = SubordinateMaps(subuid, name, uid); err != nil {
		return err
	}
	c.GIDMaps, err = SubordinateMaps(subgid, name, uid)
	return err
}

// childAmbientCaps are the capabilities the child keeps, as ambient, across
// its exec. In a new user namespace that exec happens before its uid is
// mapped and would otherwise lose every capability it needs for its setup
// (hostname, loopback, credentials). It keeps all it holds rather than just
// those: were a later exec to add capabilities, the kernel would clear the
// parent-death signal (commit_creds), and PROGRAM could outlive barco-ns.
func childAmbientCaps(userns bool) ([]uintptr, error) {
	last := uintptr(unix.CAP_LAST_CAP)
	if b, err := chain.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = uintptr(n)
		}
	}
	var caps []uintptr
	if userns {
		// A new user namespace grants its creator every capability in it.
		for c := uintptr(0); c <= last; c++ {
			caps = append(caps, c)
		}
		return caps, nil
	}
	sets, err := creds.Get()
	if err != nil {
		return nil, err
	}
	for c := uintptr(0); c <= last; c++ {
		held := c < 64 && sets.Permitted&(1<<c) != 0
		if inBounding, _ := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0); held && inBounding == 1 {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// ownerUnmapped reports whether no process in c's user namespace can write
// the file at path: only its owner may, and neither its owner nor its group
// is mapped there, so no capability inside applies to it either.
func ownerUnmapped(path string, c *Config) bool {
	var st unix.Stat_t
	if c.Flags&unix.CLONE_NEWUSER == 0 || unix.Stat(path, &st) != nil || st.Mode&0o022 != 0 {
		return false
	}
	return !mapsHost(c.UIDMaps, st.Uid) && !mapsHost(c.GIDMaps, st.Gid)
}

func mapsHost(maps []IDMap, id uint32) bool {
	for _, m := range maps {
		if id >= m.Host && uint64(id) < uint64(m.Host)+uint64(m.Size) {
			return true
		}
	}
	return false
}
