package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/testutil"
)

// Docker's default capabilities, in setpriv's spelling.
const dockerCaps = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid," +
	"+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write"

// seccompProbe builds tests/testdata/seccomp-probe, a static program that
// makes harmless syscalls and prints what each returned.
func seccompProbe(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "seccomp-probe")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/seccomp-probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build seccomp-probe: %v\n%s", err, b)
	}
	return out
}

// seccompChain runs script with sh inside new mount, pid and network namespaces
// (barco-ns), with /proc mounted on the rootfs, the bounding set reduced to
// caps (setpriv, standing in for barco-caps), then barco-seccomp with its
// args, then script. ROOTFS and PROBE are set for the script.
func seccompChain(t *testing.T, caps string, seccompArgs []string, script string) testutil.Result {
	t.Helper()
	testutil.RequireRoot(t)
	rootfs := testutil.Rootfs(t)
	argv := []string{testutil.Bin(t, "barco-ns"), "-m", "-p", "-n", "--",
		"sh", "-c", `mount --make-rprivate / && mount -t proc proc "$ROOTFS/proc" && exec "$@"`, "sh",
		"setpriv", "--bounding-set", caps, "--", testutil.Bin(t, "barco-seccomp")}
	argv = append(argv, seccompArgs...)
	argv = append(argv, "--", "sh", "-c", script)
	return testutil.Run(t, []string{"ROOTFS=" + rootfs, "PROBE=" + seccompProbe(t)}, argv...)
}

// What Docker's default profile blocks is blocked, with EPERM; the control
// run without a filter shows the same calls work with the same
// capabilities, so the filter is what blocks them.
func TestSeccompDefaultBlocksWhatDockerBlocks(t *testing.T) {
	const script = `grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t' | tr : ' '
$PROBE add_key keyctl clone-newuser socket-inet socket-alg reboot mount-tmpfs statmount
unshare -U true; echo "unshare-U $?"`
	r := seccompChain(t, dockerCaps, nil, script)
	if r.Code != 0 {
		t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
	}
	got := testutil.KeyValues(r.Stdout, " ")
	want := map[string]string{
		"Seccomp": "2", "NoNewPrivs": "1",
		"add_key": "EPERM", "keyctl": "EPERM", "clone-newuser": "EPERM", "socket-alg": "EPERM",
		"reboot": "EPERM", "mount-tmpfs": "EPERM", "unshare-U": "1",
		"socket-inet": "ok",
		"statmount":   "ENOSYS", // newer than the profile knows
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q\nstdout:\n%sstderr:\n%s", k, got[k], v, r.Stdout, r.Stderr)
		}
	}
	if !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("unshare -U did not say EPERM: %s", r.Stderr)
	}

	r = seccompChain(t, dockerCaps, []string{"--profile", "unconfined"}, script)
	got = testutil.KeyValues(r.Stdout, " ")
	for k, v := range map[string]string{"Seccomp": "0", "add_key": "ok", "keyctl": "ok", "clone-newuser": "ok", "unshare-U": "0"} {
		if got[k] != v {
			t.Errorf("unconfined: %s: %q, want %q\nstdout:\n%sstderr:\n%s", k, got[k], v, r.Stdout, r.Stderr)
		}
	}
}

