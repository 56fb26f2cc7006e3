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

// joinable are the kinds barco-ns can enter on its own thread before it
// clones the child. A user or mount namespace can be entered only by a
// process with a single thread, which a Go program never is.
var joinable = map[string]uintptr{
	"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS,
	"pid": unix.CLONE_NEWPID, "cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
}

// ParseJoin reads TYPE=PATH.
func ParseJoin(s string) (Join, error) {
	kind, path, ok := strings.Cut(s, "=")
	flag, known := joinable[kind]
	switch {
	case !ok || path == "":
		return Join{}, fmt.Errorf("%q: want TYPE=PATH", s)
	case kind == "user" || kind == "mnt" || kind == "mount":
		return Join{}, fmt.Errorf("%q: a %s namespace cannot be joined by a Go program's thread; only net, ipc, uts, pid, cgroup and time", s, kind)
	case !known:
		return Join{}, fmt.Errorf("%q: unknown namespace type %q (net, ipc, uts, pid, cgroup, time)", s, kind)
	}
	return Join{Flag: flag, Name: kind, Path: path}, nil
}

// enter puts the calling thread, locked to its goroutine for good, in each
// namespace of joins, so that a child it clones is made in them. Each path
// must be a namespace of the kind named.
func enter(joins []Join) error {
	if len(joins) == 0 {
		return nil
	}
	// Never unlocked: the thread is in other namespaces from here on.
	runtime.LockOSThread()
	for _, j := range joins {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", j.Name, j.Path, err)
		}
		kind, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
		if err == nil && uintptr(kind) != j.Flag {
			err = fmt.Errorf("not a %s namespace", j.Name)
		}
		if err == nil {
			err = unix.Setns(fd, int(j.Flag))
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", j.Name, j.Path, err)
		}
	}
	return nil
}
