package ns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseIDMap(t *testing.T) {
	m, err := ParseIDMap("0:100000:65536")
	if err != nil || m != (IDMap{0, 100000, 65536}) {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, bad := range []string{"0:1", "a:1:1", "0:1:0", "0:1:1:1", "4294967295:1:1", "0:4294967000:1000", "-1:0:1"} {
		if _, err := ParseIDMap(bad); err == nil {
			t.Errorf("ParseIDMap(%q) accepted", bad)
		}
	}
}

func TestValidateIDMaps(t *testing.T) {
	ok := []IDMap{{0, 1000, 1}, {1, 100000, 65536}}
	if err := ValidateIDMaps("uid", ok); err != nil {
		t.Errorf("%v: %v", ok, err)
	}
	for _, bad := range [][]IDMap{
		nil,
		{{0, 1000, 10}, {5, 2000, 10}},  // inside
		{{0, 1000, 10}, {20, 1005, 10}}, // outside
	} {
		if err := ValidateIDMaps("uid", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	many := make([]IDMap, maxMapLines+1)
	for i := range many {
		many[i] = IDMap{uint32(i), uint32(1000 + i), 1}
	}
	if err := ValidateIDMaps("uid", many); err == nil || !strings.Contains(err.Error(), "340") {
		t.Errorf("too many lines: %v", err)
	}
}

func TestSubordinateMaps(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "subuid")
	data := "# comment\nalice:100000:65536\nbob:200000:1000\n1001:300000:10\nbob:400000:5\n"
	if err := os.WriteFile(sub, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := SubordinateMaps(sub, "bob", 1002)
	want := []IDMap{{0, 200000, 1000}, {1000, 400000, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bob: %v, want %v", got, want)
	}
	if got, _ := SubordinateMaps(sub, "", 1001); !reflect.DeepEqual(got, []IDMap{{0, 300000, 10}}) {
		t.Errorf("uid 1001: %v", got)
	}
	if got, _ := SubordinateMaps(sub, "carol", 1003); !reflect.DeepEqual(got, []IDMap{FallbackRange}) {
		t.Errorf("no entry: %v", got)
	}
	if got, _ := SubordinateMaps(filepath.Join(dir, "none"), "bob", 1); !reflect.DeepEqual(got, []IDMap{FallbackRange}) {
		t.Errorf("no file: %v", got)
	}
}

func TestDirectMapWriter(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "42")
	os.Mkdir(dir, 0o755)
	for _, f := range []string{"uid_map", "gid_map", "setgroups"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	w := DirectMapWriter{Proc: proc, DenySetgroups: true}
	if err := w.WriteMaps(42, []IDMap{{0, 100000, 65536}}, []IDMap{{0, 1000, 1}, {1, 200000, 10}}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"uid_map": "0 100000 65536\n", "gid_map": "0 1000 1\n1 200000 10\n", "setgroups": "deny"} {
		got, _ := os.ReadFile(filepath.Join(dir, f))
		if string(got) != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{Hostname: "h", UID: -1, GID: -1}, "needs a new UTS namespace"},
		{Config{UIDMaps: []IDMap{{0, 1, 1}}, UID: -1, GID: -1}, "need a new user namespace"},
		{Config{Flags: unix.CLONE_NEWUSER, UIDMaps: []IDMap{{0, 1, 1}}, GIDMaps: []IDMap{{0, 1, 1}}, UID: 5, GID: -1}, "--uid 5: not mapped"},
	}
	for _, c := range cases {
		if err := c.c.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.c, err, c.want)
		}
	}
}

func TestDefaultMaps(t *testing.T) {
	dir := t.TempDir()
	c := Config{Flags: unix.CLONE_NEWUSER, UIDMaps: []IDMap{{0, 5000, 10}}}
	if err := c.DefaultMaps(false, filepath.Join(dir, "x"), filepath.Join(dir, "y"), filepath.Join(dir, "p")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.GIDMaps, c.UIDMaps) {
		t.Errorf("gid map %v does not copy uid map %v", c.GIDMaps, c.UIDMaps)
	}
	c = Config{Flags: unix.CLONE_NEWUSER}
	c.DefaultMaps(true, "", "", "")
	if len(c.UIDMaps) != 1 || c.UIDMaps[0].Host != uint32(os.Geteuid()) || c.UIDMaps[0].Size != 1 {
		t.Errorf("--map-root: %v", c.UIDMaps)
	}
	if err := (&Config{}).DefaultMaps(true, "", "", ""); err == nil {
		t.Error("--map-root without -U accepted")
	}
}
