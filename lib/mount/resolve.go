package mount

import (
	"errors"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot resolves a container path as the container itself will: ".." and
// absolute symlinks stop at the root, and magic links (/proc/PID/root,
// /proc/self/fd/N) are refused, since they are the ways out of a root.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// noSymlinks resolves the mount points of /proc, /sys and /dev: they must be
// real directories of the rootfs, as runc requires since CVE-2019-16884.
const noSymlinks = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS

func openIn(root int, rel string, flags uint64, resolve uint64) (int, error) {
	for {
		fd, err := unix.Openat2(root, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve})
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
		// EAGAIN: a rename raced with the lookup; try again.
	}
}

// makeIn opens the container path p of root (a directory descriptor) for
// use as a mount point, and returns an O_PATH descriptor of it. What is
// missing is created: directories, and at the end an empty file when file
// is set (the mount point of a file). Each entry made is appended to
// created, as its path in the container, so that it can be removed again.
//
// Every component is resolved with resolve relative to root, never by a
// plain path, so a hostile rootfs cannot lead the lookup, nor the creation,
// outside of it.
func makeIn(root int, p string, file bool, resolve uint64, created *[]string) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := openIn(root, rel, unix.O_PATH, resolve)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, pathError("open", "/"+rel, err)
	}
	comps := strings.Split(rel, "/")
	parent := root
	defer func() {
		if parent != root {
			unix.Close(parent)
		}
	}()
	for i, name := range comps {
		prefix := strings.Join(comps[:i+1], "/")
		fd, err := openIn(root, prefix, unix.O_PATH, resolve)
		if errors.Is(err, unix.ENOENT) {
			last := i == len(comps)-1
			if last && file {
				var f int
				f, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
				if err == nil {
					unix.Close(f)
				}
			} else {
				err = unix.Mkdirat(parent, name, 0o755)
			}
			if errors.Is(err, unix.EEXIST) {
				// It exists, yet the lookup found nothing: a symlink to
				// nowhere. Creating its target is not our business.
				return -1, &os.PathError{Op: "create", Path: "/" + prefix, Err: errors.New("dangling symbolic link")}
			}
			if err != nil {
				return -1, pathError("create", "/"+prefix, err)
			}
			*created = append(*created, "/"+prefix)
			fd, err = openIn(root, prefix, unix.O_PATH, resolve)
		}
		if err != nil {
			return -1, pathError("open", "/"+prefix, err)
		}
		if parent != root {
			unix.Close(parent)
		}
		parent = fd
	}
	fd, parent = parent, root
	return fd, nil
}

func pathError(op, p string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ELOOP) {
		err = refusedLink{err}
	}
	return &os.PathError{Op: op, Path: p, Err: err}
}

// refusedLink is ELOOP from openat2, told in words.
type refusedLink struct{ errno error }

func (refusedLink) Error() string {
	return "a symbolic link where none is allowed (/proc, /dev, /sys), or a magic link: refusing to mount there"
}

func (e refusedLink) Unwrap() error { return e.errno }
