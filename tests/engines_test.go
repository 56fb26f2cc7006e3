//go:build engines

// The engine tests: podman, containerd (ctr) and Docker run their
// containers with an OCI runtime, barco by default, and a user checks what
// they see. Built only with -tags engines: `make engines-test` starts the
// engines privately (scripts/engines) and runs these, and
// `make engines-test RUNTIME=runc` runs the same tests with runc, which
// checks the tests themselves.
//
// Environment: BARCO_ENGINES_DIR (default /run/barco-engines, as
// scripts/engines), BARCO_ENGINES_RUNTIME (the runtime's path; default this
// checkout's bin/barco; `runc`, `crun` name those runtimes) and
// BARCO_ENGINES (a comma-separated subset of podman,docker,ctr,
// podman-rootless). podman-rootless is podman as a user the test makes
// (engines_rootless_test.go).
package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

// engine is one container engine, driven through its command line as a
// user drives it, with one OCI runtime.
type engine struct {
	name    string // podman, docker or ctr
	label   string // the test's name for it: name, or podman-rootless
	bin     string // the wrapper in DIR/bin that points it at the private daemons (podman-rootless: at the user's)
	dir     string // scripts/engines' directory (podman-rootless: the user's)
	runtime string // the OCI runtime's absolute path
	image   string
	// rootless is the user that runs podman-rootless; nil for root.
	rootless *rootlessUser
}

// runOpts are the options of a `run` that the tests use.
type runOpts struct {
	name        string
	rm, detach  bool
	interactive bool
	tty         bool
	env         []string
	workdir     string
	user        string
	readOnly    bool
	volume      [2]string // host directory, container directory
	memory      int64     // bytes
	pids        int
	hostNet     bool
	restart     string
	ulimit      string
	logFile     string // ctr: where a detached container's output goes
}

func engineDir() string {
	if d := os.Getenv("BARCO_ENGINES_DIR"); d != "" {
		return d
	}
	return "/run/barco-engines"
}

// engineRuntime is the runtime under test, by absolute path.
func engineRuntime(t *testing.T) string {
	t.Helper()
	rt := os.Getenv("BARCO_ENGINES_RUNTIME")
	switch rt {
	case "":
		return barcoBin(t)
	case "crun":
		// crun refuses this hybrid host unless wrapped (scripts/engines).
		return filepath.Join(engineDir(), "bin", "crun")
	}
	p, err := exec.LookPath(rt)
	if err != nil {
		t.Fatalf("BARCO_ENGINES_RUNTIME=%s: %v", rt, err)
	}
	p, err = filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func engines(t *testing.T) []*engine {
	testutil.RequireRoot(t)
	dir := engineDir()
	rt := engineRuntime(t)
	want := os.Getenv("BARCO_ENGINES")
	if want == "" {
		want = "podman,docker,ctr,podman-rootless"
	}
	var out []*engine
	for _, name := range strings.Split(want, ",") {
		if name == "podman-rootless" {
			out = append(out, newRootlessPodman(t, rt))
			continue
		}
		e := &engine{name: name, label: name, bin: filepath.Join(dir, "bin", name), dir: dir, runtime: rt}
		switch name {
		case "podman", "docker":
			e.image = "barco-busybox"
		case "ctr":
			e.image = "localhost/barco-busybox:latest"
		default:
			t.Fatalf("BARCO_ENGINES: unknown engine %q", name)
		}
		if _, err := os.Stat(e.bin); err != nil {
			t.Fatalf("%s: %v (run scripts/engines start)", e.bin, err)
		}
		out = append(out, e)
	}
	if strings.Contains(want, "docker") {
		// docker names its runtimes in daemon.json; barco's must be this
		// checkout's binary.
		data, err := os.ReadFile(filepath.Join(dir, "docker", "daemon.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Runtimes map[string]struct{ Path string } `json:"runtimes"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		if name := runtimeName(rt); name != "runc" && cfg.Runtimes[name].Path != rt {
			t.Fatalf("daemon.json has runtime %s at %q, not %s (run scripts/engines start from this checkout)", name, cfg.Runtimes[name].Path, rt)
		}
	}
	return out
}

// runtimeName is the name docker knows a runtime by.
func runtimeName(path string) string { return filepath.Base(path) }

// TestEngines runs every case with each engine, the engines side by side.
func TestEngines(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.label, func(t *testing.T) {
			t.Parallel()
			for _, c := range engineCases {
				t.Run(c.name, func(t *testing.T) {
					if why := rootlessSkips[c.name]; e.rootless != nil && why != "" {
						t.Skip(e.label + ": " + why)
					}
					if c.skip != nil {
						if why := c.skip[e.name]; why != "" {
							t.Skip(e.name + ": " + why)
						}
					}
					c.test(t, e)
				})
			}
		})
	}
}

