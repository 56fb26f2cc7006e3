package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"barco/lib/testutil"
)

func nsBin(t *testing.T) string {
	testutil.RequireRoot(t)
	return testutil.Bin(t, "barco-ns")
}

func TestNSPidAndHostname(t *testing.T) {
	ns := nsBin(t)
	before, _ := os.Hostname()
	r := testutil.Run(t, nil, ns, "-p", "-u", "--hostname", "h", "--", "sh", "-c", "echo $$ $(hostname)")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1 h" {
		t.Fatalf("got %q (status %d, stderr %q); want \"1 h\"", r.Stdout, r.Code, r.Stderr)
	}
	if after, _ := os.Hostname(); after != before {
		t.Errorf("host hostname changed from %q to %q", before, after)
	}
}

// --stdio FD gives the child FD as its stdin, stdout and stderr, and
// barco-ns keeps its own (its errors still go to its stderr).
func TestNSStdio(t *testing.T) {
	ns := nsBin(t)
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(ns, "-p", "--stdio", "3", "--", "/bin/sh", "-c", "echo out; echo err >&2; echo $$")
	cmd.ExtraFiles = []*os.File{out}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil || stdout.Len() != 0 {
		t.Fatalf("barco-ns --stdio 3: %v, stdout %q; want nothing there", err, stdout.String())
	}
	if got, _ := os.ReadFile(out.Name()); string(got) != "out\nerr\n1\n" {
		t.Errorf("the child wrote %q to fd 3's file, want out, err and pid 1", got)
	}
	r := testutil.Run(t, nil, ns, "--stdio", "9", "--", "true")
	if r.Code != 125 || !strings.HasPrefix(r.Stderr, "barco-ns: option --stdio: descriptor 9: ") {
		t.Errorf("--stdio of a closed descriptor: %d %q", r.Code, r.Stderr)
	}
}

func TestNSUserDefaultMap(t *testing.T) {
	ns := nsBin(t)
	dir := testutil.SearchableTempDir(t)
	os.Chmod(dir, 0o1777)
	file := filepath.Join(dir, "made-inside")
	r := testutil.Run(t, nil, ns, "-U", "--", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch "+file)
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	got := strings.Fields(r.Stdout)
	want := []string{"0", "100000", "65536", "0", "100000", "65536", "0", "0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("maps and ids inside = %q, want %q", got, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("file made by container root is owned by %d:%d on the host, want 100000:100000", st.Uid, st.Gid)
	}
}

func TestNSUserExplicitMaps(t *testing.T) {
	ns := nsBin(t)
	r := testutil.Run(t, nil, ns, "-U", "--uid-map", "0:200000:1000", "--uid-map", "1000:300000:1",
		"--gid-map", "0:400000:2000", "--uid", "1000", "--gid", "5", "--",
		"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; grep CapEff /proc/self/status")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	got := strings.Join(strings.Fields(r.Stdout), " ")
	want := "0 200000 1000 1000 300000 1 0 400000 2000 1000 5 CapEff: 0000000000000000"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestNSMapRoot(t *testing.T) {
	ns := nsBin(t)
	r := testutil.Run(t, nil, ns, "-U", "--map-root", "--", "cat", "/proc/self/uid_map")
	if got := strings.Join(strings.Fields(r.Stdout), " "); r.Code != 0 || got != "0 0 1" {
		t.Errorf("--map-root as root: %q (status %d, %s)", got, r.Code, r.Stderr)
	}
}

func TestNSKinds(t *testing.T) {
	ns := nsBin(t)
	for _, k := range []struct{ flag, file string }{
		{"-U", "user"}, {"-p", "pid_for_children"}, {"-m", "mnt"}, {"-u", "uts"}, {"-i", "ipc"},
		{"-n", "net"}, {"-C", "cgroup"}, {"-T", "time"},
	} {
		host, err := os.Readlink("/proc/self/ns/" + k.file)
		if err != nil {
			t.Fatal(err)
		}
		r := testutil.Run(t, nil, ns, k.flag, "--", "readlink", "/proc/self/ns/"+k.file)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) == host || !strings.HasPrefix(r.Stdout, strings.SplitN(host, ":", 2)[0]) {
			t.Errorf("%s: inside %q, host %q (status %d, %s)", k.flag, strings.TrimSpace(r.Stdout), host, r.Code, r.Stderr)
		}
	}
}

func TestNSLoopbackUp(t *testing.T) {
	ns := nsBin(t)
	r := testutil.Run(t, nil, ns, "-n", "--", "ip", "-o", "link", "show", "lo")
	if r.Code != 0 || !strings.Contains(r.Stdout, "UP") {
		t.Errorf("lo in new net namespace: %q (status %d, %s)", r.Stdout, r.Code, r.Stderr)
	}
}

func TestNSExitStatus(t *testing.T) {
	ns := nsBin(t)
	for _, c := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 143},
		{"kill -KILL $$", 137},
	} {
		if r := testutil.Run(t, nil, ns, "-U", "--", "sh", "-c", c.script); r.Code != c.want {
			t.Errorf("%q: status %d, want %d (%s)", c.script, r.Code, c.want, r.Stderr)
		}
	}
}

