package tests

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"

	"barco/lib/cgroup"
	"barco/lib/testutil"
)

// noProcessWithEnv fails t if a process is left whose environment holds
// kv: every stage of a container and its program carry its -e variables.
func noProcessWithEnv(t *testing.T, kv string) {
	t.Helper()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		env, err := os.ReadFile("/proc/" + d.Name() + "/environ")
		if err == nil && strings.Contains("\x00"+string(env), "\x00"+kv+"\x00") {
			cmdline, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
			t.Errorf("process %s left behind: %q", d.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// Nothing is left behind, whichever way a container ends.
func TestBarcoCleanupAfterEachEnding(t *testing.T) {
	bin := barcoBin(t)
	mountsBefore := hostMounts(t)
	for _, c := range []struct {
		name   string
		args   []string
		signal syscall.Signal // sent to barco once the container says ready
		want   int
	}{
		{"normal-exit", []string{"/bin/sh", "-c", "exit 4"}, 0, 4},
		{"failing-start", []string{"/no/such/program"}, 0, 127},
		{"sigterm", []string{"--init", "--", "/bin/sh", "-c", "echo ready; exec sleep 1000"}, syscall.SIGTERM, 143},
		{"sigint", []string{"--init", "--", "/bin/sh", "-c", "echo ready; exec sleep 1000"}, syscall.SIGINT, 130},
		{"oom-kill", []string{"--memory", "32M", "--memory-swap", "32M", "--", "/bin/sh", "-c", "x=a; while :; do x=$x$x; done"}, 0, 137},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "bt-cleanup-" + c.name
			marker := "BT_TEST_MARKER=" + name
			args := append([]string{bin, "run", "--name", name, "-e", marker}, c.args...)
			var code int
			if c.signal == 0 {
				code = testutil.Run(t, nil, args...).Code
			} else {
				cmd := exec.Command(args[0], args[1:]...)
				startReady(t, cmd)
				cmd.Process.Signal(c.signal)
				code = waitStatus(t, cmd)
			}
			if code != c.want {
				t.Errorf("status %d, want %d", code, c.want)
			}
			noCgroupLeft(t, name)
			noProcessWithEnv(t, marker)
			if after := hostMounts(t); after != mountsBefore {
				t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
			}
		})
	}
}

// The default container's limits are in place while it runs.
func TestBarcoDefaultLimits(t *testing.T) {
	bin := barcoBin(t)
	name := "bt-limits"
	cmd := exec.Command(bin, "run", "--name", name, "--", "/bin/sh", "-c", "echo ready; read x")
	stdin, _ := cmd.StdinPipe()
	startReady(t, cmd)
	var pidsMax string
	var in []string
	for _, p := range findCgroups(t, name) {
		if data, err := os.ReadFile(p + "/pids.max"); err == nil && strings.Contains(p, "/pids/") {
			pidsMax = strings.TrimSpace(string(data))
		}
		in = append(in, p)
	}
	stdin.Close()
	waitStatus(t, cmd)
	if pidsMax != "4096" {
		t.Errorf("pids.max of the container's cgroup = %q, want 4096", pidsMax)
	}
	// The v1 hierarchies of the default limits and devices, memory for
	// its accounting, and none that no limit uses.
	if l := hostLayout(t); l.Mode != cgroup.Unified {
		var got []string
		for _, h := range l.V1 {
			for _, p := range in {
				if strings.HasPrefix(p, h.Mount+"/") {
					got = append(got, strings.Join(h.Controllers, ","))
				}
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != "devices memory pids" {
			t.Errorf("the container's cgroup is in the v1 hierarchies of %q, want devices, memory and pids", got)
		}
	}
	noCgroupLeft(t, name)
}

// Inside the default container, loading a kernel module is refused.
func TestBarcoModuleLoadingRefused(t *testing.T) {
	// /tmp is a tmpfs: the shared rootfs stays as it is.
	out := barcoRun(t, "--tmpfs", "/tmp", "--", "/bin/sh", "-c", "echo x > /tmp/m.ko; insmod /tmp/m.ko 2>&1; echo status=$?")
	if !strings.Contains(out, "status=1") || !strings.Contains(strings.ToLower(out), "not permitted") {
		t.Errorf("insmod inside: %q", out)
	}
}

// --preserve-fds passes descriptors through the whole chain, and the
// variable that carries it stays the chain's own.
func TestBarcoPreservedFDsReachProgram(t *testing.T) {
	bin := barcoBin(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, "run", "--preserve-fds", "1", "--", "/bin/sh", "-c",
		"echo through-fd-3 >&3; echo ${BARCO_PRESERVE_FDS-unset} >&3")
	cmd.ExtraFiles = []*os.File{w}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	w.Close()
	got := make([]byte, 64)
	n, _ := r.Read(got)
	if strings.Join(strings.Fields(string(got[:n])), " ") != "through-fd-3 unset" {
		t.Errorf("read %q from the preserved descriptor", got[:n])
	}
}

// Every process of the container is in every cgroup of the container, v1
// and v2, with and without --init.
func TestBarcoProcessesAreInTheirCgroups(t *testing.T) {
	bin := barcoBin(t)
	for _, c := range []struct {
		flags []string
		procs int // sh and sleep, and the init
	}{{nil, 2}, {[]string{"--init"}, 3}} {
		name := "bt-members" + strings.Join(c.flags, "")
		args := append(append([]string{"run", "--name", name}, c.flags...),
			"--", "/bin/sh", "-c", "sleep 100 & echo ready; read x; kill $!")
		cmd := exec.Command(bin, args...)
		stdin, _ := cmd.StdinPipe()
		startReady(t, cmd)
		dirs := findCgroups(t, name)
		if len(dirs) == 0 {
			t.Errorf("%v: no cgroup named %s", c.flags, name)
		}
		for _, dir := range dirs {
			pids, err := cgroup.Procs(dir)
			if err != nil || len(pids) != c.procs {
				t.Errorf("%v: %s holds pids %v (%v), want the container's %d processes", c.flags, dir, pids, err, c.procs)
			}
		}
		stdin.Close()
		if code := waitStatus(t, cmd); code != 0 {
			t.Errorf("%v: status %d", c.flags, code)
		}
		noCgroupLeft(t, name)
	}
}