// The cases ctr cannot express: its run has no flag for them.
var (
	noCtrFlag = map[string]string{"ctr": "ctr run has no flag for it"}
)

var engineCases = []struct {
	name string
	skip map[string]string
	test func(*testing.T, *engine)
}{
	{"true", nil, testEngineTrue},
	{"exit-status", nil, testEngineExitStatus},
	{"stdout-stderr", nil, testEngineStdoutStderr},
	{"stdin", nil, testEngineStdin},
	{"tty", nil, testEngineTTY},
	{"env", nil, testEngineEnv},
	{"workdir", nil, testEngineWorkdir},
	{"user", noCtrFlag, testEngineUser},
	{"devices", nil, testEngineDevices},
	{"read-only", nil, testEngineReadOnly},
	{"volume", nil, testEngineVolume},
	{"limits", nil, testEngineLimits},
	{"host-network", nil, testEngineHostNetwork},
	{"missing-command", nil, testEngineMissingCommand},
	{"rlimit-refused", map[string]string{"docker": "docker asks for no rlimit", "ctr": "ctr has no rlimit flag"}, testEngineRlimitRefused},
	{"exec", nil, testEngineExec},
	{"exec-tty", nil, testEngineExecTTY},
	{"top", nil, testEngineTop},
	{"logs", nil, testEngineLogs},
	{"kill", nil, testEngineKill},
	{"pause", nil, testEnginePause},
	{"stop", nil, testEngineStop},
	{"update", noCtrFlag, testEngineUpdate},
	{"rm-force", nil, testEngineRmForce},
	{"rm-flag", nil, testEngineRmFlag},
	{"restart", noCtrFlag, testEngineRestart},
	{"twenty", nil, testEngineTwenty},
}

// --- command lines.

// cmd is argv for the engine's own command line.
func (e *engine) cmd(args ...string) []string {
	return append([]string{e.bin}, args...)
}

// runArgv is the engine's run command.
func (e *engine) runArgv(o runOpts, args ...string) []string {
	var argv []string
	switch e.name {
	case "podman":
		argv = e.cmd("--runtime", e.runtime, "run")
	case "docker":
		argv = e.cmd("run", "--runtime", runtimeName(e.runtime))
	case "ctr":
		argv = e.cmd("run", "--runc-binary", e.runtime, "--runc-root", filepath.Join(e.dir, "containerd", "runc"))
	}
	flag := func(f ...string) { argv = append(argv, f...) }
	if o.rm {
		flag("--rm")
	}
	if o.detach {
		flag("-d")
	}
	if o.interactive && e.name != "ctr" {
		flag("-i") // ctr passes stdin on always
	}
	if o.tty {
		flag("-t")
	}
	for _, kv := range o.env {
		if e.name == "ctr" {
			flag("--env", kv)
		} else {
			flag("-e", kv)
		}
	}
	if o.workdir != "" {
		if e.name == "ctr" {
			flag("--cwd", o.workdir)
		} else {
			flag("-w", o.workdir)
		}
	}
	if o.user != "" {
		flag("--user", o.user)
	}
	if o.readOnly {
		flag("--read-only")
	}
	if o.volume[0] != "" {
		if e.name == "ctr" {
			flag("--mount", "type=bind,src="+o.volume[0]+",dst="+o.volume[1]+",options=rbind:rw")
		} else {
			flag("-v", o.volume[0]+":"+o.volume[1])
		}
	}
	if o.memory > 0 {
		if e.name == "ctr" {
			flag("--memory-limit", strconv.FormatInt(o.memory, 10))
		} else {
			flag("--memory", strconv.FormatInt(o.memory, 10))
		}
	}
	if o.pids > 0 {
		flag("--pids-limit", strconv.Itoa(o.pids))
	}
	switch {
	case o.hostNet && e.name == "ctr":
		flag("--net-host")
	case o.hostNet:
		flag("--network", "host")
	case e.name == "docker":
		flag("--network", "none")
	}
	if o.restart != "" {
		flag("--restart", o.restart)
	}
	if o.ulimit != "" {
		flag("--ulimit", o.ulimit)
	}
	if o.logFile != "" {
		flag("--log-uri", "file://"+o.logFile)
	}
	if e.name == "ctr" {
		return append(append(argv, e.image, o.name), args...)
	}
	if o.name != "" {
		flag("--name", o.name)
	}
	return append(append(argv, e.image), args...)
}

