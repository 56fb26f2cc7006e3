package ns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"barco/lib/caps"
	"barco/lib/chain"
	"barco/lib/forkexec"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// A detached child in new namespaces, none of them a user one, may start
// without a Go image of the next stage: barco-mount's work is done by this
// process, from a thread that joins the child's namespaces (see
// chain.FrontWork and mount's planLinked), and the stages after it run as
// the child's steps, with PROGRAM's exec and the start gate (see
// chain.Process.InlineSteps). The child is cloned on a stack of its own
// (sysprog.Spawn), so that it can wait for that work, and at the gate
// after this process has returned. This is the raw init of
// docs/raw-init.md, for the OCI mode's create.

// linkedKinds are the namespaces the front's thread joins: all a child
// may have here but the user namespace (none), and the pid and time ones,
// which a thread takes for its children only.
var linkedKinds = []struct {
	flag uintptr
	name string
}{
	{unix.CLONE_NEWUTS, "uts"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWNET, "net"},
	{unix.CLONE_NEWCGROUP, "cgroup"}, {unix.CLONE_NEWNS, "mnt"},
}

// linkedState is what the child holds when the stages' steps start, if
// it may start so: detached, in new namespaces that a thread can join
// (a mount namespace, no user or time one), with nothing but what the
// thread can set up for it. ok is false otherwise.
func (c *Config) linkedState() (st *chain.ChildState, ok bool) {
	if !sysprog.SpawnArch || !c.Detach || c.Flags&unix.CLONE_NEWNS == 0 || c.Flags&(unix.CLONE_NEWUSER|unix.CLONE_NEWTIME) != 0 ||
		c.Init || len(c.Joins) > 0 || len(c.Idmap) > 0 || len(c.Hooks) > 0 || c.UID >= 0 || c.GID >= 0 ||
		c.Ctty || c.StdioFD > 2 || c.Workdir != "" || !chain.IsStage(c.Program[0]) {
		return nil, false
	}
	// The child's credentials are this thread's.
	caller, err := caps.CurrentCaller()
	if err != nil {
		return nil, false
	}
	st = &chain.ChildState{UID: caller.UID, GID: caller.GID, Groups: caller.Groups,
		Permitted: uint64(caller.Permitted), Bounding: uint64(caller.Bounding), Namespaces: c.Flags, ParentPid: os.Getpid()}
	if c.Flags&unix.CLONE_NEWPID != 0 {
		st.ParentPid = 0
	}
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
		st.NoNewPrivs = true
	}
	return st, true
}

// tryLinked plans the stages after barco-ns for the child of st, and
// starts it with runLinked where they have work from the front and the
// rest as steps; ran is false where they cannot, for Run to start it as
// usual.
func (c *Config) tryLinked(p *chain.Process, st *chain.ChildState) (status int, err error, ran bool) {
	files := chain.ChildFiles(true)
	sync, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket pair for the child: %w", err), true
	}
	st.SyncFD = len(files)
	plan, ok, err := p.InlineSteps(c.Program, c.inlineEnv(), st, true)
	if err != nil || !ok || plan.Front == nil {
		unix.Close(sync[0])
		unix.Close(sync[1])
		return 0, err, err != nil
	}
	status, err = c.runLinked(p, plan, files, sync)
	var early notStarted
	if errors.As(err, &early) {
		// No child at work: the socket is still this process's.
		unix.Close(sync[0])
		unix.Close(sync[1])
		err = early.err
	}
	if errors.Is(err, errNoSpawn) {
		p.Log.Debugf("%v: the child execs %s", err, c.Program[0])
		return 0, nil, false
	}
	return status, err, true
}

// errNoSpawn is runLinked's when the kernel, or a seccomp filter barco
// runs under (Docker's default profile, say, with ENOSYS; older ones and
// other allow-lists with EPERM), has no clone3 with the arguments
// sysprog.Spawn gives it (Linux 5.7): Run then starts the child as usual,
// which uses clone3 only to clone into a cgroup v2 directory, and tells
// its own failure, a genuine EPERM among them, with its own hint.
var errNoSpawn = errors.New("no clone3 with CLONE_INTO_CGROUP")

