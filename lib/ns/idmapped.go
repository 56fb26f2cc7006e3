package ns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// idmappedMounts makes, for each directory in dirs, a detached read-only
// clone (with the mounts below it) whose ids are mapped through the user
// namespace of process pid: a file owned by host uid N shows as owned by
// uid N inside that namespace. Only this side can make them: for ext4 and
// most disk filesystems mount_setattr(MOUNT_ATTR_IDMAP) needs CAP_SYS_ADMIN
// in the initial user namespace, which the container never has.
//
// The clones are read-only for good: a write through an idmapped mount
// stores the container's uid 0 as host uid 0, so that a container could
// plant a set-user-ID root binary on the host's disk. The container writes
// to an overlay above it instead (barco-mount --overlay).
func idmappedMounts(pid int, dirs []string) (fds []int, err error) {
	userns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open user namespace of child %d: %w", pid, err)
	}
	defer unix.Close(userns)
	defer func() {
		if err != nil {
			closeAll(fds)
			fds = nil
		}
	}()
	for _, dir := range dirs {
		fd, err := idmappedClone(dir, userns, unix.AT_RECURSIVE)
		if errors.Is(err, unix.EINVAL) {
			// A mount below DIR that cannot be idmapped (/proc under /,
			// say): DIR's own filesystem alone, which is all an overlay
			// on it shows anyway.
			fd, err = idmappedClone(dir, userns, 0)
		}
		if err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
				return fds, chain.WithHint(err, "its filesystem cannot be idmapped (ext4, xfs, btrfs and tmpfs can); "+
					"run without --idmap (barco run --no-idmap), or chown the directory to the container's id range")
			}
			return fds, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// idmappedClone is a read-only clone of the mount at dir (with those below
// it, given AT_RECURSIVE), idmapped through userns.
func idmappedClone(dir string, userns int, recursive uint) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|recursive)
	if err != nil {
		return -1, fmt.Errorf("idmap %s: open_tree: %w", dir, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|recursive, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("idmap %s: mount_setattr MOUNT_ATTR_IDMAP: %w", dir, err)
	}
	return fd, nil
}

// idmapDirs makes each --idmap directory absolute and checks that it is
// one, before any namespace exists.
func idmapDirs(dirs []string) ([]string, error) {
	abs := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if strings.ContainsAny(d, "\n") {
			return nil, fmt.Errorf("--idmap %q: a newline in a path", d)
		}
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("--idmap %s: %w", d, err)
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("--idmap %s: %w", d, errors.Unwrap(err))
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("--idmap %s: not a directory", d)
		}
		abs = append(abs, a)
	}
	return abs, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