// result is a finished command's output and status.
type result struct {
	argv           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("%q: status %d, stdout %q, stderr %q", r.argv, r.code, r.stdout, r.stderr)
}

const engineTimeout = 90 * time.Second

// run runs argv with stdin and waits for it.
func run(t *testing.T, stdin string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return result{argv: argv, stdout: stdout.String(), stderr: stderr.String(), code: testutil.StatusOf(err)}
	case <-time.After(engineTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%q did not end in %v; stdout %q, stderr %q", argv, engineTimeout, stdout.String(), stderr.String())
		return result{}
	}
}

// must runs argv, which must succeed, and returns its stdout.
func must(t *testing.T, argv ...string) string {
	t.Helper()
	r := run(t, "", argv...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r.stdout
}

var nameSeq struct {
	sync.Mutex
	n int
}

// newName is a container name of the test's own; the container is
// removed, whatever its state, when the test ends.
func (e *engine) newName(t *testing.T) string {
	nameSeq.Lock()
	nameSeq.n++
	name := fmt.Sprintf("bt-%d-%d", os.Getpid(), nameSeq.n)
	nameSeq.Unlock()
	t.Cleanup(func() { e.remove(t, name) })
	return name
}

// remove removes a container and what runs in it, and is no error when
// there is none.
func (e *engine) remove(t *testing.T, name string) result {
	switch e.name {
	case "ctr":
		r := run(t, "", e.cmd("task", "rm", "-f", name)...)
		if r2 := run(t, "", e.cmd("container", "rm", name)...); r2.code != 0 && r.code == 0 {
			r = r2
		}
		return r
	case "podman":
		return run(t, "", e.cmd("rm", "-f", "-t", "0", name)...)
	default:
		return run(t, "", e.cmd("rm", "-f", name)...)
	}
}

// startDetached runs a container in the background with o and args.
func (e *engine) startDetached(t *testing.T, o runOpts, args ...string) string {
	t.Helper()
	if o.name == "" {
		o.name = e.newName(t)
	}
	o.detach = true
	must(t, e.runArgv(o, args...)...)
	return o.name
}

// pid is the host pid of the container's first process.
func (e *engine) pid(t *testing.T, name string) int {
	t.Helper()
	var out string
	if e.name == "ctr" {
		for _, l := range testutil.Lines(must(t, e.cmd("task", "ls")...)) {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
				out = f[1]
			}
		}
	} else {
		out = strings.TrimSpace(must(t, e.cmd("inspect", "-f", "{{.State.Pid}}", name)...))
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		t.Fatalf("%s: no pid for %s: %q", e.name, name, out)
	}
	return pid
}

// status is the container's state as the engine tells it, in lower case:
// running, paused, exited/stopped.
func (e *engine) status(t *testing.T, name string) string {
	t.Helper()
	if e.name == "ctr" {
		for _, l := range testutil.Lines(must(t, e.cmd("task", "ls")...)) {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == name {
				return strings.ToLower(f[2])
			}
		}
		return "none"
	}
	return strings.TrimSpace(must(t, e.cmd("inspect", "-f", "{{.State.Status}}", name)...))
}

// exists says whether the engine still knows the container.
func (e *engine) exists(t *testing.T, name string) bool {
	t.Helper()
	switch e.name {
	case "ctr":
		return run(t, "", e.cmd("container", "info", name)...).code == 0
	case "podman":
		return run(t, "", e.cmd("container", "exists", name)...).code == 0
	}
	return run(t, "", e.cmd("inspect", name)...).code == 0
}

func (e *engine) kill(t *testing.T, name, sig string) {
	t.Helper()
	if e.name == "ctr" {
		must(t, e.cmd("task", "kill", "-s", "SIG"+sig, name)...)
		return
	}
	must(t, e.cmd("kill", "-s", sig, name)...)
}

