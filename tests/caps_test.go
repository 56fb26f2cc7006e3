package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"barco/lib/testutil"

	"golang.org/x/sys/unix"
)

func capsBin(t *testing.T) string {
	testutil.RequireRoot(t)
	return testutil.Bin(t, "barco-caps")
}

// statusLines picks the given fields of /proc/self/status out of output
// such as `grep` or `cat` prints: "CapEff" -> "00000000a80425fb".
func statusLines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range testutil.Lines(out) {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// printedSets turns barco-caps --print output into the status names:
// "effective 00000000a80425fb cap_chown,..." -> CapEff.
func printedSets(out string) map[string]string {
	names := map[string]string{"bounding": "CapBnd", "permitted": "CapPrm", "effective": "CapEff",
		"inheritable": "CapInh", "ambient": "CapAmb"}
	m := map[string]string{}
	for _, l := range testutil.Lines(out) {
		f := strings.Fields(l)
		if len(f) >= 2 && names[f[0]] != "" {
			m[names[f[0]]] = f[1]
		}
	}
	return m
}

var capNames = []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}

// containerRootfs is a copy of the default rootfs with an account that
// the host does not have, and the capsprobe helper (setuid root) as
// /capsprobe. The copy lives in the test's temporary directory.
func containerRootfs(t *testing.T) string {
	t.Helper()
	dir := testutil.CopyRootfs(t, 0)
	probe := filepath.Join(dir, "capsprobe")
	buildTestdata(t, "capsprobe", probe)
	if err := os.Chmod(probe, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "etc/passwd"), "boxuser:x:4321:4322::/:/bin/sh\n")
	appendFile(t, filepath.Join(dir, "etc/group"), "boxgroup:x:4322:\nboxextra:x:4400:boxuser\n")
	return dir
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// buildTestdata builds the helper tests/testdata/NAME, static, as path.
func buildTestdata(t *testing.T, name, path string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "build", "-o", path, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v: %s", name, err, out)
	}
}

// inChain runs barco-caps with capsArgs, then program, in the standard
// chain: barco-ns (with a user namespace if userns), barco-mount into
// rootfs, barco-caps carried across pivot_root.
func inChain(t *testing.T, rootfs string, userns bool, capsArgs []string, program ...string) testutil.Result {
	t.Helper()
	args := []string{testutil.Bin(t, "barco-ns"), "-m", "-p", "-n"}
	if userns {
		args = append(args, "-U")
	}
	testutil.Bin(t, "barco-mount")
	args = append(args, "--", "barco-mount", "--rootfs", rootfs, "--", "barco-caps")
	args = append(append(args, capsArgs...), "--")
	return testutil.Run(t, nil, append(args, program...)...)
}

