package oci

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/console"
	"barco/lib/jsondecode"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execOptions are exec's own options, runc's.
type execOptions struct {
	process, pidFile, consoleSocket string
	cwd, user, apparmor, label      string
	env, caps, groups               []string
	detach, tty, noNewPrivs         bool
	preserveFDs                     int
}

func (o *execOptions) declare(opts *chain.Options) {
	opts.String(&o.process, "process", 'p', "FILE", "")
	opts.String(&o.pidFile, "pid-file", 0, "FILE", "")
	opts.String(&o.consoleSocket, "console-socket", 0, "SOCKET", "")
	opts.String(&o.cwd, "cwd", 0, "DIR", "")
	opts.String(&o.user, "user", 'u', "UID[:GID]", "")
	opts.String(&o.apparmor, "apparmor", 0, "PROFILE", "")
	opts.String(&o.label, "process-label", 0, "LABEL", "")
	opts.Strings(&o.env, "env", 'e', "KEY=VALUE", "")
	opts.Strings(&o.caps, "cap", 'c', "CAP", "")
	opts.Strings(&o.groups, "additional-gids", 'g', "GID", "")
	opts.Bool(&o.detach, "detach", 'd', "")
	opts.Bool(&o.tty, "tty", 't', "")
	opts.Bool(&o.noNewPrivs, "no-new-privs", 0, "")
	opts.Int(&o.preserveFDs, "preserve-fds", 0, "N", "")
	opts.Bool(new(bool), "ignore-paused", 0, "")
}

// execProcess is the process to exec: the --process file as it is (with
// --tty), or the container's own process with args and the options'
// changes, as runc makes them.
func execProcess(config *specs.Spec, o execOptions, args []string) (*specs.Process, error) {
	if o.process != "" {
		if len(args) > 0 {
			return nil, fmt.Errorf("exec: --process %s and a command line (%q) exclude each other", o.process, args[0])
		}
		data, err := os.ReadFile(o.process)
		if err != nil {
			return nil, fmt.Errorf("exec: --process: %w", err)
		}
		var p specs.Process
		if err := jsondecode.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("exec: --process %s: %w", o.process, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("exec: --process %s: args is empty", o.process)
		}
		if o.tty {
			p.Terminal = true
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec: no command given (a command line, or --process FILE)")
	}
	if config.Process == nil {
		return nil, errors.New("exec: the container's config has no process to start from; give --process FILE")
	}
	p := *config.Process
	p.Args = args
	p.Terminal = o.tty
	p.ConsoleSize = nil
	p.Env = append(append([]string{}, p.Env...), o.env...)
	if o.cwd != "" {
		p.Cwd = o.cwd
	}
	p.ApparmorProfile, p.SelinuxLabel = o.apparmor, o.label
	if o.noNewPrivs {
		p.NoNewPrivileges = true
	}
	if o.user != "" {
		uid, gid, hasGID := strings.Cut(o.user, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --user %q: want UID[:GID], numbers", o.user)
		}
		p.User.UID = uint32(u)
		if hasGID {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("exec: --user %q: want UID[:GID], numbers", o.user)
			}
			p.User.GID = uint32(g)
		}
	}
	if len(o.groups) > 0 {
		p.User.AdditionalGids = nil
		for _, s := range o.groups {
			g, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("exec: --additional-gids %q: not a gid", s)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
		}
	}
	if len(o.caps) > 0 {
		c := specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		for _, name := range o.caps {
			c.Bounding = append(c.Bounding[:len(c.Bounding):len(c.Bounding)], name)
			c.Effective = append(c.Effective[:len(c.Effective):len(c.Effective)], name)
			c.Permitted = append(c.Permitted[:len(c.Permitted):len(c.Permitted)], name)
			// Ambient needs inheritable, which --cap does not add.
			if c.Inheritable != nil {
				c.Ambient = append(c.Ambient[:len(c.Ambient):len(c.Ambient)], name)
			}
		}
		p.Capabilities = &c
	}
	return &p, nil
}

// nsKinds are the namespace kinds an exec joins, by their /proc/PID/ns
// names and barco-ns --join's.
var nsKinds = []struct{ proc, join string }{
	{"user", "user"}, {"mnt", "mnt"}, {"pid", "pid"}, {"net", "net"}, {"ipc", "ipc"},
	{"uts", "uts"}, {"cgroup", "cgroup"}, {"time", "time"},
}

