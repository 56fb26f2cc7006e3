package sysprog

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"barco/lib/forkexec"
	"golang.org/x/sys/unix"
)

func cstring(t *testing.T, s string) Arg {
	t.Helper()
	a, err := CString(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func cstrings(t *testing.T, ss ...string) Arg {
	t.Helper()
	a, err := CStrings(ss)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A result taken by later steps, an errno sent past a step that would
// fail, and the step after.
func TestRunResultsAndBranches(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "file")
	if err := os.WriteFile(path, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b Builder
	buf := b.Bytes(16)
	fd := b.Sys("open the file", unix.SYS_OPENAT, Int(unix.AT_FDCWD), cstring(t, path), Int(unix.O_RDONLY|unix.O_CLOEXEC))
	n := b.Sys("read the file", unix.SYS_READ, fd.Result(), Ptr(buf), Int(16))
	b.Sys("close the file", unix.SYS_CLOSE, fd.Result())
	past := b.Label()
	missing := b.Sys("open a missing file", unix.SYS_OPENAT, Int(unix.AT_FDCWD), cstring(t, filepath.Join(dir, "missing")), Int(unix.O_RDONLY))
	b.On(unix.EACCES, Next)
	b.On(unix.ENOENT, past)
	skipped := b.Sys("close no descriptor", unix.SYS_CLOSE, Int(-1))
	b.Mark(past)
	b.Sys("close no descriptor, ignored", unix.SYS_CLOSE, Int(-1))
	b.OnAny(Next)
	p, err := b.Program(125)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(p); err != nil {
		t.Fatal(err)
	}
	if got := string(unsafe.Slice((*byte)(buf), 16)[:p.slots[n.step]]); got != "content" {
		t.Errorf("read %q, want content", got)
	}
	if p.Errno(missing) != unix.ENOENT || p.Errno(fd) != 0 {
		t.Errorf("errnos branched on: %v and %v, want ENOENT and none", p.Errno(missing), p.Errno(fd))
	}
	// The open that failed and the close skipped have no result; the
	// open of the file has its descriptor, which 0 could be.
	if p.Value(missing) != NoResult || p.Value(skipped) != NoResult || p.Value(fd) == NoResult {
		t.Errorf("results: %d, %d and %d; want none, none and a descriptor", int(p.Value(missing)), int(p.Value(skipped)), int(p.Value(fd)))
	}
}

func TestRunNamesTheFailedStep(t *testing.T) {
	var b Builder
	b.Sys("change to the working directory", unix.SYS_CHDIR, cstring(t, "/nonexistent/dir"))
	b.On(unix.EACCES, Next) // a branch for another errno
	p, err := b.Program(125)
	if err != nil {
		t.Fatal(err)
	}
	err = Run(p)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "change to the working directory" || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Run: %v, want the chdir step's ENOENT", err)
	}
	if want := "change to the working directory: no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// JumpUnless reads the word when its step runs, not when it is built.
func TestJumpUnless(t *testing.T) {
	for _, tc := range []struct {
		word uint64
		fail bool
	}{{5, true}, {6, false}} {
		var b Builder
		word := b.Bytes(8)
		past := b.Label()
		b.JumpUnless(Load(word, 0), Imm(5), past)
		b.Sys("close no descriptor", unix.SYS_CLOSE, Int(-1))
		b.Mark(past)
		p, err := b.Program(125)
		if err != nil {
			t.Fatal(err)
		}
		*(*uint64)(word) = tc.word
		if err := Run(p); (err != nil) != tc.fail || (tc.fail && !errors.Is(err, unix.EBADF)) {
			t.Errorf("word %d: Run: %v, want a failure: %v", tc.word, err, tc.fail)
		}
	}
}

func TestProgramRefusesWhatCouldNotRun(t *testing.T) {
	var b Builder
	b.JumpUnless(Imm(0), Imm(1), b.Label())
	if _, err := b.Program(125); err == nil || !strings.Contains(err.Error(), "never marked") {
		t.Errorf("a label never marked: %v", err)
	}

	b = Builder{}
	l := b.Label()
	b.Mark(l)
	b.Sys("getpid", unix.SYS_GETPID)
	b.On(unix.EPERM, l)
	if _, err := b.Program(125); err == nil || !strings.Contains(err.Error(), "forward") {
		t.Errorf("a branch backwards: %v", err)
	}

	b = Builder{}
	b.Sys("close", unix.SYS_CLOSE, Arg{kind: kindSlot, v: 0})
	if _, err := b.Program(125); err == nil || !strings.Contains(err.Error(), "earlier system call") {
		t.Errorf("a result of the step itself: %v", err)
	}

	b = Builder{}
	b.Sys("seven", unix.SYS_GETPID, Int(1), Int(2), Int(3), Int(4), Int(5), Int(6), Int(7))
	if _, err := b.Program(125); err == nil || !strings.Contains(err.Error(), "at most 6") {
		t.Errorf("seven arguments: %v", err)
	}

	b = Builder{}
	b.On(unix.EPERM, Next)
	if _, err := b.Program(125); err == nil {
		t.Errorf("a branch with no system call before it was accepted")
	}

	b = Builder{}
	b.Sys("getpid", unix.SYS_GETPID)
	b.On(0, Next)
	if _, err := b.Program(125); err == nil || !strings.Contains(err.Error(), "errno 0") {
		t.Errorf("a branch on errno 0: %v", err)
	}

	if _, err := CString("a\x00b"); err == nil {
		t.Errorf("CString took a NUL")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("FixedString took a NUL")
			}
		}()
		FixedString("a\x00b")
	}()
}

// startShell starts sh -c script by a program that lays out files, enters
// dir and execs, and returns what it wrote on out and its exit status.
func startShell(t *testing.T, b *Builder, files []int, script string) (int, error) {
	t.Helper()
	sh, err := unix.Open("/bin/sh", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sh)
	next := max(len(files), sh+1)
	for _, fd := range files {
		next = max(next, fd+1)
	}
	b.Files("arrange the descriptors", files, next, &sh)
	b.ResetSignals()
	b.Sys("exec", unix.SYS_EXECVEAT, Int(sh), cstring(t, ""), cstrings(t, "sh", "-c", script), cstrings(t, "X=y"), Int(unix.AT_EMPTY_PATH))
	p, err := b.Program(253)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := Start(p)
	if err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return ws.ExitStatus(), nil
}

// A child lays out its descriptors (one at 0 moved up first, one above
// passed down, one left closed), enters a directory and execs.
func TestStartLaysOutAndExecs(t *testing.T) {
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var b Builder
	b.Sys("change to the working directory", unix.SYS_CHDIR, cstring(t, dir))
	files := []int{int(null.Fd()), int(out.Fd()), int(out.Fd()), -1, 0}
	status, err := startShell(t, &b, files, `pwd; echo $X; test -e /proc/self/fd/3 || echo no fd3; test -e /proc/self/fd/4 && echo fd4; exit 7`)
	if err != nil || status != 7 {
		t.Fatalf("status %d, %v; want 7", status, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out"))
	if want := dir + "\ny\nno fd3\nfd4\n"; string(got) != want {
		t.Errorf("child wrote %q, want %q", got, want)
	}
}

func TestStartReportsTheFailedStep(t *testing.T) {
	var b Builder
	b.Sys("change to the working directory", unix.SYS_CHDIR, cstring(t, "/nonexistent/dir"))
	_, err := startShell(t, &b, []int{0, 1, 2}, "true")
	var se *StepError
	if !errors.As(err, &se) || se.Step != "change to the working directory" || !errors.Is(err, unix.ENOENT) {
		t.Errorf("Start: %v, want the chdir step's ENOENT", err)
	}
}

// The child runs in this process's memory (CLONE_VM|CLONE_VFORK), not in
// a copy: what its steps wrote is there once Start returns.
func TestStartInThisMemory(t *testing.T) {
	if !forkexec.VforkArch {
		t.Skip("no vfork for this architecture: Start forks")
	}
	var b Builder
	getpid := b.Sys("getpid", unix.SYS_GETPID)
	p, err := b.Program(253)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := Start(p)
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait: %v, %v", ws, err)
	}
	if got := p.Value(getpid); got != uintptr(pid) {
		t.Errorf("the child's getpid, as this process reads it after Start: %d; want the child's pid %d", got, pid)
	}
}

// RestoreNofile sets the limit in the child only where it finds package
// syscall's raise (the hard limit less one), as Go's own child does.
func TestStartRestoresNofile(t *testing.T) {
	var orig unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, nil, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prlimit(0, unix.RLIMIT_NOFILE, &orig, nil) })
	if orig.Max < 100 {
		t.Fatalf("hard RLIMIT_NOFILE %d: too low for this test", orig.Max)
	}
	lim := &syscall.Rlimit{Cur: 64, Max: orig.Max}
	for _, tc := range []struct {
		soft uint64
		want string
	}{{orig.Max - 1, "64"}, {orig.Max, strconv.FormatUint(orig.Max, 10)}} {
		if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: tc.soft, Max: orig.Max}, nil); err != nil {
			t.Fatal(err)
		}
		out, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			t.Fatal(err)
		}
		var b Builder
		b.RestoreNofile(lim)
		if status, err := startShell(t, &b, []int{0, int(out.Fd()), 2}, "ulimit -n"); err != nil || status != 0 {
			t.Fatalf("status %d, %v", status, err)
		}
		got, _ := os.ReadFile(out.Name())
		out.Close()
		if strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("soft limit %d in the parent: the child's is %q, want %s", tc.soft, got, tc.want)
		}
	}
}

