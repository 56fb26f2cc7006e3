package mount

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyUp copies the tree of the directory src into the directory dst (a
// new tmpfs, tmpcopyup): regular files, directories, symbolic links,
// device nodes and FIFOs, with their modes, owners and modification
// times. No link is followed: src is inside the container, opened with
// openat2 at each step. copyUp closes src.
func copyUp(src, dst int) error {
	f := os.NewFile(uintptr(src), "copyup source")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list %s: %w", f.Name(), err)
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(src, dst int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	perm := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return err
		}
		s, err := openIn(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, noSymlinks)
		if err != nil {
			return err
		}
		d, err := openIn(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, noSymlinks)
		if err != nil {
			unix.Close(s)
			return err
		}
		err = copyUp(s, d)
		if err == nil {
			err = finish(d, &st, perm)
		}
		unix.Close(d)
		return err
	case unix.S_IFREG:
		s, err := openIn(src, name, unix.O_RDONLY|unix.O_NOFOLLOW, noSymlinks)
		if err != nil {
			return err
		}
		in := os.NewFile(uintptr(s), name)
		defer in.Close()
		d, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		out := os.NewFile(uintptr(d), name)
		defer out.Close()
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
		return finish(d, &st, perm)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(src, name, buf)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
			return err
		}
		return unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknodat(dst, name, st.Mode&unix.S_IFMT|perm, int(st.Rdev)); err != nil {
			return err
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.Fchmodat(dst, name, perm, 0)
	}
	return errors.New("unknown file type")
}

// finish gives the copy fd the owner, mode and times of st: the owner
// first, since chown clears the set-user-ID bit.
func finish(fd int, st *unix.Stat_t, perm uint32) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, perm); err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH)
}

// copyUpInto copies what the container has at dest, if it is a directory,
// into the detached tmpfs mnt, before mnt is mounted there. Unless the
// tmpfs was given a mode, its root takes the directory's mode and owner,
// as it stands in for that directory.
func copyUpInto(root int, dest string, mnt int, keepMode bool) error {
	src, err := openIn(root, dest, unix.O_RDONLY|unix.O_DIRECTORY, inRoot)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		unix.Close(src)
		return err
	}
	if err := copyUp(src, mnt); err != nil {
		return err
	}
	if keepMode {
		return nil
	}
	// mnt, from fsmount, is an O_PATH descriptor, which fchown refuses.
	top, err := unix.Openat(mnt, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	if err := unix.Fchown(top, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return unix.Fchmod(top, st.Mode&0o7777)
}
