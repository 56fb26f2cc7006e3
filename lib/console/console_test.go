package console

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// What the container's side sends, the host's side receives: a master
// whose slave is the terminal named in the message.
func TestSendReceive(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	master, slave, name, err := open("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(slave)
	err = Send(fds[1], master, name)
	unix.Close(master)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Receive(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != name || !strings.HasPrefix(name, "/dev/pts/") {
		t.Errorf("received %q, want the slave's name %q", got.Name(), name)
	}
	if _, err := unix.Write(slave, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := got.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte("hello")) {
		t.Errorf("read from the received master: %q, %v; want what the slave wrote", buf[:n], err)
	}
}

func TestReceiveOtherEndClosed(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	unix.Close(fds[1])
	if f, err := Receive(fds[0]); err == nil || !strings.Contains(err.Error(), "closed first") {
		t.Errorf("Receive after the other end closed: %v, %v; want an error", f, err)
	}
}

func TestConnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	fd, err := Connect(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if !IsSocket(fd) {
		t.Errorf("Connect gave fd %d, not a socket", fd)
	}
	if _, err := Connect(path + ".missing"); err == nil || !strings.Contains(err.Error(), "connect to console socket "+path+".missing") {
		t.Errorf("Connect to a missing path: %v; want an error naming it", err)
	}
}