// execArgv is the engine's exec in a running container.
func (e *engine) execArgv(name string, tty bool, user string, args ...string) []string {
	var argv []string
	if e.name == "ctr" {
		nameSeq.Lock()
		nameSeq.n++
		argv = e.cmd("task", "exec", "--exec-id", fmt.Sprintf("exec-%d", nameSeq.n))
		nameSeq.Unlock()
	} else {
		argv = e.cmd("exec")
		if !tty {
			argv = append(argv, "-i")
		}
	}
	if tty {
		argv = append(argv, "-t")
		if e.name != "ctr" {
			argv = append(argv, "-i")
		}
	}
	if user != "" {
		argv = append(argv, "--user", user)
	}
	return append(append(argv, name), args...)
}

// execRun runs args in the running container name without a terminal.
// containerd 1.6.20's ctr sometimes ends an exec with the process's status
// but none of its output: 1 exec in 30 to 60 on a loaded machine, with
// runc as the runtime as well as barco. So for ctr, an exec that printed
// nothing runs once more; a runtime that lost output every time still fails.
func (e *engine) execRun(t *testing.T, stdin, name, user string, args ...string) result {
	t.Helper()
	r := run(t, stdin, e.execArgv(name, false, user, args...)...)
	if e.name == "ctr" && r.stdout == "" {
		t.Logf("ctr ended %q without its output, once more", args)
		r = run(t, stdin, e.execArgv(name, false, user, args...)...)
	}
	return r
}

// cgroupFile reads a file of the v1 cgroup of pid in controller.
func cgroupFile(t *testing.T, pid int, controller, file string) (string, string) {
	t.Helper()
	for _, c := range procCgroups(t, pid) {
		if slices.Contains(c.controllers, controller) {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", c.hierarchy, c.path, file))
			if err != nil {
				t.Fatal(err)
			}
			return c.path, strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("pid %d has no %s cgroup", pid, controller)
	return "", ""
}

// procCgroup is one line of /proc/PID/cgroup.
type procCgroup struct {
	id, hierarchy, path string // hierarchy: "memory", "cpu,cpuacct", "" for v2
	controllers         []string
}

func procCgroups(t *testing.T, pid int) []procCgroup {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var cs []procCgroup
	for _, l := range testutil.Lines(string(data)) {
		if parts := strings.SplitN(l, ":", 3); len(parts) == 3 {
			cs = append(cs, procCgroup{id: parts[0], hierarchy: parts[1], path: parts[2], controllers: strings.Split(parts[1], ",")})
		}
	}
	return cs
}

// freezeState is what the kernel says of pid's cgroups: "frozen" by the
// v1 freezer (runc freezes there) or by cgroup v2 (cgroup.events; barco
// freezes there where the v2 hierarchy is mounted, as on this hybrid host),
// else "thawed".
func freezeState(t *testing.T, pid int) string {
	t.Helper()
	for _, c := range procCgroups(t, pid) {
		var file, frozen string
		switch {
		case c.id == "0" && c.hierarchy == "":
			file, frozen = filepath.Join("/sys/fs/cgroup/unified", c.path, "cgroup.events"), "frozen 1"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.events"); err == nil {
				file = filepath.Join("/sys/fs/cgroup", c.path, "cgroup.events")
			}
		case c.hierarchy == "freezer":
			file, frozen = filepath.Join("/sys/fs/cgroup/freezer", c.path, "freezer.state"), "FROZEN"
		default:
			continue
		}
		if v, err := os.ReadFile(file); err == nil && strings.Contains(string(v), frozen) {
			return "frozen"
		}
	}
	return "thawed"
}

// cgroupParents are where each engine puts its containers' cgroups.
var cgroupParents = map[string]string{"podman": "/libpod_parent/", "docker": "/docker/", "ctr": "/default/"}

// streamBuffer collects a running command's output for waitFor.
type streamBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *streamBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *streamBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *streamBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(engineTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(b.String(), want) {
			return
		}
	}
	t.Fatalf("output never showed %q: %q", want, b.String())
}

// startForeground runs a container in the foreground of a command that
// the test waits for later, its output collected.
func (e *engine) startForeground(t *testing.T, name string, args ...string) (*exec.Cmd, *streamBuffer) {
	t.Helper()
	argv := e.runArgv(runOpts{name: name}, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out := &streamBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd, out
}

func waitCmd(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	return waitWithin(t, cmd, engineTimeout)
}

// --- the cases.

func testEngineTrue(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "true")...)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("%v", r)
	}
}