// Everyday programs work under the default profile, with Docker's
// capabilities: a shell, ls, cat, ps, and an HTTP fetch over loopback.
func TestSeccompDefaultEverydayPrograms(t *testing.T) {
	r := seccompChain(t, dockerCaps, nil, `exec chroot "$ROOTFS" /bin/sh -c '
set -e
ls /bin/busybox
cat /etc/hostname
ps -o pid,comm | grep -q " ps$" && echo ps-ok
httpd -p 127.0.0.1:8080 -h /
wget -q -O - http://127.0.0.1:8080/etc/hostname | sed s/^/fetched-/
'`)
	if r.Code != 0 {
		t.Fatalf("status %d\nstdout:\n%sstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	want := []string{"/bin/busybox", "barco", "ps-ok", "fetched-barco"}
	if got := testutil.Lines(r.Stdout); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("output %q, want %q; stderr %s", got, want, r.Stderr)
	}
}

// With CAP_SYS_ADMIN kept, the group it unlocks is allowed again.
func TestSeccompDefaultCapSysAdminAllowsMount(t *testing.T) {
	r := seccompChain(t, dockerCaps+",+sys_admin", nil,
		`$PROBE mount-tmpfs clone-newuser; chroot "$ROOTFS" /bin/sh -c 'mount -t tmpfs none /tmp && grep -c " /tmp tmpfs" /proc/mounts'`)
	if r.Code != 0 {
		t.Fatalf("status %d\nstdout:\n%sstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	got := testutil.KeyValues(r.Stdout, " ")
	if got["mount-tmpfs"] != "ok" || got["clone-newuser"] != "ok" || !strings.HasSuffix(r.Stdout, "1\n") {
		t.Errorf("with CAP_SYS_ADMIN:\n%s", r.Stdout)
	}
}

func TestSeccompCustomProfileDeniesMkdir(t *testing.T) {
	testutil.RequireRoot(t)
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	err := os.WriteFile(profile, []byte(`{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
  ]
}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "made")
	r := testutil.Run(t, nil, testutil.Bin(t, "barco-seccomp"), "--profile", profile, "--",
		"/bin/busybox", "mkdir", dir)
	if r.Code != 1 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("mkdir under the profile: status %d, stderr %q; want 1 and Permission denied", r.Code, r.Stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s was made", dir)
	}
}

// PROGRAM is looked up in PATH once, before the filter: a profile that
// denies the lookup's system calls (stat, access) does not keep PROGRAM
// from starting, as with runc, in barco run's chain and in barco-seccomp
// alone.
func TestSeccompProfileNeedNotAllowTheLookup(t *testing.T) {
	testutil.RequireRoot(t)
	profile := filepath.Join(t.TempDir(), "no-stat.json")
	err := os.WriteFile(profile, []byte(`{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["newfstatat", "statx", "faccessat", "faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
  ]
}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bothStageModes(t, func(t *testing.T) {
		r := testutil.Run(t, nil, barcoBin(t), "run", "--seccomp", profile, "--", "echo", "started")
		if r.Code != 0 || r.Stdout != "started\n" {
			t.Errorf("barco run --seccomp (no stat, no access) -- echo started: %q, status %d, %s", r.Stdout, r.Code, r.Stderr)
		}
	})
	r := testutil.Run(t, []string{"PATH=/usr/bin:/bin"}, testutil.Bin(t, "barco-seccomp"), "--profile", profile, "--", "busybox", "true")
	if r.Code != 0 {
		t.Errorf("barco-seccomp --profile (no stat, no access) -- busybox true: status %d, %s", r.Code, r.Stderr)
	}
	// A missing PROGRAM is still reported as missing.
	r = testutil.Run(t, nil, barcoBin(t), "run", "--seccomp", profile, "--", "no-such-program")
	if r.Code != 127 || !strings.Contains(r.Stderr, "no-such-program") {
		t.Errorf("barco run --seccomp -- no-such-program: status %d, %q; want 127 naming it", r.Code, r.Stderr)
	}
}

func TestSeccompPrint(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.Bin(t, "barco-seccomp")
	r := testutil.Run(t, nil, "setpriv", "--bounding-set", dockerCaps, "--", bin, "--print")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	lines := testutil.Lines(r.Stdout)
	for _, want := range []string{"default errno EPERM", "read allow", "clone allow if arg0&0x7e020000 == 0x0", "clone3 errno ENOSYS", "personality allow if arg0 == 0x0"} {
		if !contains(lines, want) {
			t.Errorf("--print lacks %q", want)
		}
	}
	if contains(lines, "mount allow") {
		t.Errorf("--print without CAP_SYS_ADMIN allows mount")
	}
	r = testutil.Run(t, nil, bin, "--print")
	if !contains(testutil.Lines(r.Stdout), "mount allow") {
		t.Errorf("--print with CAP_SYS_ADMIN does not allow mount")
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestSeccompUnconfinedSaysSo(t *testing.T) {
	testutil.RequireRoot(t)
	r := testutil.Run(t, []string{"BARCO_DEBUG=1"}, testutil.Bin(t, "barco-seccomp"), "--profile", "unconfined", "--",
		"grep", "Seccomp:", "/proc/self/status")
	if r.Code != 0 || !strings.Contains(r.Stderr, "unconfined: no filter is loaded") || strings.Fields(r.Stdout)[1] != "0" {
		t.Errorf("status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// Bad input: one line naming the stage, exit 125, nothing loaded (the
// program does not run).
func TestSeccompErrors(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.Bin(t, "barco-seccomp")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ profile, want string }{
		{filepath.Join(dir, "missing.json"), "read profile: open " + dir + "/missing.json: no such file or directory"},
		{write("syntax.json", "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n  \"syscalls\": []\n}"), "syntax.json: line 3 column 3: invalid character"},
		{write("action.json", `{"defaultAction": "SCMP_ACT_MAYBE"}`), `unknown action "SCMP_ACT_MAYBE"`},
		{write("op.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_SORTOF"}]}]}`), `unknown operator "SCMP_CMP_SORTOF"`},
		{write("arch.json", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}`), `unknown architecture "SCMP_ARCH_PDP11"`},
	}
	for _, c := range cases {
		r := testutil.Run(t, nil, bin, "--profile", c.profile, "--", "echo", "ran")
		lines := testutil.Lines(r.Stderr)
		if r.Code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "barco-seccomp: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("--profile %s: status %d, stderr %q; want 125 and one line with %q", c.profile, r.Code, r.Stderr, c.want)
		}
		if r.Stdout != "" {
			t.Errorf("--profile %s: program ran: %q", c.profile, r.Stdout)
		}
	}
	if r := testutil.Run(t, nil, bin, "--", "no-such-program"); r.Code != 127 {
		t.Errorf("missing program: status %d, want 127 (%s)", r.Code, r.Stderr)
	}
}

// The binary is static and runs in the busybox rootfs, which has no libc.
func TestSeccompRunsWithoutLibc(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := testutil.Rootfs(t)
	bin := testutil.Bin(t, "barco-seccomp")
	dir := filepath.Join(rootfs, "tmp", "seccomp-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "barco-seccomp"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := testutil.Run(t, nil, "chroot", rootfs, "/tmp/seccomp-test-bin/barco-seccomp", "--", "/bin/sh", "-c", "grep Seccomp: /proc/self/status || echo no-proc")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
}

// Each action does what the kernel documents, with busybox as the victim.
func TestSeccompActions(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "actions.json")
	err := os.WriteFile(profile, []byte(`{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["no_such_call", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_TRACE"},
    {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
    {"names": ["getcwd"], "action": "SCMP_ACT_LOG"}
  ]
}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.Bin(t, "barco-seccomp")
	run := func(args ...string) testutil.Result {
		return testutil.Run(t, []string{"BARCO_DEBUG=1"}, append([]string{bin, "--profile", profile, "--", "/bin/busybox"}, args...)...)
	}
	r := run("mkdir", filepath.Join(dir, "x"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("errno 13: status %d, stderr %q", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "syscall no_such_call: unknown to libseccomp") {
		t.Errorf("unknown syscall not named under BARCO_DEBUG: %q", r.Stderr)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := run("rmdir", filepath.Join(dir, "d")); r.Code != 1 || !strings.Contains(r.Stderr, "Function not implemented") {
		t.Errorf("trace without a tracer: status %d, stderr %q; want ENOSYS", r.Code, r.Stderr)
	}
	if r := run("sync"); r.Code != 128+31 {
		t.Errorf("kill-process: status %d, want %d (SIGSYS)", r.Code, 128+31)
	}
	if r := run("uname"); r.Code != 128+31 {
		t.Errorf("trap: status %d, want %d (SIGSYS)", r.Code, 128+31)
	}
	if r := run("pwd"); r.Code != 0 {
		t.Errorf("log: status %d, stderr %q; want the call allowed", r.Code, r.Stderr)
	}
}

// Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter;
// with it, the filter loads and no_new_privs stays off.
func TestSeccompAllowNewPrivs(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.Bin(t, "barco-seccomp")
	r := testutil.Run(t, nil, bin, "--allow-new-privs", "--", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status")
	if r.Code != 0 || strings.Join(strings.Fields(r.Stdout), " ") != "NoNewPrivs: 0 Seccomp: 2" {
		t.Errorf("with CAP_SYS_ADMIN: status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testutil.Run(t, nil, "setpriv", "--bounding-set", dockerCaps, "--", bin, "--allow-new-privs", "--", "echo", "ran")
	if r.Code != 125 || r.Stdout != "" || !strings.Contains(r.Stderr, "needs CAP_SYS_ADMIN") {
		t.Errorf("without CAP_SYS_ADMIN: status %d, stdout %q, stderr %q; want 125 and a hint", r.Code, r.Stdout, r.Stderr)
	}
}

// The real chain, barco-ns, barco-mount, then barco-seccomp carried across
// pivot_root; the probe comes in through a volume. Root
// keeps all its capabilities here (barco-caps is not in the chain), so
// only what Docker blocks whatever the capabilities is checked.
func TestSeccompInRealChain(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		testutil.RequireRoot(t)
		probe := seccompProbe(t)
		r := testutil.Run(t, nil, testutil.Bin(t, "barco-ns"), "-m", "-p", "-n", "--",
			testutil.Bin(t, "barco-mount"), "--rootfs", testutil.CopyRootfs(t, 0), "-v", filepath.Dir(probe)+":/probe:ro", "--",
			"barco-seccomp", "--",
			"/bin/sh", "-c", `grep Seccomp: /proc/self/status | tr -d '\t' | tr : ' '
	/probe/seccomp-probe add_key keyctl socket-alg socket-inet
	httpd -p 127.0.0.1:8080 -h /
	wget -q -O - http://127.0.0.1:8080/etc/hostname | sed s/^/fetched-/
	ps -o comm | grep -q ^ps && echo ps ok`)
		if r.Code != 0 {
			t.Fatalf("status %d\nstdout:\n%sstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
		got := testutil.KeyValues(r.Stdout, " ")
		for k, v := range map[string]string{"Seccomp": "2", "add_key": "EPERM", "keyctl": "EPERM", "socket-alg": "EPERM", "socket-inet": "ok", "ps": "ok"} {
			if got[k] != v {
				t.Errorf("%s: %q, want %q\nstdout:\n%sstderr:\n%s", k, got[k], v, r.Stdout, r.Stderr)
			}
		}
		if !contains(testutil.Lines(r.Stdout), "fetched-barco") {
			t.Errorf("wget over loopback failed\nstdout:\n%sstderr:\n%s", r.Stdout, r.Stderr)
		}
	})
}

// The whole chain, with barco-caps giving Docker's capabilities: what
// Docker blocks is blocked, and kept CAP_SYS_ADMIN unlocks mount again.
func TestSeccompAfterBarcoCaps(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		testutil.RequireRoot(t)
		probe := seccompProbe(t)
		run := func(capsArgs []string, script string) testutil.Result {
			argv := []string{testutil.Bin(t, "barco-ns"), "-m", "-p", "-n", "--",
				testutil.Bin(t, "barco-mount"), "--rootfs", testutil.CopyRootfs(t, 0), "-v", filepath.Dir(probe) + ":/probe:ro", "--",
				"barco-caps"}
			argv = append(append(argv, capsArgs...), "--", "barco-seccomp", "--", "/bin/sh", "-c", script)
			return testutil.Run(t, nil, argv...)
		}
		r := run(nil, `grep Seccomp: /proc/self/status | tr -d '\t' | tr : ' '
	/probe/seccomp-probe add_key keyctl clone-newuser mount-tmpfs reboot statmount
	unshare -U true 2>/dev/null; echo "unshare-U $?"`)
		if r.Code != 0 {
			t.Fatalf("status %d\nstdout:\n%sstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
		got := testutil.KeyValues(r.Stdout, " ")
		for k, v := range map[string]string{"Seccomp": "2", "add_key": "EPERM", "keyctl": "EPERM", "clone-newuser": "EPERM",
			"mount-tmpfs": "EPERM", "reboot": "EPERM", "statmount": "ENOSYS", "unshare-U": "1"} {
			if got[k] != v {
				t.Errorf("%s: %q, want %q\nstdout:\n%sstderr:\n%s", k, got[k], v, r.Stdout, r.Stderr)
			}
		}
		r = run([]string{"--cap-add", "sys_admin"}, `mount -t tmpfs none /mnt && grep -c " /mnt tmpfs" /proc/mounts`)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1" {
			t.Errorf("with CAP_SYS_ADMIN kept: status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
}
