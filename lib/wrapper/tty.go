package wrapper

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"barco/lib/chain"
	"barco/lib/console"
	"golang.org/x/sys/unix"
)

// runOnPTY runs the chain with a terminal of the container's own: barco-mount
// opens it from the container's devpts (--console-socket) and sends its
// master back over a socket pair, and barco relays between it and its own
// terminal, which it puts in raw mode meanwhile: keys such as Ctrl-C then
// reach the container's terminal, which signals its foreground job once,
// and nothing of barco. A hangup of barco's terminal (SIGHUP, or the end of
// its input) hangs up the container's by closing the master. The terminal
// is restored however the container ends.
func runOnPTY(p *chain.Process, stages [][]string, env []string, preserve int) (int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("console socket pair: %w", err)
	}
	ours := pair[0]
	defer unix.Close(ours)
	// The chain's end, without close-on-exec and above the descriptors
	// PROGRAM keeps, passes from stage to stage at this number.
	theirs, err := unix.FcntlInt(uintptr(pair[1]), unix.F_DUPFD, 3+preserve)
	unix.Close(pair[1])
	if err != nil {
		return 0, fmt.Errorf("console socket: %w", err)
	}
	closeTheirs := sync.OnceFunc(func() { unix.Close(theirs) })
	defer closeTheirs()
	stages, env = withConsoleSocket(stages, env, theirs)
	argv := Argv(stages)
	path, env, err := p.Prepare(argv, env)
	if err != nil {
		return 0, err
	}

	in := int(os.Stdin.Fd())
	saved, terr := unix.IoctlGetTermios(in, unix.TCGETS)
	isTerm := terr == nil
	sup := p.Supervisor()
	hup := make(chan os.Signal, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(hup)
	defer signal.Stop(winch)

	// The chain leads a session of its own: only barco gets the signals
	// of its terminal, and forwards them once.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: chain.Files(preserve, []int{theirs}),
		Sys:   &syscall.SysProcAttr{Setsid: true, Pdeathsig: unix.SIGKILL},
	})
	closeTheirs()
	if err != nil {
		return 0, chain.ExecError(path, err)
	}

	var t ttyRelay
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		// The master comes once barco-mount has the container's /dev;
		// the other end closes without it if the chain fails first.
		master, err := console.Receive(ours)
		if err != nil {
			p.Log.Debugf("no console: %v", err)
			return
		}
		if !t.attach(master) {
			return
		}
		if isTerm {
			copyWinsizeTo(in, master)
			if err := t.makeRaw(in, saved); err != nil {
				fmt.Fprintf(p.Stderr, "barco: %v\n", err)
			}
			go func() {
				// Raw input ends only with a hangup. A write that fails
				// (the container is gone) is no hangup: its last output
				// is still to be read.
				if hungUp := copyInput(master, os.Stdin); hungUp {
					t.hangup()
				}
			}()
		} else {
			go io.Copy(master, os.Stdin)
		}
		// Ends with EIO once every holder of the slave has exited, or when
		// a hangup closes the master.
		_, _ = io.Copy(os.Stdout, master)
	}()
	go func() {
		for {
			select {
			case <-hup:
				t.hangup()
			case <-winch:
				if isTerm {
					t.do(func(m *os.File) { copyWinsizeTo(in, m) })
				}
			case <-relayed:
				return
			}
		}
	}()
	ws, err := sup.Wait(pid)
	<-relayed
	t.hangup()
	t.restore(in)
	if err != nil {
		return 0, err
	}
	return chain.ExitStatus(ws), nil
}

// withConsoleSocket gives barco-mount the console socket fd, and makes it
// pass from stage to stage (BARCO_CHAIN_FDS, replacing any value an -e
// option set).
func withConsoleSocket(stages [][]string, env []string, fd int) ([][]string, []string) {
	out := make([][]string, len(stages))
	for i, st := range stages {
		out[i] = st
		if st[0] == "barco-mount" {
			out[i] = append(slices.Clip(st), "--console-socket", strconv.Itoa(fd))
		}
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, chain.ChainFDsEnv+"=") })
	return out, append(env, chain.ChainFDsEnv+"="+strconv.Itoa(fd))
}

// ttyRelay is the container's terminal as barco holds it: the master, and
// the state of barco's own terminal.
type ttyRelay struct {
	mu     sync.Mutex
	master *os.File
	hungUp bool
	saved  *unix.Termios // barco's terminal before raw mode, to restore
}

// attach takes the master, unless the terminal was hung up before it came.
func (t *ttyRelay) attach(m *os.File) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hungUp {
		m.Close()
		return false
	}
	t.master = m
	return true
}

// hangup closes the master: the container's terminal hangs up, its
// session leader gets SIGHUP and reads end.
func (t *ttyRelay) hangup() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.hungUp && t.master != nil {
		t.master.Close()
	}
	t.hungUp = true
}

func (t *ttyRelay) do(f func(*os.File)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.master != nil && !t.hungUp {
		f(t.master)
	}
}

func (t *ttyRelay) makeRaw(fd int, saved *unix.Termios) error {
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return fmt.Errorf("set the terminal raw: %w", err)
	}
	t.saved = saved
	return nil
}

// restore puts barco's terminal back as it was; after a hangup there is
// none, and nothing to do.
func (t *ttyRelay) restore(fd int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, t.saved)
		t.saved = nil
	}
}

// copyInput copies in to master until either fails, and reports whether
// it was in that ended.
func copyInput(master *os.File, in io.Reader) bool {
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := master.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// copyWinsizeTo gives master the window size of the terminal from. It
// reaches master's descriptor through SyscallConn, not Fd, which may set
// it blocking, and a Close would then no longer end a Read in progress.
func copyWinsizeTo(from int, master *os.File) {
	ws, err := unix.IoctlGetWinsize(from, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	if rc, err := master.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	}
}
