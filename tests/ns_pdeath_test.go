package tests

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"barco/lib/testutil"
)

// With --init but no new pid namespace the init is not PID 1, so the
// kernel does not end PROGRAM with it: PROGRAM must have a parent-death
// signal of its own and die with barco-ns.
func TestNSInitChildDiesWithBarcoNS(t *testing.T) {
	testutil.RequireRoot(t)
	killNSAndCheck(t, "-m", "--init", "--", "/bin/sh", "-c", "echo $$; exec sleep 30")
}

// killNSAndCheck starts barco-ns ARGS, whose PROGRAM prints its pid
// first, kills barco-ns with SIGKILL and fails if PROGRAM is still there.
func killNSAndCheck(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.Bin(t, "barco-ns"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("read PROGRAM's pid: %v (barco-ns %v)", err, cmd.ProcessState)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	// Let PROGRAM's exec happen first.
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return // gone
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("PROGRAM (pid %d) still runs 2 s after barco-ns got SIGKILL", pid)
}