func TestNSErrors(t *testing.T) {
	ns := nsBin(t)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-p", "--", "no-such-program"}, 127, "barco-ns: exec no-such-program: not found"},
		{[]string{"-U", "--", "/etc/passwd"}, 126, "barco-ns: exec /etc/passwd: permission denied"},
		{[]string{"--kind", "true"}, 125, "barco-ns: option --kind: unknown option"},
		{[]string{"-Z", "true"}, 125, "barco-ns: option -Z: unknown option"},
		{[]string{"--uid-map", "0:1:1", "true"}, 125, "need a new user namespace"},
		{[]string{"-U", "--uid-map", "0:1000", "true"}, 125, "want CONTAINER:HOST:SIZE"},
		{[]string{"-U", "--uid-map", "0:1000:10", "--uid-map", "5:5000:10", "true"}, 125, "overlap"},
		{[]string{"--hostname", "x", "true"}, 125, "needs a new UTS namespace"},
		{[]string{"-U"}, 125, "no PROGRAM given"},
	} {
		r := testutil.Run(t, nil, append([]string{ns}, c.args...)...)
		lines := testutil.Lines(r.Stderr)
		if r.Code != c.code || len(lines) != 1 || !strings.Contains(lines[0], c.msg) {
			t.Errorf("%q: status %d, stderr %q; want %d and one line with %q", c.args, r.Code, r.Stderr, c.code, c.msg)
		}
	}
}

// startReady starts cmd and waits for its first line of output, "ready".
func startReady(t *testing.T, cmd *exec.Cmd) *bufio.Reader {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("first line %q, %v; want ready", line, err)
	}
	return rd
}

func waitStatus(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	return waitWithin(t, cmd, testutil.Timeout)
}

// waitWithin waits for cmd and returns its exit status; the test fails if
// it runs longer than limit.
func waitWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return testutil.StatusOf(err)
	case <-time.After(limit):
		t.Fatalf("%q did not exit within %v", cmd.Args, limit)
		return -1
	}
}

func TestNSForwardsSIGTERM(t *testing.T) {
	ns := nsBin(t)
	cmd := exec.Command(ns, "-U", "-p", "--", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	rd := startReady(t, cmd)
	cmd.Process.Signal(syscall.SIGTERM)
	line, _ := rd.ReadString('\n')
	if code := waitStatus(t, cmd); code != 7 || strings.TrimSpace(line) != "got TERM" {
		t.Errorf("after SIGTERM: output %q, status %d; want \"got TERM\", 7", line, code)
	}
}

func TestNSInitStopsShellOnSIGTERM(t *testing.T) {
	ns := nsBin(t)
	cmd := exec.Command(ns, "-U", "-p", "--init", "--", "sh", "-c", `echo ready; while :; do sleep 0.05; done`)
	startReady(t, cmd)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitStatus(t, cmd); code != 143 {
		t.Errorf("sh under --init after SIGTERM: status %d, want 143", code)
	}
}

func TestNSInitReapsZombies(t *testing.T) {
	ns := nsBin(t)
	// The orphaned sleep is reparented to PID 1 when it exits; only an init
	// that reaps keeps it from staying a zombie.
	script := `mount --make-rprivate / && mount -t proc proc /proc || exit 99
(sleep 0.1 &) ; sleep 1
ps -eo stat= | grep -c '^Z' || true`
	r := testutil.Run(t, nil, ns, "-U", "-m", "-p", "--init", "--", "sh", "-c", script)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("zombies under --init: %q (status %d, %s)", r.Stdout, r.Code, r.Stderr)
	}
}

func TestNSChildDiesWithParent(t *testing.T) {
	ns := nsBin(t)
	for _, pidns := range []bool{false, true} {
		args := []string{"-U"}
		if pidns {
			args = append(args, "-p")
		}
		cmd := exec.Command(ns, append(args, "--", "sh", "-c", "echo ready; exec sleep 1000")...)
		startReady(t, cmd)
		children := childrenOf(cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("children of barco-ns: %q", children)
		}
		child := children[0]
		cmd.Process.Kill()
		cmd.Wait()
		deadline := time.Now().Add(testutil.Timeout)
		for {
			stat, err := os.ReadFile("/proc/" + child + "/stat")
			if err != nil || strings.Contains(string(stat), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pidns=%v: child %s outlived barco-ns", pidns, child)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestNSProgramGetsOnlyStdFDs(t *testing.T) {
	ns := nsBin(t)
	extra, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "0 1 2"},
		{[]string{"BARCO_PRESERVE_FDS=1"}, "0 1 2 3"},
	} {
		cmd := exec.Command(ns, "-U", "--", "sh", "-c", "cd /proc/self/fd && echo *")
		cmd.ExtraFiles = []*os.File{extra, extra} // fds 3 and 4
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.Output()
		// The shell's glob opens one more descriptor for the directory itself.
		got := strings.Fields(string(out))
		if err != nil || len(got) < 3 || strings.Join(got[:len(got)-1], " ") != c.want {
			t.Errorf("%v: open fds %q (%v); want %s plus the glob's own", c.env, got, err, c.want)
		}
	}
}

// childrenOf lists the children of pid, whichever of its threads started them.
func childrenOf(pid int) []string {
	var out []string
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		out = append(out, strings.Fields(string(data))...)
	}
	return out
}

