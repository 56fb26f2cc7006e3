package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/hook"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// start lets a created container run: it opens the start gate, on which
// the init waits, and returns once the init has gone through it.
func start(g *globals, id string) error {
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return err
	}
	_, err = startLocked(g, c, st)
	return err
}

// startLocked is start on the container c, locked, whose state is st; it
// unlocks c, and returns the state it leaves, for run.
func startLocked(g *globals, c *Container, st *State) (*State, error) {
	id := c.ID
	defer c.close()
	if st.Status != specs.StateCreated {
		return nil, fmt.Errorf("container %s is %s: only a created container can be started", id, st.Status)
	}
	fd, err := unix.Open(c.path(fifoName), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start gate of %s: %w", id, err)
	}
	defer unix.Close(fd)
	// The init, blocked opening the gate for writing, now writes one byte.
	var b [1]byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := unix.Read(fd, b[:])
		if n == 1 {
			break
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return nil, fmt.Errorf("start gate of %s: %w", id, err)
		}
		if !initAlive(st.Pid, st.InitStart) {
			// It may have gone through the gate, run its process and
			// ended since the read above.
			if n, _ := unix.Read(fd, b[:]); n == 1 {
				break
			}
			return nil, fmt.Errorf("container %s: its init died before it was started", id)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("container %s: its init did not pass the start gate in 10 s", id)
		}
		// The byte wakes the wait at once; the timeout is for an init
		// that dies before it writes. A FIFO's reader sees no hang-up
		// before a writer has come and gone: the wait is not cut short.
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 5)
	}
	if err := os.Remove(c.path(fifoName)); err != nil {
		return nil, fmt.Errorf("start gate of %s: %w", id, err)
	}
	st.Status = specs.StateRunning
	if err := c.save(st); err != nil {
		return nil, err
	}
	// start returns, and the poststart hooks run, once the process is
	// exec'd, as runc's: the init holds its end of the gate, close-on-exec,
	// until then (chain.Gate), and writes chain.GateFailed on it first if
	// the process will not run (a startContainer hook failed, or the exec).
	// The container runs already: a wait that times out only warns.
	failed, err := waitClosed(fd, time.Now().Add(startWait(st.Hooks)))
	if err != nil {
		g.warnf("container %s: %v", id, err)
	}
	if failed {
		return nil, fmt.Errorf("container %s: its process did not start (the reason is on the container's stderr)", id)
	}
	if st.Hooks != nil {
		// A failing poststart hook only warns, and the next ones run:
		// the process runs already.
		for _, h := range st.Hooks.Poststart {
			if err := hook.Run([]specs.Hook{h}, st.State, nil); err != nil {
				g.warnf("poststart hook: %v", err)
			}
		}
	}
	return st, nil
}

// startWait is how long start waits for the exec of the process: 10 s,
// and each startContainer hook's timeout (10 s for one without) on top.
func startWait(h *specs.Hooks) time.Duration {
	d := 10 * time.Second
	if h != nil {
		for _, one := range h.StartContainer {
			if one.Timeout != nil {
				d += time.Duration(*one.Timeout) * time.Second
			} else {
				d += 10 * time.Second
			}
		}
	}
	return d
}

// waitClosed reads the non-blocking FIFO fd until its writers have all
// closed it, or until deadline, and reports whether one wrote
// chain.GateFailed before.
func waitClosed(fd int, deadline time.Time) (failed bool, err error) {
	var b [16]byte
	for {
		n, err := unix.Read(fd, b[:])
		if slices.Contains(b[:max(n, 0)], chain.GateFailed) {
			failed = true
		}
		if n == 0 && err == nil {
			return failed, nil
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return failed, fmt.Errorf("start gate: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return failed, errors.New("its init did not exec its process in time")
		}
		// The writers' last close wakes it (POLLHUP).
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
	}
}

// stateJSON is what `state` prints: the runtime spec's state.
func stateJSON(g *globals, id string) ([]byte, error) {
	st, err := loadState(g.root, id)
	if err != nil {
		return nil, err
	}
	// A stopped container keeps the pid its init had, as its hooks saw it:
	// the runtime spec makes it optional then, and a caller comparing
	// states (a hook's with state's) finds them equal.
	return json.MarshalIndent(st.State, "", "  ")
}

// kill sends sig to the container's init, or with all to every process in
// its cgroup, which also works once the init is gone (execs may be left).
func kill(g *globals, id string, sig unix.Signal, all bool) error {
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return err
	}
	defer c.close()
	if all {
		err = signalCgroup(st, sig)
	} else {
		switch st.Status {
		case specs.StateCreated, specs.StateRunning, statePaused:
			err = signalInit(st, sig)
		default:
			return errNotRunning(id, string(st.Status))
		}
	}
	if err == nil && sig == unix.SIGKILL && st.Status == statePaused {
		// A frozen process does not die until it is thawed (the v1
		// freezer): thaw it, as runc does.
		if f, ferr := freezerOf(st); ferr == nil {
			err = f.set(false)
		}
	}
	return err
}

