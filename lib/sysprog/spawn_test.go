package sysprog

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spawnPipe is a pipe whose ends the test closes at its end.
func spawnPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

// waitProgram is a child's first part: it tells the parent it runs, then
// waits for the parent's go-ahead, failing if the parent closed instead.
// Descriptors in keep follow as 5, 6 and up.
func waitProgram(t *testing.T, toParent, fromParent int, keep ...int) *Program {
	t.Helper()
	var b Builder
	b.ResetSignals()
	// Its own ends only, as a child of Spawn must: the parent's close of
	// its end is then the child's end of file.
	files := append([]int{0, 1, 2, toParent, fromParent}, keep...)
	b.Files("lay out", files, 100)
	b.CloseFrom(len(files))
	toParent, fromParent = 3, 4
	b.Sys("hello", unix.SYS_WRITE, Int(toParent), FixedString("h"), Int(1))
	buf := b.Bytes(1)
	n := b.Sys("wait", unix.SYS_READ, Int(fromParent), Ptr(buf), Int(1))
	gone, ok := b.Label(), b.Label()
	b.JumpUnless(n.Result(), Int(1), gone)
	b.Jump(ok)
	b.Mark(gone)
	b.Fail("the parent is gone", syscall.EPIPE)
	b.Mark(ok)
	p, err := b.Program(3)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readByte(t *testing.T, fd int) string {
	t.Helper()
	var b [64]byte
	n, err := unix.Read(fd, b[:])
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// spawnWaiting spawns waitProgram, with keep, and returns the child once
// it has said hello, and the write end of its go-ahead pipe.
func spawnWaiting(t *testing.T, keep ...int) (*Child, int) {
	t.Helper()
	upR, upW := spawnPipe(t)
	downR, downW := spawnPipe(t)
	c, err := Spawn(waitProgram(t, upW, downR, keep...), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	if got := readByte(t, upR); got != "h" {
		t.Fatalf("hello: %q", got)
	}
	return c, downW
}

func TestSpawnWaitsForItsParentThenContinues(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	outR, outW := spawnPipe(t)
	// The child runs while this goroutine does: it says hello before the
	// rest of its program exists.
	c, downW := spawnWaiting(t, outW)
	// The continuation, built now, reads what the parent stored after the
	// clone, and writes it.
	word := new(uintptr)
	*word = 'w'
	var b Builder
	b.Sys("write the word", unix.SYS_WRITE, Int(5), Ptr(unsafe.Pointer(word)), Int(1))
	b.Sys("exec", unix.SYS_EXECVE, cstring(t, "/bin/true"), cstrings(t, "true"), cstrings(t))
	next, err := b.Program(5)
	if err != nil {
		t.Fatal(err)
	}
	c.Then(next)
	if _, err := unix.Write(downW, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := readByte(t, outR); got != "w" {
		t.Fatalf("the continuation wrote %q, want w", got)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("child: %v, status %d (want /bin/true's 0)", err, ws.ExitStatus())
	}
}

func TestSpawnReportsTheContinuationsStep(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	c, downW := spawnWaiting(t)
	var b Builder
	b.Sys("open the missing", unix.SYS_OPENAT, Int(unix.AT_FDCWD), cstring(t, "/nonexistent/x"), Int(unix.O_RDONLY))
	next, err := b.Program(5)
	if err != nil {
		t.Fatal(err)
	}
	c.Then(next)
	unix.Write(downW, []byte{1})
	err = c.Wait()
	if err == nil || err.Error() != "open the missing: no such file or directory" {
		t.Fatalf("Wait: %v", err)
	}
}

func TestSpawnChildFailsWhenTheParentCloses(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	c, downW := spawnWaiting(t)
	unix.Close(downW)
	if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "the parent is gone") {
		t.Fatalf("Wait: %v", err)
	}
}

func TestCloseReportAndWriteErrno(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	errR, errW := spawnPipe(t)
	var b Builder
	b.ResetSignals()
	b.CloseReport()
	open := b.Sys("open the missing", unix.SYS_OPENAT, Int(unix.AT_FDCWD), cstring(t, "/nonexistent/x"), Int(unix.O_RDONLY))
	b.OnAny(Next)
	b.WriteErrno(errW, open)
	b.Fail("told", syscall.ENOENT)
	p, err := b.Program(9)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Spawn(p, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	// The report closed: Wait says nothing, the child says the rest.
	if err := c.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 9 {
		t.Fatalf("child: %v, status %d, want 9", err, ws.ExitStatus())
	}
	if got := readByte(t, errR); got != "no such file or directory" {
		t.Fatalf("the child wrote %q", got)
	}
}

// The child runs its program after its parent has dropped every reference
// to it (an OCI create's front, which returns while its child waits at the
// start gate): the program must outlive a collection and the allocations
// after it.
func TestSpawnProgramOutlivesTheCallersReferences(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	upR, upW := spawnPipe(t)
	downR, downW := spawnPipe(t)
	outR, outW := spawnPipe(t)
	pid := spawnAndDrop(t, upW, downR, outW)
	readByte(t, upR)
	// What the collector freed, these allocations reuse (zeroed).
	var keep [][]byte
	for range 8 {
		runtime.GC()
		for range 4096 {
			keep = append(keep, make([]byte, 8+len(keep)%512))
		}
	}
	if _, err := unix.Write(downW, []byte{1}); err != nil {
		t.Fatal(err)
	}
	unix.Close(outW)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	var out [8]byte
	n, _ := unix.Read(outR, out[:])
	if string(out[:n]) != "ok" || ws.ExitStatus() != 0 {
		t.Fatalf("the child wrote %q and exited %v; want ok and 0", out[:n], ws)
	}
	runtime.KeepAlive(keep)
}

// spawnAndDrop spawns waitProgram, continued by a write of "ok" on 5,
// and keeps nothing of it but its pid.
//
//go:noinline
func spawnAndDrop(t *testing.T, up, down, out int) int {
	p := waitProgram(t, up, down, out)
	var b Builder
	b.Sys("write ok", unix.SYS_WRITE, Int(5), FixedString("ok"), Int(2))
	next, err := b.Program(5)
	if err != nil {
		t.Fatal(err)
	}
	p.next = next
	c, err := Spawn(p, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(c.PidFD)
	return c.Pid
}

// A child that is the init of a new pid namespace, which the kernel lets
// ignore a signal left at its default action, ends on the signals it
// handles with ExitOnSignal, with status 128+signal.
func TestSpawnExitOnSignalEndsAPidNamespacesInit(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	if os.Getuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("a new pid namespace needs root")
	}
	upR, upW := spawnPipe(t)
	downR, _ := spawnPipe(t)
	var b Builder
	unblock := b.DefaultSignals()
	b.ExitOnSignal(unix.SIGTERM)
	unblock()
	b.Files("lay out", []int{0, 1, 2, upW, downR}, 100)
	b.CloseFrom(5)
	b.Sys("hello", unix.SYS_WRITE, Int(3), FixedString("h"), Int(1))
	buf := b.Bytes(1)
	b.Sys("wait", unix.SYS_READ, Int(4), Ptr(buf), Int(1))
	p, err := b.Program(3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Spawn(p, unix.CLONE_NEWPID, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	readByte(t, upR)
	// SIGUSR1, left at its default, is ignored; SIGTERM ends the child.
	for _, sig := range []unix.Signal{unix.SIGUSR1, unix.SIGTERM} {
		if err := unix.PidfdSendSignal(c.PidFD, sig, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The pidfd is readable once the child ended.
	fds := []unix.PollFd{{Fd: int32(c.PidFD), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10000); n != 1 {
		c.Kill()
		t.Fatalf("the child ignored SIGTERM (poll: %v)", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Exited() || ws.ExitStatus() != 128+int(unix.SIGTERM) {
		t.Fatalf("child: %v, want exit status 143", ws)
	}
}

// DefaultSignals leaves the child with no handler of the runtime's and
// the signal mask of the thread that built it (Spawn clones with every
// signal blocked), without calling into the runtime, which its parent runs
// meanwhile.
func TestDefaultSignals(t *testing.T) {
	if !SpawnArch {
		t.Skip("no Spawn on this architecture")
	}
	outR, outW := spawnPipe(t)
	var b Builder
	unblock := b.DefaultSignals()
	unblock()
	buf := b.Bytes(4096)
	fd := b.Sys("open", unix.SYS_OPENAT, Int(unix.AT_FDCWD), FixedString("/proc/self/status"), Int(unix.O_RDONLY))
	n := b.Sys("read", unix.SYS_READ, fd.Result(), Ptr(buf), Int(4096))
	b.Sys("write", unix.SYS_WRITE, Int(outW), Ptr(buf), n.Result())
	p, err := b.Program(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(p); err == nil {
		t.Error("Run ran a program that resets the runtime's handlers")
	}
	c, err := Spawn(p, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	var status strings.Builder
	var chunk [4096]byte
	for {
		m, err := unix.Read(outR, chunk[:])
		status.Write(chunk[:max(m, 0)])
		if err != nil || m < len(chunk) {
			break
		}
	}
	for _, want := range []string{"SigCgt:\t0000000000000000\n", "SigBlk:\t0000000000000000\n"} {
		if !strings.Contains(status.String(), want) {
			t.Errorf("no %q in the child's status:\n%s", strings.TrimSpace(want), status.String())
		}
	}
}
