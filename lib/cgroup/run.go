package cgroup

import (
	"barco/lib/forkexec"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Start starts path (argv, env) as a child process inside the cgroup and
// returns its pid. The child gets SIGKILL when the thread that started it
// ends, which the Go runtime does only to a thread whose goroutine exits
// while locked to it: in a stage, when barco-cgroup dies.
//
// The child is in the cgroup from its first instruction, so that nothing it
// forks escapes: in v2 it is cloned straight into it (CLONE_INTO_CGROUP);
// in v1, where a thread may sit in a cgroup of its own, the calling thread
// moves into the cgroup, forks, and moves back, locked to its goroutine all
// the while. The supervisor itself is never accounted to the cgroup.
func (c *Cgroup) Start(path string, argv, env []string) (int, error) {
	files := chain.ChildFiles(chain.IsStage(argv[0]))
	// barco-ns (exec'd, not linked: BARCO_EXEC_STAGES=1) leads a session
	// of its own: in the caller's process group a terminal's Ctrl-C would
	// reach it as well as barco-cgroup, which forwards its copy, and the
	// program would get two. Its own child leads another session anyway.
	// Any other PROGRAM stays in the caller's session and process group,
	// as under nice, and keeps the terminal.
	setsid := argv[0] == "barco-ns"
	pid, err := c.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files, Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: setsid}})
	if err == nil {
		chain.CloseChainFDs()
	}
	return pid, err
}

// ForkExec is forkexec.ForkExec with the child started in the cgroup, as
// Start does; attr.Sys may carry the caller's own clone flags.
func (c *Cgroup) ForkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	sysCopy := *attr.Sys
	sys := &sysCopy
	attrCopy := *attr
	attr = &attrCopy
	attr.Sys = sys
	fd, err := c.openV2()
	if err != nil {
		return 0, err
	}
	if fd >= 0 {
		defer unix.Close(fd)
		sys.UseCgroupFD, sys.CgroupFD = true, fd
	}
	if c.leftPids > 0 && chain.IsStage(argv[0]) {
		// The stage that execs PROGRAM writes the limit (see
		// chain.PidsLimitEnv), through this descriptor.
		p := c.pidsDir() + "/pids.max"
		fd, err := openRetry(p, unix.O_WRONLY|unix.O_CLOEXEC)
		if err != nil {
			return 0, &os.PathError{Op: "open", Path: p, Err: err}
		}
		defer unix.Close(fd)
		attr.Env = withPidsLimit(attr.Env, chain.PidsLimit{FD: len(attr.Files), Limit: c.leftPids})
		attr.Files = append(attr.Files[:len(attr.Files):len(attr.Files)], uintptr(fd))
	}
	start := func() (int, error) {
		pid, err := forkexec.ForkExec(path, argv, attr)
		if errors.Is(err, syscall.ENOSYS) && sys.UseCgroupFD {
			// No clone3 (Linux before 5.7): move the child into v2 right
			// after the start. A process it forks before the move lands
			// stays outside; the window is about the length of its exec.
			sys.UseCgroupFD = false
			pid, err = forkexec.ForkExec(path, argv, attr)
			if err == nil {
				if werr := writeFile(c.V2, "cgroup.procs", strconv.Itoa(pid)); werr != nil {
					killAndReap(pid)
					return 0, werr
				}
			}
		}
		if err != nil {
			return 0, chain.StartError(argv[0], path, err)
		}
		return pid, nil
	}
	return c.place(start)
}

// openV2 opens the cgroup v2 directory for a clone into it
// (CLONE_INTO_CGROUP), or returns -1 when there is none.
func (c *Cgroup) openV2() (int, error) {
	if c.V2 == "" {
		return -1, nil
	}
	fd, err := unix.Open(c.V2, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: c.V2, Err: err}
	}
	return fd, nil
}

// place runs start, which clones the child, from a thread in the v1
// hierarchies if there are any (startInV1).
func (c *Cgroup) place(start func() (int, error)) (int, error) {
	var pid int
	var err error
	if len(c.v1) > 0 {
		pid, err = c.startInV1(start)
	} else {
		pid, err = start()
	}
	if err != nil {
		return 0, err
	}
	// Now that the child runs, off the start's critical path.
	c.removeStaleLater()
	return pid, nil
}

