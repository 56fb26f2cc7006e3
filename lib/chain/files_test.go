package chain

import (
	"os"
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
