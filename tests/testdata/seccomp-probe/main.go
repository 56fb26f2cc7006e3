// seccomp-probe makes the syscalls named on its command line, harmlessly,
// and prints "NAME ok" or "NAME ERRNO" for each, so that a test can see
// what a seccomp filter lets through.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func cstr(s string) uintptr {
	p, _ := unix.BytePtrFromString(s)
	return uintptr(unsafe.Pointer(p))
}

var probes = map[string]func() error{
	// A key in this process's own keyring: gone when the process is.
	"add_key": func() error {
		_, _, e := unix.Syscall6(unix.SYS_ADD_KEY, cstr("user"), cstr("barco-probe"), cstr("x"), 1,
			uintptr(0xfffffffe) /* KEY_SPEC_PROCESS_KEYRING */, 0)
		return errnoErr(e)
	},
	"keyctl": func() error {
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
		return err
	},
	// Wrong magic: EINVAL when the call gets through, never a reboot.
	"reboot": func() error {
		_, _, e := unix.Syscall6(unix.SYS_REBOOT, 0xdead, 0xbeef, 0, 0, 0, 0)
		return errnoErr(e)
	},
	// clone(2) with namespace flags, through Go's fork.
	"clone-newuser": func() error {
		cmd := exec.Command("/proc/self/exe", "-h")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil // it ran
		}
		return err
	},
	"mount-tmpfs": func() error {
		dir, err := os.MkdirTemp("", "probe")
		if err != nil {
			return err
		}
		defer os.Remove(dir)
		if err := unix.Mount("none", dir, "tmpfs", 0, ""); err != nil {
			return err
		}
		return unix.Unmount(dir, 0)
	},
	// Newer than libseccomp 2.5 knows; no arguments: EFAULT when it runs.
	"statmount": func() error {
		_, _, e := unix.Syscall6(unix.SYS_STATMOUNT, 0, 0, 0, 0, 0, 0)
		return errnoErr(e)
	},
	"socket-inet": func() error { return socket(unix.AF_INET) },
	"socket-alg":  func() error { return socket(unix.AF_ALG) },
}

func socket(family int) error {
	fd, err := unix.Socket(family, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if family == unix.AF_INET {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	}
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	for _, name := range os.Args[1:] {
		probe, ok := probes[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "seccomp-probe: unknown probe %s\n", name)
			os.Exit(2)
		}
		err := probe()
		var errno syscall.Errno
		switch {
		case err == nil:
			fmt.Println(name, "ok")
		case errors.As(err, &errno):
			fmt.Println(name, unix.ErrnoName(errno))
		default:
			fmt.Println(name, err)
		}
	}
}
