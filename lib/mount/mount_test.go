package mount

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

func TestParseVolume(t *testing.T) {
	good := map[string]Volume{
		"/srv/data:/data":       {Source: "/srv/data", Dest: "/data"},
		"/srv/data:/data/:ro":   {Source: "/srv/data", Dest: "/data", ReadOnly: true},
		"rel:/a/../b:rw":        {Source: "rel", Dest: "/b"},
		"/etc/hosts:/etc/hosts": {Source: "/etc/hosts", Dest: "/etc/hosts"},
	}
	for in, want := range good {
		got, err := ParseVolume(in)
		if err != nil || got != want {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"/srv", "/srv:", ":/data", "/srv:data", "/srv:/", "/srv:/data:rx", "/a:/b:ro:x"} {
		if _, err := ParseVolume(in); err == nil {
			t.Errorf("ParseVolume(%q) accepted", in)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	got, err := ParseTmpfs("/run/x/:size=64m,mode=1777,noexec")
	want := Tmpfs{Dest: "/run/x", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: "size=64m,mode=1777"}
	if err != nil || got != want {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseTmpfs("/tmp")
	// noexec, nosuid and nodev unless told otherwise, as docker's.
	if err != nil || got != (Tmpfs{Dest: "/tmp", Flags: unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV}) {
		t.Errorf("ParseTmpfs(/tmp) = %+v, %v", got, err)
	}
	got, err = ParseTmpfs("/tmp:exec")
	if err != nil || got != (Tmpfs{Dest: "/tmp", Flags: unix.MS_NOSUID | unix.MS_NODEV}) {
		t.Errorf("ParseTmpfs(/tmp:exec) = %+v, %v", got, err)
	}
	for _, in := range []string{"tmp", "/", "/t:size=big", "/t:mode=999", "/t:uid=0", "/t:rw,bogus"} {
		if _, err := ParseTmpfs(in); err == nil {
			t.Errorf("ParseTmpfs(%q) accepted", in)
		}
	}
}

func TestFlagNames(t *testing.T) {
	cases := map[uintptr]string{
		unix.MS_BIND | unix.MS_REC:           "MS_BIND|MS_REC",
		unix.MS_REC | unix.MS_PRIVATE:        "MS_REC|MS_PRIVATE",
		0:                                    "0",
		unix.MS_RDONLY | 1<<40:               "MS_RDONLY|0x10000000000",
		unix.MS_NOSUID | unix.MS_STRICTATIME: "MS_NOSUID|MS_STRICTATIME",
	}
	for in, want := range cases {
		if got := FlagNames(in); got != want {
			t.Errorf("FlagNames(%#x) = %q, want %q", in, got, want)
		}
	}
	if got := AttrNames(sysAttrs); got != "MOUNT_ATTR_RDONLY|MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV|MOUNT_ATTR_NOEXEC" {
		t.Errorf("AttrNames(sysAttrs) = %q", got)
	}
	err := &MountError{Source: "tmpfs", Target: "/dev", FSType: "tmpfs", Flags: unix.MS_NOSUID, Data: "mode=755", Err: unix.EPERM}
	if want := "mount tmpfs on /dev (tmpfs, MS_NOSUID, mode=755): operation not permitted"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, unix.EPERM) {
		t.Error("MountError does not unwrap")
	}
}

func TestParseUIDMap(t *testing.T) {
	cases := map[string]userNS{
		"         0          0 4294967295\n": {nested: false, hostRoot: 0},
		"         0     100000      65536\n": {nested: true, hostRoot: 100000},
		"      1000       1000          1\n": {nested: true, hostRoot: -1},
		"0 0 1\n1 100000 65535\n":            {nested: true, hostRoot: 0},
		"0 0 4294967295\n0 0 4294967295\n":   {nested: true, hostRoot: 0},
	}
	for in, want := range cases {
		if got := parseUIDMap(in); got != want {
			t.Errorf("parseUIDMap(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// fakeProc makes proc/self/ns/mnt, proc/1/ns/mnt and proc/2 files; the
// namespaces are "the same" when their files are hard links.
func fakeProc(t *testing.T, same bool, pid1Readable bool) string {
	proc := t.TempDir()
	for _, d := range []string{"self/ns", "1/ns", "2/ns"} {
		os.MkdirAll(filepath.Join(proc, d), 0o755)
	}
	self := filepath.Join(proc, "self/ns/mnt")
	os.WriteFile(self, nil, 0o644)
	os.WriteFile(filepath.Join(proc, "2/stat"), []byte("2 (kthreadd) S 0 0 0\n"), 0o644)
	for _, pid := range []string{"1", "2"} {
		p := filepath.Join(proc, pid, "ns/mnt")
		if same {
			os.Link(self, p)
		} else {
			os.WriteFile(p, nil, 0o644)
		}
	}
	if !pid1Readable {
		os.Remove(filepath.Join(proc, "1/ns/mnt"))
		os.Symlink(filepath.Join(proc, "1/ns/mnt"), filepath.Join(proc, "1/ns/mnt")) // ELOOP, not EACCES
	}
	return proc
}

func TestCheckNotHostNS(t *testing.T) {
	host := userNS{hostRoot: 0}
	if err := checkNotHostNS(fakeProc(t, false, true), host); err != nil {
		t.Errorf("own namespace refused: %v", err)
	}
	err := checkNotHostNS(fakeProc(t, true, true), host)
	// --force overrides only a check that cannot tell.
	if err == nil || !strings.Contains(err.Error(), "refusing") || strings.Contains(err.Error(), "--force") || errors.Is(err, errCannotTell) {
		t.Errorf("host namespace: %v", err)
	}
	if err := checkNotHostNS(fakeProc(t, false, false), host); err == nil || !strings.Contains(err.Error(), "cannot tell") ||
		!strings.Contains(err.Error(), "--force") || !errors.Is(err, errCannotTell) {
		t.Errorf("unreadable PID 1: %v", err)
	}
}

func TestMakeInStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "inside"), 0o755)
	os.Symlink("/inside", filepath.Join(root, "abs"))                   // absolute: means root/inside
	os.Symlink("../../../../inside", filepath.Join(root, "rel"))        // .. stops at the root
	os.Symlink(outside, filepath.Join(root, "host"))                    // a host path: dangling inside
	os.Symlink("/proc/self/root"+outside, filepath.Join(root, "magic")) // a way out through proc
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFD)

	var created []string
	for _, p := range []string{"/abs/x", "/rel/y", "/new/dir/z"} {
		fd, err := makeIn(rootFD, p, false, inRoot, &created)
		if err != nil {
			t.Fatalf("makeIn %s: %v", p, err)
		}
		unix.Close(fd)
	}
	fd, err := makeIn(rootFD, "/new/file", true, inRoot, &created)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	for _, p := range []string{"inside/x", "inside/y", "new/dir/z"} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || !st.IsDir() {
			t.Errorf("%s not made inside the root: %v", p, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "new/file")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("file mount point: %v", err)
	}
	want := []string{"/abs/x", "/rel/y", "/new", "/new/dir", "/new/dir/z", "/new/file"}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created = %q, want %q", created, want)
	}

	for _, p := range []string{"/host/h", "/magic/m"} {
		if _, err := makeIn(rootFD, p, false, inRoot, &created); err == nil {
			t.Errorf("makeIn %s through a link out of the root succeeded", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("makeIn created %v outside the root", ents)
	}
	if _, err := makeIn(rootFD, "/abs", false, noSymlinks, &created); !errors.Is(err, unix.ELOOP) {
		t.Errorf("noSymlinks on a symlink: %v, want ELOOP", err)
	}
}

func TestParseVolumeIdmap(t *testing.T) {
	v, err := ParseVolume("/srv/data:/data:idmap")
	if err != nil || !v.Idmap || !v.ReadOnly || v.Source != "/srv/data" || v.Dest != "/data" {
		t.Errorf("ParseVolume idmap: %+v, %v; want an idmapped read-only volume", v, err)
	}
	if _, err := ParseVolume("/a:/b:ro,idmap"); err != nil {
		t.Errorf("ro,idmap: %v", err)
	}
	if _, err := ParseVolume("/a:/b:idmapped"); err == nil {
		t.Error("an unknown option was accepted")
	}
}

// --force never takes Enter into a namespace known to be the host's. The
// check reads a fake proc that says so; the call runs on a thread of its
// own in a new mount namespace, so that a regression changes nothing real.
func TestForceNeverPivotsTheHostNS(t *testing.T) {
	testutil.RequireRoot(t)
	proc := fakeProc(t, true, true)
	os.WriteFile(filepath.Join(proc, "self/uid_map"), []byte("0 0 4294967295\n"), 0o644)
	done := make(chan error, 1)
	go func() {
		// Left locked: the thread, in its own mount namespace, ends with
		// the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- err
			return
		}
		_, err := Enter(&Config{Rootfs: t.TempDir(), Force: true, Proc: proc}, func() error { return nil })
		done <- err
	}()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "refusing to change the mounts of the host's mount namespace") {
		t.Errorf("Enter with Force in the host's namespace: %v", err)
	}
}

// newMount closes the filesystem context it opened, when it succeeds and
// when it fails, also where fsopen gives it descriptor 0 (a stage started
// with its standard input closed).
func TestNewMountClosesItsContext(t *testing.T) {
	testutil.RequireRoot(t)
	saved, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Dup3(saved, 0, 0); unix.Close(saved) }()
	leaked := func() bool {
		target, err := os.Readlink("/proc/self/fd/0")
		return err == nil && target == "anon_inode:[fscontext]"
	}
	for _, opts := range [][][2]string{nil, {{"nosuchoption", "x"}}} {
		unix.Close(0)
		fd, err := newMount("tmpfs", 0, opts)
		if err == nil {
			unix.Close(fd)
		}
		if opts == nil && err != nil {
			t.Errorf("newMount tmpfs: %v", err)
		}
		if opts != nil && (err == nil || err.Error() != "mount tmpfs: option nosuchoption=x: invalid argument") {
			t.Errorf("newMount tmpfs with a bad option: %v", err)
		}
		if leaked() {
			t.Errorf("newMount tmpfs, options %q: its filesystem context left open on descriptor 0", opts)
		}
	}
}