// joinedNamespaces are barco-ns's --join options for each namespace of
// the process pid that is not this process's own: an exec joins the
// container's namespaces, whichever the config made or joined.
func joinedNamespaces(proc string, pid int) ([]string, error) {
	var argv []string
	for _, k := range nsKinds {
		theirs := fmt.Sprintf("%s/%d/ns/%s", proc, pid, k.proc)
		var a, b unix.Stat_t
		if err := unix.Stat(theirs, &a); err != nil {
			if errors.Is(err, unix.ENOENT) && k.proc == "time" {
				continue // a kernel without time namespaces
			}
			return nil, fmt.Errorf("namespace of the container's init: %w", &os.PathError{Op: "stat", Path: theirs, Err: err})
		}
		if err := unix.Stat(proc+"/self/ns/"+k.proc, &b); err == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			continue
		}
		argv = append(argv, "--join", k.join+"="+theirs)
	}
	return argv, nil
}

// execChain is a process of a container translated into the stages that
// start it there: barco-cgroup --join into the init's cgroups, barco-ns
// --join into its namespaces, then the process's own barco-caps and
// barco-seccomp, as create's chain has them.
func execChain(config *specs.Spec, p *specs.Process, joins, cgroupDirs []string, pidFile string, detach bool) (*stageChain, error) {
	switch {
	case p.ApparmorProfile != "":
		return nil, errors.New("exec: process.apparmorProfile: this machine has no AppArmor to apply it")
	case p.SelinuxLabel != "":
		return nil, errors.New("exec: process.selinuxLabel: this machine has no SELinux to apply it")
	case p.Cwd != "" && !filepath.IsAbs(p.Cwd):
		return nil, fmt.Errorf("exec: process.cwd %q: not absolute", p.Cwd)
	}
	cg := []string{"barco-cgroup"}
	for _, d := range cgroupDirs {
		cg = append(cg, "--join", d)
	}
	ns := []string{"barco-ns"}
	if detach {
		ns = append(ns, "--detach")
	}
	ns = append(ns, "--pid-file", pidFile)
	ns = append(ns, joins...)
	if p.Cwd != "" {
		ns = append(ns, "--workdir", p.Cwd)
	}
	if p.Terminal {
		ns = append(ns, "--ctty")
	}
	if p.OOMScoreAdj != nil {
		ns = append(ns, "--oom-score-adj", strconv.Itoa(*p.OOMScoreAdj))
	}
	for _, r := range p.Rlimits {
		v := fmt.Sprintf("%s=%d:%d", r.Type, r.Soft, r.Hard)
		if _, err := chain.ParseRlimit(v); err != nil {
			return nil, fmt.Errorf("exec: process.rlimits: %w", err)
		}
		ns = append(ns, "--rlimit", v)
	}
	// The process's user, capabilities and no_new_privs; the container's
	// seccomp filter.
	s := *config
	s.Process = p
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	cp, err := capsStage(&s)
	if err != nil {
		return nil, err
	}
	sc, err := seccompStage(&s)
	if err != nil {
		return nil, err
	}
	c := &stageChain{stages: [][]string{cg, ns, cp, sc, p.Args}}
	if s.Linux.Seccomp != nil && !p.NoNewPrivileges {
		// As create: without no_new_privs the filter goes first.
		c.stages = [][]string{cg, ns, sc, cp, p.Args}
	}
	if len(cgroupDirs) == 0 {
		// In every cgroup of the container's already: barco-cgroup
		// without --join would make one.
		c.stages = c.stages[1:]
	}
	for _, kv := range p.Env {
		if !strings.HasPrefix(kv, "BARCO_") {
			c.env = append(c.env, kv)
		}
	}
	return c, nil
}

