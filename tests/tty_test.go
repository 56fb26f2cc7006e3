package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"barco/lib/console"
	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

// terminal is the user's side of a pseudo-terminal on which barco runs.
type terminal struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
}

func openTerminal(t *testing.T) *terminal {
	t.Helper()
	// Non-blocking, so that Close ends the reader below at once and the
	// terminal hangs up, as when its window closes.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{master: m, slave: s}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return term
}

// expect waits until the output since the last expect contains want.
func (term *terminal) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(testutil.Timeout)
	for time.Now().Before(deadline) {
		term.mu.Lock()
		got := term.out.String()
		if i := strings.Index(got, want); i >= 0 {
			term.out.Next(i + len(want))
			term.mu.Unlock()
			return
		}
		term.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	term.mu.Lock()
	defer term.mu.Unlock()
	t.Fatalf("terminal never showed %q; it shows %q", want, term.out.String())
}

// expectLine waits for a whole line that starts with prefix, and returns
// the rest of it.
func (term *terminal) expectLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(testutil.Timeout)
	for time.Now().Before(deadline) {
		term.mu.Lock()
		got := term.out.String()
		if i := strings.Index(got, prefix); i >= 0 {
			if j := strings.IndexByte(got[i:], '\n'); j >= 0 {
				term.out.Next(i + j + 1)
				term.mu.Unlock()
				return strings.TrimRight(got[i+len(prefix):i+j], "\r")
			}
		}
		term.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	term.mu.Lock()
	defer term.mu.Unlock()
	t.Fatalf("terminal never showed a line %q...; it shows %q", prefix, term.out.String())
	return ""
}

