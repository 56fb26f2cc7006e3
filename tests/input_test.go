package tests

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"barco/lib/cgroup"
	"barco/lib/testutil"
)

// leftovers is what a run of barco may leave on the host: the cgroups
// below this test run's parent, the mounts, the processes that carry a
// marker variable.
type leftovers struct {
	cgroups []string // and their records in /run/barco
	mounts  string
}

func snapshot(t *testing.T) leftovers {
	t.Helper()
	var l leftovers
	for _, p := range barcoParentsList() {
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if e.IsDir() {
				l.cgroups = append(l.cgroups, filepath.Join(p, e.Name()))
			}
		}
	}
	records, _ := os.ReadDir(cgroup.DefaultRecordDir)
	for _, r := range records {
		if dir, err := hex.DecodeString(r.Name()); err == nil && strings.Contains(string(dir), "/"+testParent+"/") {
			l.cgroups = append(l.cgroups, "record of "+string(dir))
		}
	}
	sort.Strings(l.cgroups)
	l.mounts = hostMounts(t)
	return l
}

func barcoParentsList() []string {
	var list []string
	for p := range barcoParents() {
		list = append(list, p)
	}
	return list
}

// nothingLeft fails t if the host has more than before: a cgroup, a
// mount, a process with the marker (if not "").
func nothingLeft(t *testing.T, before leftovers, marker string) {
	t.Helper()
	after := snapshot(t)
	if strings.Join(after.cgroups, " ") != strings.Join(before.cgroups, " ") {
		t.Errorf("cgroups left: before %q, after %q", before.cgroups, after.cgroups)
	}
	if after.mounts != before.mounts {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", before.mounts, after.mounts)
	}
	if marker != "" {
		noProcessWithEnv(t, marker)
	}
}

// Bad input to barco run is one line on stderr, naming what was typed,
// status 125, and nothing left behind, whichever stage would have met it.
func TestBarcoBadInput(t *testing.T) {
	bin := barcoBin(t)
	dir := testutil.SearchableTempDir(t)
	profile := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string // the start of the line
	}{
		{[]string{"--memory", "1"}, `barco run: option --memory: "1": below the minimum memory limit, 6M`},
		{[]string{"--memory", "4k"}, `barco run: option --memory: "4k": below the minimum`},
		{[]string{"--memory", "128k"}, `barco run: option --memory: "128k": below the minimum`},
		{[]string{"--memory", "256k"}, `barco run: option --memory: "256k": below the minimum`},
		{[]string{"--memory", "-1"}, `barco run: option --memory: not a size in bytes: "-1"`},
		{[]string{"--preserve-fds", "100"}, "barco run: --preserve-fds 100: descriptor 3 is not open"},
		{[]string{"-v", "/etc"}, `barco run: option -v: "/etc": want SRC:DST[:ro]`},
		{[]string{"--volume", "/no/such/dir:/mnt"}, "barco run: --volume /no/such/dir:/mnt: stat /no/such/dir: no such file or directory"},
		{[]string{"--name", "two\nlines"}, `barco run: option --name: "two\nlines": not a name`},
		{[]string{"--hostname", "x", "--name", strings.Repeat("n", 300)}, `barco run: option --name: "nnn`},
		{[]string{"--name", strings.Repeat("n", 65)}, "barco run: --name " + strings.Repeat("n", 65) + ": not a hostname (1 to 64 characters)"},
		{[]string{"--seccomp", profile}, "barco run: option --seccomp: " + profile + `: unknown field "syscals"`},
		{[]string{"--security-opt", "seccomp=/no/such.json"}, "barco run: option --security-opt: open /no/such.json: no such file or directory"},
		{[]string{"--tmpfs", "/t:size=big"}, `barco run: option --tmpfs: "/t:size=big": bad option "size=big"`},
		{[]string{"--cap-add", "sys_bogus"}, `barco run: option --cap-add: unknown capability "sys_bogus"`},
		{[]string{"--userns", "0:100000"}, `barco run: option --userns: id map "0:100000": want CONTAINER:HOST:SIZE`},
		{[]string{"--pids-limit", "-3"}, `barco run: option --pids-limit: not a number of tasks: "-3"`},
	} {
		marker := "BT_TEST_MARKER=bad-input"
		before := snapshot(t)
		r := testutil.Run(t, nil, append(append([]string{bin, "run", "-e", marker}, c.args...), "--", "/bin/echo", "ran")...)
		if r.Code != 125 || len(testutil.Lines(r.Stderr)) != 1 || !strings.HasPrefix(r.Stderr, c.want) || r.Stdout != "" {
			t.Errorf("barco run %q: status %d, stdout %q, stderr %q; want 125 and one line %q...", c.args, r.Code, r.Stdout, r.Stderr, c.want)
		}
		nothingLeft(t, before, marker)
	}
}