func testEngineExitStatus(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "sh", "-c", "exit 7")...)
	if r.code != 7 {
		t.Fatalf("want status 7: %v", r)
	}
}

func testEngineStdoutStderr(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "sh", "-c", "echo to-stdout; echo to-stderr >&2")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "to-stdout" || !strings.Contains(r.stderr, "to-stderr") || strings.Contains(r.stdout, "to-stderr") {
		t.Fatalf("want to-stdout on stdout and to-stderr on stderr: %v", r)
	}
}

func testEngineStdin(t *testing.T, e *engine) {
	// Lines read, not the end of the input: ctr never closes the
	// container's stdin.
	r := run(t, "piped in\nsecond line\n", e.runArgv(runOpts{rm: true, interactive: true, name: e.newName(t)}, "sh", "-c", `read a; read b; echo "$b, $a"`)...)
	if r.code != 0 || r.stdout != "second line, piped in\n" {
		t.Fatalf("want the two lines read: %v", r)
	}
}

// ttyRows and ttyCols are the test terminal's size, which the container's
// terminal must have.
const ttyRows, ttyCols = 37, 101

// startOnTerminal runs argv as a shell runs a command in the foreground of
// term, and returns its exit status, when it comes, on a channel.
func startOnTerminal(t *testing.T, term *terminal, argv []string) <-chan int {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan int, 1), make(chan struct{})
	go func() {
		done <- testutil.StatusOf(cmd.Wait())
		close(exited)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return done
}

// ttyShell checks an interactive shell on term: its prompt, its terminal
// and the terminal's size, and its exit status. An engine that ends
// first (it could not make the terminal) fails the test at once.
func ttyShell(t *testing.T, term *terminal, done <-chan int, status int) {
	t.Helper()
	for deadline := time.Now().Add(engineTimeout); !strings.Contains(term.rest(), "# "); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("ended with status %d before a prompt: %q", code, term.rest())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no prompt: %q", term.rest())
		}
	}
	term.expect(t, "# ")
	// The engines here set the size on the terminal's master once the
	// container runs (none passes process.consoleSize): a shell that
	// starts fast may be first. Wait for it, as a user at the prompt
	// would, for 2 s at most.
	term.send(t, fmt.Sprintf(`tty; i=0; until s=$(stty size 2>/dev/null) || [ $i -ge 20 ]; do i=$((i+1)); sleep 0.1; done; echo "$s"; exit %d`+"\r", status))
	if got := term.expectLine(t, "/dev/pts/"); got == "" {
		t.Errorf("tty printed no /dev/pts/N path")
	}
	if got := term.expectLine(t, fmt.Sprint(ttyRows, " ")); got != fmt.Sprint(ttyCols) {
		t.Errorf("stty size: want %d %d, got %d %s", ttyRows, ttyCols, ttyRows, got)
	}
	select {
	case code := <-done:
		if code != status {
			t.Errorf("status %d, want %d; terminal: %q", code, status, term.rest())
		}
	case <-time.After(engineTimeout):
		t.Fatalf("did not end after exit %d; terminal: %q", status, term.rest())
	}
}

func sizedTerminal(t *testing.T) *terminal {
	term := openTerminal(t)
	if err := unix.IoctlSetWinsize(int(term.slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ttyRows, Col: ttyCols}); err != nil {
		t.Fatal(err)
	}
	return term
}

func testEngineTTY(t *testing.T, e *engine) {
	term := sizedTerminal(t)
	done := startOnTerminal(t, term, e.runArgv(runOpts{rm: true, interactive: true, tty: true, name: e.newName(t)}, "sh"))
	ttyShell(t, term, done, 5)
}

func testEngineEnv(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, env: []string{"GREETING=hello from env"}, name: e.newName(t)}, "sh", "-c", "echo $GREETING")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hello from env" {
		t.Fatalf("%v", r)
	}
}

func testEngineWorkdir(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, workdir: "/usr/bin", name: e.newName(t)}, "pwd")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "/usr/bin" {
		t.Fatalf("%v", r)
	}
}

