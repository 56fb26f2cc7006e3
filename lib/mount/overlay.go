package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// DefaultOverlaySize bounds the tmpfs that holds what a container writes to
// an ephemeral root (--overlay).
const DefaultOverlaySize = "1g"

// idmappedPool holds the idmapped mounts barco-ns handed the chain
// (chain.IdmappedFDsEnv), to be matched to the directories they clone.
type idmappedPool struct {
	fds []int
	ids []unix.Stat_t
}

// takeIdmappedPool takes the descriptors out of the environment, so that
// nothing after barco-mount sees them.
func takeIdmappedPool() *idmappedPool {
	v := os.Getenv(chain.IdmappedFDsEnv)
	if v == "" {
		return &idmappedPool{}
	}
	os.Unsetenv(chain.IdmappedFDsEnv)
	p := &idmappedPool{}
	for _, fd := range chain.ParseFDs(v) {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			continue
		}
		unix.CloseOnExec(fd)
		p.fds = append(p.fds, fd)
		p.ids = append(p.ids, st)
	}
	return p
}

// take returns the idmapped mount of dir and gives it up, or -1 when there
// is none. A mount is dir's when its root is dir's inode on dir's device:
// a path could have been swapped in between.
func (p *idmappedPool) take(dir string) int {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return -1
	}
	for i, fd := range p.fds {
		if fd >= 0 && p.ids[i].Dev == st.Dev && p.ids[i].Ino == st.Ino {
			p.fds[i] = -1
			return fd
		}
	}
	return -1
}

func (p *idmappedPool) close() {
	for _, fd := range p.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	p.fds = nil
}

// overlayRoot stacks on dir, where the rootfs is attached, an overlay
// whose lower layer is that rootfs and whose upper layer takes every
// write: a tmpfs of cfg.OverlaySize that goes with the mount namespace,
// or cfg.Persist/upper, kept. It returns the overlay as a detached mount.
//
// The layers are given to overlayfs by their descriptors, through
// /proc/self/fd, never by a path (the rootfs may be /, whose lookup is the
// process's own root): lower, the rootfs's detached mount, and the tmpfs.
// overlayfs takes private clones of its layers, which it allows only of
// mounts in this mount namespace, so both are first attached on dir (this
// namespace's own, private).
func overlayRoot(cfg *Config, dir string, lower int, uns userNS) (int, error) {
	size := cfg.OverlaySize
	if size == "" {
		size = DefaultOverlaySize
	}
	return overlayOn(dir, lower, cfg.Persist, size, uns)
}

// lockedReadOnly puts a read-only overlay on an idmapped mount, the one
// way a container sees it. The idmapped mount itself is read-only, but a
// container with CAP_SYS_ADMIN could remount it read-write in its own mount
// namespace, and a write through it stores the container's root as host
// root on the host's disk. Remounted, the overlay writes only to its own
// tmpfs, which goes with the container.
func lockedReadOnly(dir string, lower int, uns userNS) (int, error) {
	fd, err := overlayOn(dir, lower, "", "16m", uns)
	if err != nil {
		return -1, err
	}
	if err := setattr(fd, "", unix.AT_EMPTY_PATH, unix.MOUNT_ATTR_RDONLY, dir); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// overlayOn makes an overlay whose lower layer is the mount lower, first
// attached on dir, and whose upper layer is persist/upper, or a new tmpfs
// of size.
func overlayOn(dir string, lower int, persist, size string, uns userNS) (int, error) {
	if err := unix.MoveMount(lower, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, &os.PathError{Op: "move_mount rootfs onto", Path: dir, Err: err}
	}
	upperBase := persist
	var base int
	if upperBase == "" {
		var err error
		if base, err = newMount("tmpfs", 0, [][2]string{{"size", size}, {"mode", "0755"}}); err != nil {
			return -1, fmt.Errorf("overlay upper layer: %w", err)
		}
		if err := unix.MoveMount(base, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			unix.Close(base)
			return -1, &os.PathError{Op: "move_mount overlay upper layer onto", Path: dir, Err: err}
		}
		upperBase = "the overlay's tmpfs"
	} else {
		var err error
		if base, err = unix.Open(upperBase, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return -1, accessHint(&os.PathError{Op: "open overlay directory", Path: upperBase, Err: err}, uns)
		}
	}
	defer unix.Close(base)
	for _, sub := range []string{"upper", "work"} {
		if err := unix.Mkdirat(base, sub, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, accessHint(&os.PathError{Op: "mkdir", Path: filepath.Join(upperBase, sub), Err: err}, uns)
		}
	}
	fdPath := func(fd int, sub string) string { return "/proc/self/fd/" + strconv.Itoa(fd) + sub }
	opts := [][2]string{
		{"lowerdir", fdPath(lower, "")},
		{"upperdir", fdPath(base, "/upper")},
		{"workdir", fdPath(base, "/work")},
	}
	if uns.nested {
		// trusted.* xattrs are the initial user namespace's.
		opts = append(opts, [2]string{"userxattr", ""})
	}
	fd, err := newMount("overlay", 0, opts)
	if err != nil {
		if uns.nested && persist != "" {
			err = chain.WithHint(err, "the --persist directory's filesystem must support user.* xattrs, and be writable by the container's root")
		}
		return -1, err
	}
	return fd, nil
}