// A stage that cannot start is the chain's failure, 125, with its cause:
// 126 and 127 are PROGRAM's. Stages given a descriptor to keep that is not
// open say which.
func TestStageThatCannotStartIs125(t *testing.T) {
	bin := barcoBin(t)
	env := []string{"BARCO_PRESERVE_FDS=100"}
	for _, argv := range [][]string{
		{testutil.Bin(t, "barco-ns"), "-m", "-p", "--", "barco-mount", "--rootfs", testutil.Rootfs(t), "--", "/bin/true"},
		{testutil.Bin(t, "barco-cgroup"), "--", "barco-ns", "-m", "-p", "--", "/bin/true"},
	} {
		before := snapshot(t)
		r := testutil.Run(t, env, argv...)
		if r.Code != 125 || len(testutil.Lines(r.Stderr)) != 1 || !strings.Contains(r.Stderr, "BARCO_PRESERVE_FDS=100: descriptor 3 is not open") {
			t.Errorf("%q with %s: status %d, stderr %q", argv[1:], env, r.Code, r.Stderr)
		}
		nothingLeft(t, before, env[0])
	}
	_ = bin
}

// The pids limit counts PROGRAM's tasks, not those of barco's own stages,
// which start in the cgroup and run on several threads each.
func TestBarcoPidsLimitIsPrograms(t *testing.T) {
	bin := barcoBin(t)
	bothStageModes(t, func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--pids-limit", "1", "--", "/bin/echo", "hi"}, "hi\n"},
			{[]string{"--pids-limit", "4", "--", "echo", "hi"}, "hi\n"},
			{[]string{"--pids-limit", "2", "--", "/bin/sh", "-c", "echo $(echo forked)"}, "forked\n"},
			{[]string{"--init", "--pids-limit", "1", "--", "/bin/echo", "hi"}, "hi\n"},
			{[]string{"--init", "--pids-limit", "2", "--", "/bin/sh", "-c", "echo $(echo forked)"}, "forked\n"},
		} {
			r := testutil.Run(t, nil, append([]string{bin, "run"}, c.args...)...)
			if r.Code != 0 || r.Stdout != c.want || r.Stderr != "" {
				t.Errorf("barco run %q: status %d, stdout %q, stderr %q; want %q", c.args, r.Code, r.Stdout, r.Stderr, c.want)
			}
		}
	})
	// And it holds PROGRAM: with 1, its shell cannot fork (and stops).
	r := testutil.Run(t, nil, bin, "run", "--pids-limit", "1", "--", "/bin/sh", "-c", "echo $(echo forked)")
	if r.Stdout != "" || !strings.Contains(r.Stderr, "fork") {
		t.Errorf("--pids-limit 1, a fork: status %d, stdout %q, stderr %q; want the fork refused", r.Code, r.Stdout, r.Stderr)
	}
}

// barco-cgroup's own child counts alone too, though the thread that starts
// it is in the cgroup (v1) while it forks.
func TestCgroupPidsLimitIsPrograms(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	for _, c := range []struct {
		pids, script, want string
	}{
		{"1", "echo alone", "alone\n"},
		{"1", "echo $(echo forked)", ""},
		{"2", "echo $(echo forked)", "forked\n"},
	} {
		r := testutil.Run(t, nil, bin, "--name", name, "--pids", c.pids, "--", "/bin/sh", "-c", c.script)
		// A shell whose fork is refused stops there.
		refused := c.want == "" && strings.Contains(r.Stderr, "fork")
		if (r.Code != 0 && !refused) || r.Stdout != c.want {
			t.Errorf("--pids %s sh -c %q: status %d, stdout %q, stderr %q; want %q", c.pids, c.script, r.Code, r.Stdout, r.Stderr, c.want)
		}
	}
}

