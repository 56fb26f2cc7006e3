package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"barco/lib/chain"
	"barco/lib/testutil"
)

// rootlessUser is an unprivileged user made for the tests, with copies of
// the binaries and of the default rootfs that it owns, as a user who
// built barco and its image in its own directory has them.
type rootlessUser struct {
	t        *testing.T
	name     string
	uid, gid int
	// subuid is the first id of its subordinate range; 0 for none.
	subuid int
	dir    string // its own: bin/, build/rootfs
}

// newRootlessUser makes a user, with a subordinate uid and gid range of
// 65536 ids or none, and removes it when the test ends, however it ends.
func newRootlessUser(t *testing.T, withRange bool) *rootlessUser {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"useradd", "userdel", "setpriv", "/usr/bin/newuidmap", "/usr/bin/newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/setup installs uidmap): %v", tool, err)
		}
	}
	name := fmt.Sprintf("bxrl%d%x", os.Getpid()%100000, time.Now().UnixNano()&0xffff)
	args := []string{"-M", "-d", "/nonexistent", "-s", "/bin/sh"}
	if withRange {
		// High, out of the way of the ranges other users and barco's
		// root default (100000) have; useradd takes the first free one.
		args = append(args, "-K", "SUB_UID_MIN=600000000", "-K", "SUB_UID_MAX=700000000", "-K", "SUB_UID_COUNT=65536",
			"-K", "SUB_GID_MIN=600000000", "-K", "SUB_GID_MAX=700000000", "-K", "SUB_GID_COUNT=65536")
	} else {
		args = append(args, "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
	}
	// useradd fails while another one holds the account files' locks.
	var out []byte
	var err error
	for try := 0; try < 20; try++ {
		if out, err = exec.Command("useradd", append(args, name)...).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		// A process the user still has is one a failed test left.
		killProcessesOf(t, name)
		for try := 0; try < 20; try++ {
			if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err == nil {
				return
			} else if try == 19 {
				t.Errorf("userdel %s: %v: %s", name, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	r := &rootlessUser{t: t, name: name}
	r.uid, _ = strconv.Atoi(u.Uid)
	r.gid, _ = strconv.Atoi(u.Gid)
	if withRange {
		r.subuid = subordinateStart(t, "/etc/subuid", name)
	}
	// Its own copies: bin/ and build/rootfs, as barco finds its default
	// rootfs from its binary.
	rootfs := testutil.CopyRootfs(t, 0)
	r.dir = filepath.Dir(rootfs)
	for _, d := range []string{"bin", "build"} {
		if err := os.Mkdir(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(rootfs, r.rootfs()); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"barco", "barco-cgroup", "barco-ns", "barco-mount", "barco-caps", "barco-seccomp"} {
		if out, err := exec.Command("cp", testutil.Bin(t, b), filepath.Join(r.dir, "bin", b)).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", b, err, out)
		}
	}
	owner := strconv.Itoa(r.uid) + ":" + strconv.Itoa(r.gid)
	if out, err := exec.Command("chown", "-R", "-h", owner, r.dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v: %s", r.dir, err, out)
	}
	return r
}

// subordinateStart is the first id of name's range in file.
func subordinateStart(t *testing.T, file, name string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Split(l, ":"); len(f) == 3 && f[0] == name {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("%s: no range for %s", file, name)
	return 0
}

func (r *rootlessUser) bin(name string) string   { return filepath.Join(r.dir, "bin", name) }
func (r *rootlessUser) rootfs() string           { return filepath.Join(r.dir, "build", "rootfs") }
func (r *rootlessUser) hostID(inside int) string { return strconv.Itoa(r.subuid + inside - 1) }

// run runs argv as the user (setpriv, a clean environment) in its
// directory, with env set, and BARCO_EXEC_STAGES as the test has it; a
// bare barco name is its copy.
func (r *rootlessUser) run(env []string, stdin string, extra []*os.File, argv ...string) testutil.Result {
	r.t.Helper()
	if strings.HasPrefix(argv[0], "barco") {
		argv[0] = r.bin(argv[0])
	}
	if v := os.Getenv(chain.ExecStagesEnv); v != "" {
		env = append(env, chain.ExecStagesEnv+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
	defer cancel()
	args := append([]string{"--reuid", strconv.Itoa(r.uid), "--regid", strconv.Itoa(r.gid), "--init-groups", "--reset-env", "--", "env"}, env...)
	cmd := exec.CommandContext(ctx, "setpriv", append(args, argv...)...)
	cmd.Dir = r.dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.ExtraFiles = extra
	// Files, not pipes: a container that barco create leaves running
	// holds its stdio for its whole life.
	dir := r.t.TempDir()
	var outs [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			r.t.Fatal(err)
		}
		defer f.Close()
		outs[i] = f
	}
	cmd.Stdout, cmd.Stderr = outs[0], outs[1]
	err := cmd.Run()
	stdout, _ := os.ReadFile(outs[0].Name())
	stderr, _ := os.ReadFile(outs[1].Name())
	res := testutil.Result{Stdout: string(stdout), Stderr: string(stderr), Code: testutil.StatusOf(err)}
	if ctx.Err() != nil {
		r.t.Fatalf("as %s: %q timed out; stderr: %s", r.name, argv, res.Stderr)
	}
	return res
}

// killProcessesOf kills, by pid, every process of the user name.
func killProcessesOf(t *testing.T, name string) {
	u, err := user.Lookup(name)
	if err != nil {
		return
	}
	for try := 0; try < 50; try++ {
		found := false
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			var st syscall.Stat_t
			if syscall.Stat(d, &st) != nil || strconv.Itoa(int(st.Uid)) != u.Uid {
				continue
			}
			if stat, _ := os.ReadFile(d + "/stat"); strings.Contains(string(stat), ") Z ") {
				continue // its parent reaps it
			}
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				t.Logf("killing pid %d of %s, left by the test", pid, name)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// barcoRun is `barco run ARGS...` as the user, which must exit 0.
func (r *rootlessUser) barcoRun(args ...string) string {
	r.t.Helper()
	res := r.run(nil, "", nil, append([]string{"barco", "run"}, args...)...)
	if res.Code != 0 {
		r.t.Fatalf("as %s: barco run %q: status %d, stderr %s", r.name, args, res.Code, res.Stderr)
	}
	return res.Stdout
}

// fails checks that `barco ARGS...` as the user fails with status 125 and
// one line on stderr holding want.
func (r *rootlessUser) fails(want string, args ...string) {
	r.t.Helper()
	res := r.run(nil, "", nil, append([]string{"barco"}, args...)...)
	if res.Code != 125 || len(testutil.Lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, want) {
		r.t.Errorf("as %s: barco %q: status %d, stderr %q; want 125 and one line with %q", r.name, args, res.Code, res.Stderr, want)
	}
}

// An ordinary user runs barco with the isolation root's tests check: PID 1,
// its own hostname, no host process, no-new-privs, the default
// capabilities (within its user namespace), seccomp, container root
// owning the image, an ephemeral root; the map is the caller's own id and
// its subordinate range.
func TestRootlessDefaultContainer(t *testing.T) {
	u := newRootlessUser(t, true)
	before := imageListing(t, u.rootfs())
	bothStageModes(t, func(t *testing.T) {
		u.t = t
		out := u.barcoRun("--", "/bin/sh", "-c", `
	echo pid=$$
	echo hostname=$(hostname)
	test $(ls -d /proc/[0-9]* | wc -l) -le 5 && echo host-processes=invisible
	echo uid=$(id -u)
	grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t'
	cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //;s/^/uidmap=/'
	cat /proc/self/gid_map | tr -s ' ' | sed 's/^ //;s/^/gidmap=/'
	echo env=$(env | cut -d= -f1 | sort | tr '\n' ,)
	mount -t tmpfs none /tmp 2>/dev/null && echo mount=allowed || echo mount=refused
	hostname evil 2>/dev/null && echo sethostname=allowed || echo sethostname=refused
	echo etc-passwd-owner=$(stat -c %u:%g /etc/passwd)
	touch /etc/barco-test && echo rootfs=writable
	`)
		for _, want := range []string{
			"pid=1", "hostname=barco", "host-processes=invisible", "uid=0",
			"CapEff:00000000800405fb", "CapBnd:00000000800425fb", "Seccomp:2", "NoNewPrivs:1",
			fmt.Sprintf("uidmap=0 %d 1", u.uid), fmt.Sprintf("uidmap=1 %d 65536", u.subuid),
			fmt.Sprintf("gidmap=0 %d 1", u.gid),
			"env=HOME,HOSTNAME,PATH,PWD,SHLVL,TERM,",
			"mount=refused", "sethostname=refused", "etc-passwd-owner=0:0", "rootfs=writable",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("inside the rootless container: no %q in\n%s", want, out)
			}
		}
	})
	u.t = t
	checkImageUnchanged(t, u.rootfs(), before)
}

// The container's root is the caller: it writes on the host only what the
// caller may write, its files there are the caller's, and a file it gives
// to a container user belongs to that user's id in the caller's range.
func TestRootlessHostWrites(t *testing.T) {
	u := newRootlessUser(t, true)
	shared := testutil.SearchableTempDir(t)
	for _, f := range []string{"roots", "mine"} {
		if err := os.WriteFile(filepath.Join(shared, f), []byte("before\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(shared, "mine"), u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(u.dir, "data")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(own, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	out := u.barcoRun("-v", shared+":/shared", "-v", own+":/data", "-v", "/etc:/hostetc", "--", "/bin/sh", "-c", `
	echo x >> /shared/roots 2>/dev/null && echo roots=written || echo roots=refused
	chmod 666 /shared/roots 2>/dev/null && echo chmod=done || echo chmod=refused
	touch /shared/new 2>/dev/null && echo create=done || echo create=refused
	echo x >> /hostetc/hostname 2>/dev/null && echo hostetc=written || echo hostetc=refused
	echo after >> /shared/mine && echo mine=written
	touch /data/byroot && touch /data/byuser && chown 1000:1000 /data/byuser && echo data=written
	`)
	got := testutil.KeyValues(out, "=")
	for k, v := range map[string]string{"roots": "refused", "chmod": "refused", "create": "refused", "hostetc": "refused", "mine": "written", "data": "written"} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, got[k], v, out)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(shared, "roots")); string(data) != "before\n" {
		t.Errorf("root's file on the host became %q", data)
	}
	owners := map[string]string{"byroot": strconv.Itoa(u.uid), "byuser": u.hostID(1000)}
	for f, want := range owners {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(own, f), &st); err != nil {
			t.Fatal(err)
		}
		if strconv.Itoa(int(st.Uid)) != want {
			t.Errorf("the container's %s is host uid %d's, want %s", f, st.Uid, want)
		}
	}
}

// Nothing of the caller's reaches the container: no descriptor beyond 0-2,
// no variable; with --init, the init is PID 1 and loopback is up.
func TestRootlessNoLeaksAndInit(t *testing.T) {
	u := newRootlessUser(t, true)
	leak, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	res := u.run([]string{"SECRET=s"}, "", []*os.File{leak}, "barco", "run", "--init", "--hostname", "box", "--", "/bin/sh", "-c", `
	for fd in /proc/self/fd/*; do echo "fd ${fd##*/}"; done
	env | grep -c SECRET
	hostname
	test $$ != 1 && tr '\0' '\n' < /proc/1/cmdline | head -1
	ip -o link show lo | grep -q LOWER_UP && echo lo up`)
	// The shell's glob of /proc/self/fd lists 0, 1 and 2, plus the
	// directory it reads, which is gone by the time it prints.
	want := "fd 0\nfd 1\nfd 2\n0\nbox\nbarco-ns\nlo up\n"
	if res.Code != 0 || res.Stdout != want && res.Stdout != strings.Replace(want, "fd 2\n", "fd 2\nfd 3\n", 1) {
		t.Errorf("status %d, stdout %q, want %q; stderr %s", res.Code, res.Stdout, want, res.Stderr)
	}
}

// Without a subordinate range, the container maps its root alone: it runs
// as root, and another --user is one line saying why not.
func TestRootlessWithoutRange(t *testing.T) {
	u := newRootlessUser(t, false)
	out := u.barcoRun("--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '")
	if want := fmt.Sprintf("0\n 0 %d 1\n", u.uid); out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if out := u.barcoRun("--user", "root", "--", "id", "-u"); out != "0\n" {
		t.Errorf("--user root: %q", out)
	}
	u.fails("--user nobody: uid "+strconv.Itoa(u.uid)+" has no range in /etc/subuid, so the container has its root alone (an administrator adds one: usermod --add-subuids",
		"run", "--user", "nobody", "--", "id")
	u.fails("--group-add users: uid "+strconv.Itoa(u.uid)+" has no range in /etc/subgid", "run", "--group-add", "users", "--", "id")
}

// No cgroup is delegated to a user here (cgroup v1 hybrid, no systemd):
// without a limit the container runs without a cgroup, and says so once
// in the debug output; a limit is one line naming the reason.
func TestRootlessCgroup(t *testing.T) {
	u := newRootlessUser(t, true)
	res := u.run(nil, "", nil, "barco", "run", "--debug", "--", "/bin/echo", "ran")
	if res.Code != 0 || res.Stdout != "ran\n" || strings.Count(res.Stderr, "no cgroup for uid "+strconv.Itoa(u.uid)) != 1 {
		t.Errorf("status %d, stdout %q; want ran, and no cgroup said once in:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, limit := range [][]string{{"--memory", "64M"}, {"--pids-limit", "10"}} {
		u.fails("limits and --stats need a cgroup, and uid "+strconv.Itoa(u.uid)+" may make none", append(append([]string{"run"}, limit...), "true")...)
	}
}

// What an unprivileged caller cannot have is one line each, before anything
// starts: another user's ids, an idmapped root or volume, no user namespace.
func TestRootlessRefusals(t *testing.T) {
	u := newRootlessUser(t, true)
	u.fails("uid map 0:0:1: host uids 0-0 are neither yours", "run", "--userns", "0:0:1", "true")
	u.fails("--volume /tmp:/mnt:idmap: an idmapped volume needs root", "run", "-v", "/tmp:/mnt:idmap", "true")
	u.fails("--no-userns: an unprivileged caller's container needs a user namespace", "run", "--no-userns", "true")
	res := u.run(nil, "", nil, "barco-ns", "-U", "-m", "--idmap", u.rootfs(), "--", "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, "idmapped mounts need root") {
		t.Errorf("barco-ns --idmap: status %d, %q", res.Code, res.Stderr)
	}
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 3", 3}, {`sh -c 'kill -TERM $$'; exit $?`, 143}} {
		if res := u.run(nil, "", nil, "barco", "run", "--", "/bin/sh", "-c", c.script); res.Code != c.want {
			t.Errorf("%q: status %d, want %d (%s)", c.script, res.Code, c.want, res.Stderr)
		}
	}
	if res := u.run(nil, "", nil, "barco", "run", "--", "/no/such"); res.Code != 127 {
		t.Errorf("/no/such: status %d, want 127", res.Code)
	}
}

// The chain barco chain prints runs when the user pastes it into a shell.
func TestRootlessChainPasted(t *testing.T) {
	u := newRootlessUser(t, true)
	res := u.run(nil, "", nil, "barco", "chain", "--hostname", "pasted", "--", "/bin/sh", "-c", `echo "$(id -u) on $(hostname)"`)
	if res.Code != 0 {
		t.Fatalf("barco chain: %d %s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout, "--idmap") || strings.Contains(res.Stdout, "--devices") {
		t.Errorf("a chain with root's options:\n%s", res.Stdout)
	}
	sh := u.run(nil, res.Stdout, nil, "sh")
	if sh.Code != 0 || sh.Stdout != "0 on pasted\n" {
		t.Errorf("the chain pasted into sh: status %d, %q, %s\n%s", sh.Code, sh.Stdout, sh.Stderr, res.Stdout)
	}
}

// The OCI mode as a user: its state in a directory of its own under /tmp
// (setpriv leaves no XDG_RUNTIME_DIR), create, start and delete of a
// rootless bundle.
func TestRootlessOCI(t *testing.T) {
	u := newRootlessUser(t, true)
	state := "/tmp/barco-" + strconv.Itoa(u.uid)
	t.Cleanup(func() { os.RemoveAll(state) })
	if r := u.run(nil, "", nil, "barco", "spec", "--bundle", u.dir); r.Code != 0 {
		t.Fatalf("barco spec: %d %s", r.Code, r.Stderr)
	}
	p := filepath.Join(u.dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	// As runc spec --rootless makes it: a user namespace, the caller's
	// own ids, no network namespace (sysfs then bound from the host), no
	// cgroup resources.
	s.Process.Args = []string{"/bin/sh", "-c", "echo $(id -u) $(hostname) > /out; cat /proc/self/uid_map | tr -s ' ' >> /out"}
	s.Root.Path, s.Root.Readonly = "build/rootfs", false
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}, {Type: specs.UserNamespace}}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(u.uid), Size: 1}, {ContainerID: 1, HostID: uint32(u.subuid), Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(u.gid), Size: 1}}
	s.Linux.Resources = nil
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys", "/sys/fs/cgroup":
			continue
		case "/dev/pts":
			m.Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
		}
		mounts = append(mounts, m)
	}
	s.Mounts = append(mounts, specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}})
	data, _ = json.Marshal(&s)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := "rootless-oci"
	for _, step := range [][]string{{"create", "--bundle", u.dir, id}, {"start", id}} {
		if r := u.run(nil, "", nil, append([]string{"barco"}, step...)...); r.Code != 0 {
			t.Fatalf("barco %q: %d %s", step, r.Code, r.Stderr)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := u.run(nil, "", nil, "barco", "state", id)
		var st specs.State
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
			t.Fatalf("barco state: %v: %q %s", err, r.Stdout, r.Stderr)
		}
		if st.Status == specs.StateStopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after 10 s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := u.run(nil, "", nil, "barco", "delete", id); r.Code != 0 {
		t.Errorf("barco delete: %d %s", r.Code, r.Stderr)
	}
	out, _ := os.ReadFile(filepath.Join(u.rootfs(), "out"))
	if want := fmt.Sprintf("0 barco\n 0 %d 1\n 1 %d 65536\n", u.uid, u.subuid); string(out) != want {
		t.Errorf("the container wrote %q, want %q", out, want)
	}
	if ents, err := os.ReadDir(state); err != nil || len(ents) != 0 {
		t.Errorf("state root %s after delete: %v, %v", state, ents, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(state, &st); err != nil || int(st.Uid) != u.uid || st.Mode&0o077 != 0 {
		t.Errorf("state root %s: uid %d, mode %o, %v; want the user's, 0700", state, st.Uid, st.Mode, err)
	}
}
