package ns

import (
	"fmt"
	"os"
	"strconv"

	"barco/lib/chain"
	"barco/lib/hook"
	"golang.org/x/sys/unix"
)

// Command is the barco-ns stage.
func Command() *chain.Stage {
	st := &chain.Stage{
		Name:     "barco-ns",
		Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]",
		Summary: `Run PROGRAM in new namespaces. barco-ns stays as PROGRAM's parent: it
forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it
and exits with its status; PROGRAM is killed if barco-ns dies. PROGRAM (or
the --init, and PROGRAM under it) leads a new session, as in runc and crun:
nothing inside shares a session or a process group with the caller or has
its terminal as controlling terminal.

With -U, PROGRAM becomes root of the new user namespace (or --uid/--gid) once
the uid and gid maps are written. The maps default to the caller's ranges in
/etc/subuid and /etc/subgid, else container 0-65535 = host 100000-165535.
For a caller that is not root, container 0 is the caller and its ranges
follow from 1 (newuidmap and newgidmap write them, after barco-ns checked
they are the caller's); with no range, container 0 alone. --idmap is root's.`,
		Example: `barco-ns -U -p -u --hostname box -- /bin/sh -c 'echo $$ $(hostname); cat /proc/self/uid_map'
barco-ns -U -m -p -u -i -n --init -- barco-mount --rootfs build/rootfs -- /bin/sh
barco-ns --join user=/proc/PID/ns/user --join mnt=/proc/PID/ns/mnt --join pid=/proc/PID/ns/pid -- barco-caps --user 1000 -- sh`,
		Notes: `--join: net, ipc, uts, pid, cgroup and time namespaces are entered on barco-ns's
own thread before it clones the child (pid and time then apply to the child). A
user or mount namespace can only be entered by a process with one thread, which
a Go program never is: the child joins them itself between its fork and its exec,
the user namespace first, and becomes root there (uid and gid 0 must be mapped).
Past a joined mount namespace the host's files are gone: the barco stages named
after barco-ns go with the child as carried files (sealed, as across
barco-mount's pivot_root), and a PROGRAM that is not a stage is found in the
joined root by barco-ns re-executed from such a file. No new namespace, nor
--init, with a joined user or mount namespace.`,
	}
	var (
		cfg     = Config{UID: -1, GID: -1}
		mapRoot bool
	)
	o := &st.Options
	for _, k := range Kinds {
		flag := k.Flag
		o.Func(k.Name, k.Short, "", k.Help, func(string) error { cfg.Flags |= flag; return nil })
	}
	o.String(&cfg.Hostname, "hostname", 0, "NAME", "set the hostname (needs -u)")
	o.Bool(&mapRoot, "map-root", 'r', "map container root to the caller only (as unshare -r)")
	o.Func("uid-map", 0, "C:H:N", "map N uids from C inside to H outside (repeatable)", idMapOption(&cfg.UIDMaps))
	o.Func("gid-map", 0, "C:H:N", "map N gids from C inside to H outside (repeatable; default: as --uid-map)", idMapOption(&cfg.GIDMaps))
	o.Int(&cfg.UID, "uid", 0, "UID", "run PROGRAM as UID (inside the user namespace; default 0 with -U)")
	o.Int(&cfg.GID, "gid", 0, "GID", "run PROGRAM as GID (default 0 with -U)")
	o.Func("idmap", 0, "DIR", "hand the next stage a read-only clone of DIR whose ids are mapped through the new user namespace (repeatable; needs -U)",
		func(v string) error { cfg.Idmap = append(cfg.Idmap, v); return nil })
	o.Func("join", 0, "TYPE=PATH", "make PROGRAM in the existing namespace at PATH (user, mnt, net, ipc, uts, pid, cgroup, time), as nsenter (repeatable; see below)", func(v string) error {
		j, err := ParseJoin(v)
		cfg.Joins = append(cfg.Joins, j)
		return err
	})
	o.Func("rlimit", 0, "NAME=SOFT[:HARD]", "a resource limit PROGRAM starts with, as prlimit's (nofile=1024:4096; repeatable), set by the stage that execs it", func(v string) error {
		l, err := chain.ParseRlimit(v)
		cfg.Rlimits = append(cfg.Rlimits, l)
		return err
	})
	o.Func("oom-score-adj", 0, "N", "PROGRAM's oom_score_adj, -1000 to 1000", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1000 || n > 1000 {
			return fmt.Errorf("%q: not an oom_score_adj, -1000 to 1000", v)
		}
		cfg.OOMScoreAdj = &n
		return nil
	})
	o.Func("sysctl", 0, "KEY=VALUE", "set a namespaced sysctl (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) in the new namespaces (repeatable)", func(v string) error {
		if err := chain.CheckSysctl(v); err != nil {
			return err
		}
		cfg.Sysctls = append(cfg.Sysctls, v)
		return nil
	})
	o.String(&cfg.PIDFile, "pid-file", 0, "FILE", "write PROGRAM's first process's host pid to FILE")
	o.Bool(&cfg.Detach, "detach", 0, "exit once the child is set up instead of waiting for it; it is not killed when barco-ns exits")
	o.Bool(&cfg.Init, "init", 0, "run a minimal init as PID 1 that reaps zombies and forwards signals")
	o.String(&cfg.Workdir, "workdir", 'w', "DIR", "PROGRAM's working directory, entered once the namespaces are (with --join mnt, a path of that mount namespace)")
	o.Bool(&cfg.Ctty, "ctty", 0, "make fd 0, a terminal, the controlling terminal of PROGRAM, which leads its session (as setsid --ctty)")
	o.Func("stdio", 0, "FD", "give PROGRAM's first process FD, an open descriptor above 2 (a terminal's slave), as its stdin, stdout and stderr", func(v string) error {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return fmt.Errorf("%q: not a descriptor above 2", v)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("descriptor %d: %w", fd, err)
		}
		cfg.StdioFD = fd
		return nil
	})
	o.Func("hook", 0, "JSON", `run a hook in the runtime spec's form ({"path":...,"args":[...],"env":[...],"timeout":N}) once the child exists, before it sets up its namespaces, or, when the next stage is barco-mount (without --init), once that has built the container's filesystem, before pivot_root; with --hook-state on its stdin (repeatable; the OCI prestart and createRuntime hooks)`, func(v string) error {
		h, err := hook.Parse(v)
		cfg.Hooks = append(cfg.Hooks, h)
		return err
	})
	o.Func("hook-state", 0, "JSON", "the runtime spec's state the hooks get, its pid set to the child's", func(v string) error {
		var err error
		cfg.HookState, err = hook.ParseState(v)
		return err
	})

	st.Main = func(p *chain.Process, program []string) (int, error) {
		cfg.Program = program
		if err := cfg.takeRuntimeHooks(); err != nil {
			return 0, err
		}
		if err := cfg.DefaultMaps(mapRoot, "/etc/subuid", "/etc/subgid", "/etc/passwd"); err != nil {
			return 0, err
		}
		return Run(p, &cfg)
	}
	st.Helper = func() func(*chain.Process) (int, error) {
		if IsChild() {
			return RunChild
		}
		return nil
	}
	return st
}

func idMapOption(maps *[]IDMap) func(string) error {
	return func(v string) error {
		m, err := ParseIDMap(v)
		if err != nil {
			return err
		}
		*maps = append(*maps, m)
		return nil
	}
}

// takeRuntimeHooks adds the hooks of hook.RuntimeEnv, before those of
// --hook, with the variable's state unless --hook gave hooks (they keep
// --hook-state's); the variable goes no further, nor its memfd.
func (c *Config) takeRuntimeHooks() error {
	v, ok := os.LookupEnv(hook.RuntimeEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(hook.RuntimeEnv)
	set, err := hook.LoadSet(v)
	if fd, ok := hook.FD(v); ok && fd >= 0 {
		chain.CloseChainFD(fd)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", hook.RuntimeEnv, err)
	}
	if len(c.Hooks) == 0 {
		c.HookState = set.State
	}
	c.Hooks = append(set.Hooks, c.Hooks...)
	return nil
}