func testEngineUser(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, user: "1000", name: e.newName(t)}, "sh", "-c", "id -u; grep CapEff /proc/self/status")...)
	lines := testutil.Lines(r.stdout)
	if r.code != 0 || len(lines) != 2 || lines[0] != "1000" || lines[1] != "CapEff:\t0000000000000000" {
		t.Fatalf("want uid 1000 without capabilities: %v", r)
	}
}

// The engines give no linux.devices: the runtime makes the default nodes,
// and the device cgroup lets them be used and no other.
func testEngineDevices(t *testing.T, e *engine) {
	script := `for d in null zero full random urandom tty ptmx; do [ -c /dev/$d ] || echo missing $d; done
echo discarded > /dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c
mknod /tmp/disk b 254 0 && head -c 1 /tmp/disk; echo disk=$?`
	r := run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "sh", "-c", script)...)
	if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "3 3 disk=1" || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Fatalf("want the default devices usable and a disk refused: %v", r)
	}
}

func testEngineReadOnly(t *testing.T, e *engine) {
	r := run(t, "", e.runArgv(runOpts{rm: true, readOnly: true, name: e.newName(t)}, "sh", "-c", "touch /probe; echo status=$?")...)
	if r.code != 0 || !strings.Contains(r.stderr, "Read-only file system") || strings.TrimSpace(r.stdout) != "status=1" {
		t.Fatalf("want the write refused: %v", r)
	}
	if e.name == "podman" {
		// podman's --read-only has tmpfs on /tmp, /var/tmp and /run, with
		// the image's files copied up (tmpcopyup).
		r := run(t, "", e.runArgv(runOpts{rm: true, readOnly: true, name: e.newName(t)}, "sh", "-c", "touch /tmp/ok /run/ok && ls -d /var/tmp && echo writable")...)
		if r.code != 0 || !strings.Contains(r.stdout, "writable") {
			t.Fatalf("want /tmp and /run writable: %v", r)
		}
	}
}

func testEngineVolume(t *testing.T, e *engine) {
	dir := testutil.SearchableTempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u := e.rootless; u != nil {
		// A directory of the user's own, whose root in the container it is.
		if err := os.Chown(dir, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "", e.runArgv(runOpts{rm: true, volume: [2]string{dir, "/data"}, name: e.newName(t)}, "sh", "-c", "cat /data/in; echo from the container > /data/out")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "from the host" {
		t.Fatalf("%v", r)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || string(got) != "from the container\n" {
		t.Fatalf("the host reads %q (%v) in the file the container wrote", got, err)
	}
}

func testEngineLimits(t *testing.T, e *engine) {
	o := runOpts{memory: 64 << 20}
	if e.name != "ctr" {
		o.pids = 50
	}
	name := e.startDetached(t, o, "sleep", "1000")
	pid := e.pid(t, name)
	path, mem := cgroupFile(t, pid, "memory", "memory.limit_in_bytes")
	if mem != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes of %s: %s, want %d", path, mem, 64<<20)
	}
	if !strings.HasPrefix(path, cgroupParents[e.name]) {
		t.Errorf("cgroup %s: want it below %s", path, cgroupParents[e.name])
	}
	if o.pids > 0 {
		if path, n := cgroupFile(t, pid, "pids", "pids.max"); n != "50" {
			t.Errorf("pids.max of %s: %s, want 50", path, n)
		}
	}
	if e.name != "ctr" {
		// Inside, as the container's own cgroup files (ctr mounts none).
		o.rm, o.name = true, e.newName(t)
		r := run(t, "", e.runArgv(o, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max")...)
		if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != fmt.Sprint(64<<20, " 50") {
			t.Errorf("inside: %v", r)
		}
	}
}

func testEngineHostNetwork(t *testing.T, e *engine) {
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, "", e.runArgv(runOpts{rm: true, hostNet: true, name: e.newName(t)}, "readlink", "/proc/self/ns/net")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != host {
		t.Fatalf("want the host's %s: %v", host, r)
	}
	r = run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "readlink", "/proc/self/ns/net")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) == host {
		t.Fatalf("without host network, want a network namespace of its own: %v", r)
	}
}

// missingCommand is each engine's status for a command that does not
// exist in the image, and what its message says (as with runc).
var missingCommand = map[string]struct {
	code int
	msg  string
}{
	"podman": {127, "no such file or directory"},
	"docker": {127, "no such file or directory"},
	"ctr":    {1, "no such file or directory"},
}

func testEngineMissingCommand(t *testing.T, e *engine) {
	name := e.newName(t)
	r := run(t, "", e.runArgv(runOpts{rm: true, name: name}, "/no/such/command")...)
	want := missingCommand[e.name]
	if r.code != want.code || !strings.Contains(strings.ToLower(r.stderr), want.msg) || !strings.Contains(r.stderr, "/no/such/command") {
		t.Fatalf("want status %d and a message with %q: %v", want.code, want.msg, r)
	}
}

func testEngineRlimitRefused(t *testing.T, e *engine) {
	// More open files than the caller's hard limit: only CAP_SYS_RESOURCE
	// could raise it, which this machine's bounding set lacks. Where it
	// has it, the run succeeds, which is right too.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	n := lim.Max + 1
	r := run(t, "", e.runArgv(runOpts{rm: true, ulimit: fmt.Sprintf("nofile=%d:%d", n, n), name: e.newName(t)}, "sh", "-c", "ulimit -Hn")...)
	if r.code == 0 && strings.TrimSpace(r.stdout) == strconv.FormatUint(n, 10) {
		t.Logf("the limit was raised: the runtime has CAP_SYS_RESOURCE here")
		return
	}
	if r.code != 126 || !strings.Contains(strings.ToLower(r.stderr), "operation not permitted") || !strings.Contains(r.stderr, "OCI permission denied") {
		t.Fatalf("want status 126 and the runtime's own message: %v", r)
	}
}

func testEngineExec(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{}, "sleep", "1000")
	r := e.execRun(t, "", name, "", "sh", "-c", "echo in $(readlink /proc/1/exe); exit 3")
	if r.code != 3 || strings.TrimSpace(r.stdout) != "in /bin/busybox" {
		t.Errorf("want status 3 and the output: %v", r)
	}
	r = e.execRun(t, "", name, "1000", "id", "-u")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1000" {
		t.Errorf("exec --user 1000: %v", r)
	}
	r = e.execRun(t, "input line\n", name, "", "cat")
	if r.code != 0 || r.stdout != "input line\n" {
		t.Errorf("exec with stdin: %v", r)
	}
}