// execCommand runs `exec`: a new process in a running container. With
// detach it returns once the process runs, and the caller (a subreaper)
// waits for it; else it waits and returns the process's status.
func execCommand(g *globals, id string, args []string, o execOptions) (int, error) {
	// Before anything is opened: see create.
	for fd := 3; fd < 3+o.preserveFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return 0, fmt.Errorf("--preserve-fds %d: descriptor %d is not open", o.preserveFDs, fd)
		}
	}
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return 0, err
	}
	defer c.close()
	if st.Status != specs.StateRunning {
		return 0, fmt.Errorf("container %s is %s: exec needs a running container", id, st.Status)
	}
	spec, err := st.Spec()
	if err != nil {
		return 0, err
	}
	proc, err := execProcess(spec, o, args)
	if err != nil {
		return 0, err
	}
	if proc.Terminal && o.consoleSocket == "" {
		return 0, errors.New("exec: a terminal (process.terminal, --tty) needs --console-socket")
	}
	if !proc.Terminal && o.consoleSocket != "" {
		return 0, errors.New("exec: --console-socket needs a terminal (process.terminal, --tty)")
	}
	joins, err := joinedNamespaces("/proc", st.Pid)
	if err != nil {
		return 0, err
	}
	dirs, err := cgroup.ProcessDirs("/proc/self/mountinfo", st.Pid)
	if err != nil {
		return 0, err
	}
	// Joining a cgroup this process is in already changes nothing, and
	// a user may not write its cgroup.procs: a rootless container without
	// a cgroup of its own (rootless podman on cgroup v1) runs in its
	// caller's, as its exec does.
	own, err := cgroup.ProcessDirs("/proc/self/mountinfo", os.Getpid())
	if err != nil {
		return 0, err
	}
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return slices.Contains(own, d) })
	pidFile := c.path("exec-" + strconv.Itoa(os.Getpid()) + ".pid")
	defer os.Remove(pidFile)
	ch, err := execChain(spec, proc, joins, dirs, pidFile, o.detach)
	if err != nil {
		return 0, err
	}
	// The chain's first stages run in this process, as create's do (see
	// runStages), unless they are exec'd (BARCO_EXEC_STAGES=1): then the
	// first stage's binary is a child.
	linked := g.proc.IsLinked(ch.stages[0][0])
	files := []uintptr{0, 1, 2}
	if proc.Terminal {
		slave, err := sendConsole(st.Pid, o.consoleSocket, proc.ConsoleSize)
		if err != nil {
			return 0, err
		}
		defer slave.Close()
		files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
		if linked {
			// This process's own stdio is its caller's.
			ch.withStdio(int(slave.Fd()))
		}
	}
	for fd := 3; fd < 3+o.preserveFDs; fd++ {
		files = append(files, uintptr(fd))
	}
	if o.preserveFDs > 0 {
		ch.env = append(ch.env, chain.PreserveFDsEnv+"="+strconv.Itoa(o.preserveFDs))
	}
	// Caught from the start, and forwarded once the process runs: by the
	// supervisor that barco-ns takes over in this process, else here.
	var sigs chan os.Signal
	if !o.detach && linked {
		g.proc.Supervisor()
	} else if !o.detach {
		sigs = make(chan os.Signal, 16)
		signal.Notify(sigs, chain.ForwardedSignals...)
		defer signal.Stop(sigs)
	}
	var run chainRun
	var lines []string
	if linked {
		run, lines, err = startLinkedChain(g, ch, "exec "+id)
	} else {
		run, lines, err = startChain(g, ch, files, "exec "+id)
	}
	if err != nil {
		return 0, err
	}
	if o.detach {
		ws := run.wait()
		if len(lines) > 0 {
			return 0, &chain.Error{Code: chain.ExitFailed, Err: errors.New(strings.Join(lines, "; "))}
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return 0, fmt.Errorf("exec %s: the chain of stages failed (%s)", id, describe(ws))
		}
	}
	procPid, err := readPid(pidFile)
	if err != nil && len(lines) == 0 {
		return 0, err
	}
	if err == nil && len(lines) == 0 && !initAlive(st.Pid, st.InitStart) {
		// Its namespaces may have been another's by the time they were
		// opened: the process must not run.
		_ = unix.Kill(procPid, unix.SIGKILL)
		return 0, fmt.Errorf("container %s: its init exited during exec", id)
	}
	if err == nil && len(lines) == 0 && o.pidFile != "" {
		if err := writeFileAtomic(o.pidFile, []byte(strconv.Itoa(procPid))); err != nil {
			_ = unix.Kill(procPid, unix.SIGKILL)
			return 0, fmt.Errorf("--pid-file: %w", err)
		}
	}
	if o.detach {
		return 0, nil
	}
	// Started: other commands on the container may run while it does.
	c.close()
	if sigs != nil {
		go func() {
			for s := range sigs {
				if sig, ok := s.(syscall.Signal); ok {
					_ = unix.Kill(run.pid, sig)
				}
			}
		}()
	}
	status := chain.ExitStatus(syscall.WaitStatus(run.wait()))
	if len(lines) > 0 {
		return 0, &chain.Error{Code: status, Err: errors.New(strings.Join(lines, "; "))}
	}
	return status, nil
}

