package chain

import "testing"

func TestNSSetupRoundTrip(t *testing.T) {
	for _, s := range []NSSetup{
		{SyncFD: 4, UID: 0, GID: 0, Hostname: "box", Loopback: true},
		{SyncFD: 3, UID: -1, GID: -1},
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
