package hook

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSetInTheEnvironmentAndInAnFD(t *testing.T) {
	set := Set{State: specs.State{ID: "c", Annotations: map[string]string{"big": strings.Repeat("x", 300<<10)}},
		Hooks: []specs.Hook{{Path: "/bin/true"}}}
	value, err := StoreSet("", set)
	if err != nil {
		t.Fatal(err)
	}
	fd, fdValue, err := SetInFD([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, v := range []string{value, fdValue} {
		got, err := LoadSet(v)
		if err != nil || got.State.ID != "c" || len(got.State.Annotations["big"]) != 300<<10 || got.Hooks[0].Path != "/bin/true" {
			t.Fatalf("LoadSet(%.20q): %v", v, err)
		}
	}
	// Rewritten shorter in place: nothing of the longer old text stays.
	set.State.Pid, set.State.Annotations = 42, nil
	if v, err := StoreSet(fdValue, set); err != nil || v != fdValue {
		t.Fatalf("StoreSet: %q, %v", v, err)
	}
	if got, err := LoadSet(fdValue); err != nil || got.State.Pid != 42 || got.State.Annotations != nil {
		t.Fatalf("after StoreSet: %+v, %v", got, err)
	}
	for _, bad := range []string{"fd:x", "fd:-1", "fd:999999", "{"} {
		if _, err := LoadSet(bad); err == nil {
			t.Fatalf("LoadSet(%q) succeeded", bad)
		}
	}
}