// Spawn starts a child with spawn in the cgroup, as ForkExec does, for a
// child that is one task until its exec (see chain.Placer): the pids limit
// left to the stage that execs PROGRAM is written as soon as it runs.
func (c *Cgroup) Spawn(spawn func(cgroupFD int) (int, error)) (int, error) {
	cgroupFD, err := c.openV2()
	if err != nil {
		return 0, err
	}
	if cgroupFD >= 0 {
		defer unix.Close(cgroupFD)
	}
	return c.place(func() (int, error) {
		pid, err := spawn(cgroupFD)
		if err != nil {
			return 0, err
		}
		if c.leftPids > 0 {
			if err := writeFile(c.pidsDir(), "pids.max", strconv.FormatInt(c.leftPids, 10)); err != nil {
				killAndReap(pid)
				return 0, err
			}
		}
		return pid, nil
	})
}

// startInV1 runs start on a thread that has moved itself into the cgroup's
// v1 hierarchies, so that the child it forks starts there, and moves the
// thread back where it came from.
//
// "0" is the writing thread. Moving it by that name, rather than by its
// tid, spares the kernel's global threadgroup lock, whose first taking
// waits for an RCU grace period: 10 to 100 ms here.
//
// Every tasks file is opened before the first move: inside, the thread's
// kernel allocations are charged to the container's memory cgroup, which
// may have no room for an open (or for the Go runtime's own needs).
//
// It is the calling thread that moves and forks, not a fresh one: a linked
// barco-ns that placed its child here has joined namespaces on that thread
// (--join net=PATH, an OCI config's namespace paths), and a child forked
// from another thread would be made in the host's. When the thread cannot
// move back, its child is killed and the thread stays locked to its
// goroutine, never to run another: it ends with that goroutine if the
// goroutine ends locked (barco create's chain thread), else with the
// process, which fails.
func (c *Cgroup) startInV1(start func() (int, error)) (int, error) {
	var in, back []int
	pidsFD := -1
	defer func() {
		for _, fd := range append(append(in, back...), pidsFD) {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	if c.finalPids > 0 {
		p := c.Dir("pids") + "/pids.max"
		fd, err := openRetry(p, unix.O_WRONLY|unix.O_CLOEXEC)
		if err != nil {
			return 0, &os.PathError{Op: "open", Path: p, Err: err}
		}
		pidsFD = fd
	}
	for _, h := range c.v1 {
		for _, p := range []struct {
			fds *[]int
			dir string
		}{{&in, c.V1[h]}, {&back, h.Dir(h.Own)}} {
			fd, err := openRetry(p.dir+"/tasks", unix.O_WRONLY|unix.O_CLOEXEC)
			if err != nil {
				return 0, &os.PathError{Op: "open", Path: p.dir + "/tasks", Err: err}
			}
			*p.fds = append(*p.fds, fd)
		}
	}
	// Nested in the caller's own lock, if it has one (barco-ns's --join).
	runtime.LockOSThread()
	pid, err := 0, error(nil)
	for i, fd := range in {
		if _, err = writeRetry(fd, "0"); err != nil {
			err = fmt.Errorf("move into %s: %w", c.V1[c.v1[i]], err)
			break
		}
	}
	if err == nil {
		pid, err = start()
	}
	if err == nil && pidsFD >= 0 {
		// The limit, now that the child runs, and before this thread
		// leaves: see Run.
		if _, err = writeRetry(pidsFD, strconv.FormatInt(c.finalPids, 10)); err != nil {
			err = fmt.Errorf("write %d to %s/pids.max: %w", c.finalPids, c.Dir("pids"), err)
			killAndReap(pid)
			pid = 0
		}
	}
	for i, fd := range back {
		if _, berr := writeRetry(fd, "0"); berr != nil {
			if pid > 0 {
				killAndReap(pid)
			}
			h := c.v1[i]
			// Still locked: see above.
			return 0, fmt.Errorf("move the supervisor's thread back to %s: %w", h.Dir(h.Own), berr)
		}
	}
	runtime.UnlockOSThread()
	return pid, err
}

// withPidsLimit is a copy of env with l as its only chain.PidsLimitEnv.
func withPidsLimit(env []string, l chain.PidsLimit) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, chain.PidsLimitEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, chain.PidsLimitEnv+"="+l.String())
}

func killAndReap(pid int) {
	_ = unix.Kill(pid, unix.SIGKILL)
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
}

// Join moves the calling process, all its threads, into the cgroup (for
// --exec, which then execs PROGRAM in place).
func (c *Cgroup) Join() error {
	pid := strconv.Itoa(os.Getpid())
	for _, dir := range c.dirs() {
		if err := writeFile(dir, "cgroup.procs", pid); err != nil {
			return err
		}
	}
	return nil
}

