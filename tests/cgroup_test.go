package tests

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"barco/lib/cgroup"
	"barco/lib/testutil"
)

// cgroupName is a cgroup name of the test's own, so that a leftover is
// easy to find and to blame.
func cgroupName(t *testing.T) string {
	return fmt.Sprintf("bt-%s-%d", strings.ToLower(strings.TrimPrefix(t.Name(), "TestCgroup")), os.Getpid())
}

func hostLayout(t *testing.T) *cgroup.Layout {
	t.Helper()
	l, err := cgroup.DetectLayout("/proc/self/mountinfo", "/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hierarchies are the mount points of every cgroup hierarchy.
func hierarchies(t *testing.T) []string {
	l := hostLayout(t)
	var m []string
	for _, h := range l.V1 {
		m = append(m, h.Mount)
	}
	if l.V2 != nil {
		m = append(m, l.V2.Mount)
	}
	return m
}

// findCgroups lists the cgroups named name in every hierarchy.
func findCgroups(t *testing.T, name string) []string {
	t.Helper()
	var found []string
	for _, root := range hierarchies(t) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == name {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// removeCgroups removes the empty cgroups named name, quietly: for the
// parents that the tests name themselves.
func removeCgroups(t *testing.T, name string) {
	for _, p := range findCgroups(t, name) {
		os.Remove(p)
	}
}

// noCgroupLeft fails t if a cgroup named name is left in any hierarchy,
// and removes it so that one failure does not spoil the machine.
func noCgroupLeft(t *testing.T, name string) {
	t.Helper()
	left := findCgroups(t, name)
	for _, p := range left {
		if pids, _ := cgroup.Procs(p); len(pids) > 0 {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(p)
	}
	if len(left) > 0 {
		t.Errorf("cgroups left behind: %q", left)
	}
}

func cgroupBin(t *testing.T) string {
	testutil.RequireRoot(t)
	return testutil.Bin(t, "barco-cgroup")
}

var statsLine = regexp.MustCompile(`stats: memory peak (\S+), cpu time ([0-9.]+)s, pids peak (\d+)`)

func TestCgroupMemoryHogIsOOMKilled(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	// tail keeps the line it reads, and /dev/zero has no newline. The
	// ulimit spares the host if the hog ever escapes its cgroup.
	r := testutil.Run(t, nil, bin, "--name", name, "--memory", "32M", "--memory-swap", "32M", "--",
		"sh", "-c", "ulimit -v 1048576; exec tail /dev/zero")
	if r.Code != 137 {
		t.Errorf("status %d, want 137; stderr: %s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "barco-cgroup: killed by the kernel: out of memory (limit 32M)\n") {
		t.Errorf("stderr lacks the out-of-memory line: %q", r.Stderr)
	}
}

func TestCgroupForkBombIsContained(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	// The first shell forks a timer and one subshell for the bomb, waits
	// for the timer with builtins only (dash exits when a fork fails), and
	// exits; barco-cgroup then kills the rest.
	r := testutil.Run(t, nil, bin, "--name", name, "--pids", "32", "--stats", "--",
		"sh", "-c", `sleep 2 & timer=$!; (bomb() { bomb | bomb & }; bomb) 2>/dev/null & wait $timer; echo survived`)
	if r.Code != 0 || !strings.Contains(r.Stdout, "survived") {
		t.Fatalf("status %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	m := statsLine.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no stats line in %q", r.Stderr)
	}
	if peak, _ := strconv.Atoi(m[3]); peak > 32 || peak < 16 {
		t.Errorf("pids peak %d; want the bomb to reach the limit of 32 and not pass it", peak)
	}
	// The host still forks.
	if out, err := exec.Command("sh", "-c", "echo ok").Output(); err != nil || string(out) != "ok\n" {
		t.Errorf("host fork after the bomb: %q, %v", out, err)
	}
}

func TestCgroupCPUQuota(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	// A busy loop for 4 seconds of wall time: about 2 seconds of CPU
	// under half a CPU, 4 without a limit.
	r := testutil.Run(t, nil, bin, "--name", name, "--cpus", "0.5", "--stats", "--",
		"timeout", "4", "sh", "-c", "while :; do :; done")
	if r.Code != 124 {
		t.Fatalf("status %d, want timeout's 124; stderr %s", r.Code, r.Stderr)
	}
	m := statsLine.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no stats line in %q", r.Stderr)
	}
	cpu, _ := strconv.ParseFloat(m[2], 64)
	if cpu < 0.8 || cpu > 2.8 {
		t.Errorf("cpu time %.2fs in 4s under --cpus 0.5; want about 2s", cpu)
	}
}

// cgroupsByController maps each controller of /proc/PID/cgroup lines
// ("" for v2) to the cgroup path.
func cgroupsByController(lines []string) map[string]string {
	m := map[string]string{}
	for _, line := range lines {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// The program and its children are in the cgroup in the v2 hierarchy and
// in the v1 hierarchies it needs: pids, devices and memory always, the
// others only for a limit that uses them (see cgroup.V1Controllers).
func TestCgroupProcessIsInTheCgroup(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	layout := hostLayout(t)
	for _, c := range []struct {
		args    []string
		in, out []string // controllers; "" is v2
	}{
		{nil, []string{"", "pids", "devices", "memory"}, []string{"cpu", "cpuacct", "cpuset", "freezer", "blkio"}},
		{[]string{"--cpus", "1.5"}, []string{"", "pids", "devices", "memory", "cpu"}, []string{"cpuset", "freezer", "blkio"}},
		{[]string{"--cpuset-cpus", "0"}, []string{"", "pids", "devices", "memory", "cpuset"}, []string{"cpu", "freezer", "blkio"}},
	} {
		argv := append(append([]string{bin, "--name", name}, c.args...), "--", "sh", "-c", "cat /proc/self/cgroup; echo children; sh -c 'cat /proc/self/cgroup'")
		r := testutil.Run(t, nil, argv...)
		if r.Code != 0 {
			t.Fatalf("%q: status %d, stderr %s", c.args, r.Code, r.Stderr)
		}
		program, child, ok := strings.Cut(r.Stdout, "children\n")
		if !ok {
			t.Fatalf("%q: output %q", c.args, r.Stdout)
		}
		for who, out := range map[string]string{"program": program, "child": child} {
			cg := cgroupsByController(testutil.Lines(out))
			for _, ctrl := range c.in {
				if ctrl == "" && layout.V2 == nil || ctrl != "" && layout.Controller(ctrl) == nil {
					continue
				}
				if !strings.HasSuffix(cg[ctrl], "/"+testParent+"/"+name) {
					t.Errorf("%q: the %s is not in the cgroup in hierarchy %q: %q", c.args, who, ctrl, cg[ctrl])
				}
			}
			for _, ctrl := range c.out {
				if p, ok := cg[ctrl]; ok && strings.HasSuffix(p, "/"+testParent+"/"+name) {
					t.Errorf("%q: the %s is in the cgroup in hierarchy %s, which no limit needs", c.args, who, ctrl)
				}
			}
		}
		noCgroupLeft(t, name)
	}
}

func TestCgroupStatusAndStartFailures(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	cases := []struct {
		argv []string
		code int
		err  string
	}{
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{[]string{"/nonexistent/program"}, 127, "barco-cgroup: exec /nonexistent/program: no such file or directory"},
		{[]string{"/etc/passwd"}, 126, "barco-cgroup: exec /etc/passwd: permission denied"},
	}
	for _, c := range cases {
		r := testutil.Run(t, nil, append([]string{bin, "--name", name, "--"}, c.argv...)...)
		if r.Code != c.code || !strings.HasPrefix(r.Stderr, c.err) {
			t.Errorf("%q: status %d, stderr %q; want %d, %q", c.argv, r.Code, r.Stderr, c.code, c.err)
		}
	}
}

func TestCgroupBadInput(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"--memory", "lots", "true"}, `barco-cgroup: option --memory: not a size in bytes: "lots"`},
		{[]string{"--cpus", "0", "true"}, `barco-cgroup: option --cpus: not a number of CPUs: "0"`},
		{[]string{"--cpuset-cpus", "3-1", "true"}, `barco-cgroup: option --cpuset-cpus: not a list`},
		{[]string{"--device-allow", "z 1:2 r", "true"}, `barco-cgroup: option --device-allow: not a device rule`},
		{[]string{"--memory-swap", "1G", "true"}, "barco-cgroup: --memory-swap 1G: needs --memory"},
		{[]string{"--name", "a/b", "true"}, `barco-cgroup: option --name: "a/b": not a name`},
		{[]string{"--name", "a\nb", "true"}, `barco-cgroup: option --name: "a\nb": not a name`},
		{[]string{"--memory", "1", "true"}, `barco-cgroup: option --memory: "1": below the minimum memory limit, 6M`},
		{[]string{"--memory", "-1", "true"}, `barco-cgroup: option --memory: not a size in bytes: "-1"`},
	}
	for _, c := range cases {
		r := testutil.Run(t, nil, append([]string{bin}, c.args...)...)
		if r.Code != 125 || !strings.HasPrefix(r.Stderr, c.err) || len(testutil.Lines(r.Stderr)) != 1 {
			t.Errorf("%q: status %d, stderr %q; want 125, %q", c.args, r.Code, r.Stderr, c.err)
		}
	}
}

func TestCgroupMissingController(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	l := hostLayout(t)
	blkio := l.Controller("blkio")
	if l.Mode == cgroup.Unified || blkio == nil {
		t.Skip("needs cgroup v1 with a blkio hierarchy")
	}
	if _, err := os.Stat(filepath.Join(blkio.Mount, "blkio.weight")); err == nil {
		t.Skip("blkio.weight exists here")
	}
	r := testutil.Run(t, nil, bin, "--name", name, "--io-weight", "100", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "controller blkio of cgroup v1") {
		t.Errorf("status %d, stderr %q; want 125 naming the controller and the layout", r.Code, r.Stderr)
	}
}

func TestCgroupNameInUse(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	parent := "/" + name + "-parent"
	defer noCgroupLeft(t, name+"-parent")
	// Hold the name with a running barco-cgroup.
	holder := exec.Command(bin, "--parent", parent, "--name", name, "--", "sh", "-c", "echo ready; read x || true")
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	r := testutil.Run(t, nil, bin, "--parent", parent, "--name", name, "--", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, name+": name already in use") {
		t.Errorf("second use of the name: status %d, stderr %q", r.Code, r.Stderr)
	}
	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Errorf("holder: %v (the failed second run must not disturb it)", err)
	}
}

// startHeld starts barco-cgroup running a shell that says ready and then
// waits on stdin, and returns once the shell runs.
func startHeld(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("%q said %q, %v", args, line, err)
	}
	return cmd, out
}

func TestCgroupSignalsAreForwardedThenCleanedUp(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		// The program leaves a grandchild behind, which must be killed too.
		cmd, out := startHeld(t, bin, "--name", name, "--", "sh", "-c",
			`trap 'echo got-signal; exit 3' TERM INT; sleep 1000 & echo ready; while :; do read x; done`)
		cmd.Process.Signal(sig)
		if rest, _ := out.ReadString('\n'); rest != "got-signal\n" {
			t.Errorf("%v: the program did not get the signal: %q", sig, rest)
		}
		if code := testutil.StatusOf(cmd.Wait()); code != 3 {
			t.Errorf("%v: status %d, want the program's 3", sig, code)
		}
		noCgroupLeft(t, name)
	}
}

func TestCgroupSupervisorKilled(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	cmd, out := startHeld(t, bin, "--name", name, "--", "sh", "-c", "echo ready $$; read x")
	_ = out
	cmd.Process.Kill()
	cmd.Wait()
	// The program dies with its supervisor: the cgroup empties.
	left := findCgroups(t, name)
	if len(left) == 0 {
		t.Fatal("the cgroup vanished with a SIGKILLed supervisor; nothing to test")
	}
	deadline := time.Now().Add(testutil.Timeout)
	for _, dir := range left {
		for {
			pids, err := cgroup.Procs(dir)
			if err != nil || len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("processes %v outlived their supervisor in %s", pids, dir)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The next run removes the stale cgroup: its recorded owner is gone.
	if r := testutil.Run(t, nil, bin, "--", "true"); r.Code != 0 {
		t.Fatalf("next run: status %d, stderr %s", r.Code, r.Stderr)
	}
	if left := findCgroups(t, name); len(left) > 0 {
		t.Errorf("the next run left the stale cgroup: %q", left)
	}
}

func TestCgroupDevices(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	dir := t.TempDir()
	script := fmt.Sprintf(`cd %s
rm -f blk kmsg
mknod blk b 7 0 && mknod kmsg c 1 11 && echo made
(: <blk) 2>&1 | grep -q 'not permitted' && echo block=denied
(: <kmsg) 2>&1 | grep -q 'not permitted' && echo kmsg=denied || echo kmsg=ok
(: >/dev/null) && echo null=ok
(: </dev/urandom) && echo urandom=ok
(: </dev/full) && echo full=ok
`, dir)
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"made", "kmsg=ok", "null=ok"}},
		{[]string{"--devices", "all"}, []string{"made", "kmsg=ok", "null=ok"}},
		{[]string{"--devices", "default"}, []string{"made", "block=denied", "kmsg=denied", "null=ok", "urandom=ok", "full=ok"}},
		{[]string{"--device-allow", "c 1:11 r"}, []string{"made", "block=denied", "kmsg=ok", "null=ok"}},
		// A rule of type a is for both types, with its numbers and access:
		// not v1's "a", which allows every device.
		{[]string{"--device-allow", "a 1:11 r"}, []string{"made", "block=denied", "kmsg=ok", "null=ok"}},
	}
	for _, c := range cases {
		argv := append(append([]string{bin, "--name", name}, c.args...), "--", "sh", "-c", script)
		r := testutil.Run(t, nil, argv...)
		for _, want := range c.want {
			if !strings.Contains(r.Stdout, want+"\n") {
				t.Errorf("%q: no %q in %q (stderr %s)", c.args, want, r.Stdout, r.Stderr)
			}
		}
		if c.args == nil && strings.Contains(r.Stdout, "denied") {
			t.Errorf("without device options a device was denied: %q", r.Stdout)
		}
	}
}

