package ns

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// callerFiles writes subuid, subgid and passwd files into a temporary
// directory and returns their paths.
func callerFiles(t *testing.T, subuid, subgid string) (string, string, string) {
	t.Helper()
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid"), filepath.Join(dir, "passwd")}
	for i, data := range []string{subuid, subgid, "root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n"} {
		if err := os.WriteFile(paths[i], []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths[0], paths[1], paths[2]
}

// Container root is the caller; its ranges follow from 1, by name or by
// uid, in the order of the file; without one the map is its own id alone.
func TestCallerMaps(t *testing.T) {
	subuid, subgid, passwd := callerFiles(t, "bob:200000:10\nalice:100000:65536\n1001:300000:10\n", "alice:400000:65536\n")
	c, err := ReadCaller(1001, 1002, subuid, subgid, passwd)
	if err != nil {
		t.Fatal(err)
	}
	uids, gids := c.Maps()
	if want := []IDMap{{0, 1001, 1}, {1, 100000, 65536}, {65537, 300000, 10}}; !reflect.DeepEqual(uids, want) {
		t.Errorf("uid map %v, want %v", uids, want)
	}
	if want := []IDMap{{0, 1002, 1}, {1, 400000, 65536}}; !reflect.DeepEqual(gids, want) {
		t.Errorf("gid map %v, want %v", gids, want)
	}
	if !c.HasRanges() {
		t.Error("HasRanges false with ranges")
	}

	subuid, subgid, passwd = callerFiles(t, "bob:200000:10\n", "")
	c, err = ReadCaller(1001, 1001, subuid, subgid, passwd)
	if err != nil {
		t.Fatal(err)
	}
	uids, gids = c.Maps()
	if !reflect.DeepEqual(uids, []IDMap{{0, 1001, 1}}) || !reflect.DeepEqual(gids, []IDMap{{0, 1001, 1}}) || c.HasRanges() {
		t.Errorf("no range: uid map %v, gid map %v, HasRanges %v; want 0:1001:1 alone", uids, gids, c.HasRanges())
	}
	if c, err := ReadCaller(1001, 1001, "/nonexistent/subuid", "/nonexistent/subgid", passwd); err != nil || c.HasRanges() {
		t.Errorf("no files: %v, %v", c, err)
	}
	subuid, subgid, passwd = callerFiles(t, "alice:x:10\n", "")
	if _, err := ReadCaller(1001, 1001, subuid, subgid, passwd); err == nil || !strings.Contains(err.Error(), "bad line") {
		t.Errorf("a malformed line of the caller's: %v", err)
	}
}

// Only maps of the caller's own id, or within its ranges, go to the
// set-user-ID helpers.
func TestCheckOwned(t *testing.T) {
	c := &Caller{UID: 1001, GID: 1001, SubUIDs: []IDMap{{0, 100000, 65536}}, SubGIDs: []IDMap{{0, 100000, 65536}},
		SubUIDFile: "/etc/subuid", SubGIDFile: "/etc/subgid"}
	own := []IDMap{{0, 1001, 1}, {1, 100000, 65536}}
	if err := c.CheckOwned(own, own); err != nil {
		t.Errorf("the caller's own maps: %v", err)
	}
	for _, bad := range []struct {
		uids, gids []IDMap
		want       string
	}{
		{[]IDMap{{0, 0, 1}}, own, "uid map 0:0:1: host uids 0-0 are neither yours (1001) nor within your ranges in /etc/subuid (100000-165535)"},
		{[]IDMap{{0, 1001, 2}}, own, "uid map 0:1001:2: host uids 1001-1002"},
		{own, []IDMap{{0, 1001, 1}, {1, 100000, 65537}}, "gid map 1:100000:65537: host gids 100000-165536 are neither yours (1001) nor within your ranges in /etc/subgid"},
		{own, []IDMap{{0, 99999, 2}}, "gid map 0:99999:2"},
	} {
		if err := c.CheckOwned(bad.uids, bad.gids); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("uids %v gids %v: %v, want %q", bad.uids, bad.gids, err, bad.want)
		}
	}
}

// Root writes any map itself; an unprivileged caller writes its own ids
// alone itself, with setgroups denied, and anything else through the
// helpers.
func TestMapWriterFor(t *testing.T) {
	caller := &Caller{UID: 1001, GID: 1001}
	own := []IDMap{{0, 1001, 1}}
	ranges := []IDMap{{0, 1001, 1}, {1, 100000, 65536}}
	for _, tc := range []struct {
		c    Config
		want MapWriter
	}{
		{Config{UIDMaps: ranges, GIDMaps: ranges}, DirectMapWriter{}},
		{Config{Caller: caller, UIDMaps: own, GIDMaps: own}, DirectMapWriter{DenySetgroups: true}},
		{Config{Caller: caller, UIDMaps: ranges, GIDMaps: own}, HelperMapWriter{NewUIDMap: "/usr/bin/newuidmap", NewGIDMap: "/usr/bin/newgidmap"}},
	} {
		if got := tc.c.mapWriter(); got != tc.want {
			t.Errorf("uids %v gids %v caller %v: %#v, want %#v", tc.c.UIDMaps, tc.c.GIDMaps, tc.c.Caller != nil, got, tc.want)
		}
	}
}

func TestValidateUnprivileged(t *testing.T) {
	noRange := &Caller{UID: 1001, GID: 1001, SubUIDFile: "/etc/subuid", SubGIDFile: "/etc/subgid"}
	own := []IDMap{{0, 1001, 1}}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Flags: unix.CLONE_NEWUSER, Caller: noRange, UIDMaps: own, GIDMaps: own, UID: -1, GID: -1, Idmap: []string{"/"}},
			"--idmap /: idmapped mounts need root"},
		{Config{Flags: unix.CLONE_NEWUSER, Caller: noRange, UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: own, UID: -1, GID: -1},
			"uid map 0:100000:65536: host uids 100000-165535 are neither yours (1001) nor within your ranges in /etc/subuid (none) (an administrator gives ranges with usermod"},
		{Config{Flags: unix.CLONE_NEWUSER, Caller: noRange, UIDMaps: own, GIDMaps: own, UID: 65534, GID: -1},
			"--uid 65534: not mapped by the uid map [0:1001:1] (uid 1001 has no range in /etc/subuid, so the container has its root alone"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
	ok := Config{Flags: unix.CLONE_NEWUSER, Caller: noRange, UIDMaps: own, GIDMaps: own, UID: 0, GID: 0}
	if err := ok.Validate(); err != nil {
		t.Errorf("the caller's own map: %v", err)
	}
}

