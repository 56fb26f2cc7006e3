package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/chain"
	"barco/lib/console"
	"barco/lib/hook"
	"barco/lib/sysprog"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Command is the barco-mount stage.
func Command() *chain.Stage {
	var cfg Config
	st := &chain.Stage{
		Name:     "barco-mount",
		Synopsis: "--rootfs DIR [OPTIONS] [--] PROGRAM [ARG...]",
		Summary: `Make DIR the root of the current mount namespace, with /proc, /dev and
/sys as the OCI runtime spec's defaults, and exec PROGRAM inside it.
Run it in a new mount namespace (after barco-ns -m); it refuses the host's.
barco-caps and barco-seccomp after it run in this process (they are built
into barco-mount); other stage names run from files carried across
pivot_root that the container cannot write. PROGRAM starts with fds 0, 1
and 2 only.`,
		Notes: `Masked paths: /proc/{acpi,asound,kcore,keys,latency_stats,timer_list,
timer_stats,sched_debug,scsi,interrupts}, /sys/firmware,
/sys/devices/virtual/powercap. Read-only: /proc/{bus,fs,irq,sys,sysrq-trigger}.
Destinations are resolved inside DIR: symlinks cannot lead out of it, and
/proc, /dev and /sys must not be symlinks. With a user namespace, DIR must
be searchable by the container's root (uid 100000 on the host by default).

--console-socket SOCKET, as an OCI runtime's: once the container's /dev is
mounted, a new pseudo-terminal is opened from its own devpts (/dev/pts/0,
bound onto /dev/console too) and becomes PROGRAM's stdin, stdout, stderr
and controlling terminal, PROGRAM leading its session; its master goes over
SOCKET as one SCM_RIGHTS descriptor (the message is the terminal's name),
for the other end to relay. SOCKET is a descriptor number barco-mount
inherited (barco run -t passes one through BARCO_CHAIN_FDS), or the path
of a unix socket to connect to, reached before pivot_root and by the
container's root (uid 100000 on the host with barco-ns -U).`,
		Example: `barco-ns -U -m -p -u -i -- barco-mount --rootfs build/rootfs -- /bin/sh -c 'ls /; ps'`,
	}
	o := &st.Options
	o.String(&cfg.Rootfs, "rootfs", 0, "DIR", "the directory that becomes / (required)")
	o.Bool(&cfg.ReadOnly, "read-only", 0, "make / read-only (volumes and tmpfs keep their own mode)")
	o.Func("volume", 'v', "SRC:DST[:OPTS]", "bind the host's SRC on DST, created if missing; OPTS: ro, nosuid, nodev, noexec, norbind, idmap, shared, slave... (repeatable)", func(s string) error {
		v, err := ParseVolume(s)
		cfg.AddVolume(v)
		return err
	})
	o.Func("tmpfs", 0, "DST[:OPTS]", "mount a tmpfs on DST, noexec, nosuid, nodev; OPTS: size=N[k|m|g],mode=OCTAL,nr_inodes=N,ro,exec,tmpcopyup (filled with a copy of what DST held) (repeatable)", func(s string) error {
		t, err := ParseTmpfs(s)
		cfg.AddTmpfs(t)
		return err
	})
	o.Func("device", 0, "PATH:TYPE:MAJ:MIN[:MODE[:UID:GID]]", "make a device node PATH under /dev, TYPE c, b, u or p, MODE octal (0666); in a user namespace, the host's node at PATH bound (repeatable)", func(s string) error {
		d, err := ParseDevice(s)
		cfg.Devices = append(cfg.Devices, d)
		return err
	})
	o.String(&cfg.Workdir, "workdir", 'w', "DIR", "the program's working directory (default /)")
	o.Bool(&cfg.Overlay, "overlay", 0, "an ephemeral root: writes go to an overlay layer in a tmpfs, and DIR stays unchanged")
	o.String(&cfg.OverlaySize, "overlay-size", 0, "SIZE", "the size bound of --overlay's tmpfs, as tmpfs's size= (default "+DefaultOverlaySize+")")
	o.String(&cfg.Persist, "persist", 0, "PDIR", "as --overlay, but the written layer is kept in PDIR/upper across runs (PDIR must exist)")
	o.String(&cfg.Hosts, "hosts", 0, "NAME", "give the container its own /etc/hostname (NAME) and /etc/hosts (localhost and NAME)")
	o.String(&cfg.ResolvConf, "resolv-conf", 0, "FILE", "give the container its own /etc/resolv.conf, a copy of the host's FILE")
	o.Bool(&cfg.Cgroupfs, "cgroupfs", 0, "mount the container's cgroups read-only on /sys/fs/cgroup (cgroup2; on v1 a tmpfs with each hierarchy)")
	o.Func("mask", 0, "PATH", "hide PATH (an empty read-only tmpfs on a directory, /dev/null on a file); given, the masked and read-only paths below are only those given (repeatable)", func(v string) error {
		p, err := containerPath(v)
		cfg.Masked = append(cfg.Masked, p)
		return err
	})
	o.Func("readonly", 0, "PATH", "make PATH read-only; as --mask, replaces the default lists (repeatable)", func(v string) error {
		p, err := containerPath(v)
		cfg.Readonly = append(cfg.Readonly, p)
		return err
	})
	o.Func("propagation", 0, "TYPE", "the propagation of the container's root: private (the default), shared, slave or unbindable, each also r-", func(v string) error {
		f, ok := Propagations[v]
		if !ok {
			return fmt.Errorf("%q: want private, shared, slave, unbindable, or one of them with r-", v)
		}
		cfg.Propagation = f
		return nil
	})
	o.Bool(&cfg.NoProc, "no-proc", 0, "do not mount /proc")
	o.Bool(&cfg.NoDev, "no-dev", 0, "do not mount /dev (keep the rootfs's own)")
	o.Bool(&cfg.NoSys, "no-sys", 0, "do not mount /sys")
	o.Bool(&cfg.NoMasks, "no-masks", 0, "do not mask or make read-only the paths below")
	o.Bool(&cfg.Force, "force", 0, "run when it cannot be told whether this is the host's mount namespace (never in the host's)")
	var (
		consoleSocket string
		consoleSize   *unix.Winsize
	)
	o.String(&consoleSocket, "console-socket", 0, "SOCKET", "give PROGRAM a new terminal of the container's devpts, and send its master over SOCKET (see below)")
	o.Func("console-size", 0, "ROWSxCOLUMNS", "the window size of --console-socket's terminal (default: fd 0's, when a terminal)", func(v string) error {
		rows, cols, ok := strings.Cut(v, "x")
		r, err1 := strconv.ParseUint(rows, 10, 16)
		c, err2 := strconv.ParseUint(cols, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("%q: want ROWSxCOLUMNS, as 24x80", v)
		}
		consoleSize = &unix.Winsize{Row: uint16(r), Col: uint16(c)}
		return nil
	})
	var (
		hooks     []specs.Hook
		hookState specs.State
	)
	o.Func("hook", 0, "JSON", `run a hook in the runtime spec's form ({"path":...,"args":[...],"env":[...],"timeout":N}) just before pivot_root, in the container's namespaces with the host's paths and the container's filesystem built at --rootfs, with --hook-state on its stdin (repeatable; the OCI createContainer hooks)`, func(v string) error {
		h, err := hook.Parse(v)
		hooks = append(hooks, h)
		return err
	})
	o.Func("hook-state", 0, "JSON", "the runtime spec's state the hooks get, its pid set to this process's as the host sees it", func(v string) error {
		var err error
		hookState, err = hook.ParseState(v)
		return err
	})
	check := func() error {
		if cfg.Rootfs == "" {
			return &chain.OptionError{Option: "--rootfs", Msg: "is required"}
		}
		if cfg.ReadOnly && (cfg.Overlay || cfg.Persist != "") {
			return &chain.OptionError{Option: "--read-only", Msg: "and --overlay or --persist exclude each other"}
		}
		if cfg.NoDev && len(cfg.Devices) > 0 {
			return &chain.OptionError{Option: "--device", Msg: "needs the /dev that --no-dev leaves out"}
		}
		if cfg.OverlaySize != "" && !validSize(cfg.OverlaySize) {
			return &chain.OptionError{Option: "--overlay-size", Msg: fmt.Sprintf("%q: not a size (N, Nk, Nm, Ng or N%%)", cfg.OverlaySize)}
		}
		if strings.ContainsAny(cfg.Hosts, " \t\n/") {
			return &chain.OptionError{Option: "--hosts", Msg: fmt.Sprintf("%q: not a hostname", cfg.Hosts)}
		}
		if consoleSize != nil && consoleSocket == "" {
			return &chain.OptionError{Option: "--console-size", Msg: "needs --console-socket"}
		}
		return nil
	}
	st.Steps = func(in *chain.Inline, program []string) (func(*sysprog.Builder), error) {
		if err := check(); err != nil {
			return nil, err
		}
		if consoleSocket != "" || len(hooks) > 0 {
			return nil, chain.ErrNotInline
		}
		return planLinked(in, &cfg)
	}
	st.Main = func(p *chain.Process, program []string) (int, error) {
		if err := check(); err != nil {
			return 0, err
		}
		sock := -1
		if consoleSocket != "" {
			var err error
			if sock, err = openConsoleSocket(consoleSocket, cfg.NoDev); err != nil {
				return 0, err
			}
		}
		cfg.Log = p.Log
		// For the report to the supervisor, which sees the host's paths.
		rootfs, err := filepath.Abs(cfg.Rootfs)
		if err != nil {
			return 0, err
		}
		// A symbolic link is followed here, on the host, as crun does:
		// the root is mounted on the directory itself (move_mount onto a
		// symlink fails).
		if resolved, err := filepath.EvalSymlinks(rootfs); err == nil {
			rootfs = resolved
			cfg.Rootfs = resolved
		}
		// Read before Enter, while the host's paths can be reached. A
		// rootfs that cannot be read is Enter's to report; with no id,
		// the supervisor removes nothing.
		var rootfsID string
		if os.Getenv(CreatedFDEnv) != "" {
			rootfsID, _ = RootfsID(rootfs)
		}
		root, err := Enter(&cfg, func() error {
			// barco-ns's hooks (prestart, createRuntime), then ours.
			if err := chain.RuntimeHooks(); err != nil {
				return err
			}
			if err := beforePivotHooks(&cfg, hooks, hookState); err != nil {
				return err
			}
			return p.CarryStages(program)
		})
		if err != nil {
			return 0, err
		}
		// Whatever fails from here on, in this stage or in one linked
		// after it, ends the process instead of an exec, and the rootfs is
		// undone.
		// Under an overlay the mount points are in its upper layer, not
		// in DIR: nothing to undo or report.
		if !cfg.Overlay && cfg.Persist == "" {
			p.OnFailure(root.Undo)
			if err := reportCreated(rootfs, rootfsID, root.created); err != nil {
				return 0, err
			}
		}
		if sock >= 0 {
			if err := console.Setup(sock, consoleSize); err != nil {
				return 0, err
			}
			p.Log.Debugf("console: a new terminal on fds 0-2 and %s, its master sent on %s", console.Console, consoleSocket)
		}
		return p.Exec(program, os.Environ())
	}
	return st
}