func testEngineExecTTY(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{}, "sleep", "1000")
	term := sizedTerminal(t)
	done := startOnTerminal(t, term, e.execArgv(name, true, "", "sh"))
	ttyShell(t, term, done, 4)
}

func testEngineTop(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{}, "sleep", "1000")
	pid := e.pid(t, name)
	if e.name == "ctr" {
		out := must(t, e.cmd("task", "ps", name)...)
		if !strings.Contains(out, strconv.Itoa(pid)) {
			t.Fatalf("ctr task ps: want pid %d: %q", pid, out)
		}
		return
	}
	out := must(t, e.cmd("top", name)...)
	if !strings.Contains(out, "sleep 1000") {
		t.Fatalf("%s top: want sleep 1000: %q", e.name, out)
	}
}

func testEngineLogs(t *testing.T, e *engine) {
	o := runOpts{}
	if e.name == "ctr" {
		o.logFile = filepath.Join(t.TempDir(), "log")
	}
	name := e.startDetached(t, o, "sh", "-c", "echo logged line; echo logged error >&2; sleep 1000")
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if e.name == "ctr" {
			data, _ := os.ReadFile(o.logFile)
			got = string(data)
		} else {
			r := run(t, "", e.cmd("logs", name)...)
			got = r.stdout + r.stderr
		}
		if strings.Contains(got, "logged line") && strings.Contains(got, "logged error") {
			return
		}
	}
	t.Fatalf("logs: %q", got)
}

func testEngineKill(t *testing.T, e *engine) {
	name := e.newName(t)
	cmd, out := e.startForeground(t, name, "sh", "-c", `trap "echo got USR1; exit 0" USR1; echo ready; while :; do sleep 0.1; done`)
	out.waitFor(t, "ready")
	e.kill(t, name, "USR1")
	if code := waitCmd(t, cmd); code != 0 || !strings.Contains(out.String(), "got USR1") {
		t.Fatalf("after kill -s USR1: status %d, output %q", code, out.String())
	}
}

