package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"barco/lib/console"
	"barco/lib/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// userBundle is a bundle whose container has a user namespace of its own
// (container root is host uid 100000, which owns the rootfs copy) and a
// seccomp filter that denies mkdir with EPERM, edited by edit.
func (e *ociEnv) userBundle(edit func(*specs.Spec)) string {
	e.t.Helper()
	return e.bundleOwnedBy(100000, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		errno := uint(1)
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}}}
		s.Process.Args = []string{"/bin/sleep", "100"}
		if edit != nil {
			edit(s)
		}
	})
}

// running creates and starts a container of bundle dir.
func (e *ociEnv) running(dir, id string) int {
	e.t.Helper()
	e.mustCreate("--bundle", dir, id)
	e.must("start", id)
	e.waitStatus(id, specs.StateRunning)
	return e.state(id).Pid
}

// detached runs `barco exec --detach ARGS...` with its stdio on files, as
// create: the process inherits them and outlives the call.
func (e *ociEnv) detached(args ...string) testutil.Result {
	e.t.Helper()
	return e.onFiles(append([]string{"exec", "--detach"}, args...)...)
}

// processFile writes a process.json and returns its path.
func processFile(t *testing.T, p specs.Process) string {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// exec into a running container with a user namespace: the output and
// status are the process's, it runs in every namespace of the init, and
// process.json's user, cwd, env, capabilities, no_new_privs and rlimits
// apply, under the container's seccomp filter.
func TestOCIExec(t *testing.T) {
	e := newOCI(t)
	id := "exec-1"
	init := e.running(e.userBundle(nil), id)

	r := e.barco("exec", id, "/bin/sh", "-c", "echo out; echo err >&2; exit 7")
	if r.Code != 7 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("exec sh: status %d, stdout %q, stderr %q; want 7, out, err", r.Code, r.Stdout, r.Stderr)
	}
	r = e.barco("exec", id, "/bin/sh", "-c", "kill -9 $$")
	if r.Code != 137 {
		t.Errorf("exec of a process killed by SIGKILL: status %d, want 137", r.Code)
	}

	// The namespaces, as the init has them, and the hostname.
	kinds := []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"}
	script := "hostname"
	for _, k := range kinds {
		script += "; readlink /proc/self/ns/" + k
	}
	r = e.barco("exec", id, "/bin/sh", "-c", script)
	want := "barco\n"
	for _, k := range kinds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", init, k))
		if err != nil {
			t.Fatal(err)
		}
		want += link + "\n"
	}
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("exec's namespaces: status %d, %q\nwant the init's: %q (%s)", r.Code, r.Stdout, want, r.Stderr)
	}

	// process.json, as an engine writes it.
	kill := []string{"CAP_KILL"}
	proc := specs.Process{
		User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}},
		Args: []string{"/bin/sh", "-c", `id; pwd; echo "FOO=$FOO"; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ulimit -n; mkdir /tmp/d 2>/dev/null || echo mkdir denied`},
		Env:  []string{"PATH=/bin:/sbin", "FOO=bar"},
		Cwd:  "/tmp",
		Capabilities: &specs.LinuxCapabilities{Bounding: kill, Effective: kill, Permitted: kill,
			Inheritable: kill, Ambient: kill},
		NoNewPrivileges: true,
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 512}},
	}
	r = e.barco("exec", "--process", processFile(t, proc), id)
	want = "uid=1000 gid=1000 groups=5,1000\n/tmp\nFOO=bar\nCapEff:\t0000000000000020\nNoNewPrivs:\t1\nSeccomp:\t2\n512\nmkdir denied\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("exec --process: status %d, %q\nwant %q (%s)", r.Code, r.Stdout, want, r.Stderr)
	}

	// runc's options on a command line.
	r = e.barco("exec", "--user", "1000:1000", "--cwd", "/etc", "--env", "X=1", id, "/bin/sh", "-c", `echo $(id -u) $(pwd) $X`)
	if r.Code != 0 || r.Stdout != "1000 /etc 1\n" {
		t.Errorf("exec --user --cwd --env: status %d, %q (%s)", r.Code, r.Stdout, r.Stderr)
	}

	// --detach: the pid file holds the process's host pid, bare digits;
	// the process is in the init's cgroups, and ps lists it.
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r = e.detached("--pid-file", pidFile, id, "/bin/sleep", "30")
	if r.Code != 0 {
		t.Fatalf("exec --detach: status %d, %s", r.Code, r.Stderr)
	}
	data, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	defer unix.Kill(pid, unix.SIGKILL)
	if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); string(cmd) != "/bin/sleep\x0030\x00" {
		t.Errorf("pid %d of the pid file runs %q, want sleep 30", pid, cmd)
	}
	theirs, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))
	ours, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if string(theirs) != string(ours) || !strings.Contains(string(ours), testParent+"/"+id) {
		t.Errorf("the exec'd process's cgroups:\n%s\nthe init's:\n%s", ours, theirs)
	}
	var pids []int
	if err := json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids); err != nil || len(pids) != 2 || pids[0] != init && pids[1] != init {
		t.Errorf("ps --format json: %v %v, want the init %d and %d", pids, err, init, pid)
	}
	found := false
	for _, p := range pids {
		found = found || p == pid
	}
	if !found {
		t.Errorf("ps --format json: %v lacks the exec'd process %d", pids, pid)
	}
}

