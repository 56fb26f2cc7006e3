package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"barco/lib/testutil"
)

func barcoBin(t *testing.T) string {
	testutil.RequireRoot(t)
	for _, s := range []string{"barco-cgroup", "barco-ns", "barco-mount", "barco-caps", "barco-seccomp"} {
		testutil.Bin(t, s)
	}
	testutil.Rootfs(t)
	return testutil.Bin(t, "barco")
}

// run runs `barco run ARGS...` and fails the test unless it exits 0.
func barcoRun(t *testing.T, args ...string) string {
	t.Helper()
	r := testutil.Run(t, nil, append([]string{barcoBin(t), "run"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("barco run %q: status %d, stderr %s", args, r.Code, r.Stderr)
	}
	return r.Stdout
}

func TestBarcoDefaultContainer(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		hostHostname, _ := os.Hostname()
		out := barcoRun(t, "--", "/bin/sh", "-c", `
	echo pid=$$
	echo hostname=$(hostname)
	test $(ls -d /proc/[0-9]* | wc -l) -le 5 && echo host-processes=invisible
	echo uid=$(id -u)
	grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\t'
	cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //;s/^/uidmap=/'
	echo env=$(env | cut -d= -f1 | sort | tr '\n' ,)
	mount -t tmpfs none /tmp 2>/dev/null && echo mount=allowed || echo mount=refused
	hostname evil 2>/dev/null && echo sethostname=allowed || echo sethostname=refused
	echo etc-passwd-owner=$(stat -c %u:%g /etc/passwd)
	touch /etc/barco-test 2>/dev/null && echo rootfs=writable || echo rootfs=readonly-for-container-root
	`)
		for _, want := range []string{
			"pid=1", "hostname=barco", "host-processes=invisible", "uid=0",
			"CapEff:00000000800405fb", "Seccomp:2", "NoNewPrivs:1",
			"uidmap=0 100000 65536",
			"env=HOME,HOSTNAME,PATH,PWD,SHLVL,TERM,",
			"mount=refused", "sethostname=refused", "etc-passwd-owner=0:0", "rootfs=writable",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("inside the default container: no %q in\n%s", want, out)
			}
		}
		if h, _ := os.Hostname(); h != hostHostname {
			t.Errorf("host hostname changed to %q", h)
		}
		if _, err := os.Stat(filepath.Join(testutil.Rootfs(t), "etc", "barco-test")); err == nil {
			t.Error("the container's write went into the rootfs on the host")
		}
	})
}

// The stages run on one P (GOMAXPROCS=1 in their environment), but
// PROGRAM's environment is the one it was given: no GOMAXPROCS unless
// asked, and then the one asked for.
func TestBarcoGOMAXPROCSIsProgramsOwn(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		if out := barcoRun(t, "--", "/bin/sh", "-c", "echo ${GOMAXPROCS-unset} $(env | grep -c ^BARCO_)"); out != "unset 0\n" {
			t.Errorf("PROGRAM got %q, want %q", out, "unset 0\n")
		}
		if out := barcoRun(t, "-e", "GOMAXPROCS=3", "--", "/bin/sh", "-c", "echo $GOMAXPROCS"); out != "3\n" {
			t.Errorf("-e GOMAXPROCS=3: PROGRAM got %q, want %q", out, "3\n")
		}
		// With --init, the init starts the next stage, or PROGRAM.
		if out := barcoRun(t, "--init", "--", "/bin/sh", "-c", "echo ${GOMAXPROCS-unset} $(env | grep -c ^BARCO_)"); out != "unset 0\n" {
			t.Errorf("--init: PROGRAM got %q, want %q", out, "unset 0\n")
		}
	})
}

