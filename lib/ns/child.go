package ns

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/chain"
	"barco/lib/mount"
	"golang.org/x/sys/unix"
)

// IsChild reports whether this process is barco-ns re-executed as the first
// process inside its namespaces.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// RunChild is the re-executed barco-ns inside the namespaces, after the
// setup of chain.NSSetup is done: it execs PROGRAM (os.Args[1:]), or runs it
// under a minimal init and returns its status.
func RunChild(p *chain.Process) (int, error) {
	mode := os.Getenv(childEnv)
	os.Unsetenv(childEnv)
	program := os.Args[1:]
	if mode == "init" || mode == "init-stage" {
		return runInit(p, program, mode == "init-stage")
	}
	return p.Exec(program, os.Environ())
}

// withEnv is env with name set to value, replacing any value it had.
func withEnv(env []string, name, value string) []string {
	kept := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			kept = append(kept, kv)
		}
	}
	return append(kept, name+"="+value)
}

// runInit is a minimal init, as tini or docker --init: it starts PROGRAM as
// its child, forwards signals to it, reaps every process that ends up as
// its child, and returns PROGRAM's status. When it exits, the kernel kills
// whatever is left in the pid namespace.
//
// With stage set, program[0] is the path of the next stage, which barco-ns
// resolved: it starts with the chain's environment and descriptors as they
// are, as Exec would give them to a stage.
func runInit(p *chain.Process, program []string, stage bool) (int, error) {
	// Keep the container's processes out of PID 1's /proc entries.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	path, env, argv := program[0], os.Environ(), program
	if !stage {
		argv = chain.ProgramArgv(program, env)
		// No stage comes after to set PROGRAM's resource limits: the init
		// takes them, and PROGRAM inherits them.
		if err := chain.ApplyRlimitsEnv(env); err != nil {
			return 0, err
		}
		var err error
		if path, env, err = p.Prepare(program, env); err != nil {
			return 0, err
		}
	}
	sup := p.Supervisor()
	files := chain.ChildFiles(stage)
	if v := os.Getenv(mount.CreatedFDEnv); stage && v != "" {
		// barco-mount's report goes past the init, to barco-ns.
		if fd, err := strconv.Atoi(v); err == nil {
			// The stage gets it at the number below only.
			syscall.CloseOnExec(fd)
			env = withEnv(env, mount.CreatedFDEnv, strconv.Itoa(len(files)))
			files = append(files, uintptr(fd))
		}
	}
	// The idmapped mounts go to the stage too; the init keeps none of them.
	idmapped := chain.ParseFDs(os.Getenv(chain.IdmappedFDsEnv))
	if stage && len(idmapped) > 0 {
		moved := make([]int, len(idmapped))
		for i, fd := range idmapped {
			moved[i] = len(files)
			files = append(files, uintptr(fd))
		}
		env = withEnv(env, chain.IdmappedFDsEnv, chain.FormatFDs(moved))
	}
	// The init outlives every mount change that follows, in the container:
	// it must hold nothing of the host. Its working directory moves to the
	// old root, which pivot_root then moves into the new one (it moves only
	// a root or working directory that is the old root itself); PROGRAM
	// starts in the working directory barco-ns was given.
	cwd, err := os.Getwd()
	if err != nil {
		return 0, fmt.Errorf("getcwd: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return 0, fmt.Errorf("chdir /: %w", err)
	}
	// The pids limit barco-cgroup left is PROGRAM's: the init's tasks come
	// on top (see chain.PidsLimit.AddOwnTasks). The next stage writes it as
	// it execs PROGRAM, or this init before it forks PROGRAM. Counted now
	// that the init has started what it runs on.
	if stage {
		if env, files, err = chain.PassPidsLimit(env, files, p.Log, true); err != nil {
			return 0, err
		}
	} else if limit, ok, err := chain.ParsePidsLimit(os.Environ()); err != nil {
		return 0, err
	} else if ok {
		limit.AddOwnTasks(p.Log)
		if err := limit.Write(); err != nil {
			return 0, err
		}
	}
	// Without a new pid namespace the init is not PID 1, and PROGRAM would
	// not die with it. PROGRAM leads a session of its own, as it does
	// without an init: a terminal it takes as its controlling one then
	// signals PROGRAM and not the init, which forwards its own signals.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: cwd, Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}})
	closeAll(idmapped)
	if err != nil {
		if stage {
			return 0, chain.StageExecError(path, err)
		}
		return 0, chain.ExecError(path, err)
	}
	chain.CloseChainFDs()
	// Nor any other descriptor it did not open itself: those that went to
	// the stage (the created entries' pipe, the cgroup's pids.max) and
	// whatever the caller of barco left open. The init stays for the
	// container's whole life, where a process that may trace it could
	// take them (pidfd_getfd).
	if err := chain.CloseInherited(); err != nil {
		return 0, err
	}
	for _, name := range []string{mount.CreatedFDEnv, chain.PidsLimitEnv} {
		// Close-on-exec already, so that only the stage gets them.
		if v, ok := os.LookupEnv(name); ok {
			fdText, _, _ := strings.Cut(v, ":")
			if fd, err := strconv.Atoi(fdText); err == nil && fd > 2 {
				unix.Close(fd)
			}
		}
	}
	p.Log.Debugf("init: started %s as pid %d", path, pid)
	ws, err := sup.WaitReaping(pid)
	if err != nil {
		return 0, err
	}
	return chain.ExitStatus(ws), nil
}
