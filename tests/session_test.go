package tests

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

// probeRootfs is a copy of the default rootfs with the ttyprobe helper as
// /ttyprobe.
func probeRootfs(t *testing.T) string {
	t.Helper()
	dir := testutil.CopyRootfs(t, 0)
	buildTestdata(t, "ttyprobe", filepath.Join(dir, "ttyprobe"))
	return dir
}

// A container run from a terminal without -t leads a session of its own:
// it cannot push input into the caller's terminal (TIOCSTI), which the
// caller's shell would read and run as host root once barco exits.
func TestContainerHasItsOwnSession(t *testing.T) {
	bin := barcoBin(t)
	rootfs := probeRootfs(t)
	for _, opts := range [][]string{nil, {"--init"}, {"--no-userns"}} {
		t.Run(strings.Join(append([]string{"run"}, opts...), " "), func(t *testing.T) {
			term := openTerminal(t)
			args := append(append([]string{bin, "run", "--rootfs", rootfs}, opts...), "--", "/ttyprobe", "session", "tiocsti")
			cmd := term.start(t, args...)
			session := term.expectLine(t, "session: ")
			var pid, sid, pgid int
			if _, err := fmt.Sscanf(session, "pid=%d sid=%d pgid=%d", &pid, &sid, &pgid); err != nil || sid != pid || pgid != pid {
				t.Errorf("inside: %q; want PROGRAM to lead its own session and process group (sid and pgid its pid)", session)
			}
			if got := term.expectLine(t, "tiocsti: "); got != "operation not permitted" {
				t.Errorf("TIOCSTI onto the caller's terminal from inside: %q, want operation not permitted", got)
			}
			if code := waitStatus(t, cmd); code != 0 {
				t.Errorf("status %d: %s", code, term.rest())
			}
			if n, err := unix.IoctlGetInt(int(term.slave.Fd()), unix.TIOCINQ); err != nil || n != 0 {
				t.Errorf("the caller's terminal has %d bytes of input waiting after barco exited (%v): %q", n, err, term.rest())
			}
		})
	}
}

// kill(0, ...) and kill(-1, ...) from inside reach nothing outside: not
// the shell that started barco, which is in barco's process group and
// session, as in any script.
func TestContainerSignalsReachNothingOutside(t *testing.T) {
	bin := barcoBin(t)
	rootfs := probeRootfs(t)
	witness := `trap 'echo host got CONT' CONT; trap 'echo host got USR1' USR1; "$@"; echo "barco exited $?"`
	for _, opts := range [][]string{nil, {"--no-userns"}, {"--init"}} {
		t.Run(strings.Join(append([]string{"run"}, opts...), " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
			defer cancel()
			args := append(append([]string{"-c", witness, "witness", bin, "run", "--rootfs", rootfs}, opts...), "--", "/ttyprobe", "kill")
			cmd := exec.CommandContext(ctx, "/bin/sh", args...)
			// The witness and barco in a session and process group of
			// their own, apart from the test's.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			got := out.String()
			if !strings.Contains(got, "kill: done") || !strings.Contains(got, "barco exited 0") {
				t.Fatalf("the probe did not run to its end: %q", got)
			}
			if strings.Contains(got, "host got") {
				t.Errorf("a signal from inside the container reached the shell that started barco:\n%s", got)
			}
		})
	}
}

// Ctrl-C on the caller's terminal reaches the container's program once:
// without -t the terminal signals barco alone, which forwards it; with -t
// barco relays it to the container's terminal, which signals its
// foreground job, where no supervisor is.
func TestCtrlCReachesProgramOnce(t *testing.T) {
	bin := barcoBin(t)
	rootfs := probeRootfs(t)
	for _, opts := range [][]string{nil, {"--init"}, {"-t"}, {"-t", "--init"}} {
		t.Run(strings.Join(append([]string{"run"}, opts...), " "), func(t *testing.T) {
			bothStageModes(t, func(t *testing.T) { countCtrlC(t, bin, rootfs, opts) })
		})
	}
}

// countCtrlC types Ctrl-C 20 times at a program that counts its SIGINTs,
// and fails unless each one arrived exactly once.
func countCtrlC(t *testing.T, bin, rootfs string, opts []string) {
	const tries = 20
	term := openTerminal(t)
	args := append(append([]string{bin, "run", "--rootfs", rootfs}, opts...), "--", "/ttyprobe", "sigint")
	cmd := term.start(t, args...)
	term.expect(t, "ready")
	for i := 1; i <= tries; i++ {
		term.send(t, "\x03")
		term.expectLine(t, "INT "+strconv.Itoa(i))
		// Apart, so that the kernel does not merge two pending SIGINTs.
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if rest := term.rest(); strings.Contains(rest, "INT ") {
		t.Errorf("%d Ctrl-C reached the program more than %d times: %q", tries, tries, rest)
	}
	term.send(t, "quit\r")
	if code := waitStatus(t, cmd); code != 0 {
		t.Errorf("status %d: %s", code, term.rest())
	}
}
