package chain

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNSSetupRoundTrip(t *testing.T) {
	for _, s := range []NSSetup{
		{SyncFD: 4, UID: 0, GID: 0, Hostname: "box", Loopback: true},
		{SyncFD: 3, UID: -1, GID: -1},
		{SyncFD: 5, UID: 0, GID: 0, Idmapped: 2, Detached: true, RuntimeHooks: true},
	} {
		got, err := ParseNSSetup(s.String())
		if err != nil || got != s {
			t.Errorf("%+v -> %q -> %+v, %v", s, s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "fd=x", "uid=1", "fd=4,color=red"} {
		if _, err := ParseNSSetup(bad); err == nil {
			t.Errorf("ParseNSSetup(%q) accepted", bad)
		}
	}
}

func TestHighestMapped(t *testing.T) {
	for _, tc := range []struct {
		idMap string
		want  uint64
		ok    bool
	}{
		{"         0     100000      65536\n", 65535, true},
		{"0 0 4294967295\n", 4294967294, true},
		{"0 1000 1\n1 100000 65536\n", 65536, true},
		{"", 0, false},
	} {
		got, ok := highestMapped(tc.idMap)
		if got != tc.want || ok != tc.ok {
			t.Errorf("highestMapped(%q) = %d, %v; want %d, %v", tc.idMap, got, ok, tc.want, tc.ok)
		}
	}
}

// The runtime hooks' exchange, both sides on a socket pair as barco-ns
// makes it: the child's RuntimeHooks returns once barco-ns's answer says
// they ran, ErrReported when they failed or barco-ns is gone.
func TestRuntimeHooksExchange(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(fd int) error
		want   error
	}{
		{"ran", func(fd int) error { return HooksDone(fd, true) }, nil},
		{"failed", func(fd int) error { return HooksDone(fd, false) }, ErrReported},
		{"barco-ns gone", func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) }, ErrReported},
	} {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		runtimeHooksFD = pair[0]
		got := make(chan error, 1)
		go func() { got <- RuntimeHooks() }()
		built, err := WaitBuilt(pair[1])
		if !built || err != nil {
			t.Fatalf("%s: WaitBuilt = %v, %v; want the child's message", c.name, built, err)
		}
		if err := c.answer(pair[1]); err != nil {
			t.Fatal(err)
		}
		if err := <-got; !errors.Is(err, c.want) && err != c.want {
			t.Errorf("%s: RuntimeHooks = %v, want %v", c.name, err, c.want)
		}
		if runtimeHooksFD != -1 {
			t.Errorf("%s: the socket is kept after RuntimeHooks", c.name)
		}
		unix.Close(pair[1])
	}
	// The child gone before its message: WaitBuilt says so, without error.
	pair, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	unix.Close(pair[0])
	if built, err := WaitBuilt(pair[1]); built || err != nil {
		t.Errorf("WaitBuilt after the child's end = %v, %v; want false, nil", built, err)
	}
	unix.Close(pair[1])
	// The child gone while the hooks ran: told in words, not as EPIPE.
	pair, _ = unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	unix.Close(pair[0])
	if err := HooksDone(pair[1], true); err == nil || err.Error() != "the container's first process ended while the hooks ran" {
		t.Errorf("HooksDone after the child's end = %v", err)
	}
	if err := HooksDone(pair[1], false); err != nil {
		t.Errorf("HooksDone(false) after the child's end = %v, want nil: the failure is the hooks'", err)
	}
	unix.Close(pair[1])
	// No hooks for this moment: nothing to ask.
	if err := RuntimeHooks(); err != nil {
		t.Errorf("RuntimeHooks without the socket = %v", err)
	}
}
