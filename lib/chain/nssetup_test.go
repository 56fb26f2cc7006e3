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
