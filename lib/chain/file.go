package chain

import (
	"os"

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
func ReadFileIn(root, path string) ([]byte, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(dir, path, how)
	for err == unix.EINTR || err == unix.EAGAIN {
		fd, err = unix.Openat2(dir, path, how)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readAll(fd, path)
}

// readAll reads the file open at fd, named path, to its end.
func readAll(fd int, path string) ([]byte, error) {
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
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