func TestCapsDefaultSets(t *testing.T) {
	caps := capsBin(t)
	r := testutil.Run(t, nil, caps, "--", "cat", "/proc/self/status")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	got := statusLines(r.Stdout)
	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb",
		"CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000", "NoNewPrivs": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// The sets --print announces are the ones PROGRAM finds in
// /proc/self/status, on the host and in a container with a user namespace.
func TestCapsPrintMatchesStatus(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		caps := capsBin(t)
		rootfs := containerRootfs(t)
		cases := [][]string{
			{},
			{"--cap-add", "sys_admin,NET_ADMIN"},
			{"--cap-drop", "all", "--cap-add", "CAP_NET_RAW"},
			{"--caps", "none"},
			{"--caps", "all", "--cap-drop", "sys_admin"},
			{"--ambient", "net_bind_service"},
			{"--user", "nobody"},
			{"--user", "nobody", "--cap-add", "net_bind_service"},
			{"--user", "65534:65534", "--caps", "kill,chown", "--ambient", "sys_time"},
		}
		for _, opts := range cases {
			name := strings.Join(opts, " ")
			pr := testutil.Run(t, nil, append([]string{caps, "--print"}, opts...)...)
			if pr.Code != 0 {
				t.Errorf("%s --print: status %d: %s", name, pr.Code, pr.Stderr)
				continue
			}
			want := printedSets(pr.Stdout)
			r := testutil.Run(t, nil, append(append([]string{caps}, opts...), "--", "cat", "/proc/self/status")...)
			if r.Code != 0 {
				t.Errorf("%s: status %d: %s", name, r.Code, r.Stderr)
				continue
			}
			got := statusLines(r.Stdout)
			for _, k := range capNames {
				if got[k] != want[k] || want[k] == "" {
					t.Errorf("host, %s: %s = %q, --print said %q", name, k, got[k], want[k])
				}
			}
			cp := inChain(t, rootfs, true, append([]string{"--print"}, opts...))
			c := inChain(t, rootfs, true, opts, "cat", "/proc/self/status")
			if cp.Code != 0 || c.Code != 0 {
				t.Errorf("container, %s: status %d and %d: %s %s", name, cp.Code, c.Code, cp.Stderr, c.Stderr)
				continue
			}
			want, got = printedSets(cp.Stdout), statusLines(c.Stdout)
			for _, k := range capNames {
				if got[k] != want[k] || want[k] == "" {
					t.Errorf("container, %s: %s = %q, --print said %q", name, k, got[k], want[k])
				}
			}
		}
	})
}

func TestCapsUserNobody(t *testing.T) {
	capsBin(t)
	rootfs := containerRootfs(t)
	// The rootfs's nobody is 65534:65534 (nogroup) and in no other group.
	want := map[string]string{"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534",
		"Groups": "65534", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "CapBnd": "00000000a80425fb"}
	for _, userns := range []bool{false, true} {
		r := inChain(t, rootfs, userns, []string{"--user", "nobody"}, "cat", "/proc/self/status")
		if r.Code != 0 {
			t.Fatalf("userns %v: status %d: %s", userns, r.Code, r.Stderr)
		}
		got := statusLines(r.Stdout)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("userns %v: %s = %q, want %q", userns, k, got[k], v)
			}
		}
	}
}

// Names come from the container's /etc/passwd and /etc/group, which the
// host does not share.
func TestCapsNamesFromContainer(t *testing.T) {
	caps := capsBin(t)
	rootfs := containerRootfs(t)
	if r := testutil.Run(t, nil, caps, "--user", "boxuser", "--", "true"); r.Code != 125 ||
		!strings.Contains(r.Stderr, "user boxuser: not found in /etc/passwd") {
		t.Errorf("boxuser on the host: status %d, %q; want 125 and not found", r.Code, r.Stderr)
	}
	for _, userns := range []bool{false, true} {
		r := inChain(t, rootfs, userns, []string{"--user", "boxuser", "--groups", "boxgroup"}, "cat", "/proc/self/status")
		if r.Code != 0 {
			t.Fatalf("userns %v: status %d: %s", userns, r.Code, r.Stderr)
		}
		got := statusLines(r.Stdout)
		if got["Uid"] != "4321 4321 4321 4321" || got["Gid"] != "4322 4322 4322 4322" || got["Groups"] != "4322 4400" {
			t.Errorf("userns %v: Uid %q Gid %q Groups %q; want 4321, 4322, \"4322 4400\"", userns, got["Uid"], got["Gid"], got["Groups"])
		}
	}
}

func TestCapsBindLowPort(t *testing.T) {
	capsBin(t)
	rootfs := containerRootfs(t)
	r := inChain(t, rootfs, true, []string{"--user", "nobody"}, "/capsprobe", "bind", "127.0.0.1:80")
	if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") {
		t.Errorf("nobody without net_bind_service bound port 80: status %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = inChain(t, rootfs, true, []string{"--cap-add", "net_bind_service", "--user", "nobody"}, "/capsprobe", "bind", "127.0.0.1:80")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "bound" {
		t.Errorf("nobody with net_bind_service: status %d, %q %q; want bound", r.Code, r.Stdout, r.Stderr)
	}
}