// Explain gives a failed step the caller's own error; Jump skips a step
// that would fail; a third errno branch is taken.
func TestExplainJumpAndThirdBranch(t *testing.T) {
	var b Builder
	past, missing := b.Label(), b.Label()
	b.Jump(past)
	b.Sys("close no descriptor", unix.SYS_CLOSE, Int(-1))
	b.Mark(past)
	b.Sys("open a missing file", unix.SYS_OPENAT, Int(unix.AT_FDCWD), cstring(t, "/nonexistent/file"), Int(unix.O_RDONLY))
	b.On(unix.EACCES, Next)
	b.On(unix.EPERM, Next)
	b.On(unix.ENOENT, missing)
	b.Sys("unreached", unix.SYS_CLOSE, Int(-1))
	b.Mark(missing)
	b.Sys("close", unix.SYS_CLOSE, Int(-1))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "close", Path: "-1", Err: errno} })
	p, err := b.Program(125)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(p); err == nil || err.Error() != "close -1: bad file descriptor" {
		t.Errorf("Run: %v, want the explained close", err)
	}
}

// JumpUnlessMasked compares the masked word, and Fail fails where a jump
// leads when the word is not what the program needs.
func TestJumpUnlessMaskedAndFail(t *testing.T) {
	for _, tc := range []struct {
		word uint64
		fail bool
	}{{0xab12, false}, {0xab13, true}} {
		var b Builder
		word := b.Bytes(8)
		bad, ok := b.Label(), b.Label()
		b.JumpUnlessMasked(Load(word, 0), 0xff, Imm(0x12), bad)
		b.Jump(ok)
		b.Mark(bad)
		b.Fail("check the word", unix.EINVAL)
		b.Mark(ok)
		p, err := b.Program(125)
		if err != nil {
			t.Fatal(err)
		}
		*(*uint64)(word) = tc.word
		err = Run(p)
		if (err != nil) != tc.fail || (tc.fail && err.Error() != "check the word: invalid argument") {
			t.Errorf("word %#x: Run: %v, want a failure: %v", tc.word, err, tc.fail)
		}
	}
}

