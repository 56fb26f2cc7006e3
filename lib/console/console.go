// Package console gives a container a terminal of its own, as an OCI
// runtime does for --console-socket: inside the container, once its /dev
// with a devpts instance of its own is mounted, Setup opens a new
// pseudo-terminal there, makes its slave the controlling terminal and
// standard input, output and error of the process (which then execs the
// container's program) and /dev/console, and sends the master over a unix
// socket to the host side, which Receive takes it from, to relay between
// it and the user's terminal.
//
// The wire format is runc's: one message whose data is the terminal's name
// and whose control data carries the master as one SCM_RIGHTS descriptor.
package console

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Paths inside the container.
const (
	PTMX    = "/dev/pts/ptmx" // the container's own devpts instance
	Console = "/dev/console"
)

// Setup, in the container after its /dev is mounted: it opens a new
// pseudo-terminal from PTMX, gives it the window size size, or with size
// nil that of fd 0 when that is a terminal, binds the slave onto /dev/console, makes the slave the
// controlling terminal of this process (which leads a new session first if
// it leads none) and its fds 0, 1 and 2, then sends the master over the
// unix socket sock and closes its own copy and sock. The process then
// holds no descriptor of the terminal it had before.
func Setup(sock int, size *unix.Winsize) error {
	master, slave, name, err := open(PTMX)
	if err != nil {
		return err
	}
	defer unix.Close(master)
	defer unix.Close(slave)
	if size == nil {
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			size = ws
		}
	}
	if size != nil {
		// Before the master is sent: a program started at once sees its
		// size, not 0x0 until the other end sets one.
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, size); err != nil {
			return &os.PathError{Op: "set the window size (TIOCSWINSZ)", Path: name, Err: err}
		}
	}
	if err := bindConsole(name); err != nil {
		return err
	}
	if err := lead(); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return &os.PathError{Op: "make controlling terminal (TIOCSCTTY)", Path: name, Err: err}
	}
	// Sent before stderr becomes the slave, so that a failure is still
	// reported where the caller sees it.
	if err := Send(sock, master, name); err != nil {
		return err
	}
	unix.Close(sock)
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup %s onto fd %d: %w", name, fd, err)
		}
	}
	return nil
}

// open opens a new pseudo-terminal from the ptmx device at ptmx: its
// master and slave, both close-on-exec, and the slave's name. The slave
// is opened through the master (TIOCGPTPEER), not by its name, so that
// nothing mounted on /dev/pts can stand in for it.
func open(ptmx string) (master, slave int, name string, err error) {
	master, err = unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, "", &os.PathError{Op: "open", Path: ptmx, Err: err}
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(master)
		return -1, -1, "", &os.PathError{Op: "unlock pseudo-terminal (TIOCSPTLCK)", Path: ptmx, Err: err}
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		unix.Close(master)
		return -1, -1, "", &os.PathError{Op: "pseudo-terminal number (TIOCGPTN)", Path: ptmx, Err: err}
	}
	name = "/dev/pts/" + strconv.Itoa(n)
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(master)
		return -1, -1, "", &os.PathError{Op: "open slave (TIOCGPTPEER)", Path: name, Err: errno}
	}
	return master, int(fd), name, nil
}

// bindConsole binds the slave name onto /dev/console, as runc does: the
// container's console is its terminal.
func bindConsole(name string) error {
	fd, err := unix.Open(Console, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "create", Path: Console, Err: err}
	}
	if err := unix.Mount(name, Console, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s onto %s: %w", name, Console, err)
	}
	return nil
}

// lead makes this process lead a session, which only a session leader
// without a terminal may take as its controlling one. barco-ns starts the
// container's first process as one already.
func lead() error {
	if sid, err := unix.Getsid(0); err == nil && sid == unix.Getpid() {
		return nil
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid, to take a controlling terminal: %w (a process group leader cannot; start it under barco-ns)", err)
	}
	return nil
}

// Send sends the master of the terminal name over the unix socket sock, as
// one message: the name, with the master as its SCM_RIGHTS descriptor.
func Send(sock, master int, name string) error {
	if err := unix.Sendmsg(sock, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send the master of %s over the console socket: %w", name, err)
	}
	return nil
}

// Receive waits for the master that Send sends on sock and returns it,
// named by its terminal, close-on-exec and non-blocking (so that its Close
// ends a Read in progress); an error if the other end closes first.
func Receive(sock int) (*os.File, error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive the console's master: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil, errors.New("receive the console's master: the other end closed first")
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return nil, fmt.Errorf("receive the console's master: no descriptor in the message (%v)", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("receive the console's master: want one descriptor, got %d (%v)", len(fds), err)
		}
		if err := unix.SetNonblock(fds[0], true); err != nil {
			unix.Close(fds[0])
			return nil, fmt.Errorf("console's master: %w", err)
		}
		return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
	}
}

// Connect connects to the unix socket at path, for a console socket given
// by its path (as runc's --console-socket).
func Connect(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("console socket %s: %w", path, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "connect to console socket", Path: path, Err: err}
	}
	return fd, nil
}

// IsSocket reports whether fd is an open socket.
func IsSocket(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

// OpenIn opens a new pseudo-terminal from the ptmx of the devpts instance
// at PTMX inside the root open at rootFD (another mount namespace's root,
// /proc/PID/root): its master and slave, both close-on-exec, and the
// slave's name there. Symbolic links resolve inside that root, and the
// file found must be a ptmx on devpts: the caller may be the host's root,
// and the root the container's, which could put any device there.
func OpenIn(rootFD int) (master, slave int, name string, err error) {
	fd, err := unix.Openat2(rootFD, PTMX, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return -1, -1, "", &os.PathError{Op: "open", Path: PTMX, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, -1, "", &os.PathError{Op: "stat", Path: PTMX, Err: err}
	}
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return -1, -1, "", &os.PathError{Op: "statfs", Path: PTMX, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 || fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return -1, -1, "", fmt.Errorf("%s: not the ptmx of a devpts file system", PTMX)
	}
	return open("/proc/self/fd/" + strconv.Itoa(fd))
}