func testEnginePause(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{}, "sleep", "1000")
	pid := e.pid(t, name)
	pause, resume := []string{"pause", name}, []string{"unpause", name}
	if e.name == "ctr" {
		pause, resume = []string{"task", "pause", name}, []string{"task", "resume", name}
	}
	must(t, e.cmd(pause...)...)
	if s := e.status(t, name); s != "paused" {
		t.Errorf("after pause: %s", s)
	}
	if s := freezeState(t, pid); s != "frozen" {
		t.Errorf("after pause: the container's process is %s", s)
	}
	must(t, e.cmd(resume...)...)
	if s := e.status(t, name); s != "running" {
		t.Errorf("after unpause: %s", s)
	}
	if s := freezeState(t, pid); s != "thawed" {
		t.Errorf("after unpause: the container's process is %s", s)
	}
}

func testEngineStop(t *testing.T, e *engine) {
	// TERM is trapped and the container goes on: stop kills it after the
	// timeout.
	name := e.newName(t)
	cmd, out := e.startForeground(t, name, "sh", "-c", `trap "echo got TERM" TERM; echo ready; while :; do sleep 0.1; done`)
	out.waitFor(t, "ready")
	if e.name == "ctr" {
		// ctr has no stop: what the others do.
		e.kill(t, name, "TERM")
		out.waitFor(t, "got TERM")
		time.Sleep(time.Second)
		e.kill(t, name, "KILL")
	} else {
		must(t, e.cmd("stop", "-t", "1", name)...)
	}
	if code := waitCmd(t, cmd); code != 137 || !strings.Contains(out.String(), "got TERM") {
		t.Fatalf("after stop: status %d, want 137 after TERM; output %q", code, out.String())
	}
}

func testEngineUpdate(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{memory: 64 << 20}, "sleep", "1000")
	pid := e.pid(t, name)
	args := []string{"update", "--memory", strconv.Itoa(128 << 20)}
	if e.name == "docker" {
		args = append(args, "--memory-swap", strconv.Itoa(256<<20))
	}
	must(t, e.cmd(append(args, name)...)...)
	if path, mem := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); mem != strconv.Itoa(128<<20) {
		t.Errorf("after update: memory.limit_in_bytes of %s: %s, want %d", path, mem, 128<<20)
	}
}

func testEngineRmForce(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{}, "sleep", "1000")
	pid := e.pid(t, name)
	cg, _ := cgroupFile(t, pid, "memory", "tasks")
	if e.rootless != nil {
		// Its cgroup is its caller's, which stays.
		cg = "/no cgroup of its own"
	}
	if r := e.remove(t, name); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if e.exists(t, name) {
		t.Errorf("%s still exists after rm -f", name)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, errPid := os.Stat(fmt.Sprintf("/proc/%d", pid))
		_, errCg := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cg))
		if os.IsNotExist(errPid) && os.IsNotExist(errCg) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rm -f: pid %d gone: %v, cgroup %s gone: %v", pid, errPid == nil, cg, errCg)
		}
	}
}

func testEngineRmFlag(t *testing.T, e *engine) {
	name := e.newName(t)
	r := run(t, "", e.runArgv(runOpts{rm: true, name: name}, "echo", "removed after")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "removed after" {
		t.Fatalf("%v", r)
	}
	if e.exists(t, name) {
		t.Fatalf("%s still exists after run --rm", name)
	}
}

func testEngineRestart(t *testing.T, e *engine) {
	name := e.startDetached(t, runOpts{restart: "on-failure:2"}, "sh", "-c", "echo attempt; exit 3")
	var count, status string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out := strings.Fields(must(t, e.cmd("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", name)...))
		count, status = out[0], out[1]
		if count == "2" && status == "exited" {
			if out[2] != "3" {
				t.Errorf("exit code %s, want 3", out[2])
			}
			r := run(t, "", e.cmd("logs", name)...)
			if n := strings.Count(r.stdout, "attempt"); n != 3 {
				t.Errorf("logs: %d attempts, want 3: %q", n, r.stdout)
			}
			return
		}
	}
	t.Fatalf("restart count %s, status %s; want 2, exited", count, status)
}

func testEngineTwenty(t *testing.T, e *engine) {
	for i := 0; i < 20; i++ {
		r := run(t, "", e.runArgv(runOpts{rm: true, name: e.newName(t)}, "echo", strconv.Itoa(i))...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != strconv.Itoa(i) {
			t.Fatalf("run %d: %v", i, r)
		}
	}
}