// errNotRunning is kill's error for a container whose init is gone. The
// words "container not running" are runc's, which containerd's shim reads
// as "already finished" rather than a failure (ctr task rm -f, docker rm -f
// kill an init that may have just exited).
func errNotRunning(id, why string) error {
	return fmt.Errorf("container not running: %s is %s", id, why)
}

// signalInit signals the init through a pidfd, after checking that the pid
// is still the init's: the pid of an init already reaped may be reused.
func signalInit(st *State, sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errNotRunning(st.ID, "stopped: its init is gone")
		}
		return fmt.Errorf("pidfd_open %d: %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	if !initAlive(st.Pid, st.InitStart) {
		return errNotRunning(st.ID, "stopped: its init is gone")
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %s to init %d: %w", unix.SignalName(sig), st.Pid, err)
	}
	return nil
}

// signalCgroup signals every process in the container's cgroup, as far as
// create made it (a container in a cgroup of another's is not signalled
// through it).
func signalCgroup(st *State, sig unix.Signal) error {
	for _, pid := range cgroupPids(st) {
		_ = unix.Kill(pid, sig)
	}
	if st.Status == specs.StateCreated || st.Status == specs.StateRunning || st.Status == statePaused {
		return signalInit(st, sig)
	}
	return nil
}

// cgroupPids are the processes in the container's own cgroup, in the
// first of its hierarchies that lists any.
func cgroupPids(st *State) []int {
	dirs := st.leafDirs()
	for _, d := range dirs {
		if pids, err := cgroup.Procs(d); err == nil && len(pids) > 0 {
			return pids
		}
	}
	return nil
}

// leafDirs are the container's own cgroup directories: the deepest ones
// create made, one per hierarchy.
func (st *State) leafDirs() []string {
	var out []string
	for _, d := range st.CgroupDirs {
		leaf := true
		for _, o := range out {
			if strings.HasPrefix(o, d+"/") {
				leaf = false
			}
		}
		if leaf {
			out = append(out, d)
		}
	}
	return out
}

// remove deletes a container: a stopped one, or with force any, after
// killing what runs in it. An unknown id with force is no error, as
// containerd's shim relies on.
func remove(g *globals, id string, force bool) error {
	c, err := openState(g.root, id, force)
	if errors.Is(err, errNoState) {
		return c.remove()
	}
	if err != nil {
		var nf errNotFound
		if force && errors.As(err, &nf) {
			return nil
		}
		return err
	}
	defer c.close()
	st, err := c.load()
	if err != nil {
		return err
	}
	if st.Status != specs.StateStopped && st.Status != specs.StateCreating && !force {
		return fmt.Errorf("container %s is %s: stop it first, or delete --force", id, st.Status)
	}
	return c.destroy(st, g)
}

// destroy kills what is left of the container, removes the cgroups create
// made and the state, and runs the poststop hooks.
func (c *Container) destroy(st *State, g *globals) error {
	if err := thaw(st); err != nil {
		g.warnf("thaw %s before it is killed: %v", st.ID, err)
	}
	if st.Pid > 0 && initAlive(st.Pid, st.InitStart) {
		_ = signalInit(st, unix.SIGKILL)
	}
	for _, pid := range cgroupPids(st) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if st.Pid > 0 {
		waitGone(st.Pid, st.InitStart, 10*time.Second)
	}
	var first error
	leaves := st.leafDirs()
	for _, d := range st.CgroupDirs {
		if !slices.Contains(leaves, d) {
			// A parent (one create made, or barco's own, see
			// dirsToRemove) may hold other containers' cgroups by now:
			// it goes with the last of them.
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOENT) && first == nil {
				first = fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			continue
		}
		if err := removeCgroupDir(d); err != nil && first == nil {
			first = err
		}
	}
	if st.Hooks != nil && st.Status != specs.StateCreating {
		st.Status = specs.StateStopped
		// A failing poststop hook only warns; the next ones still run.
		for _, h := range st.Hooks.Poststop {
			if err := hook.Run([]specs.Hook{h}, st.State, nil); err != nil {
				g.warnf("poststop hook: %v", err)
			}
		}
	}
	if err := c.remove(); err != nil && first == nil {
		first = err
	}
	return first
}

// waitGone waits until the init has exited (a zombie counts as gone: its
// reaper is the caller's subreaper, not barco).
func waitGone(pid int, start uint64, limit time.Duration) {
	for deadline := time.Now().Add(limit); initAlive(pid, start) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// removeCgroupDir removes one cgroup directory, killing what is still in
// it first and retrying while the kernel lets the processes go.
func removeCgroupDir(dir string) error {
	var err error
	for i := 0; i < 500; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		if pids, _ := cgroup.Procs(dir); len(pids) > 0 {
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// parseSignal reads a signal as runc does: a number, or a name with or
// without SIG.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %s: out of range", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown", s)
}

// listRows are the containers for `list`.
func listRows(g *globals) ([]State, error) {
	ids, err := listIDs(g.root)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, id := range ids {
		if st, err := loadState(g.root, id); err == nil {
			out = append(out, *st)
		}
	}
	return out, nil
}

// bundleDir is the default bundle: the working directory, as runc's.
func bundleDir(b string) string {
	if b == "" {
		return "."
	}
	return filepath.Clean(b)
}
