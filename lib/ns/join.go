package ns

import (
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Join is one --join: an existing namespace the child is made in instead
// of a new one of its kind.
type Join struct {
	Flag uintptr // CLONE_NEW* of its kind
	Name string
	Path string
}

// joinable are the kinds barco-ns can enter: net, ipc, uts, pid, cgroup
// and time on its own thread before it clones the child (a new pid or time
// namespace applies to the thread's children only), user and mnt in the
// child itself (see forkJoined).
var joinable = map[string]uintptr{
	"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS,
	"pid": unix.CLONE_NEWPID, "cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
	"user": unix.CLONE_NEWUSER, "mnt": unix.CLONE_NEWNS,
}

// inChild reports whether the child joins j itself: a user or mount
// namespace, which no thread of a Go program can enter.
func (j Join) inChild() bool { return j.Flag == unix.CLONE_NEWUSER || j.Flag == unix.CLONE_NEWNS }

// ParseJoin reads TYPE=PATH; TYPE "mount" is "mnt".
func ParseJoin(s string) (Join, error) {
	kind, path, ok := strings.Cut(s, "=")
	if kind == "mount" {
		kind = "mnt"
	}
	flag, known := joinable[kind]
	switch {
	case !ok || path == "":
		return Join{}, fmt.Errorf("%q: want TYPE=PATH", s)
	case !known:
		return Join{}, fmt.Errorf("%q: unknown namespace type %q (user, mnt, net, ipc, uts, pid, cgroup, time)", s, kind)
	}
	return Join{Flag: flag, Name: kind, Path: path}, nil
}

// openJoin opens the namespace of j and checks its kind.
func openJoin(j Join) (int, error) {
	fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("join %s namespace %s: %w", j.Name, j.Path, err)
	}
	kind, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err == nil && uintptr(kind) != j.Flag {
		err = fmt.Errorf("not a %s namespace", j.Name)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("join %s namespace %s: %w", j.Name, j.Path, err)
	}
	return fd, nil
}

// enter puts the calling thread, locked to its goroutine for good, in each
// namespace of joins that the child does not join itself, so that a child it clones is made in them. Each path
// must be a namespace of the kind named.
func enter(joins []Join) error {
	if len(joins) == 0 {
		return nil
	}
	// Never unlocked: the thread is in other namespaces from here on.
	runtime.LockOSThread()
	for _, j := range joins {
		if j.inChild() {
			continue
		}
		fd, err := openJoin(j)
		if err != nil {
			return err
		}
		err = unix.Setns(fd, int(j.Flag))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", j.Name, j.Path, err)
		}
	}
	return nil
}