func TestCapsNoMountWithoutSysAdmin(t *testing.T) {
	capsBin(t)
	rootfs := containerRootfs(t)
	for _, userns := range []bool{false, true} {
		r := inChain(t, rootfs, userns, nil, "mount", "-t", "tmpfs", "box", "/tmp")
		if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") {
			t.Errorf("userns %v: mount with Docker's default set: status %d, %q; want permission denied", userns, r.Code, r.Stderr)
		}
		r = inChain(t, rootfs, userns, []string{"--cap-add", "sys_admin"}, "mount", "-t", "tmpfs", "box", "/tmp")
		if r.Code != 0 {
			t.Errorf("userns %v: mount with sys_admin: status %d: %s", userns, r.Code, r.Stderr)
		}
	}
}

func TestCapsNoNewPrivs(t *testing.T) {
	caps := capsBin(t)
	r := testutil.Run(t, nil, caps, "--no-new-privs", "--", "grep", "NoNewPrivs", "/proc/self/status")
	if got := statusLines(r.Stdout)["NoNewPrivs"]; r.Code != 0 || got != "1" {
		t.Errorf("--no-new-privs: NoNewPrivs %q (status %d, %s)", got, r.Code, r.Stderr)
	}
	// A setuid-root binary in the rootfs makes nobody root, unless
	// no_new_privs is set.
	rootfs := containerRootfs(t)
	r = inChain(t, rootfs, false, []string{"--user", "nobody"}, "/capsprobe", "ids")
	if strings.TrimSpace(r.Stdout) != "uid=65534 euid=0" {
		t.Fatalf("setuid probe without no_new_privs: %q (status %d, %s); the test needs the setuid bit to work", r.Stdout, r.Code, r.Stderr)
	}
	r = inChain(t, rootfs, false, []string{"--no-new-privs", "--user", "nobody"}, "/capsprobe", "ids")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "uid=65534 euid=65534" {
		t.Errorf("setuid probe under no_new_privs: %q (status %d, %s); want euid=65534", r.Stdout, r.Code, r.Stderr)
	}
}

