package wrapper

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// runOnPTY starts the chain on a new pseudo-terminal and relays between it
// and barco's own terminal, which it puts in raw mode: keys such as Ctrl-C
// then reach the container's terminal and its foreground job, not barco.
// The terminal is restored however the container ends.
func runOnPTY(p *chain.Process, argv, env []string) (int, error) {
	master, slave, err := openPTY()
	if err != nil {
		return 0, err
	}
	defer master.Close()

	path, env, err := p.Prepare(argv, env)
	if err != nil {
		slave.Close()
		return 0, err
	}
	in := int(os.Stdin.Fd())
	saved, terr := unix.IoctlGetTermios(in, unix.TCGETS)
	isTerm := terr == nil
	if isTerm {
		copyWinsize(in, int(master.Fd()))
	}

	sup := p.Supervisor()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)

	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{slave.Fd(), slave.Fd(), slave.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: unix.SIGKILL},
	})
	slave.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	if isTerm {
		raw := *saved
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(in, unix.TCSETS, &raw); err != nil {
			return 0, fmt.Errorf("set terminal raw: %w", err)
		}
		defer unix.IoctlSetTermios(in, unix.TCSETS, saved)
	}
	go func() {
		for range winch {
			if isTerm {
				copyWinsize(in, int(master.Fd()))
			}
		}
	}()
	go io.Copy(master, os.Stdin)
	output := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, master) // ends with EIO once every holder of the slave has exited
		close(output)
	}()
	ws, err := sup.Wait(pid)
	if err != nil {
		return 0, err
	}
	<-output
	return chain.ExitStatus(ws), nil
}

func openPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	return os.NewFile(uintptr(m), "/dev/ptmx"), os.NewFile(uintptr(s), name), nil
}

func copyWinsize(from, to int) {
	if ws, err := unix.IoctlGetWinsize(from, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(to, unix.TIOCSWINSZ, ws)
	}
}