// PROGRAM gets the open-file limit barco was started with: Go raises its
// own soft limit to the hard one, and the chain gives the caller's back
// before each exec, as syscall.Exec does (a program that uses select(2)
// may rely on a soft limit of 1024).
func TestBarcoKeepsCallersOpenFileLimit(t *testing.T) {
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil {
		t.Fatal(err)
	}
	if hard.Max < 1001 {
		t.Skipf("hard RLIMIT_NOFILE %d: no room below it", hard.Max)
	}
	want := fmt.Sprintf("1000 %d\n", hard.Max)
	show := []string{"--", "/bin/sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn)"}
	underLow := func(t *testing.T, want string, argv ...string) {
		t.Helper()
		r := testutil.Run(t, nil, append([]string{"/bin/sh", "-c", `ulimit -Sn 1000 && exec "$@"`, "sh"}, argv...)...)
		if r.Code != 0 || r.Stdout != want {
			t.Errorf("%q under ulimit -Sn 1000: %q, status %d, %s; want %q", argv, r.Stdout, r.Code, r.Stderr, want)
		}
	}
	bothStageModes(t, func(t *testing.T) {
		for _, opts := range [][]string{nil, {"--init"}, {"--no-userns"}} {
			underLow(t, want, append(append([]string{barcoBin(t), "run"}, opts...), show...)...)
		}
		// The child that joins a mount namespace itself (as the OCI
		// mode's exec does), here the host's own.
		underLow(t, want, append([]string{testutil.Bin(t, "barco-ns"), "--join", fmt.Sprintf("mnt=/proc/%d/ns/mnt", os.Getpid())}, show...)...)
		// A limit the chain sets wins, whatever it is.
		set := fmt.Sprintf("%d %d\n", hard.Max-1, hard.Max)
		underLow(t, set, append([]string{testutil.Bin(t, "barco-ns"), "-U", "--rlimit", fmt.Sprintf("nofile=%d:%d", hard.Max-1, hard.Max)}, show...)...)
	})
}

// In the original command line -a is argv[0] and CMD gets no argument:
// the original execs argv {ARG, NULL}.
func TestBarcoOriginalInvocation(t *testing.T) {
	bin := barcoBin(t)
	// On the host's root: busybox would take argv[0] for its applet.
	r := testutil.Run(t, nil, bin, "-u", "0", "-m", "/", "-c", "/bin/echo", "-a", "hello")
	if r.Code != 0 || r.Stdout != "\n" {
		t.Errorf("-c /bin/echo -a hello: %q, status %d, %s; want an empty line (hello is argv[0])", r.Stdout, r.Code, r.Stderr)
	}
	// The original demo mounts the host root; its shell reads commands
	// from stdin and is named by -a.
	cmd := exec.Command(bin, "-u", "0", "-m", "/", "-c", "/bin/sh", "-a", ".")
	cmd.Stdin = strings.NewReader(`echo "name=$0 args=$#"; cat /etc/hostname` + "\n")
	out, err := cmd.Output()
	host, herr := os.ReadFile("/etc/hostname")
	if herr != nil {
		t.Fatal(herr)
	}
	if err != nil || string(out) != "name=. args=0\n"+string(host) {
		t.Errorf("barco -u 0 -m / -c /bin/sh -a . with commands on stdin: %q, %v; want name=. args=0 and the host's %q", out, err, host)
	}
	// Without -a, argv[0] is CMD.
	cmd = exec.Command(bin, "-u", "0", "-m", "/", "-c", "/bin/sh")
	cmd.Stdin = strings.NewReader(`echo "name=$0"` + "\n")
	if out, err := cmd.Output(); err != nil || string(out) != "name=/bin/sh\n" {
		t.Errorf("barco -u 0 -m / -c /bin/sh: %q, %v; want name=/bin/sh", out, err)
	}
}