// A --rootfs that is a symbolic link is followed on the host, as crun
// does: to a rootfs, or to / (the original's -m /).
func TestBarcoRootfsSymlink(t *testing.T) {
	bin := barcoBin(t)
	dir := testutil.SearchableTempDir(t)
	for target, want := range map[string]string{testutil.Rootfs(t): "/bin/busybox", "/": "/bin/ls"} {
		link := filepath.Join(dir, "link")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t)
		r := testutil.Run(t, nil, bin, "run", "--rootfs", link, "--", "/bin/sh", "-c", "test -e "+want+" && echo found "+want)
		if r.Code != 0 || r.Stdout != "found "+want+"\n" {
			t.Errorf("--rootfs %s -> %s: status %d, stdout %q, stderr %q", link, target, r.Code, r.Stdout, r.Stderr)
		}
		nothingLeft(t, before, "")
		// barco-mount follows it too, for a chain composed by hand.
		r = testutil.Run(t, nil, testutil.Bin(t, "barco-ns"), "-U", "-m", "-p", "--", "barco-mount", "--rootfs", link, "--",
			"/bin/sh", "-c", "test -e "+want+" && echo found "+want)
		if r.Code != 0 || r.Stdout != "found "+want+"\n" {
			t.Errorf("barco-mount --rootfs %s -> %s: status %d, stdout %q, stderr %q", link, target, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// A mount whose target resolves to the container's / (mnt/root -> / in
// the image) would hide the whole root, and vanish under it: refused, and
// nothing is left, in the rootfs either.
func TestBarcoMountOnTheRootRefused(t *testing.T) {
	bin := barcoBin(t)
	rootfs := testutil.CopyRootfs(t, 0)
	if err := os.MkdirAll(filepath.Join(rootfs, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(rootfs, "mnt", "root")); err != nil {
		t.Fatal(err)
	}
	tree, err := listTree(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-v", testutil.SearchableTempDir(t) + ":/mnt/root"}, "barco-mount: volume "},
		{[]string{"--tmpfs", "/mnt/root"}, "barco-mount: tmpfs /mnt/root: "},
		{[]string{"-v", testutil.SearchableTempDir(t) + ":/mnt/root/../root/."}, "barco-mount: volume "},
	} {
		before := snapshot(t)
		r := testutil.Run(t, nil, append(append([]string{bin, "run", "--rootfs", rootfs}, c.args...), "--", "/bin/echo", "ran")...)
		if r.Code != 125 || r.Stdout != "" || len(testutil.Lines(r.Stderr)) != 1 || !strings.HasPrefix(r.Stderr, c.want) ||
			!strings.Contains(r.Stderr, "resolves to the container's / itself") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", c.args, r.Code, r.Stdout, r.Stderr)
		}
		nothingLeft(t, before, "")
		if after, _ := listTree(rootfs); after != tree {
			t.Errorf("%q changed the rootfs:\n%s", c.args, lineDiff(tree, after))
		}
	}
}

// A user namespace that maps every id onto itself looks like the host's
// by its uid_map; barco-mount tells the two apart by the namespace itself.
func TestBarcoIdentityUserNS(t *testing.T) {
	bin := barcoBin(t)
	bothStageModes(t, func(t *testing.T) {
		r := testutil.Run(t, nil, bin, "run", "--userns", "0:0:4294967295", "--", "/bin/sh", "-c", "echo $(cat /proc/self/uid_map) $(readlink /proc/self/ns/user)")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "0 0 4294967295 user:[") || strings.Contains(r.Stdout, "4026531837") {
			t.Errorf("--userns 0:0:4294967295: status %d, stdout %q, stderr %q; want the identity map in a user namespace of its own", r.Code, r.Stdout, r.Stderr)
		}
	})
}

// A --tmpfs is noexec, nosuid and nodev, as Docker's, unless exec is asked.
func TestBarcoTmpfsNoexecByDefault(t *testing.T) {
	script := `cp /bin/busybox /tmp/true && /tmp/true 2>/dev/null && echo exec=allowed || echo exec=refused; grep " /tmp " /proc/mounts | grep -o "nosuid,nodev" `
	for opt, want := range map[string]string{"/tmp": "exec=refused\nnosuid,nodev\n", "/tmp:exec": "exec=allowed\nnosuid,nodev\n"} {
		out := barcoRun(t, "--tmpfs", opt, "--", "/bin/sh", "-c", script)
		if out != want {
			t.Errorf("--tmpfs %s: %q, want %q", opt, out, want)
		}
	}
}

// A seccomp profile from a host file works from barco run, and the chain
// barco chain prints runs the same container when pasted into a shell.
func TestBarcoSeccompHostProfile(t *testing.T) {
	bin := barcoBin(t)
	profile := filepath.Join(testutil.SearchableTempDir(t), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{
	"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
}`), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mkdir /tmp/x 2>/dev/null && echo mkdir=allowed || echo mkdir=denied; grep Seccomp: /proc/self/status | tr -d '\t'`
	want := "mkdir=denied\nSeccomp:2\n"
	for _, opt := range [][]string{{"--seccomp", profile}, {"--security-opt", "seccomp=" + profile}} {
		args := append(append([]string{"--tmpfs", "/tmp"}, opt...), "--", "/bin/sh", "-c", script)
		if out := barcoRun(t, args...); out != want {
			t.Errorf("barco run %q: %q, want %q", opt, out, want)
		}
		chain := testutil.Run(t, nil, append([]string{bin, "chain"}, args...)...)
		if chain.Code != 0 {
			t.Fatalf("barco chain %q: %d %s", opt, chain.Code, chain.Stderr)
		}
		if pasted := testutil.Run(t, nil, "sh", "-c", chain.Stdout); pasted.Code != 0 || pasted.Stdout != want {
			t.Errorf("barco chain %q pasted into sh: status %d, %q, %s; want %q", opt, pasted.Code, pasted.Stdout, pasted.Stderr, want)
		}
	}
	// Without the tmpfs mkdir would be refused anyway (the rootfs is not
	// the container root's): the same script, unconfined, may mkdir.
	if out := barcoRun(t, "--tmpfs", "/tmp", "--seccomp", "unconfined", "--", "/bin/sh", "-c", script); out != "mkdir=allowed\nSeccomp:0\n" {
		t.Errorf("unconfined: %q", out)
	}
}

// barco-cgroup --exec joins the cgroup itself, a Go program on several
// threads: the limit is still PROGRAM's.
func TestCgroupExecPidsLimitIsPrograms(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer removeCgroups(t, name)
	r := testutil.Run(t, nil, bin, "--exec", "--name", name, "--pids", "1", "--", "/bin/echo", "hi")
	if r.Code != 0 || r.Stdout != "hi\n" {
		t.Errorf("--exec --pids 1 echo hi: status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// A chain composed by hand keeps the limit PROGRAM's too, with barco-ns
// linked into barco-cgroup or exec'd into the cgroup beside PROGRAM.
func TestCgroupPidsLimitThroughBarcoNS(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	bothStageModes(t, func(t *testing.T) {
		defer noCgroupLeft(t, name)
		for _, c := range []struct {
			pids   string
			script string
			want   string
		}{
			{"1", "echo alone", "alone\n"},
			{"2", "echo $(echo forked)", "forked\n"},
		} {
			r := testutil.Run(t, nil, bin, "--name", name, "--pids", c.pids, "--", "barco-ns", "-p", "--", "/bin/sh", "-c", c.script)
			if r.Code != 0 || r.Stdout != c.want {
				t.Errorf("--pids %s -- barco-ns -p -- sh -c %q: status %d, stdout %q, stderr %q", c.pids, c.script, r.Code, r.Stdout, r.Stderr)
			}
		}
	})
}
