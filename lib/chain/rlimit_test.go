package chain

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseRlimit(t *testing.T) {
	for in, want := range map[string]Rlimit{
		"nofile=1024":            {unix.RLIMIT_NOFILE, "nofile", 1024, 1024},
		"RLIMIT_NOFILE=512:4096": {unix.RLIMIT_NOFILE, "nofile", 512, 4096},
		"core=0:unlimited":       {unix.RLIMIT_CORE, "core", 0, unix.RLIM_INFINITY},
		"rlimit_as=unlimited":    {unix.RLIMIT_AS, "as", unix.RLIM_INFINITY, unix.RLIM_INFINITY},
	} {
		got, err := ParseRlimit(in)
		if err != nil || got != want {
			t.Errorf("ParseRlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nofile", "RLIMIT_TEST=1", "nofile=2:1", "nofile=x"} {
		if _, err := ParseRlimit(bad); err == nil {
			t.Errorf("ParseRlimit(%q) accepted it", bad)
		}
	}
}