// exec runs barco-caps' and barco-seccomp's work as steps of the child
// that joins the container (no Go image of theirs starts), with what the
// stages would do: the groups from the container's own /etc/group, the
// capabilities, no_new_privs and the filter, PROGRAM looked up before the
// filter, and PROGRAM's errors and statuses. BARCO_EXEC_STAGES=1 runs the
// stages as binaries instead.
func TestOCIExecAsSteps(t *testing.T) {
	e := newOCI(t)
	id := "exec-steps"
	// A filter that denies what the exec makes after it, the old way,
	// and getppid, which the steps' parent check makes before it.
	dir := e.userBundle(func(s *specs.Spec) {
		errno := uint(1)
		s.Linux.Seccomp.Syscalls = append(s.Linux.Seccomp.Syscalls,
			specs.LinuxSyscall{Names: []string{"getppid", "faccessat", "faccessat2", "statx", "newfstatat"}, Action: specs.ActErrno, ErrnoRet: &errno})
	})
	group, err := os.OpenFile(filepath.Join(dir, "rootfs/etc/group"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	group.WriteString("extra:x:4242:nobody\n")
	group.Close()
	e.running(dir, id)
	for _, mode := range []string{"steps", "stages"} {
		var env []string
		if mode == "stages" {
			env = []string{"BARCO_EXEC_STAGES=1"}
		}
		run := func(args ...string) testutil.Result {
			return testutil.Run(t, env, append([]string{e.bin, "--root", e.root, "--debug", "exec"}, args...)...)
		}
		r := run("--user", "65534:65534", "--cap", "CAP_CHOWN", id, "sh", "-c",
			"id -G; umask; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/d 2>/dev/null || echo mkdir denied")
		want := "65534 4242\n0022\nCapEff:\t0000000000000000\nCapBnd:\t0000000020000421\nNoNewPrivs:\t1\nSeccomp:\t2\nmkdir denied\n"
		if r.Code != 0 || r.Stdout != want {
			t.Errorf("%s: exec --user --cap: %d %q, want %q (%s)", mode, r.Code, r.Stdout, want, r.Stderr)
		}
		asSteps := strings.Contains(r.Stderr, "barco-caps, barco-seccomp and the exec of sh as steps of the child")
		if asSteps != (mode == "steps") {
			t.Errorf("%s: the stages ran as steps: %v\n%s", mode, asSteps, r.Stderr)
		}
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"nosuch"}, 127, "barco-seccomp: exec nosuch: not found in PATH"},
			{[]string{"/nonexistent"}, 127, "barco-seccomp: exec /nonexistent: no such file or directory"},
			{[]string{"/etc/passwd"}, 126, "barco-seccomp: exec /etc/passwd: permission denied"},
			{[]string{"/etc"}, 126, "barco-seccomp: exec /etc: is a directory"},
		} {
			r := testutil.Run(t, env, append([]string{e.bin, "--root", e.root, "exec", id}, tc.args...)...)
			if r.Code != tc.code || r.Stderr != "barco: "+tc.want+"\n" {
				t.Errorf("%s: exec %q: %d %q, want %d and %q", mode, tc.args, r.Code, r.Stderr, tc.code, tc.want)
			}
		}
	}
}

