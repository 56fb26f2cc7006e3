package ns

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// IsChild reports whether this process is the re-executed barco-ns inside
// the new namespaces.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// RunChild is the child's side: wait for the parent's handshake, set up
// what must be set up inside the namespaces, then exec PROGRAM, or run it
// under a minimal init. It returns only on failure.
func RunChild() error {
	syncFD, err := strconv.Atoi(os.Getenv(childEnv))
	if err != nil || syncFD < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", childEnv, os.Getenv(childEnv))
	}
	syscall.CloseOnExec(syncFD)
	os.Unsetenv(childEnv)
	// Die with the parent. Set here, not by the parent at clone time: in a
	// new pid namespace getppid() is 0 and Go's clone-time check would kill
	// the child at once.
	if err := armParentDeath(syncFD); err != nil {
		return err
	}

	// Blocks until the parent has written the id maps (the handshake).
	sync := os.NewFile(uintptr(syncFD), "handshake")
	var cc childConfig
	if err := json.NewDecoder(sync).Decode(&cc); err != nil {
		return fmt.Errorf("read configuration from parent: %w", err)
	}
	chain.Debugf("handshake done: %+v", cc)

	if cc.Hostname != "" {
		if err := unix.Sethostname([]byte(cc.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", cc.Hostname, err)
		}
	}
	if cc.Loopback {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if cc.SetCreds {
		if err := setCreds(cc.UID, cc.GID); err != nil {
			return err
		}
		// A change of credentials clears the parent-death signal.
		if err := armParentDeath(syncFD); err != nil {
			return err
		}
	}
	// The setup capabilities must not reach PROGRAM: a root PROGRAM gets
	// its capabilities from exec, any other none.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
	}
	if err := setInheritable(cc.Inheritable); err != nil {
		return err
	}
	if cc.Init {
		code, err := runInit(cc.Program)
		if err != nil {
			return err
		}
		os.Exit(code)
	}
	return chain.Exec(cc.Program, os.Environ())
}

// armParentDeath asks for SIGKILL when the parent dies, then checks that
// it has not died already: its end of the handshake pipe hangs up.
func armParentDeath(syncFD int) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", err)
	}
	fds := []unix.PollFd{{Fd: int32(syncFD), Events: unix.POLLHUP}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll handshake pipe: %w", err)
		}
		if n > 0 && fds[0].Revents&unix.POLLHUP != 0 && fds[0].Revents&unix.POLLIN == 0 {
			os.Exit(chain.ExitFailed)
		}
		return nil
	}
}

// setCreds drops supplementary groups and takes gid and uid, in that order
// (after setuid the process could no longer change its groups). Go applies
// each to every thread.
func setCreds(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil && err != unix.EPERM {
		return fmt.Errorf("setgroups []: %w", err)
	}
	if gid >= 0 {
		if err := syscall.Setresgid(gid, gid, gid); err != nil {
			return fmt.Errorf("setresgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setresuid(uid, uid, uid); err != nil {
			return fmt.Errorf("setresuid %d: %w", uid, err)
		}
	}
	return nil
}

// loopbackUp sets IFF_UP on lo, as `ip link set lo up`.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo up: %w", err)
	}
	return nil
}

// runInit is a minimal init, as tini or docker --init: it starts PROGRAM as
// its child, forwards signals to it, reaps every process that ends up as
// its child, and returns PROGRAM's status. When it exits, the kernel kills
// whatever is left in the pid namespace.
func runInit(program []string) (int, error) {
	env := os.Environ()
	path, err := chain.Resolve(program[0], env)
	if err != nil {
		return 0, err
	}
	sup := chain.NewSupervisor()
	files := []uintptr{0, 1, 2}
	for fd := 3; fd < 3+chain.PreservedFDs(); fd++ {
		files = append(files, uintptr(fd))
	}
	pid, err := syscall.ForkExec(path, program, &syscall.ProcAttr{Env: chain.ProgramEnv(program[0], env), Files: files})
	if err != nil {
		return 0, &chain.Error{Code: chain.ExitCannotExec, Err: &os.PathError{Op: "exec", Path: path, Err: err}}
	}
	chain.Debugf("init: started %s as pid %d", path, pid)
	ws, err := sup.WaitReaping(pid)
	if err != nil {
		return 0, err
	}
	return chain.ExitStatus(ws), nil
}

func setInheritable(inh [2]uint32) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = inh[0], inh[1]
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset inheritable: %w", err)
	}
	return nil
}