// A barco stage as PROGRAM runs straight in the new namespaces and does
// the setup there itself.
func TestNSNextStageDoesSetup(t *testing.T) {
	ns := nsBin(t)
	r := testutil.Run(t, nil, ns, "-U", "-u", "-n", "--hostname", "inner", "--", "barco-ns", "-p", "--",
		"sh", "-c", "hostname; cat /proc/self/uid_map; echo pid=$$; grep -E '^Cap(Amb|Inh)' /proc/self/status; ip -o link show lo")
	out := strings.Join(strings.Fields(r.Stdout), " ")
	for _, want := range []string{"inner 0 100000 65536 pid=1", "CapInh: 0000000000000000 CapAmb: 0000000000000000", "LOOPBACK,UP"} {
		if !strings.Contains(out, want) {
			t.Errorf("nested barco-ns: no %q in %q (status %d, %s)", want, out, r.Code, r.Stderr)
		}
	}
}

// barco-ns --hook, composed by hand with barco-mount next: the hook runs
// once barco-mount has built the root (it sees the root's /dev/null
// through the child's /proc/PID/root), and once the child exists with
// --init, whose PID 1 starts barco-mount; with the state's pid the child's.
func TestNSHookWithBarcoMountNext(t *testing.T) {
	ns := nsBin(t)
	rootfs := testutil.CopyRootfs(t, 0)
	out := testutil.SearchableTempDir(t)
	for _, c := range []struct {
		name string
		init []string
		want string
	}{{"barco-mount first", nil, "dev\n"}, {"--init first", []string{"--init"}, "no dev\n"}} {
		seen := filepath.Join(out, strings.ReplaceAll(c.name, " ", "-"))
		hook := fmt.Sprintf(`{"path":"/bin/sh","args":["sh","-c","pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); if test -c /proc/$pid/root%s/dev/null; then echo dev; else echo no dev; fi > %s"]}`, rootfs, seen)
		args := append(append([]string{"-p", "-m", "-u", "-i"}, c.init...), "--hook", hook, "--hook-state", `{"ociVersion":"1.2.1","id":"x","status":"created","bundle":"/"}`,
			"--", "barco-mount", "--rootfs", rootfs, "--", "/bin/echo", "ran")
		r := testutil.Run(t, nil, append([]string{ns}, args...)...)
		if got, err := os.ReadFile(seen); r.Code != 0 || r.Stdout != "ran\n" || string(got) != c.want {
			t.Errorf("%s: status %d, %q, %s; the hook saw %q (%v), want %q", c.name, r.Code, r.Stdout, r.Stderr, got, err, c.want)
		}
	}
}

// With --init, PID 1 is barco-ns for the container's whole life; nothing
// inside may write the host binary through /proc/1/exe (CVE-2019-5736),
// with a user namespace or without one.
func TestNSInitBinaryNotWritable(t *testing.T) {
	ns := nsBin(t)
	before, err := os.ReadFile(ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, userns := range [][]string{{"-U"}, nil} {
		args := append(append([]string{ns}, userns...), "-m", "-p", "--init", "--",
			"barco-mount", "--rootfs", testutil.Rootfs(t), "--",
			"/bin/sh", "-c", "echo x >> /proc/1/exe && echo write=allowed || echo write=refused")
		r := testutil.Run(t, nil, args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "write=refused") {
			t.Errorf("%v: %q (status %d, %s)", userns, r.Stdout, r.Code, r.Stderr)
		}
	}
	if after, _ := os.ReadFile(ns); !bytes.Equal(before, after) {
		t.Fatal("bin/barco-ns was changed from inside a container")
	}
}

// --join makes PROGRAM in an existing namespace: here a network namespace
// of the test's own, held by a process of its own (ip netns add would leave
// a /run/netns mount on the host), which holds a device the host's has not.
func TestNSJoinNetworkByPath(t *testing.T) {
	testutil.RequireRoot(t)
	holder := exec.Command("unshare", "-n", "sh", "-c", "ip link set lo mtu 1234 && echo ready && exec sleep 60")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the namespace's holder: %q, %v", line, err)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	r := testutil.Run(t, nil, nsBin(t), "-p", "-m", "--join", "net="+netns, "--", "ip", "-o", "link", "show", "lo")
	if r.Code != 0 || !strings.Contains(r.Stdout, " mtu 1234 ") {
		t.Errorf("lo's mtu in the joined namespace: %q, status %d, %s; want 1234", r.Stdout, r.Code, r.Stderr)
	}
	r = testutil.Run(t, nil, nsBin(t), "-p", "--join", "uts="+netns, "--", "/bin/true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "not a uts namespace") {
		t.Errorf("a network namespace given as uts: status %d, %q", r.Code, r.Stderr)
	}
}