// Options are what barco-cgroup was asked to do.
type Options struct {
	Parent, Name string
	// parentGiven is --parent given: a stage linked into another binary
	// is made with that process's $BARCO_CGROUP_PARENT, not the one of
	// the environment it then runs with, so Parent alone cannot tell.
	parentGiven bool
	Limits      Limits
	Stats       bool // print the stats at exit
	// Records is where the cgroups of runs are recorded with their owner
	// (DefaultRecordDir); "" keeps no record.
	Records string
	// Mountinfo and ProcCgroup are /proc/self/mountinfo and
	// /proc/self/cgroup, or test copies.
	Mountinfo, ProcCgroup string
	// UID is the caller's effective uid: one that is not root makes a
	// cgroup only where one is delegated to it (see Cgroup.Delegated).
	UID int
	// Unprivileged is a caller that is not root over the host, though
	// its uid may be 0 (chain.HostRoot): it is checked as UID's.
	Unprivileged bool
}

func (o *Options) locate(log *chain.Log) (*Cgroup, error) {
	if o.Mountinfo == "" {
		o.Mountinfo = "/proc/self/mountinfo"
	}
	if o.ProcCgroup == "" {
		o.ProcCgroup = "/proc/self/cgroup"
	}
	l, err := DetectLayout(o.Mountinfo, o.ProcCgroup)
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = strconv.Itoa(os.Getpid())
	}
	ctrls := V1Controllers(&o.Limits, o.Stats, l.Mode)
	if l.Mode == Unified {
		log.Debugf("%v; cgroup %s/%s", l.Mode, o.Parent, o.Name)
	} else {
		log.Debugf("%v; cgroup %s/%s in the hierarchies of %s", l.Mode, o.Parent, o.Name, strings.Join(ctrls, ","))
	}
	c, err := Locate(l, o.Parent, o.Name, ctrls)
	if err != nil {
		return nil, err
	}
	if o.UID != 0 || o.Unprivileged {
		if err := o.checkUnprivileged(c, log); err != nil {
			return nil, err
		}
	}
	c.SharedParent = o.Parent == OwnParent()
	c.Records = o.Records
	c.Log = log
	return c, nil
}

// Run runs program in a new cgroup with the limits of o, waits for it,
// kills what it left and removes the cgroup. It returns the status to exit
// with: the program's, as chain.ExitStatus makes it.
func Run(p *chain.Process, o *Options, program []string) (int, error) {
	// Catch SIGINT and SIGTERM before anything exists that they could
	// leave behind; they are forwarded to the program once it runs.
	sup := p.Supervisor()
	// Keep catching them after the program ends, until the cgroup is gone:
	// a SIGTERM during the cleanup must not cut it short.
	signal.Notify(make(chan os.Signal, 1), chain.ForwardedSignals...)
	c, err := o.locate(p.Log)
	if errors.Is(err, errNoCgroup) {
		return p.Exec(program, os.Environ())
	}
	if err != nil {
		return 0, err
	}
	if p.IsLinked(program[0]) {
		return c.handOver(p, o, program)
	}
	path, env, err := p.Prepare(program, os.Environ())
	if err != nil {
		return 0, err
	}
	limits := o.Limits
	if limits.Pids > 0 && chain.IsStage(program[0]) {
		// The stage that execs PROGRAM writes it (see chain.PidsLimitEnv);
		// a stage that stays in the cgroup as a supervisor adds its own
		// tasks.
		c.leftPids, limits.Pids = limits.Pids, -1
	} else if limits.Pids > 0 && c.Dir("pids") != "" {
		// PROGRAM starts from a thread that has moved itself into the v1
		// pids cgroup and counts there until it moves back: the limit is
		// one more for the fork, and the limit itself once PROGRAM runs,
		// written before the thread leaves, so that PROGRAM never holds
		// more tasks than the limit.
		limits.Pids++
		c.finalPids = o.Limits.Pids
	}
	if err := c.Create(&limits); err != nil {
		return 0, err
	}
	c.Log.Debugf("created %s and %d v1 cgroups", c.V2, len(c.V1))
	pid, err := c.Start(path, chain.ProgramArgv(program, os.Environ()), env)
	if err != nil {
		c.Remove()
		return 0, err
	}
	c.Log.Debugf("started %s as pid %d", path, pid)
	ws, werr := sup.Wait(pid)
	status, err := c.finish(o, chain.ExitStatus(ws))
	if err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, werr
	}
	return status, nil
}

