package chain

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadFile is os.ReadFile with plain system calls. A stage reads a few
// small files on its way to exec; the first *os.File of a process sets up
// the runtime's poller (epoll, an eventfd, five calls or more) and each
// one after that is registered with it and removed again, which files in
// /proc, /sys and /etc never need.
func ReadFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readAll(fd, path)
}

// ReadFileIn is ReadFile of path resolved inside the directory root, as
// if root were /: symbolic links and ".." cannot lead out of it. A
// process reads another's files so, through /proc/PID/root.
//
// Only a regular file of at most MaxFileIn bytes on a disk-like file
// system is read; anything else is ErrNotPlainFile, before it is opened
// for reading. Root's owner may be a container that wants to hurt the
// reader: a FIFO would block it (in open), a device would be opened by
// the host and outside the container's device cgroup (/dev/zero never
// ends), a file in /proc or /sys (/proc/kmsg) reads what the container
// may not, and a huge file fills the reader's memory.
func ReadFileIn(root, path string) ([]byte, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	// O_PATH: no open of the file itself (no FIFO wait, no driver's
	// open) until it is known to be a plain file.
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	file, err := unix.Openat2(dir, path, how)
	for err == unix.EINTR || err == unix.EAGAIN {
		file, err = unix.Openat2(dir, path, how)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(file)
	var st unix.Stat_t
	if err := unix.Fstat(file, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (mode %#o)", ErrNotPlainFile, st.Mode&unix.S_IFMT)}
	}
	if st.Size > MaxFileIn {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%d bytes)", ErrNotPlainFile, st.Size)}
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(file, &fs); err != nil {
		return nil, &os.PathError{Op: "fstatfs", Path: path, Err: err}
	}
	if pseudoFS(fs.Type) {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (file system %#x)", ErrNotPlainFile, fs.Type)}
	}
	// The file found above, not what the path names by now.
	reopen := "/proc/self/fd/" + strconv.Itoa(file)
	fd, err := unix.Open(reopen, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(reopen, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	// It may have grown since the fstat.
	return readAtMost(fd, path, MaxFileIn)
}

// MaxFileIn is the largest file ReadFileIn reads: an account file of
// some ten thousand entries.
const MaxFileIn = 1 << 20

// ErrNotPlainFile is ReadFileIn's error for a file that it does not read:
// not a regular file, larger than MaxFileIn, or in a file system of the
// kernel's (proc, sysfs) or a process's (FUSE).
var ErrNotPlainFile = errors.New("not a plain file")

// pseudoFS reports whether a file system of statfs type t is one whose
// files are the kernel's or a process's, which ReadFileIn leaves alone.
func pseudoFS(t int64) bool {
	switch uint32(t) {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC, unix.SECURITYFS_MAGIC,
		unix.BPF_FS_MAGIC, unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC, unix.FUSE_SUPER_MAGIC,
		unix.PSTOREFS_MAGIC, unix.EFIVARFS_MAGIC:
		return true
	}
	return false
}

// readAll reads the file open at fd, named path, to its end.
func readAll(fd int, path string) ([]byte, error) { return readAtMost(fd, path, -1) }

// readAtMost is readAll of a file that must not hold more than limit
// bytes (ErrNotPlainFile), or any number when limit is negative.
func readAtMost(fd int, path string, limit int) ([]byte, error) {
	// Enough for the mount table or a cgroup's file in one read.
	buf := make([]byte, 0, 8192)
	for {
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if limit >= 0 && len(buf) > limit {
			return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (more than %d bytes)", ErrNotPlainFile, limit)}
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
