package chain

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFiles(t *testing.T) {
	const closed = ^uintptr(0)
	for _, c := range []struct {
		preserve int
		chained  []int
		want     []uintptr
	}{
		{0, nil, []uintptr{0, 1, 2}},
		{2, nil, []uintptr{0, 1, 2, 3, 4}},
		{0, []int{3}, []uintptr{0, 1, 2, 3}},
		{1, []int{6}, []uintptr{0, 1, 2, 3, closed, closed, 6}},
		// A chained descriptor among the preserved ones passes once.
		{2, []int{4, 7}, []uintptr{0, 1, 2, 3, 4, closed, closed, 7}},
	} {
		if got := Files(c.preserve, c.chained); !slices.Equal(got, c.want) {
			t.Errorf("Files(%d, %v) = %v, want %v", c.preserve, c.chained, got, c.want)
		}
	}
}

func TestParseChainFDs(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	v := strconv.Itoa(fd) + ",x,1,999999," + strconv.Itoa(fd)
	if got := ParseChainFDs(v); !slices.Equal(got, []int{fd}) {
		t.Errorf("ParseChainFDs(%q) = %v, want [%d]: open descriptors above stderr, once", v, got, fd)
	}
}

func TestCloseChainFDs(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ChainFDsEnv, strconv.Itoa(fd))
	CloseChainFDs()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		unix.Close(fd)
		t.Errorf("fd %d is still open", fd)
	}
	if v, ok := os.LookupEnv(ChainFDsEnv); ok {
		t.Errorf("%s=%q is still set", ChainFDsEnv, v)
	}
}

// The start gate reports ready, waits for a reader, and leaves no number
// of a descriptor it closed in BARCO_CHAIN_FDS for a stage after it.
func TestGateForgetsTheDescriptorsItCloses(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "exec.fifo")
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		t.Fatal(err)
	}
	gate, err := unix.Open(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var report [2]int
	if err := unix.Pipe2(report[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(report[0])
	other, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	t.Setenv(StartFDEnv, strconv.Itoa(gate))
	t.Setenv(ReportFDEnv, strconv.Itoa(report[1]))
	t.Setenv(ChainFDsEnv, fmt.Sprintf("%d,%d,%d", report[1], gate, other))

	done := make(chan error, 1)
	go func() { done <- NewProcess(Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}).Gate(nil) }()
	// What start does: open the FIFO for reading, and read the byte.
	r, err := os.OpenFile(fifoPath, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := <-done; err != nil {
		t.Fatalf("Gate: %v", err)
	}
	buf := make([]byte, 16)
	if n, _ := unix.Read(report[0], buf); string(buf[:n]) != "ready\n" {
		t.Errorf("report: %q, want %q", buf[:n], "ready\n")
	}
	if got, want := os.Getenv(ChainFDsEnv), strconv.Itoa(other); got != want {
		t.Errorf("%s after the gate: %q, want %q", ChainFDsEnv, got, want)
	}
	for _, name := range []string{StartFDEnv, ReportFDEnv} {
		if v, ok := os.LookupEnv(name); ok {
			t.Errorf("%s=%s after the gate, want it unset", name, v)
		}
	}
}