// A container's /etc/passwd that is a FIFO blocks exec's barco-caps in
// the container, as it reads it there, never the front on the host: the
// front has let go of the container's state by then (barco state and kill
// answer), and the exec goes on once the FIFO is written.
func TestOCIExecPasswdFIFO(t *testing.T) {
	e := newOCI(t)
	id := "exec-fifo"
	dir := e.userBundle(nil)
	e.running(dir, id)
	passwd := filepath.Join(dir, "rootfs/etc/passwd")
	if err := os.Remove(passwd); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(passwd, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	cmd := exec.Command(e.bin, "--root", e.root, "exec", "--user", "0:0", id, "/bin/sh", "-c", "echo ran")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	// Written once the process runs (barco-caps, reading the FIFO).
	if fileWritten(filepath.Join(e.root, id, "exec-"+strconv.Itoa(cmd.Process.Pid)+".pid")) == "" {
		t.Fatalf("exec blocked before its process ran: %s", stderr.String())
	}
	state := exec.Command(e.bin, "--root", e.root, "state", id)
	state.WaitDelay = time.Second
	timer := time.AfterFunc(10*time.Second, func() { _ = state.Process.Kill() })
	out, err := state.Output()
	timer.Stop()
	if err != nil || !strings.Contains(string(out), `"running"`) {
		t.Errorf("barco state while exec waits for the FIFO: %v %s", err, out)
	}
	fifo, err := os.OpenFile(passwd, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fifo.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	fifo.Close()
	select {
	case err := <-done:
		done <- err
		if err != nil || stdout.String() != "ran\n" {
			t.Errorf("exec once the FIFO is written: %v %q %s", err, stdout.String(), stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("exec still runs 20 s after the FIFO was written: %s", stderr.String())
	}
}

// Bad input: one line, status 125, and no file left in the state directory.
func TestOCIExecRefusals(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "100"} })
	e.mustCreate("--bundle", dir, "ref-created")
	e.running(dir, "ref-running")
	e.mustCreate("--bundle", dir, "ref-stopped")
	e.must("kill", "ref-stopped", "KILL")
	e.waitStatus("ref-stopped", specs.StateStopped)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"args": [`), 0o644)
	empty := processFile(t, specs.Process{Cwd: "/"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "never-made", "true"}, "does not exist"},
		{[]string{"exec", "ref-created", "true"}, "is created"},
		{[]string{"exec", "ref-stopped", "true"}, "is stopped"},
		{[]string{"exec", "--process", bad, "ref-running"}, "bad.json"},
		{[]string{"exec", "--process", empty, "ref-running"}, "args is empty"},
		{[]string{"exec", "--process", "/nonexistent.json", "ref-running"}, "no such file"},
		{[]string{"exec", "ref-running"}, "no command"},
		{[]string{"exec", "--tty", "ref-running", "true"}, "console-socket"},
		{[]string{"exec", "--cwd", "/nonexistent", "ref-running", "true"}, "/nonexistent"},
	} {
		r := e.barco(tc.args...)
		if r.Code != 125 || len(testutil.Lines(r.Stderr)) != 1 || !strings.Contains(r.Stderr, tc.want) || r.Stdout != "" {
			t.Errorf("barco %q: status %d, stderr %q; want 125 and one line with %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
	if r := e.barco("exec", "ref-running", "/nonexistent"); r.Code != 127 || !strings.Contains(r.Stderr, "no such file") {
		t.Errorf("exec of a missing program: %d %q, want 127", r.Code, r.Stderr)
	}
	for _, id := range []string{"ref-created", "ref-running", "ref-stopped"} {
		entries, _ := os.ReadDir(filepath.Join(e.root, id))
		for _, ent := range entries {
			if ent.Name() != "state.json" && ent.Name() != "pid" && ent.Name() != "exec.fifo" {
				t.Errorf("state directory of %s: %s left", id, ent.Name())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, "never-made")); err == nil {
		t.Error("exec of an unknown id made its state directory")
	}
	if pids := e.must("ps", "--format", "json", "ref-running"); strings.Count(pids, ",") != 0 {
		t.Errorf("processes left in the container after the refused execs: %s", pids)
	}
}

// consoleListener is an engine's console socket: it returns the socket's
// path and a channel that gets the master barco sends.
func consoleListener(t *testing.T) (string, chan *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan *os.File, 1)
	go func() {
		defer unix.Close(fd)
		conn, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			got <- nil
			return
		}
		defer unix.Close(conn)
		master, err := console.Receive(conn)
		if err != nil {
			t.Errorf("console socket: %v", err)
		}
		got <- master
	}()
	return path, got
}

// readUntil reads the terminal's master until its output holds want.
func readUntil(t *testing.T, master *os.File, want string) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 512)
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(out), want) {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Errorf("terminal output %q, want %q in it: %v", out, want, err)
			break
		}
	}
	return string(out)
}

// A terminal through --console-socket: create sends the master of
// /dev/pts/0 of the container's devpts, which is the process's terminal;
// an exec with --tty gets another of the same devpts.
func TestOCIConsoleSocket(t *testing.T) {
	e := newOCI(t)
	dir := e.userBundle(func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"/bin/sh"}
		// The size the process starts with, before its engine sets one.
		s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	})
	sock, got := consoleListener(t)
	e.mustCreate("--bundle", dir, "--console-socket", sock, "tty-1")
	master := <-got
	if master == nil {
		t.Fatal("no master received")
	}
	defer master.Close()
	e.must("start", "tty-1")
	if _, err := master.Write([]byte("tty; [ /dev/console -ef /dev/pts/0 ] && echo console; stty size\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, master, "/dev/pts/0\r\nconsole\r\n33 101\r\n")

	sock2, got2 := consoleListener(t)
	proc := specs.Process{Terminal: true, Args: []string{"/bin/sh", "-c", "tty; stty size; sleep 1"}, Env: []string{"PATH=/bin"}, Cwd: "/",
		ConsoleSize: &specs.Box{Height: 21, Width: 77}}
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := e.detached("--process", processFile(t, proc), "--tty", "--console-socket", sock2, "--pid-file", pidFile, "tty-1")
	if r.Code != 0 {
		t.Fatalf("exec --tty: %d %s", r.Code, r.Stderr)
	}
	master2 := <-got2
	if master2 == nil {
		t.Fatal("exec: no master received")
	}
	defer master2.Close()
	readUntil(t, master2, "/dev/pts/1\r\n21 77\r\n")
	if _, err := master.Write([]byte("exit\n")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("tty-1", specs.StateStopped)
	e.must("delete", "tty-1")

	if r := e.create("--bundle", dir, "tty-2"); r.Code != 125 || !strings.Contains(r.Stderr, "console-socket") {
		t.Errorf("create with a terminal and no --console-socket: %d %q", r.Code, r.Stderr)
	}
}

// pause freezes every process of the container, resume thaws them.
func TestOCIPauseResume(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind"}})
		s.Process.Args = []string{"/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.02; done"}
	})
	e.running(dir, "pause-1")
	count := func() string {
		data, _ := os.ReadFile(filepath.Join(out, "n"))
		return strings.TrimSpace(string(data))
	}
	time.Sleep(200 * time.Millisecond)
	e.must("pause", "pause-1")
	if s := e.state("pause-1"); s.Status != "paused" {
		t.Errorf("state after pause: %s", s.Status)
	}
	before := count()
	time.Sleep(300 * time.Millisecond)
	if after := count(); after != before {
		t.Errorf("a paused container went on: %s then %s", before, after)
	}
	if r := e.barco("pause", "pause-1"); r.Code != 125 {
		t.Errorf("pause of a paused container: %d", r.Code)
	}
	if r := e.barco("exec", "pause-1", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "paused") {
		t.Errorf("exec into a paused container: %d %q", r.Code, r.Stderr)
	}
	e.must("resume", "pause-1")
	e.waitStatus("pause-1", specs.StateRunning)
	time.Sleep(300 * time.Millisecond)
	if after := count(); after == before {
		t.Errorf("a resumed container did not go on: still %s", after)
	}
	if r := e.barco("resume", "pause-1"); r.Code != 125 {
		t.Errorf("resume of a running container: %d", r.Code)
	}
	e.must("pause", "pause-1")
	e.must("kill", "pause-1", "KILL")
	e.waitStatus("pause-1", specs.StateStopped)
	e.must("delete", "pause-1")
	e.running(dir, "pause-2")
	e.must("pause", "pause-2")
	e.must("delete", "--force", "pause-2")
	for _, id := range []string{"pause-1", "pause-2"} {
		if d := cgroupDirsOf(id); len(d) > 0 {
			t.Errorf("%s: kill and delete, or delete --force, of a paused container left cgroups %q", id, d)
		}
	}
}

// update writes new limits into the live cgroup: the engines' JSON, from a
// file or stdin, and runc's options.
func TestOCIUpdate(t *testing.T) {
	e := newOCI(t)
	limit := int64(256 << 20)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	})
	e.running(dir, "upd-1")
	mem := "/sys/fs/cgroup/memory/" + testParent + "/upd-1/"
	read := func(f string) string {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	if got := read(mem + "memory.limit_in_bytes"); got != strconv.FormatInt(limit, 10) {
		t.Fatalf("memory limit before: %s", got)
	}
	docker := `{"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}`
	in := filepath.Join(t.TempDir(), "resources.json")
	os.WriteFile(in, []byte(docker), 0o644)
	r := testutil.Run(t, nil, "sh", "-c", fmt.Sprintf("exec %q --root %q update --resources - upd-1 < %q", e.bin, e.root, in))
	if r.Code != 0 {
		t.Fatalf("update --resources -: %d %s", r.Code, r.Stderr)
	}
	if got, swap := read(mem+"memory.limit_in_bytes"), read(mem+"memory.memsw.limit_in_bytes"); got != "100663296" || swap != "201326592" {
		t.Errorf("after docker's update: memory %s, memory+swap %s", got, swap)
	}
	e.must("update", "--memory", "512M", "--memory-swap", "1G", "--pids-limit", "50", "upd-1")
	if got, swap := read(mem+"memory.limit_in_bytes"), read(mem+"memory.memsw.limit_in_bytes"); got != "536870912" || swap != "1073741824" {
		t.Errorf("after --memory 512M --memory-swap 1G: memory %s, memory+swap %s", got, swap)
	}
	if got := read("/sys/fs/cgroup/pids/" + testParent + "/upd-1/pids.max"); got != "50" {
		t.Errorf("after --pids-limit 50: pids.max %s", got)
	}
	podman := filepath.Join(t.TempDir(), "podman.json")
	os.WriteFile(podman, []byte(`{"memory":{"limit":67108864,"swap":134217728}}`), 0o644)
	e.must("update", "--resources="+podman, "upd-1")
	if got := read(mem + "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("after podman's update: memory %s", got)
	}
	e.must("update", "--memory-reservation", "10M", "upd-1")
	if got := read(mem + "memory.soft_limit_in_bytes"); got != "10485760" {
		t.Errorf("after --memory-reservation 10M: soft limit %s", got)
	}
	for _, args := range [][]string{
		{"update", "--kernel-memory", "10M", "upd-1"},
		{"update", "--memory", "lots", "upd-1"},
		{"update", "--memory", "64M", "never-made"},
	} {
		if r := e.barco(args...); r.Code != 125 || len(testutil.Lines(r.Stderr)) != 1 {
			t.Errorf("barco %q: %d %q, want 125 and one line", args, r.Code, r.Stderr)
		}
	}
	if got := read(mem + "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("a refused update changed the memory limit: %s", got)
	}
}

// kill --all reaches processes exec'd into a container without a pid
// namespace of its own, which outlive its init.
func TestOCIKillAllAfterInit(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		var keep []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				keep = append(keep, n)
			}
		}
		s.Linux.Namespaces = keep
	})
	e.running(dir, "killall-1")
	pidFile := filepath.Join(t.TempDir(), "pid")
	if r := e.detached("--pid-file", pidFile, "killall-1", "/bin/sleep", "100"); r.Code != 0 {
		t.Fatalf("exec --detach: %d %s", r.Code, r.Stderr)
	}
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(string(data))
	defer unix.Kill(pid, unix.SIGKILL)
	e.must("kill", "killall-1", "9")
	e.waitStatus("killall-1", specs.StateStopped)
	if pids := e.must("ps", "--format", "json", "killall-1"); strings.TrimSpace(pids) != "["+strconv.Itoa(pid)+"]" {
		t.Errorf("ps of the stopped container: %s, want the exec'd %d", pids, pid)
	}
	e.must("kill", "--all", "killall-1", "9")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill --all left the exec'd process %d", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.must("delete", "killall-1")
}

