package ns

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseJoin(t *testing.T) {
	j, err := ParseJoin("net=/run/netns/x")
	if err != nil || j.Flag != unix.CLONE_NEWNET || j.Path != "/run/netns/x" {
		t.Errorf("ParseJoin net: %+v, %v", j, err)
	}
	for _, bad := range []string{"net", "net=", "user=/proc/1/ns/user", "mnt=/proc/1/ns/mnt", "foo=/x"} {
		if _, err := ParseJoin(bad); err == nil {
			t.Errorf("ParseJoin(%q) accepted it", bad)
		}
	}
	c := &Config{Flags: unix.CLONE_NEWNET, Joins: []Join{{unix.CLONE_NEWNET, "net", "/x"}}, Program: []string{"true"}, UID: -1, GID: -1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "exclude") {
		t.Errorf("a new and a joined network namespace: %v", err)
	}
}