// openConsoleSocket is the socket of --console-socket: a descriptor this
// process inherited, or a connection to a unix socket path, made while
// the host's paths can still be reached.
func openConsoleSocket(arg string, noDev bool) (int, error) {
	if noDev {
		return -1, &chain.OptionError{Option: "--console-socket", Msg: "needs the container's own /dev and devpts (leave out --no-dev)"}
	}
	if fd, err := strconv.Atoi(arg); err == nil {
		if fd < 3 || !console.IsSocket(fd) {
			return -1, &chain.OptionError{Option: "--console-socket", Msg: fmt.Sprintf("descriptor %d is not an open socket", fd)}
		}
		// PROGRAM never gets it; Setup closes it once the master is sent.
		syscall.CloseOnExec(fd)
		return fd, nil
	}
	return console.Connect(arg)
}

// beforePivotHooks runs the hooks of hook.CreateEnv, then those of --hook
// (with --hook-state, or else the variable's state), and gives the start hooks
// (hook.StartEnv) the pid they are to report, which is to be read here,
// through the host's /proc: past pivot_root a process in a pid namespace
// of its own sees only its pid there.
func beforePivotHooks(cfg *Config, hooks []specs.Hook, st specs.State) error {
	if v, ok := os.LookupEnv(hook.CreateEnv); ok {
		os.Unsetenv(hook.CreateEnv)
		set, err := hook.LoadSet(v)
		if err != nil {
			return fmt.Errorf("%s: %w", hook.CreateEnv, err)
		}
		if fd, ok := hook.FD(v); ok {
			// Read: the init need not hold its memfd until start.
			chain.CloseChainFD(fd)
		}
		hooks, st = append(set.Hooks, hooks...), set.State
	}
	start, hasStart := os.LookupEnv(hook.StartEnv)
	if len(hooks) == 0 && !hasStart {
		return nil
	}
	proc := cfg.Proc
	if proc == "" {
		proc = "/proc"
	}
	pid, err := hook.HostPID(proc)
	if err != nil {
		return fmt.Errorf("the hooks' state: this process's pid: %w", err)
	}
	if hasStart {
		set, err := hook.LoadSet(start)
		if err != nil {
			return fmt.Errorf("%s: %w", hook.StartEnv, err)
		}
		set.State.Pid = pid
		if start, err = hook.StoreSet(start, set); err != nil {
			return fmt.Errorf("%s: %w", hook.StartEnv, err)
		}
		os.Setenv(hook.StartEnv, start)
	}
	st.Pid = pid
	cfg.Log.Debugf("run %d hooks before pivot_root, pid %d", len(hooks), pid)
	defer chain.HideChainFDs()()
	return hook.Run(hooks, st, nil)
}
