package chain

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	plain := filepath.Join(dir, "data")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := LookPath("prog", "/nonexistent:"+dir); err != nil || p != exe {
		t.Errorf("LookPath(prog) = %q, %v; want %q", p, err, exe)
	}
	if _, err := LookPath("missing", dir); ExitCode(err) != ExitNotFound {
		t.Errorf("LookPath(missing): %v, exit %d; want 127", err, ExitCode(err))
	}
	if _, err := LookPath("data", dir); ExitCode(err) != ExitCannotExec {
		t.Errorf("LookPath(data): %v, exit %d; want 126", err, ExitCode(err))
	}
	if _, err := LookPath(dir+"/missing", ""); ExitCode(err) != ExitNotFound {
		t.Errorf("LookPath(/abs/missing): %v, exit %d; want 127", err, ExitCode(err))
	}
	if _, err := LookPath(dir, ""); ExitCode(err) != ExitCannotExec {
		t.Errorf("LookPath(dir): %v, exit %d; want 126", err, ExitCode(err))
	}
}

func TestExitStatus(t *testing.T) {
	// Wait statuses as the kernel encodes them.
	if got := ExitStatus(syscall.WaitStatus(3 << 8)); got != 3 {
		t.Errorf("exit 3 relayed as %d", got)
	}
	if got := ExitStatus(syscall.WaitStatus(syscall.SIGTERM)); got != 143 {
		t.Errorf("SIGTERM relayed as %d, want 143", got)
	}
}

func TestErrorHint(t *testing.T) {
	base := &os.PathError{Op: "pivot_root", Path: "/r", Err: syscall.EINVAL}
	err := WithHint(base, "is / a shared mount?")
	if err.Error() != "pivot_root /r: invalid argument (is / a shared mount?)" {
		t.Errorf("got %q", err)
	}
	if !errors.Is(err, syscall.EINVAL) {
		t.Error("hinted error does not unwrap to its cause")
	}
}

func TestStageFDsRoundTrip(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	m := map[string]int{"barco-caps": int(r.Fd()), "barco-seccomp": int(w.Fd())}
	got := parseStageFDs(formatStageFDs(m) + ",junk,barco-ns=999,other=5")
	if len(got) != 2 || got["barco-caps"] != int(r.Fd()) || got["barco-seccomp"] != int(w.Fd()) {
		t.Errorf("round trip of %v gave %v", m, got)
	}
}

func TestFlagNames(t *testing.T) {
	names := []Flag[uintptr]{{Bit: 1, Name: "A"}, {Bit: 4, Name: "C"}}
	for flags, want := range map[uintptr]string{0: "0", 1: "A", 5: "A|C", 7: "A|C|0x2"} {
		if got := FlagNames(flags, names); got != want {
			t.Errorf("FlagNames(%#x) = %q, want %q", flags, got, want)
		}
	}
}

func TestProgramArgv(t *testing.T) {
	env := []string{"PATH=/bin", Argv0Env + "=-sh"}
	if got := ProgramArgv([]string{"/bin/sh", "-c", "x"}, env); !reflect.DeepEqual(got, []string{"-sh", "-c", "x"}) {
		t.Errorf("with %s=-sh: %q", Argv0Env, got)
	}
	if got := ProgramArgv([]string{"barco-caps", "--", "sh"}, env); got[0] != "barco-caps" {
		t.Errorf("a stage's argv[0] changed: %q", got)
	}
	if got := ProgramArgv([]string{"sh"}, []string{"PATH=/bin"}); got[0] != "sh" {
		t.Errorf("without %s: %q", Argv0Env, got)
	}
}

func TestInitialUserNS(t *testing.T) {
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Skip(err)
	}
	want := strings.Join(strings.Fields(string(uidMap)), " ") == "0 0 4294967295"
	if got, err := InitialUserNS("/proc"); err != nil || got != want {
		t.Errorf("InitialUserNS = %v, %v; uid_map %q", got, err, uidMap)
	}
	if _, err := InitialUserNS(t.TempDir()); err == nil {
		t.Error("no error without proc")
	}
}

func TestParsePidsLimit(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "pids.max")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := isCgroupFile(fd); err == nil {
		t.Error("a temporary file taken for a cgroup file")
	}
	defer func(check func(int) error) { isCgroupFile = check }(isCgroupFile)
	isCgroupFile = func(n int) error {
		if n != fd {
			return errors.New("not the test's file")
		}
		return nil
	}
	if l, ok, err := ParsePidsLimit([]string{PidsLimitEnv + "=" + PidsLimit{FD: fd, Limit: 7}.String()}); !ok || err != nil || l.FD != fd || l.Limit != 7 {
		t.Errorf("ParsePidsLimit: %+v, %v, %v", l, ok, err)
	}
	if _, ok, err := ParsePidsLimit([]string{"PATH=/bin"}); ok || err != nil {
		t.Errorf("without the variable: %v, %v", ok, err)
	}
	for _, v := range []string{"x", "3", "3:0", "2:5", "999:5"} {
		if _, _, err := ParsePidsLimit([]string{PidsLimitEnv + "=" + v}); err == nil {
			t.Errorf("%s=%s accepted", PidsLimitEnv, v)
		}
	}
	// A supervisor that stays beside PROGRAM hands it on with its own
	// tasks added, at the descriptor's place in the child's files. (It
	// goes to one P, which this test gives back.)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	env, files, err := PassPidsLimit([]string{"A=1", PidsLimitEnv + "=" + strconv.Itoa(fd) + ":7"}, []uintptr{0, 1, 2}, nil, true)
	if err != nil || len(files) != 4 || files[3] != uintptr(fd) {
		t.Fatalf("PassPidsLimit: %q, %v, %v", env, files, err)
	}
	l, _ := lookupEnv(env, PidsLimitEnv)
	if n, _ := strconv.Atoi(strings.TrimPrefix(l, "3:")); !strings.HasPrefix(l, "3:") || n < 7+1+SupervisorSpareTasks {
		t.Errorf("passed on as %s=%s", PidsLimitEnv, l)
	}
}

// A stage's process starts on one P unless the environment says
// otherwise, and PROGRAM gets the environment it was given either way.
func TestStagesStartOnOneProc(t *testing.T) {
	given := []string{"PATH=/bin", "BARCO_PIDS_LIMIT=3:10"}
	stage := StageEnv(given)
	if v, _ := lookupEnv(stage, "GOMAXPROCS"); v != "1" {
		t.Errorf("stage environment %q: want GOMAXPROCS=1", stage)
	}
	if got := programEnv(stage); !slices.Equal(got, []string{"PATH=/bin"}) {
		t.Errorf("PROGRAM's environment %q, want %q", got, []string{"PATH=/bin"})
	}
	own := []string{"PATH=/bin", "GOMAXPROCS=4"}
	if got := programEnv(StageEnv(own)); !slices.Equal(got, own) {
		t.Errorf("with GOMAXPROCS=4 given, PROGRAM's environment %q, want %q", got, own)
	}
}
