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