func TestCgroupExecJoins(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	parent := "/" + name + "-parent"
	defer removeCgroups(t, name+"-parent")
	defer removeCgroups(t, name)
	r := testutil.Run(t, nil, bin, "--exec", "--parent", parent, "--name", name, "--pids", "10", "--", "sh", "-c", "echo $$; cat /proc/self/cgroup")
	if r.Code != 0 || !strings.Contains(r.Stdout, ":"+parent+"/"+name+"\n") {
		t.Fatalf("status %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	// The cgroup stays, as cgexec's does, with its limit.
	l := hostLayout(t)
	dir := filepath.Join(l.Controller("pids").Mount, parent, name)
	if l.Mode == cgroup.Unified {
		dir = filepath.Join(l.V2.Mount, parent, name)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "pids.max")); err != nil || string(data) != "10\n" {
		t.Errorf("pids.max of the cgroup joined: %q, %v", data, err)
	}
}

// TestCgroupV2Path drives the cgroup v2 code path on the host's v2
// hierarchy, whatever the layout: create, clone a process into it, kill it
// with cgroup.kill, remove. In hybrid mode the v2 hierarchy has no
// controllers, so a limit must fail and say so.
func TestCgroupV2Path(t *testing.T) {
	testutil.RequireRoot(t)
	host := hostLayout(t)
	if host.V2 == nil {
		t.Skip("no cgroup v2 hierarchy")
	}
	name := cgroupName(t)
	defer noCgroupLeft(t, name)
	l := &cgroup.Layout{Mode: cgroup.Unified, V2: host.V2}
	c, err := cgroup.Locate(l, "/"+name+"-parent", name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer noCgroupLeft(t, name+"-parent")

	if host.Mode == cgroup.Hybrid {
		err := c.Create(&cgroup.Limits{Memory: 32 << 20})
		if err == nil || !strings.Contains(err.Error(), "controller memory: not delegated") || !strings.Contains(err.Error(), "cgroup v2") {
			t.Errorf("a memory limit on the controller-less v2 hierarchy: %v", err)
		}
		if left := findCgroups(t, name+"-parent"); len(left) > 0 {
			t.Errorf("a failed Create left %q", left)
		}
	}
	if err := c.Create(&cgroup.Limits{}); err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start("/bin/sh", []string{"sh", "-c", "sleep 1000 & sleep 1000"}, os.Environ())
	if err != nil {
		c.Remove()
		t.Fatal(err)
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(data), "0::/"+name+"-parent/"+name+"\n") {
		t.Errorf("the child is not in the v2 cgroup: %s", data)
	}
	if err := c.Kill(); err != nil {
		t.Error(err)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("after cgroup.kill the child ended with %v", ws)
	}
	if err := c.Remove(); err != nil {
		t.Error(err)
	}

	// Devices on v2 are a cgroup device eBPF program; the kernel runs it in
	// hybrid mode as well, so this is the real thing.
	kmsgRead, _ := cgroup.ParseDeviceRule("c 1:11 r")
	for _, tc := range []struct {
		rules []cgroup.DeviceRule
		want  []string
	}{
		{cgroup.DefaultDevices, []string{"made", "block=denied", "kmsg-read=denied", "kmsg-write=denied", "null,zero=ok"}},
		{append(append([]cgroup.DeviceRule{}, cgroup.DefaultDevices...), kmsgRead), []string{"made", "block=denied", "kmsg-read=ok", "kmsg-write=denied", "null,zero=ok"}},
	} {
		if err := c.Create(&cgroup.Limits{Devices: tc.rules}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		script := fmt.Sprintf(`cd %s; exec >out 2>&1
mknod blk b 7 0 && mknod kmsg c 1 11 && echo made
(: <blk) 2>&1 | grep -q 'not permitted' && echo block=denied
(: <kmsg) 2>&1 | grep -q 'not permitted' && echo kmsg-read=denied || echo kmsg-read=ok
(: >>kmsg) 2>&1 | grep -q 'not permitted' && echo kmsg-write=denied
(: >/dev/null) && (: </dev/zero) && echo null,zero=ok
`, dir)
		pid, err = c.Start("/bin/sh", []string{"sh", "-c", script}, os.Environ())
		if err != nil {
			c.Remove()
			t.Fatal(err)
		}
		syscall.Wait4(pid, &ws, 0, nil)
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
		out, _ := os.ReadFile(filepath.Join(dir, "out"))
		for _, want := range tc.want {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("device program of %d rules: no %q in %q", len(tc.rules), want, out)
			}
		}
	}
}

func TestCgroupDescriptorsAndNextStage(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	f3, _ := os.Open(os.DevNull)
	f4, _ := os.Open(os.DevNull)
	defer f3.Close()
	defer f4.Close()
	// PROGRAM keeps 0, 1, 2 and the one BARCO_PRESERVE_FDS asks for.
	cmd := exec.Command(bin, "--name", name, "--", "sh", "-c",
		`(: <&3) 2>/dev/null && echo fd3=open; (: <&4) 2>/dev/null || echo fd4=closed`)
	cmd.Env = append(os.Environ(), "BARCO_PRESERVE_FDS=1")
	cmd.ExtraFiles = []*os.File{f3, f4}
	out, err := cmd.Output()
	if err != nil || string(out) != "fd3=open\nfd4=closed\n" {
		t.Errorf("descriptors: %q, %v", out, err)
	}
	// A bare stage name is the binary next to barco-cgroup, not one in
	// PATH; a relative parent nests the inner cgroup in the outer one.
	cmd = exec.Command(bin, "--name", name, "--", "barco-cgroup", "--name", "inner", "--", "cat", "/proc/self/cgroup")
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
	out, err = cmd.Output()
	inner := "/" + testParent + "/" + name + "/" + testParent + "/inner\n"
	if hostLayout(t).Mode == cgroup.Unified {
		// v2 puts a cgroup beside the caller's (see cgroup.Locate).
		inner = "/" + testParent + "/" + testParent + "/inner\n"
	}
	if err != nil || !strings.Contains(string(out), "0::"+inner) {
		t.Errorf("nested barco-cgroup: %q, %v", out, err)
	}
}

func TestCgroupV1LimitsAreWritten(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	if hostLayout(t).Mode == cgroup.Unified {
		t.Skip("needs cgroup v1 controllers")
	}
	script := `cg() { echo /sys/fs/cgroup/$1$(sed -n "s/^[0-9]*:$1:\(.*\)/\1/p" /proc/self/cgroup); }
cat $(cg memory)/memory.limit_in_bytes $(cg memory)/memory.memsw.limit_in_bytes
cat $(cg cpu)/cpu.cfs_quota_us $(cg cpu)/cpu.cfs_period_us $(cg cpu)/cpu.shares
cat $(cg cpuset)/cpuset.cpus $(cg cpuset)/cpuset.mems $(cg pids)/pids.max`
	r := testutil.Run(t, nil, bin, "--name", name, "--memory", "48M", "--memory-swap", "64M", "--cpus", "1.5",
		"--cpu-weight", "100", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids", "77", "--", "sh", "-c", script)
	want := []string{"50331648", "67108864", "150000", "100000", "2597", "0", "0", "77"}
	if got := testutil.Lines(r.Stdout); r.Code != 0 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("status %d, control files %q, want %q; stderr %s", r.Code, got, want, r.Stderr)
	}
}

func TestCgroupOOMThroughTheNextStage(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	testutil.Bin(t, "barco-ns")
	defer noCgroupLeft(t, name)
	// barco-ns relays its program's SIGKILL as status 137; the kernel's
	// count of OOM kills in the cgroup says why.
	r := testutil.Run(t, nil, bin, "--name", name, "--memory", "32M", "--memory-swap", "32M", "--",
		"barco-ns", "-p", "--init", "--", "sh", "-c", "ulimit -v 1048576; exec tail /dev/zero")
	if r.Code != 137 || !strings.Contains(r.Stderr, "barco-cgroup: killed by the kernel: out of memory (limit 32M)\n") {
		t.Errorf("status %d, stderr %q; want 137 and the out-of-memory line", r.Code, r.Stderr)
	}
}

// barco-cgroup runs a following barco-ns in its own process, which starts
// its child in the cgroup; the cgroup still goes however barco-ns ends,
// and the child is in it.
func TestCgroupHandsOverToBarcoNS(t *testing.T) {
	bin := cgroupBin(t)
	testutil.Bin(t, "barco-ns")
	name := cgroupName(t)
	defer removeCgroups(t, name)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--version"}, 0},
		{[]string{"--no-such-option"}, 125},
		{[]string{"-U", "-p", "--", "/no/such/program"}, 127},
		{[]string{"-U", "-p", "--", "sh", "-c", "exit 7"}, 7},
	} {
		r := testutil.Run(t, []string{"BARCO_DEBUG=1"}, append([]string{bin, "--name", name, "--pids", "10", "--", "barco-ns"}, c.args...)...)
		if r.Code != c.code {
			t.Errorf("barco-ns %q: status %d, want %d; stderr %s", c.args, r.Code, c.code, r.Stderr)
		}
		if c.code != 0 && !strings.Contains(r.Stderr, "continue as barco-ns") {
			t.Errorf("barco-ns %q did not run in barco-cgroup's process:\n%s", c.args, r.Stderr)
		}
		noCgroupLeft(t, name)
	}
	r := testutil.Run(t, nil, bin, "--name", name, "--pids", "10", "--", "barco-ns", "-U", "-p", "--", "cat", "/proc/self/cgroup")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	// Every hierarchy with a pids controller or none (v2) has it.
	checked := 0
	for _, l := range testutil.Lines(r.Stdout) {
		if strings.HasPrefix(l, "0::") || strings.Contains(l, ":pids:") {
			checked++
			if !strings.HasSuffix(l, "/"+testParent+"/"+name) {
				t.Errorf("barco-ns's child is not in the cgroup %s: %s", name, l)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no v2 or pids line in the child's /proc/self/cgroup:\n%s", r.Stdout)
	}
	noCgroupLeft(t, name)
}

// Two runs that overlap leave no parent cgroup: the one that made the
// default parent ends first and sees the other's cgroup in it, and the
// other did not make it; the last one out removes it.
func TestCgroupOverlappingRunsLeaveNoParent(t *testing.T) {
	bin := cgroupBin(t)
	for p := range barcoParents() {
		os.Remove(p)
	}
	if left := barcoParents(); len(left) > 0 {
		t.Fatalf("another barco run holds the default parent %v; run this test alone", left)
	}
	start := func() (*exec.Cmd, io.Closer) {
		cmd := exec.Command(bin, "--", "/bin/sh", "-c", "echo ready; read x; exit 0")
		hold, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("run said %q, %v", line, err)
		}
		return cmd, hold
	}
	first, holdFirst := start()
	second, holdSecond := start()
	for _, run := range []struct {
		cmd  *exec.Cmd
		hold io.Closer
	}{{first, holdFirst}, {second, holdSecond}} {
		run.hold.Close()
		if err := run.cmd.Wait(); err != nil {
			t.Fatalf("%v: %v", run.cmd.Args, err)
		}
		if run.cmd == first && len(barcoParents()) == 0 {
			t.Fatal("the default parent is gone while the second run is in it")
		}
	}
	if left := barcoParents(); len(left) > 0 {
		t.Errorf("parent cgroups left behind: %v", left)
	}
}

// A run under a parent it did not make sweeps only what barco left there:
// an empty cgroup another manager made and configured in that parent (a
// cgexec target, an empty systemd slice) is not barco's to remove.
func TestCgroupSweepSparesForeignCgroups(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	parent := "/" + name + "-parent"
	defer removeCgroups(t, name+"-parent")
	l := hostLayout(t)
	h := l.V2
	if len(l.V1) > 0 {
		h = l.Controller("pids") // joined by every cgroup on v1
	}
	foreign := h.Dir(parent + "/foreign")
	defer os.Remove(foreign)
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := testutil.Run(t, nil, bin, "--parent", parent, "--name", name, "--", "true"); r.Code != 0 {
		t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("the run removed %s, a cgroup it did not make: %v", foreign, err)
	}
}

// A cgroup made with --exec stays for its owner: later runs do not take it
// for a stale one, however old it is.
func TestCgroupSweepSparesExecCgroups(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer removeCgroups(t, name)
	if r := testutil.Run(t, nil, bin, "--exec", "--name", name, "--pids", "10", "--", "true"); r.Code != 0 {
		t.Fatalf("--exec: status %d, stderr %s", r.Code, r.Stderr)
	}
	made := findCgroups(t, name)
	if len(made) == 0 {
		t.Fatal("--exec made no cgroup")
	}
	if r := testutil.Run(t, nil, bin, "--", "true"); r.Code != 0 {
		t.Fatalf("next run: status %d, stderr %s", r.Code, r.Stderr)
	}
	if left := findCgroups(t, name); len(left) != len(made) {
		t.Errorf("the next run removed --exec's cgroup: had %q, now %q", made, left)
	}
}

// A stale cgroup that holds the name of a new run (a killed supervisor's,
// named after a pid that is reused) does not block that run.
func TestCgroupStaleNameIsReclaimed(t *testing.T) {
	bin, name := cgroupBin(t), cgroupName(t)
	defer noCgroupLeft(t, name)
	cmd, _ := startHeld(t, bin, "--name", name, "--", "sh", "-c", "echo ready; read x")
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(testutil.Timeout)
	for _, dir := range findCgroups(t, name) {
		for pids, _ := cgroup.Procs(dir); len(pids) > 0 && time.Now().Before(deadline); pids, _ = cgroup.Procs(dir) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	r := testutil.Run(t, nil, bin, "--name", name, "--", "echo", "ran")
	if r.Code != 0 || r.Stdout != "ran\n" {
		t.Errorf("run over a stale cgroup of its name: status %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
}