func TestCapsErrors(t *testing.T) {
	caps := capsBin(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--cap-add", "net_foo", "true"}, `barco-caps: option --cap-add: unknown capability "net_foo"`},
		{[]string{"--caps", "chown,,bogus", "true"}, `barco-caps: option --caps: unknown capability "bogus"`},
		{[]string{"--user", "no-such-user", "true"}, "barco-caps: user no-such-user: not found in /etc/passwd"},
		{[]string{"--user", "nobody:no-such-group", "true"}, "barco-caps: group no-such-group: not found in /etc/group"},
		{[]string{"--groups", "root,no-such-group", "true"}, "barco-caps: group no-such-group: not found in /etc/group"},
		{[]string{"--cap-add", "kill", "--cap-drop", "KILL", "true"}, "barco-caps: capability cap_kill: both added and dropped"},
		{[]string{"--frobnicate", "true"}, "barco-caps: option --frobnicate: unknown option"},
		{[]string{"--user"}, "barco-caps: option --user: needs an argument"},
		{[]string{"--user", "nobody"}, "barco-caps: no PROGRAM given"},
		// The inner barco-caps runs with Docker's default set only.
		{[]string{"--", caps, "--cap-add", "net_admin", "true"}, "barco-caps: capability cap_net_admin: not in the caller's bounding set"},
		{[]string{"--cap-drop", "setpcap", "--", caps, "--caps", "none", "true"}, "barco-caps: drop cap_chown"},
	}
	for _, c := range cases {
		r := testutil.Run(t, nil, append([]string{caps}, c.args...)...)
		lines := testutil.Lines(r.Stderr)
		if r.Code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
			t.Errorf("barco-caps %q: status %d, stderr %q; want 125 and %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
	if r := testutil.Run(t, nil, caps, "--", "/no/such/program"); r.Code != 127 {
		t.Errorf("missing program: status %d, want 127", r.Code)
	}
}

// The examples in --help run as printed.
// In a user namespace whose setgroups is denied (unshare -r maps root
// as an unprivileged user would), --user leaves the groups it implies as
// they are, as runc does; groups asked for with --groups are an error
// that says why.
func TestCapsSetgroupsDenied(t *testing.T) {
	caps := capsBin(t)
	r := testutil.Run(t, nil, "unshare", "-U", "-r", caps, "--user", "0:0", "--", "/bin/sh", "-c", "cat /proc/self/setgroups; id -u; id -G")
	if r.Code != 0 || r.Stdout != "deny\n0\n0\n" {
		t.Errorf("--user 0:0: status %d, stdout %q, stderr %q; want 0 and deny, uid 0, groups 0", r.Code, r.Stdout, r.Stderr)
	}
	r = testutil.Run(t, nil, "unshare", "-U", "-r", caps, "--user", "0:0", "--groups", "0", "--", "true")
	want := "barco-caps: setgroups [0]: operation not permitted (setgroups is denied in this user namespace"
	if lines := testutil.Lines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Errorf("--groups 0: status %d, stderr %q; want 125 and %q", r.Code, r.Stderr, want)
	}
}

func TestCapsHelpExamples(t *testing.T) {
	caps := capsBin(t)
	r := testutil.Run(t, nil, caps, "--help")
	_, examples, ok := strings.Cut(r.Stdout, "Example:\n")
	if r.Code != 0 || !ok {
		t.Fatalf("--help: status %d, no Example section:\n%s", r.Code, r.Stdout)
	}
	path := "PATH=" + filepath.Dir(caps) + ":" + os.Getenv("PATH")
	for _, line := range testutil.Lines(examples) {
		if e := testutil.Run(t, []string{path}, "sh", "-c", line); e.Code != 0 || e.Stdout == "" {
			t.Errorf("example %q: status %d, stdout %q, stderr %q", line, e.Code, e.Stdout, e.Stderr)
		}
	}
}

// The kernel clears the parent-death signal on a change of uid and keeps
// it across exec only from the thread that holds it; the container must
// still die with barco-ns, also after barco-mount.
func TestCapsContainerDiesWithBarcoNS(t *testing.T) {
	caps := capsBin(t)
	rootfs := containerRootfs(t)
	mount := []string{"barco-mount", "--rootfs", rootfs, "--"}
	for _, c := range []struct {
		mount bool
		opts  []string
	}{
		{false, nil}, {false, []string{"--user", "nobody"}}, {false, []string{"--user", "nobody", "--cap-add", "net_bind_service"}},
		{true, nil}, {true, []string{"--user", "nobody"}},
	} {
		opts := c.opts
		args := []string{testutil.Bin(t, "barco-ns"), "-p", "-m", "-U", "--"}
		if c.mount {
			args = append(args, mount...)
		}
		args = append(append(append(args, filepath.Base(caps)), opts...), "--", "sh", "-c", "echo ready; exec sleep 1000")
		cmd := exec.Command(args[0], args[1:]...)
		startReady(t, cmd)
		children := childrenOf(cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("mount %v, %q: children of barco-ns: %q", c.mount, opts, children)
		}
		pid, _ := strconv.Atoi(children[0])
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(testutil.Timeout.Milliseconds()))
		for err == unix.EINTR {
			n, err = unix.Poll(fds, int(testutil.Timeout.Milliseconds()))
		}
		unix.Close(pidfd)
		if n != 1 {
			unix.Kill(pid, unix.SIGKILL)
			t.Errorf("mount %v, %q: the container's process %d outlived barco-ns (poll %d, %v)", c.mount, opts, pid, n, err)
		}
	}
}