// rest is the output not yet consumed by expect and expectLine.
func (term *terminal) rest() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// start runs argv on the terminal, as a shell would run it in the
// foreground: barco leads a session whose controlling terminal this is.
func (term *terminal) start(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func (term *terminal) send(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestBarcoTTYInteractiveShell(t *testing.T) {
	bin := barcoBin(t)
	term := openTerminal(t)
	before, err := unix.IoctlGetTermios(int(term.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-t", "--", "/bin/sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	term.send(t, "echo sum=$((40+2))\r")
	term.expect(t, "sum=42")
	// Ctrl-C stops the foreground job inside, not barco.
	term.send(t, "sleep 100; echo after-sleep\r")
	time.Sleep(300 * time.Millisecond)
	term.send(t, "\x03")
	term.send(t, "echo still=here\r")
	term.expect(t, "still=here")
	// Job control works: the shell has a controlling terminal.
	term.send(t, "sleep 100 &\r")
	term.send(t, "jobs; echo jobs-done\r")
	term.expect(t, "jobs-done")
	term.send(t, "exit 3\r")
	if code := waitStatus(t, cmd); code != 3 {
		t.Errorf("barco -t exited %d, want 3", code)
	}
	after, err := unix.IoctlGetTermios(int(term.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal not restored: lflag %#x->%#x iflag %#x->%#x oflag %#x->%#x",
			before.Lflag, after.Lflag, before.Iflag, after.Iflag, before.Oflag, after.Oflag)
	}
}

func TestBarcoTTYRestoredWhenKilled(t *testing.T) {
	bin := barcoBin(t)
	term := openTerminal(t)
	before, _ := unix.IoctlGetTermios(int(term.slave.Fd()), unix.TCGETS)
	cmd := exec.Command(bin, "run", "-t", "--init", "--", "/bin/sh", "-c", "echo ready; exec sleep 100")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	term.expect(t, "ready")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitStatus(t, cmd); code != 143 {
		t.Errorf("barco -t after SIGTERM exited %d, want 143", code)
	}
	after, _ := unix.IoctlGetTermios(int(term.slave.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag {
		t.Errorf("terminal left raw after SIGTERM: lflag %#x -> %#x", before.Lflag, after.Lflag)
	}
}

// With -t the container has a terminal of its own, from its own devpts,
// which is also its console.
func TestBarcoTTYContainerTerminal(t *testing.T) {
	bin := barcoBin(t)
	for _, opts := range [][]string{nil, {"--init"}} {
		t.Run(strings.Join(append([]string{"run", "-t"}, opts...), " "), func(t *testing.T) {
			term := openTerminal(t)
			args := append(append([]string{bin, "run", "-t"}, opts...), "--", "/bin/sh", "-c",
				`echo "tty=$(tty)"; [ -c /dev/console ] && echo console=yes; echo pts=$(ls /dev/pts)
set -- $(cat /proc/$$/stat); echo "session=$6 self=$$ ctty=$7"`)
			cmd := term.start(t, args...)
			if got := term.expectLine(t, "tty="); got != "/dev/pts/0" {
				t.Errorf("tty inside prints %q, want /dev/pts/0", got)
			}
			term.expect(t, "console=yes")
			if got := term.expectLine(t, "pts="); got != "0 ptmx" {
				t.Errorf("/dev/pts inside holds %q, want 0 ptmx", got)
			}
			// PROGRAM leads its session, and the terminal (136,0: pts 0)
			// is its controlling one.
			var sid, self, ctty int
			line := term.expectLine(t, "session=")
			if _, err := fmt.Sscanf(line, "%d self=%d ctty=%d", &sid, &self, &ctty); err != nil || sid != self || ctty != 136<<8 {
				t.Errorf("inside: session=%s; want PROGRAM to lead its session, with 136,0 as its controlling terminal (%d)", line, 136<<8)
			}
			if code := waitStatus(t, cmd); code != 0 {
				t.Errorf("status %d: %s", code, term.rest())
			}
		})
	}
}

// A hangup of the caller's terminal hangs up the container's: the
// container ends (a shell reads the end of its input; the program under
// --init gets SIGHUP), barco exits and removes the cgroup.
func TestBarcoTTYHangupEndsEverything(t *testing.T) {
	bin := barcoBin(t)
	for i, c := range []struct {
		opts    []string
		program []string
	}{
		{nil, []string{"/bin/sh"}},
		{[]string{"--init"}, []string{"/bin/sh", "-c", "echo ready; exec sleep 1000"}},
	} {
		t.Run(strings.Join(append([]string{"run", "-t"}, c.opts...), " "), func(t *testing.T) {
			name := "hangup-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i)
			term := openTerminal(t)
			args := append(append([]string{bin, "run", "-t", "--name", name}, c.opts...), "--")
			cmd := term.start(t, append(args, c.program...)...)
			if len(c.program) == 1 {
				term.send(t, "echo re''ady\r")
			}
			term.expect(t, "ready")
			if len(findCgroups(t, name)) == 0 {
				t.Fatalf("no cgroup %s while the container runs", name)
			}
			// The terminal's window closes.
			term.master.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("barco still runs 10s after its terminal hung up")
			}
			noCgroupLeft(t, name)
		})
	}
}

// barco-mount --console-socket PATH, as an OCI runtime's caller uses it:
// whoever listens on PATH gets the master of the container's terminal.
func TestMountConsoleSocketPath(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			testutil.RequireRoot(t)
			path := filepath.Join(testutil.SearchableTempDir(t), "console.sock")
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// The container's root (uid 100000 with -U) connects to it.
			if err := os.Chmod(path, 0o777); err != nil {
				t.Fatal(err)
			}
			output := make(chan string, 1)
			go func() {
				defer close(output)
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				raw, _ := c.(*net.UnixConn).SyscallConn()
				var master *os.File
				// The connection is non-blocking: wait until the message is there.
				raw.Read(func(fd uintptr) bool {
					master, err = console.Receive(int(fd))
					return !errors.Is(err, unix.EAGAIN)
				})
				if err != nil {
					output <- err.Error()
					return
				}
				defer master.Close()
				out, _ := io.ReadAll(master) // until EIO: the container is gone
				output <- string(out)
			}()
			r := mountRun(t, mode, "--rootfs", testutil.Rootfs(t), "--console-socket", path, "--",
				"/bin/sh", "-c", `echo "tty=$(tty)"; [ -c /dev/console ] && echo console=yes; echo stdout >&1; echo stderr >&2`)
			if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
				t.Errorf("status %d, stdout %q, stderr %q; want 0 and all output on the terminal", r.Code, r.Stdout, r.Stderr)
			}
			select {
			case out := <-output:
				for _, want := range []string{"tty=/dev/pts/0\r\n", "console=yes\r\n", "stdout\r\n", "stderr\r\n"} {
					if !strings.Contains(out, want) {
						t.Errorf("the terminal shows %q; want %q in it", out, want)
					}
				}
			case <-time.After(testutil.Timeout):
				t.Fatal("nothing came over the console socket")
			}
		})
	}
}

// The original command line's own example gives an interactive shell,
// named "." by -a, on the caller's terminal.
func TestBarcoOriginalInteractiveShell(t *testing.T) {
	bin := barcoBin(t)
	term := openTerminal(t)
	cmd := exec.Command(bin, "-u", "0", "-m", "/", "-c", "/bin/sh", "-a", ".")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	term.send(t, "echo name=$0 sum=$((40+2))\n")
	term.expect(t, "name=. sum=42")
	term.send(t, "exit\n")
	// It ends; its status is not checked here: dash, as an interactive
	// shell, gives the terminal back to its process group on exit and
	// fails (2) while the container's shell is not in the terminal's
	// session, which is the terminal code's business, not this test's.
	waitStatus(t, cmd)
}