// startChain starts the stages of ch as a child (the first stage's binary)
// with files as their fds 0, 1, 2 and the kept ones, and returns it once
// the last stage has exec'd the process or failed, with what the stages
// reported on their pipe (BARCO_REPORT_FD) instead of the process's
// stderr, one line each.
func startChain(g *globals, ch *stageChain, files []uintptr, what string) (chainRun, []string, error) {
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return chainRun{}, nil, fmt.Errorf("report pipe: %w", err)
	}
	r := os.NewFile(uintptr(pipe[0]), "report")
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		unix.Close(pipe[1])
		return chainRun{}, nil, err
	}
	argv := chain.JoinStages(ch.stages)
	path := filepath.Join(filepath.Dir(self), argv[0])
	env := g.chainEnv(ch, len(files), what, argv)
	files = append(files[:len(files):len(files)], uintptr(pipe[1]))
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: chain.StageEnv(env), Files: files})
	unix.Close(pipe[1])
	if err != nil {
		return chainRun{}, nil, fmt.Errorf("start %s: %w", path, err)
	}
	return chainRun{pid: pid}, readReport(r), nil
}

// withStdio gives the child of the chain's barco-ns fd as its stdin,
// stdout and stderr (barco-ns --stdio).
func (ch *stageChain) withStdio(fd int) {
	for i, st := range ch.stages {
		if st[0] == "barco-ns" {
			ch.stages[i] = append([]string{st[0], "--stdio", strconv.Itoa(fd)}, st[1:]...)
			return
		}
	}
}

// chainRun is a chain of stages that exec started: a child (pid), or the
// stages that run in this process, whose end done tells.
type chainRun struct {
	pid  int
	done chan unix.WaitStatus
}

// wait returns once the chain has ended, with its wait status: the
// child's, or the status the linked stages ended with.
func (r chainRun) wait() unix.WaitStatus {
	if r.done != nil {
		return <-r.done
	}
	return waitPid(r.pid)
}

// startLinkedChain runs the chain ch, whose first stages are linked into
// this binary, in this process, and returns once the stages have reported
// (every line of a failure, none once PROGRAM is exec'd). barco-ns keeps
// supervising PROGRAM here, with the signals this process caught for it,
// until it ends; the chain's descriptors are this process's own 0, 1, 2
// and the ones it preserves, at their numbers.
func startLinkedChain(g *globals, ch *stageChain, what string) (chainRun, []string, error) {
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return chainRun{}, nil, fmt.Errorf("report pipe: %w", err)
	}
	r := os.NewFile(uintptr(pipe[0]), "report")
	defer r.Close()
	argv := chain.JoinStages(ch.stages)
	env := g.chainEnv(ch, pipe[1], what, argv)
	run := chainRun{done: make(chan unix.WaitStatus, 1)}
	go func() {
		status, left := g.runStages(argv, env)
		// What the stages did not pass on: the report's end, when they
		// failed before barco-ns's child had it, which ends the reading.
		for _, fd := range left {
			unix.Close(fd)
		}
		run.done <- unix.WaitStatus(status << 8)
	}()
	return run, readReport(r), nil
}

// chainEnv is the environment of ch's stages, whose report descriptor is
// report, and logs what starts.
func (g *globals) chainEnv(ch *stageChain, report int, what string, argv []string) []string {
	env := append(append([]string{}, ch.env...), chain.ReportFDEnv+"="+strconv.Itoa(report), chain.ChainFDsEnv+"="+strconv.Itoa(report))
	if g.debug {
		env = append(env, "BARCO_DEBUG=1")
	}
	g.debugf("%s: %s", what, strings.Join(argv, " "))
	return env
}

// readReport reads the stages' report to its end: their lines.
func readReport(r *os.File) []string {
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func waitPid(pid int) unix.WaitStatus {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return ws
		}
	}
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid of the process: %w", err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		return 0, fmt.Errorf("pid of the process: %q: %w", data, err)
	}
	return pid, nil
}

// sendConsole makes a new pseudo-terminal of the container's own devpts
// (its init's /dev/pts/ptmx, found inside the init's root), gives it the
// process's consoleSize if any, sends its master over the console socket
// at path and returns the slave.
func sendConsole(initPid int, path string, size *specs.Box) (*os.File, error) {
	root := "/proc/" + strconv.Itoa(initPid) + "/root"
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console: root of the container's init: %w", err)
	}
	defer unix.Close(rootFD)
	master, slave, name, err := console.OpenIn(rootFD)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer unix.Close(master)
	if size != nil && size.Height > 0 && size.Width > 0 {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			unix.Close(slave)
			return nil, fmt.Errorf("console: set the window size of %s: %w", name, err)
		}
	}
	sock, err := console.Connect(path)
	if err != nil {
		unix.Close(slave)
		return nil, err
	}
	defer unix.Close(sock)
	if err := console.Send(sock, master, name); err != nil {
		unix.Close(slave)
		return nil, err
	}
	return os.NewFile(uintptr(slave), name), nil
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}