// notStarted is runLinked's error from before a child runs, whose socket
// tryLinked then closes.
type notStarted struct{ err error }

func (e notStarted) Error() string { return e.err.Error() }
func (e notStarted) Unwrap() error { return e.err }

// errChildEnded is the front's when the child ended before its wait: its
// own report says why.
var errChildEnded = errors.New("the child ended before its wait")

// runLinked starts the child of a linkedState as the program plan makes,
// plus its head: default signal handlers (but those that end the init of
// a new pid namespace until its exec), a session of its own, the
// descriptors files, then sync's child end at the next number, and no
// other, RLIMIT_NOFILE as this process got it, and a cgroup namespace of
// its own once in its cgroup. It returns once the child waits at its
// start gate, or has exec'd PROGRAM.
func (c *Config) runLinked(p *chain.Process, plan *chain.InlinePlan, files []uintptr, sync [2]int) (int, error) {
	sup := p.Supervisor()
	layout := make([]int, 0, len(files)+1)
	next := sync[1] + 1
	for _, f := range files {
		fd := int(f)
		if f == ^uintptr(0) {
			fd = -1
		}
		layout = append(layout, fd)
		next = max(next, fd+1)
	}
	layout = append(layout, sync[1])
	var b sysprog.Builder
	unblock := b.DefaultSignals()
	if c.Flags&unix.CLONE_NEWPID != 0 {
		// The init of its pid namespace, which ignores a signal left at
		// its default: the SIGTERM of a kill (or an engine's stop) would
		// leave it at its gate, where the stages' Go image ends (exit 2)
		// and a created runc container dies.
		for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM} {
			b.ExitOnSignal(sig)
		}
	}
	unblock()
	b.Sys(stepSetsid, unix.SYS_SETSID)
	b.Files(stepFiles, layout, next)
	b.CloseFrom(len(layout))
	b.RestoreNofile(forkexec.NofileForChild())
	if c.Flags&unix.CLONE_NEWCGROUP != 0 {
		b.Sys("unshare CLONE_NEWCGROUP", unix.SYS_UNSHARE, sysprog.Int(unix.CLONE_NEWCGROUP))
	}
	plan.Emit(&b)
	prog, err := b.Program(chain.ExitFailed)
	if err != nil {
		return 0, notStarted{err}
	}
	if c.OOMScoreAdj != nil {
		// Inherited by the child.
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*c.OOMScoreAdj)), 0); err != nil {
			return 0, notStarted{fmt.Errorf("oom_score_adj %d: %w", *c.OOMScoreAdj, err)}
		}
	}
	p.Log.Debugf("clone %s, then the steps, with %s's work from a thread of this process", flagNames(c.Flags), plan.FrontStage)
	var child *sysprog.Child
	pid, err := p.Spawn(func(cgroupFD int) (int, error) {
		var err error
		if child, err = sysprog.Spawn(prog, uint64(c.Flags&^unix.CLONE_NEWCGROUP), cgroupFD); err != nil {
			return 0, err
		}
		return child.Pid, nil
	})
	if err != nil {
		if child != nil {
			child.Kill()
		} else if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG) || errors.Is(err, unix.EPERM) {
			return 0, notStarted{errNoSpawn}
		}
		return 0, notStarted{cloneError(c.Flags, "", err)}
	}
	unix.Close(sync[1])
	p.Log.Debugf("child pid %d", pid)
	if c.PIDFile != "" {
		if err := writePIDFile(c.PIDFile, pid); err != nil {
			child.Kill()
			return 0, err
		}
	}
	built, outcome, done := make(chan error, 1), make(chan bool, 1), make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: a thread in the child's namespaces, with a root
		// and a working directory of its own, ends with this goroutine.
		runtime.LockOSThread()
		after, err := c.frontWork(p, plan, pid, sync[0])
		built <- err
		switch {
		case after != nil && err != nil:
			after(true)
		case after != nil:
			after(<-outcome)
		}
	}()
	if err := <-built; err != nil {
		<-done
		if errors.Is(err, errChildEnded) {
			if err = child.Wait(); err == nil {
				// No report: a signal ended it.
				err = childEnded(pid)
				child.Release()
			}
		} else {
			child.Kill()
			if !errors.Is(err, chain.ErrReported) {
				err = &chain.StageError{Stage: plan.FrontStage, Err: err}
			}
		}
		return 0, err
	}
	err = child.Wait()
	outcome <- err != nil
	<-done
	if err != nil {
		return 0, err
	}
	chain.CloseChainFDs()
	p.Log.Debugf("child %d waits at its start gate; detached", pid)
	sup.Release()
	return 0, nil
}

