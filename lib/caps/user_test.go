package caps

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// testAccounts writes a passwd and a group file unlike any host's.
func testAccounts(t *testing.T) Accounts {
	t.Helper()
	dir := t.TempDir()
	a := Accounts{Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group")}
	passwd := `root:x:0:0:root:/root:/bin/sh
# a comment
www:x:33:33:www:/var/www:/bin/false
alice:x:1000:100::/home/alice:/bin/sh
broken:x:notanumber:1::/:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`
	group := `root:x:0:
users:x:100:
www:x:33:
wheel:x:10:alice,root
audio:x:29:bob,alice
nogroup:x:65534:
`
	if err := os.WriteFile(a.Passwd, []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.Group, []byte(group), 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLookupUser(t *testing.T) {
	a := testAccounts(t)
	cases := []struct {
		spec string
		want Identity
	}{
		{"www", Identity{UID: 33, GID: 33, Groups: []int{33}, UserName: "www", GroupName: "www"}},
		{"alice", Identity{UID: 1000, GID: 100, Groups: []int{100, 10, 29}, UserName: "alice", GroupName: "users"}},
		{"1000", Identity{UID: 1000, GID: 100, Groups: []int{100, 10, 29}, UserName: "alice", GroupName: "users"}},
		{"alice:wheel", Identity{UID: 1000, GID: 10, Groups: []int{10, 29}, UserName: "alice", GroupName: "wheel"}},
		{"alice:7", Identity{UID: 1000, GID: 7, Groups: []int{7, 10, 29}, UserName: "alice"}},
		{"4242", Identity{UID: 4242, GID: 0, Groups: []int{0}, GroupName: "root"}},
		{"4242:4343", Identity{UID: 4242, GID: 4343, Groups: []int{4343}}},
		{"root", Identity{UID: 0, GID: 0, Groups: []int{0, 10}, UserName: "root", GroupName: "root"}},
	}
	for _, c := range cases {
		got, err := a.LookupUser(c.spec)
		if err != nil {
			t.Errorf("LookupUser(%q): %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("LookupUser(%q) = %+v\nwant %+v", c.spec, got, c.want)
		}
	}
}

func TestLookupUserErrors(t *testing.T) {
	a := testAccounts(t)
	cases := map[string]string{
		"bob":        "user bob: not found in " + a.Passwd,
		"www:staff":  "group staff: not found in " + a.Group,
		"broken":     "user broken: bad entry in " + a.Passwd,
		"":           `user "": want UID|NAME[:GID|GROUP]`,
		"www:":       `user "www:": want UID|NAME[:GID|GROUP]`,
		"4294967295": "user 4294967295: not found in " + a.Passwd,
		"-1":         "user -1: not found in " + a.Passwd,
		":33":        `user ":33": want UID|NAME[:GID|GROUP]`,
	}
	for spec, want := range cases {
		_, err := a.LookupUser(spec)
		if err == nil || err.Error() != want {
			t.Errorf("LookupUser(%q) error = %v; want %q", spec, err, want)
		}
	}
}

func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	a := Accounts{Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group")}
	id, err := a.LookupUser("1234:5")
	if err != nil || id.UID != 1234 || id.GID != 5 {
		t.Errorf("numeric user without account files: %+v, %v", id, err)
	}
	if _, err := a.LookupUser("www"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("named user without passwd: %v", err)
	}
}

func TestLookupGroups(t *testing.T) {
	a := testAccounts(t)
	got, err := a.LookupGroups([]string{"wheel", "5", "audio", "wheel"})
	if err != nil || !reflect.DeepEqual(got, []int{10, 5, 29}) {
		t.Errorf("LookupGroups = %v, %v", got, err)
	}
	if _, err := a.LookupGroups([]string{"staff"}); err == nil {
		t.Error("unknown group accepted")
	}
}

// Read in another root (exec's front, in the container's): a file that
// chain.ReadFileIn leaves alone makes the stage run as its binary, which
// reads it in the container (ErrNotInline); a missing one is empty still.
func TestLookupUserInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	acc := HostAccounts
	acc.Root = root
	if id, err := acc.LookupUser("7:8"); err != nil || id.UID != 7 || id.GID != 8 {
		t.Errorf("LookupUser 7:8 in a root without account files: %+v %v", id, err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/group"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.LookupUser("7:8"); !errors.Is(err, chain.ErrNotInline) {
		t.Errorf("LookupUser with a FIFO at /etc/group: %v, want ErrNotInline", err)
	}
	if _, err := acc.LookupGroups([]string{"9"}); !errors.Is(err, chain.ErrNotInline) {
		t.Errorf("LookupGroups with a FIFO at /etc/group: %v, want ErrNotInline", err)
	}
}