// handOver runs program, a stage linked into this binary (barco-ns), in
// this process, after making the cgroup: that stage's child starts in the
// cgroup, as barco-cgroup's own would, and the cgroup goes when the
// stage returns. One fork and one process image less than Start.
func (c *Cgroup) handOver(p *chain.Process, o *Options, program []string) (int, error) {
	limits := o.Limits
	if limits.Pids > 0 {
		// The stage that execs PROGRAM writes it: see chain.PidsLimitEnv.
		c.leftPids, limits.Pids = limits.Pids, -1
	}
	if err := c.Create(&limits); err != nil {
		return 0, err
	}
	c.Log.Debugf("created %s and %d v1 cgroups; %s starts its child there", c.V2, len(c.V1), program[0])
	p.PlaceChildren(c)
	status, err := p.Exec(program, os.Environ())
	p.PlaceChildren(nil)
	if err != nil {
		c.Remove()
		return 0, err
	}
	return c.finish(o, status)
}

// finish is the end of a run whose program ended with status: the
// out-of-memory notice, the stats, the removal of the cgroup.
func (c *Cgroup) finish(o *Options, status int) (int, error) {
	if status == 128+int(syscall.SIGKILL) && c.OOMKills() > 0 {
		limit := ""
		if o.Limits.Memory > 0 {
			limit = " (limit " + FormatSize(o.Limits.Memory) + ")"
		}
		fmt.Fprintf(os.Stderr, "barco-cgroup: killed by the kernel: out of memory%s\n", limit)
	}
	if o.Stats {
		// Kill first, so that the numbers are final.
		_ = c.Kill()
		printStats(c.ReadStats())
	}
	if err := c.Remove(); err != nil {
		return 0, err
	}
	c.Log.Debugf("removed the cgroup; exit %d", status)
	return status, nil
}

func printStats(s Stats) {
	mem, cpu, pids := "unknown", "unknown", "unknown"
	if s.MemoryPeak >= 0 {
		mem = FormatSize(s.MemoryPeak)
	}
	if s.CPUTime >= 0 {
		cpu = fmt.Sprintf("%.3fs", s.CPUTime.Seconds())
	}
	if s.PidsPeak >= 0 {
		pids = strconv.FormatInt(s.PidsPeak, 10)
	}
	fmt.Fprintf(os.Stderr, "barco-cgroup: stats: memory peak %s, cpu time %s, pids peak %s\n", mem, cpu, pids)
}

// Exec creates the cgroup if it does not exist (else uses it), writes the
// limits, moves the calling process into it and execs program, as cgexec
// does. The cgroup stays; its owner removes it.
func Exec(p *chain.Process, o *Options, program []string) (int, error) {
	c, err := o.locate(p.Log)
	if errors.Is(err, errNoCgroup) {
		return p.Exec(program, os.Environ())
	}
	if err != nil {
		return 0, err
	}
	if p.IsLinked(program[0]) {
		return c.execLinked(p, o, program)
	}
	// This process, a Go program on several threads, joins the cgroup:
	// the pids limit is written as it execs (see chain.PidsLimitEnv),
	// here or by the stage that execs PROGRAM.
	limits, env := o.Limits, os.Environ()
	if limits.Pids > 0 {
		limits.Pids = -1
	}
	if err := c.Open(&limits); err != nil {
		return 0, err
	}
	if o.Limits.Pids > 0 {
		p := c.pidsDir() + "/pids.max"
		// Not close-on-exec: it passes to a stage; a PROGRAM that is not
		// one does not get it (chain.Process.Exec).
		fd, err := openRetry(p, unix.O_WRONLY)
		if err != nil {
			return 0, &os.PathError{Op: "open", Path: p, Err: err}
		}
		defer unix.Close(fd)
		env = withPidsLimit(env, chain.PidsLimit{FD: fd, Limit: o.Limits.Pids})
	}
	if err := c.Join(); err != nil {
		return 0, err
	}
	return p.Exec(program, env)
}

// execLinked is Exec for a stage linked into this binary (barco-ns): the
// cgroup is made or reused and keeps its limits as with Exec, and that
// stage's children start in it, but this process does not join it. It may
// go on once the stage returns: barco create leaves the container's init
// (barco-ns --detach) and goes on to record it. As with Exec, the cgroup
// stays.
func (c *Cgroup) execLinked(p *chain.Process, o *Options, program []string) (int, error) {
	limits := o.Limits
	if limits.Pids > 0 {
		// The stage that execs PROGRAM writes it: see chain.PidsLimitEnv.
		c.leftPids, limits.Pids = limits.Pids, -1
	}
	if err := c.Open(&limits); err != nil {
		return 0, err
	}
	// No sweep of stale cgroups from here (see removeStaleLater): this
	// process may end as soon as the stage returns.
	c.Records = ""
	c.Log.Debugf("using %s and %d v1 cgroups; %s starts its child there", c.V2, len(c.V1), program[0])
	p.PlaceChildren(c)
	defer p.PlaceChildren(nil)
	return p.Exec(program, os.Environ())
}