func TestBarcoExitStatus(t *testing.T) {
	bin := barcoBin(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"run", "--", "/bin/sh", "-c", "exit 3"}, 3},
		{[]string{"run", "--", "/bin/sh", "-c", `sh -c 'kill -TERM $$'; exit $?`}, 143},
		{[]string{"run", "--", "/no/such/program"}, 127},
		{[]string{"run", "--", "/etc/passwd"}, 126},
		{[]string{"run", "--no-such-option", "true"}, 125},
		{[]string{"run", "--rootfs", "/no/such/dir", "true"}, 125},
		{[]string{"frobnicate"}, 125},
	} {
		r := testutil.Run(t, nil, append([]string{bin}, c.args...)...)
		if r.Code != c.want {
			t.Errorf("barco %q: status %d, want %d (stderr %q)", c.args, r.Code, c.want, r.Stderr)
		}
		if c.want == 125 && len(testutil.Lines(r.Stderr)) != 1 {
			t.Errorf("barco %q: stderr is not one line: %q", c.args, r.Stderr)
		}
	}
}

func TestBarcoChainPastedIntoShell(t *testing.T) {
	bin := barcoBin(t)
	args := []string{"--name", "pasted", "--memory", "64M", "-e", "GREETING=it's me", "--", "/bin/sh", "-c", `echo "$GREETING from $(hostname)"`}
	chain := testutil.Run(t, nil, append([]string{bin, "chain"}, args...)...)
	if chain.Code != 0 {
		t.Fatalf("barco chain: %d %s", chain.Code, chain.Stderr)
	}
	viaShell := testutil.Run(t, nil, "sh", "-c", chain.Stdout)
	viaRun := testutil.Run(t, nil, append([]string{bin, "run"}, args...)...)
	if viaShell.Code != 0 || viaShell.Stdout != viaRun.Stdout || viaRun.Stdout != "it's me from pasted\n" {
		t.Errorf("chain via sh: %q (%d, %s); barco run: %q (%d, %s)", viaShell.Stdout, viaShell.Code, viaShell.Stderr, viaRun.Stdout, viaRun.Code, viaRun.Stderr)
	}
}

// The container's cgroup namespace is rooted at its own cgroup, in every
// hierarchy: it sees itself at "/", nothing of the host's tree.
func TestBarcoCgroupNamespaceRoot(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		out := barcoRun(t, "--", "cat", "/proc/self/cgroup")
		lines := testutil.Lines(out)
		if len(lines) == 0 {
			t.Fatal("no /proc/self/cgroup")
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("inside the container, /proc/self/cgroup has %q, want the namespace's root /", l)
			}
		}
	})
}

// barco run makes the container's cgroup under $BARCO_CGROUP_PARENT, as
// its help says, whether the stages are linked or exec'd: here the tests'
// own parent, which TestMain sets.
func TestBarcoCgroupUnderParentEnv(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		name := fmt.Sprintf("parent-env-%d", time.Now().UnixNano())
		cmd := exec.Command(barcoBin(t), "run", "--name", name, "--", "/bin/sleep", "10")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Signal(syscall.SIGTERM)
		procs := filepath.Join("/sys/fs/cgroup/pids", testParent, name, "cgroup.procs")
		var got []byte
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got, _ = os.ReadFile(procs); len(got) > 0 {
				break
			}
		}
		if len(got) == 0 {
			other, _ := filepath.Glob("/sys/fs/cgroup/pids/*/" + name)
			t.Errorf("no process in %s; the container's cgroup is at %q", procs, other)
		}
	})
}

// barco run passes on every forwarded signal, those the Go runtime would
// ignore included (caught only once the container runs).
func TestBarcoForwardsSignals(t *testing.T) {
	bin := barcoBin(t)
	cmd := exec.Command(bin, "run", "--", "/bin/sh", "-c",
		`for s in USR1 USR2 WINCH HUP; do trap "echo got $s" $s; done; trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	rd := startReady(t, cmd)
	lines := make(chan string)
	go func() {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- strings.TrimSpace(line)
		}
	}()
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGHUP} {
		cmd.Process.Signal(sig)
		want := "got " + strings.TrimPrefix(unix.SignalName(sig), "SIG")
		select {
		case line := <-lines:
			if line != want {
				t.Errorf("after %v: %q, want %q", sig, line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("after %v: nothing in 5s, want %q", sig, want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitStatus(t, cmd); code != 7 {
		t.Errorf("after SIGTERM: status %d, want 7", code)
	}
}