// The helpers get the pid and the maps as numbers, with an empty
// environment; a helper's complaint is the error's last part.
func TestHelperMapWriter(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	record := `echo "$(basename $0) $* env=$(env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | wc -l)" >> ` + out
	w := HelperMapWriter{NewUIDMap: script("newuidmap", record), NewGIDMap: script("newgidmap", record)}
	if err := w.WriteMaps(42, []IDMap{{0, 1001, 1}, {1, 100000, 65536}}, []IDMap{{0, 1001, 1}}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	// The two run side by side: in either order.
	got := strings.Split(strings.TrimSpace(string(data)), "\n")
	sort.Strings(got)
	if want := []string{"newgidmap 42 0 1001 1 env=0", "newuidmap 42 0 1001 1 1 100000 65536 env=0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls: %q, want %q", got, want)
	}
	w.NewGIDMap = script("failing", `echo "newgidmap: gid range [1-2) -> [5-6) not allowed" >&2; echo more >&2; exit 1`)
	err := w.WriteMaps(42, []IDMap{{0, 1001, 1}}, []IDMap{{0, 1001, 1}, {1, 5, 1}})
	if want := "failing 42 0 1001 1 1 5 1: newgidmap: gid range [1-2) -> [5-6) not allowed"; err == nil || err.Error() != want {
		t.Errorf("failing helper: %v, want %q", err, want)
	}
	w.NewUIDMap = filepath.Join(dir, "missing")
	if err := w.WriteMaps(42, nil, nil); err == nil || !strings.Contains(err.Error(), "is missing (Debian's uidmap package has it)") {
		t.Errorf("missing helper: %v", err)
	}
	w.NewUIDMap = "newuidmap"
	if err := w.WriteMaps(42, nil, nil); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("a helper by name: %v", err)
	}
}