// The stages on their own, as nsenter and cgexec: barco-ns --join enters a
// running container's user and mount namespaces (and its uts and pid ones), and
// barco-cgroup --join its cgroup.
func TestJoinStages(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 100000)
	pidFile := filepath.Join(t.TempDir(), "pid")
	box := exec.Command(nsBin(t), "-U", "-m", "-p", "-u", "--hostname", "joined", "--pid-file", pidFile, "--",
		testutil.Bin(t, "barco-mount"), "--rootfs", rootfs, "--", "/bin/sleep", "60")
	if err := box.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { box.Process.Kill(); box.Wait() }()
	var pid string
	for deadline := time.Now().Add(10 * time.Second); pid == ""; time.Sleep(10 * time.Millisecond) {
		if data, _ := os.ReadFile(pidFile); len(data) > 0 {
			pid = string(data)
		}
		if time.Now().After(deadline) {
			t.Fatal("no pid file")
		}
	}
	// The mount namespace is the container's once barco-mount has pivoted.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline"); strings.HasPrefix(string(cmd), "/bin/sleep") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not start")
		}
	}
	ns := "/proc/" + pid + "/ns/"
	for _, mode := range []string{"linked", "exec"} {
		env := []string{}
		if mode == "exec" {
			env = append(env, "BARCO_EXEC_STAGES=1")
		}
		r := testutil.Run(t, env, nsBin(t), "--join", "user="+ns+"user", "--join", "mnt="+ns+"mnt", "--join", "uts="+ns+"uts", "--join", "pid="+ns+"pid",
			"--workdir", "/etc", "--", "/bin/sh", "-c", "hostname; id -u; pwd; ls /linuxrc; readlink /proc/self/ns/mnt")
		mnt, _ := os.Readlink(ns + "mnt")
		if want := "joined\n0\n/etc\n/linuxrc\n" + mnt + "\n"; r.Code != 0 || r.Stdout != want {
			t.Errorf("%s: barco-ns --join user, mnt, uts: %d %q, want %q (%s)", mode, r.Code, r.Stdout, want, r.Stderr)
		}
		r = testutil.Run(t, env, nsBin(t), "--join", "user="+ns+"user", "--join", "mnt="+ns+"mnt", "--",
			"barco-caps", "--user", "1000:1000", "--", "/bin/sh", "-c", "id -u; exit 3")
		if r.Code != 3 || r.Stdout != "1000\n" {
			t.Errorf("%s: barco-ns --join -- barco-caps: %d %q (%s)", mode, r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--join", "mnt=" + ns + "user", "--", "/bin/true"}, "not a mnt namespace"},
		{[]string{"--join", "mnt=" + ns + "mnt", "-n", "--", "/bin/true"}, "no new namespace"},
		{[]string{"--join", "mnt=" + ns + "mnt", "--workdir", "/nonexistent", "--", "/bin/true"}, "--workdir /nonexistent"},
	} {
		r := testutil.Run(t, nil, append([]string{nsBin(t)}, tc.args...)...)
		if r.Code != 125 || len(testutil.Lines(r.Stderr)) != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("barco-ns %q: %d %q, want 125 and %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}

	dir := "/sys/fs/cgroup/pids/" + testParent + "-join"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	r := testutil.Run(t, nil, cgroupBin(t), "--join", dir, "--", "grep", ":pids:", "/proc/self/cgroup")
	if r.Code != 0 || !strings.HasSuffix(strings.TrimSpace(r.Stdout), ":pids:/"+testParent+"-join") {
		t.Errorf("barco-cgroup --join %s: %d %q (%s)", dir, r.Code, r.Stdout, r.Stderr)
	}
	if r := testutil.Run(t, nil, cgroupBin(t), "--join", "/tmp", "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "not a cgroup directory") {
		t.Errorf("barco-cgroup --join /tmp: %d %q", r.Code, r.Stderr)
	}
}