// With fewer than three files, the layout closes the rest of 0 to 2: a
// descriptor to keep there is moved first, and the report goes above.
func TestStartFewerThanThreeFiles(t *testing.T) {
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// The shell opened where 2 is, as if the caller had closed it.
	saved, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Dup3(saved, 2, 0); unix.Close(saved) }()
	unix.Close(2)
	sh, err := unix.Open("/bin/sh", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil || sh != 2 {
		unix.Dup3(saved, 2, 0)
		t.Fatalf("open /bin/sh: %d, %v; want it at 2", sh, err)
	}
	var b Builder
	b.Files("arrange the descriptors", []int{0, int(out.Fd())}, int(out.Fd())+1, &sh)
	b.Sys("exec", unix.SYS_EXECVEAT, Int(sh), cstring(t, ""), cstrings(t, "sh", "-c", "test -e /proc/self/fd/2 || echo no fd2"), cstrings(t), Int(unix.AT_EMPTY_PATH))
	p, err := b.Program(253)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := Start(p)
	unix.Dup3(saved, 2, 0) // closes the shell's descriptor
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait: %v, %v", ws, err)
	}
	if got, _ := os.ReadFile(out.Name()); string(got) != "no fd2\n" {
		t.Errorf("child wrote %q", got)
	}
}

// A store marks where the program went, in memory the parent reads after
// Start where the child shares it; WrapErrors wraps the errors of the
// steps after it, explained or not, and nil stops it.
func TestStoreAndWrapErrors(t *testing.T) {
	var b Builder
	mark := (*uintptr)(b.Bytes(8))
	skipped := (*uintptr)(b.Bytes(8))
	errno := (*uintptr)(b.Bytes(8))
	over := b.Label()
	closed := b.Sys("close no descriptor", unix.SYS_CLOSE, Int(-1))
	b.On(unix.EBADF, over)
	b.Store(unsafe.Pointer(skipped), Imm(7))
	b.Mark(over)
	b.Store(unsafe.Pointer(mark), Imm(42))
	b.Store(unsafe.Pointer(errno), ErrnoOf(closed))
	b.WrapErrors(func(err error) error { return errors.New("stage: " + err.Error()) })
	b.Sys("close no descriptor again", unix.SYS_CLOSE, Int(-1))
	b.OnAny(Next)
	b.Fail("give up", unix.EPERM)
	p, err := b.Program(253)
	if err != nil {
		t.Fatal(err)
	}
	err = Run(p)
	if *mark != 42 || *skipped != 0 || *errno != uintptr(unix.EBADF) {
		t.Errorf("stores: %d, %d and %d, want 42, 0 and EBADF", *mark, *skipped, *errno)
	}
	if err == nil || err.Error() != "stage: give up: operation not permitted" {
		t.Errorf("Run: %v, want the wrapped failure", err)
	}

	if !SharedMemory {
		return
	}
	b = Builder{}
	mark = (*uintptr)(b.Bytes(8))
	b.Store(unsafe.Pointer(mark), Imm(42))
	b.Sys("close no descriptor", unix.SYS_CLOSE, Int(-1))
	b.Explain(func(errno syscall.Errno) error { return errors.New("explained") })
	b.WrapErrors(func(err error) error { return errors.New("not this one") })
	b.WrapErrors(nil)
	if p, err = b.Program(253); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(p); err == nil || err.Error() != "explained" || *mark != 42 {
		t.Errorf("Start: %v, mark %d; want the explained error and 42 as the child wrote it", err, *mark)
	}
}