// childEnded reaps the child pid, which ended before its wait without a
// report, and says how it ended.
func childEnded(pid int) error {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	how := fmt.Sprintf("exited with status %d", ws.ExitStatus())
	if ws.Signaled() {
		how = "was killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Errorf("child %d %s before its wait for this process", pid, how)
}

// frontWork is the work of the thread that joins the child's namespaces,
// which it locked: once the child waits (a byte on sync), it joins them,
// sets them up as the child's setup would (chain.SetUpNamespaces), runs
// the stage's work, and lets the child go on (a byte back).
func (c *Config) frontWork(p *chain.Process, plan *chain.InlinePlan, pid, sync int) (after func(bool), err error) {
	defer unix.Close(sync)
	fds, err := receiveWaiting(sync, pid)
	if err != nil {
		return nil, err
	}
	// Until plan.Front owns them: the child's procfs would hold its pid
	// namespace for as long as this process lives.
	closeFDs := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if err := joinChild(pid, c.Flags); err != nil {
		closeFDs()
		return nil, err
	}
	if err := chain.SetUpNamespaces(c.Hostname, c.Flags&unix.CLONE_NEWNET != 0, c.Sysctls); err != nil {
		closeFDs()
		return nil, err
	}
	if after, err = plan.Front(pid, fds); err != nil {
		return nil, err
	}
	if _, err := unix.Write(sync, []byte{1}); err != nil {
		return after, fmt.Errorf("tell child %d to go on: %w", pid, err)
	}
	return after, nil
}

// receiveWaiting reads the child's byte that says it waits, with the
// descriptors it sends along (close-on-exec here), or errChildEnded when
// the child ended first.
func receiveWaiting(sync, pid int) ([]int, error) {
	var buf [1]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(sync, buf[:], oob, unix.MSG_CMSG_CLOEXEC)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, fmt.Errorf("wait for child %d: %w", pid, err)
		case n != 1:
			return nil, errChildEnded
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		var fds []int
		for _, m := range msgs {
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
		if err == nil && flags&unix.MSG_CTRUNC != 0 {
			// The kernel drops a descriptor this process has no room for.
			err = fmt.Errorf("a descriptor sent was dropped (MSG_CTRUNC): %w", unix.EMFILE)
		}
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("wait for child %d: %w", pid, err)
		}
		return fds, nil
	}
}

// joinChild joins the calling thread, locked, to the namespaces of
// linkedKinds that flags makes for the child pid; first it takes a root
// and working directory of its own, which a thread needs to join a mount
// namespace.
func joinChild(pid int, flags uintptr) error {
	var (
		fds   []int
		names []string
	)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, k := range linkedKinds {
		if flags&k.flag == 0 {
			continue
		}
		path := "/proc/" + strconv.Itoa(pid) + "/ns/" + k.name
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: path, Err: err}
		}
		fds = append(fds, fd)
		names = append(names, k.name)
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	for i, fd := range fds {
		if err := unix.Setns(fd, 0); err != nil {
			return fmt.Errorf("join the child's %s namespace: setns: %w", names[i], err)
		}
	}
	return nil
}
