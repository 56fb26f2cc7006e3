package mount

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// copyUp fills mnt, a new tmpfs not yet attached, with what the rootfs
// (root, a directory descriptor) holds at dest, and gives its root that
// directory's mode and owner: the tmpfs then shows what the image had
// there, writable, as the `tmpcopyup` of podman's --read-only asks (its
// /tmp, /var/tmp and /run). Nothing to copy when dest is missing.
func copyUp(root, mnt int, dest string) error {
	rel := strings.TrimPrefix(path.Clean("/"+dest), "/")
	src, err := openIn(root, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, inRoot)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return pathError("copy up: open", dest, err)
	}
	defer unix.Close(src)
	dst, err := unix.Openat(mnt, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("copy up %s: open the tmpfs: %w", dest, err)
	}
	defer unix.Close(dst)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return pathError("copy up: stat", dest, err)
	}
	if err := copyDir(src, dst, dest); err != nil {
		return err
	}
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return pathError("copy up: chown", dest, err)
	}
	if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
		return pathError("copy up: chmod", dest, err)
	}
	return nil
}

// copyDir copies the entries of directory src into directory dst, with
// their modes, owners and modification times; symbolic links as links,
// never followed. name is src's path in the container, for errors.
func copyDir(src, dst int, name string) error {
	d, err := unix.Openat(src, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathError("copy up: open", name, err)
	}
	entries, err := readDirNames(d)
	unix.Close(d)
	if err != nil {
		return pathError("copy up: read", name, err)
	}
	for _, e := range entries {
		if err := copyEntry(src, dst, e, path.Join(name, e)); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(src, dst int, e, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, e, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathError("copy up: stat", name, err)
	}
	mode := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, e, 0o700); err != nil {
			return pathError("copy up: mkdir", name, err)
		}
		s, err := unix.Openat(src, e, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return pathError("copy up: open", name, err)
		}
		defer unix.Close(s)
		t, err := unix.Openat(dst, e, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return pathError("copy up: open", name, err)
		}
		defer unix.Close(t)
		if err := copyDir(s, t, name); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst, e, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(src, e, buf)
		if err != nil {
			return pathError("copy up: readlink", name, err)
		}
		if err := unix.Symlinkat(string(buf[:n]), dst, e); err != nil {
			return pathError("copy up: symlink", name, err)
		}
	default:
		// A FIFO, socket or device node, as it is (mknod of a device
		// needs CAP_MKNOD, as it would to make it there at all).
		if err := unix.Mknodat(dst, e, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return pathError("copy up: mknod", name, err)
		}
	}
	if err := unix.Fchownat(dst, e, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathError("copy up: chown", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// After the chown, which clears set-user-ID and set-group-ID.
		if err := unix.Fchmodat(dst, e, mode, 0); err != nil {
			return pathError("copy up: chmod", name, err)
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dst, e, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathError("copy up: set times", name, err)
	}
	return nil
}

func copyFile(src, dst int, e, name string) error {
	s, err := unix.Openat(src, e, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathError("copy up: open", name, err)
	}
	defer unix.Close(s)
	t, err := unix.Openat(dst, e, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return pathError("copy up: create", name, err)
	}
	defer unix.Close(t)
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(s, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return pathError("copy up: read", name, err)
		}
		if n == 0 {
			return nil
		}
		for w := buf[:n]; len(w) > 0; {
			m, err := unix.Write(t, w)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return pathError("copy up: write", name, err)
			}
			w = w[max(m, 0):]
		}
	}
}

// readDirNames lists the names in the directory fd, without . and ..
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
