package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"barco/lib/chain"
	"barco/lib/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ociEnv is an OCI state root of the test's own, so that the test neither
// sees nor disturbs containers of the machine.
type ociEnv struct {
	t    *testing.T
	bin  string
	root string
}

func newOCI(t *testing.T) *ociEnv {
	t.Helper()
	e := &ociEnv{t: t, bin: barcoBin(t), root: filepath.Join(t.TempDir(), "state")}
	t.Cleanup(func() {
		// Whatever a failed test left.
		entries, _ := os.ReadDir(e.root)
		for _, d := range entries {
			testutil.Run(t, nil, e.bin, "--root", e.root, "delete", "--force", d.Name())
		}
	})
	return e
}

// barco runs `barco --root ROOT ARGS...`.
func (e *ociEnv) barco(args ...string) testutil.Result {
	e.t.Helper()
	return testutil.Run(e.t, nil, append([]string{e.bin, "--root", e.root}, args...)...)
}

// fileWritten waits up to 10 s for the file at path to hold something, and
// returns what it holds, or "" if nothing came: the mark of a hook or a
// container that runs while the test signals the barco command above it.
func fileWritten(path string) string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if data, _ := os.ReadFile(path); len(data) > 0 {
			return string(data)
		}
	}
	return ""
}

// create runs `barco create ARGS...` with its stdio on files, as the
// engines give it: the container's init inherits create's fds 0-2 and
// holds them while it lives, so a pipe would never reach its end.
func (e *ociEnv) create(args ...string) testutil.Result {
	e.t.Helper()
	return e.onFiles(append([]string{"create"}, args...)...)
}

// onFiles runs `barco ARGS...` with its stdio on files: for the commands
// whose processes inherit them and outlive the call.
func (e *ociEnv) onFiles(args ...string) testutil.Result {
	e.t.Helper()
	dir := e.t.TempDir()
	out, errOut := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	cmd := fmt.Sprintf("exec %q --root %q", e.bin, e.root)
	for _, a := range args {
		cmd += " " + strconv.Quote(a)
	}
	r := testutil.Run(e.t, nil, "sh", "-c", cmd+" </dev/null >"+strconv.Quote(out)+" 2>"+strconv.Quote(errOut))
	stdout, _ := os.ReadFile(out)
	stderr, _ := os.ReadFile(errOut)
	r.Stdout, r.Stderr = string(stdout), string(stderr)
	return r
}

// mustCreate is create, which must succeed.
func (e *ociEnv) mustCreate(args ...string) {
	e.t.Helper()
	if r := e.create(args...); r.Code != 0 {
		e.t.Fatalf("barco create %q: status %d, %s", args, r.Code, r.Stderr)
	}
}

// must runs a command that must succeed and returns its stdout.
func (e *ociEnv) must(args ...string) string {
	e.t.Helper()
	r := e.barco(args...)
	if r.Code != 0 {
		e.t.Fatalf("barco %q: status %d, %s", args, r.Code, r.Stderr)
	}
	return r.Stdout
}

func (e *ociEnv) state(id string) specs.State {
	e.t.Helper()
	var s specs.State
	if err := json.Unmarshal([]byte(e.must("state", id)), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitStatus polls the state until it reads want.
func (e *ociEnv) waitStatus(id string, want specs.ContainerState) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := e.state(id)
		if s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, want %s", id, s.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bundle writes a bundle with a copy of the busybox rootfs and barco
// spec's config, edited by edit.
func (e *ociEnv) bundle(edit func(*specs.Spec)) string {
	e.t.Helper()
	return e.bundleOwnedBy(0, edit)
}

// bundleOwnedBy is bundle with a rootfs copy owned by host uid owner.
func (e *ociEnv) bundleOwnedBy(owner int, edit func(*specs.Spec)) string {
	e.t.Helper()
	rootfs := testutil.CopyRootfs(e.t, owner)
	dir := filepath.Dir(rootfs)
	r := testutil.Run(e.t, nil, e.bin, "spec", "--bundle", dir)
	if r.Code != 0 {
		e.t.Fatalf("barco spec: %d %s", r.Code, r.Stderr)
	}
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		e.t.Fatal(err)
	}
	s.Root.Readonly = false
	edit(&s)
	data, _ = json.Marshal(&s)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func cgroupDirsOf(id string) []string {
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/" + testParent + "/" + id)
	more, _ := filepath.Glob("/sys/fs/cgroup/" + testParent + "/" + id)
	return append(matches, more...)
}

// The lifecycle: create stops before the process, start runs it, the pid
// file and state agree, and delete removes the cgroups in every hierarchy.
func TestOCILifecycle(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "echo started > /started; echo out; echo err >&2; sleep 0.3"}
	})
	stdout, stderr := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	pidFile := filepath.Join(dir, "pid")
	id := "life-1"
	cmd := fmt.Sprintf("exec %q --root %q create --bundle %q --pid-file %q %s </dev/null >%q 2>%q",
		e.bin, e.root, dir, pidFile, id, stdout, stderr)
	if r := testutil.Run(t, nil, "sh", "-c", cmd); r.Code != 0 {
		errOut, _ := os.ReadFile(stderr)
		t.Fatalf("create: status %d: %s", r.Code, errOut)
	}
	s := e.state(id)
	if s.Status != specs.StateCreated || s.Bundle != dir || s.ID != id || s.Pid <= 0 {
		t.Fatalf("state after create: %+v", s)
	}
	pidData, _ := os.ReadFile(pidFile)
	if string(pidData) != strconv.Itoa(s.Pid) {
		t.Errorf("pid file %q, state pid %d", pidData, s.Pid)
	}
	if len(cgroupDirsOf(id)) == 0 {
		t.Errorf("no cgroup %s/%s in any hierarchy", testParent, id)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "started")); err == nil {
		t.Fatal("the process ran before start")
	}
	e.must("start", id)
	e.waitStatus(id, specs.StateStopped)
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "started")); err != nil {
		t.Errorf("the process did not run after start: %v", err)
	}
	out, _ := os.ReadFile(stdout)
	errOut, _ := os.ReadFile(stderr)
	if string(out) != "out\n" || string(errOut) != "err\n" {
		t.Errorf("the container's stdout %q and stderr %q, want its own output and nothing of barco's", out, errOut)
	}
	if r := e.barco("start", id); r.Code == 0 {
		t.Error("start of a stopped container succeeded")
	}
	if r := e.barco("kill", id, "TERM"); r.Code == 0 {
		t.Error("kill of a stopped container succeeded")
	}
	e.must("delete", id)
	if d := cgroupDirsOf(id); len(d) > 0 {
		t.Errorf("delete left cgroups %q", d)
	}
	if r := e.barco("state", id); r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("state after delete: %d %q", r.Code, r.Stderr)
	}
}

// kill and delete in each state: a created container can be killed and
// is then stopped; delete refuses a created or running one without
// --force; --force of an unknown id is no error.
func TestOCIKillAndDelete(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "100"} })
	e.mustCreate("--bundle", dir, "kd-created")
	if r := e.barco("delete", "kd-created"); r.Code == 0 || !strings.Contains(r.Stderr, "created") {
		t.Errorf("delete of a created container: %d %q, want a refusal", r.Code, r.Stderr)
	}
	e.must("kill", "kd-created", "KILL")
	e.waitStatus("kd-created", specs.StateStopped)
	e.must("delete", "kd-created")

	e.mustCreate("--bundle", dir, "kd-running")
	e.must("start", "kd-running")
	e.waitStatus("kd-running", specs.StateRunning)
	if r := e.barco("delete", "kd-running"); r.Code == 0 {
		t.Error("delete of a running container succeeded")
	}
	e.must("kill", "kd-running", "KILL")
	e.waitStatus("kd-running", specs.StateStopped)
	e.must("delete", "kd-running")

	// A signal by name or number reaches the process, PID 1 inside.
	out := testutil.SearchableTempDir(t)
	trap := e.bundle(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind"}})
		s.Process.Args = []string{"/bin/sh", "-c", "trap 'echo usr1 >> /out/log' USR1; trap 'echo term >> /out/log; exit 0' TERM; while :; do sleep 0.05; done"}
	})
	e.mustCreate("--bundle", trap, "kd-trap")
	e.must("start", "kd-trap")
	e.waitStatus("kd-trap", specs.StateRunning)
	time.Sleep(200 * time.Millisecond)
	e.must("kill", "kd-trap", "SIGUSR1")
	time.Sleep(200 * time.Millisecond)
	e.must("kill", "kd-trap", "15")
	e.waitStatus("kd-trap", specs.StateStopped)
	if log, _ := os.ReadFile(filepath.Join(out, "log")); string(log) != "usr1\nterm\n" {
		t.Errorf("the process got %q, want usr1 then term", log)
	}
	e.must("delete", "kd-trap")

	e.mustCreate("--bundle", dir, "kd-force")
	e.must("start", "kd-force")
	pid := e.state("kd-force").Pid
	e.must("delete", "--force", "kd-force")
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		if data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(data), ") Z ") {
			t.Errorf("delete --force left the init %d running", pid)
		}
	}
	if d := cgroupDirsOf("kd-force"); len(d) > 0 {
		t.Errorf("delete --force left cgroups %q", d)
	}
	if r := e.barco("delete", "--force", "never-made"); r.Code != 0 {
		t.Errorf("delete --force of an unknown id: %d %q, want 0", r.Code, r.Stderr)
	}
	if r := e.barco("kill", "never-made", "KILL"); r.Code == 0 {
		t.Error("kill of an unknown id succeeded")
	}
}

// create refuses what it cannot run, with one line, leaving nothing.
func TestOCICreateRefusals(t *testing.T) {
	e := newOCI(t)
	good := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/true"} })
	e.mustCreate("--bundle", good, "dup")
	defer e.must("delete", "--force", "dup")
	for _, tc := range []struct {
		name, id string
		edit     func(*specs.Spec)
		want     string
	}{
		{"duplicate id", "dup", nil, "already exists"},
		{"bad ociVersion", "v", func(s *specs.Spec) { s.Version = "invalid" }, "ociVersion"},
		{"no process", "np", func(s *specs.Spec) { s.Process = nil }, "no process"},
		{"missing program", "mp", func(s *specs.Spec) { s.Process.Args = []string{"/nonexistent"} }, "/nonexistent"},
		{"unknown capability", "uc", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_TEST"} }, "CAP_TEST"},
		{"bad id", "../x", nil, "not a valid id"},
	} {
		dir := good
		if tc.edit != nil {
			dir = e.bundle(tc.edit)
		}
		r := e.create("--bundle", dir, tc.id)
		if r.Code == 0 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: status %d, stderr %q; want one line with %q", tc.name, r.Code, r.Stderr, tc.want)
		}
		if tc.id != "dup" {
			if _, err := os.Stat(filepath.Join(e.root, tc.id)); err == nil {
				t.Errorf("%s: state left in %s", tc.name, e.root)
			}
			if d := cgroupDirsOf(tc.id); len(d) > 0 {
				t.Errorf("%s: cgroups left: %q", tc.name, d)
			}
		}
	}
	if r := e.create("--bundle", good); r.Code == 0 {
		t.Error("create without an id succeeded")
	}
}

// fifoName is the start gate's name in the state directory.
const fifoName = "exec.fifo"

// Every hook gets the state on its stdin, the init's host pid in it, and
// runs where barco places it (see the README): prestart and createRuntime
// during create on the host, once the init exists; createContainer in the
// container's mount namespace before pivot_root, with the host's paths;
// startContainer in the container's root once start opens the gate, as
// the process's user, with its environment (all four: created, as crun
// has it); poststart after start (running); poststop at delete (stopped).
// A failing prestart or createContainer hook fails create with one line
// and leaves no container.
func TestOCIHooks(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	// Each hook appends its name to order and keeps its stdin as NAME;
	// inside the container out is /hooks.
	hookIn := func(dir, name, extra string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			"cat > " + dir + "/" + name + "; echo " + name + " >> " + dir + "/order" + extra}}
	}
	hook := func(name string) specs.Hook { return hookIn(out, name, "") }
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Process.Env = append(s.Process.Env, "HOOKTEST=from-the-process")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		// The second poststart hook records what the init runs: the
		// process, exec'd, not a stage still on its way to it.
		comm := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			`pid=$(sed 's/.*"pid": *\([0-9]*\).*/\1/'); cat /proc/$pid/comm > ` + filepath.Join(out, "comm")}}
		// The hooks before the process have the runtime's environment,
		// not the process's, and none of the chain's descriptors.
		own := func(name string) string { return `; echo "${HOOKTEST-unset}" > ` + out + "/" + name + ".env" }
		s.Hooks = &specs.Hooks{
			Prestart:      []specs.Hook{hookIn(out, "prestart", own("prestart"))}, //lint:ignore SA1019 Docker still uses prestart
			CreateRuntime: []specs.Hook{hookIn(out, "createRuntime", own("createRuntime"))},
			CreateContainer: []specs.Hook{hookIn(out, "createContainer", "; readlink /proc/self/ns/mnt > "+out+"/createContainer.mnt"+own("createContainer")),
				{Path: "/bin/sh", Args: []string{"sh", "-c", "exec ls -l /proc/self/fd > " + out + "/createContainer.fds"}}},
			StartContainer: []specs.Hook{hookIn("/hooks", "startContainer",
				`; echo "$HOOKTEST $(id -u) $(readlink /proc/self/ns/mnt)" > /hooks/startContainer.env`)},
			Poststart: []specs.Hook{hook("poststart"), comm},
			Poststop:  []specs.Hook{hook("poststop"), {Path: "/bin/false"}, hook("poststop2")}}
	})
	e.mustCreate("--bundle", dir, "hooks")
	initPID := e.state("hooks").Pid
	initMnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", initPID))
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	if order, _ := os.ReadFile(filepath.Join(out, "order")); string(order) != "prestart\ncreateRuntime\ncreateContainer\n" {
		t.Errorf("hooks run by create: %q, want prestart, createRuntime, createContainer", order)
	}
	if _, err := os.Stat(filepath.Join(out, "startContainer")); err == nil {
		t.Error("the startContainer hook ran at create")
	}
	e.must("start", "hooks")
	if comm, err := os.ReadFile(filepath.Join(out, "comm")); string(comm) != "sleep\n" {
		t.Errorf("the poststart hook saw the init run %q (%v), want sleep: the hooks run once the process is exec'd", comm, err)
	}
	e.must("delete", "--force", "hooks")
	if order, _ := os.ReadFile(filepath.Join(out, "order")); string(order) != "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\npoststop2\n" {
		t.Errorf("hooks in the order\n%s\nwant prestart, createRuntime, createContainer, startContainer, poststart, poststop, poststop2", order)
	}
	for name, want := range map[string]specs.ContainerState{"prestart": specs.StateCreated, "createRuntime": specs.StateCreated,
		"createContainer": specs.StateCreated, "startContainer": specs.StateCreated, "poststart": specs.StateRunning,
		"poststop": specs.StateStopped, "poststop2": specs.StateStopped} {
		data, err := os.ReadFile(filepath.Join(out, name))
		var s specs.State
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err != nil || s.Status != want || s.ID != "hooks" || s.Bundle != dir || s.Pid != initPID {
			t.Errorf("%s hook's stdin: %q, %v; want the state with status %s and pid %d", name, data, err, want, initPID)
		}
	}
	if mnt, _ := os.ReadFile(filepath.Join(out, "createContainer.mnt")); strings.TrimSpace(string(mnt)) != initMnt || initMnt == hostMnt {
		t.Errorf("createContainer hook in mount namespace %q; want the container's, %q (the host's is %q)", mnt, initMnt, hostMnt)
	}
	for _, name := range []string{"prestart", "createRuntime", "createContainer"} {
		if env, _ := os.ReadFile(filepath.Join(out, name+".env")); string(env) != "unset\n" {
			t.Errorf("%s hook saw HOOKTEST=%q, want it unset: the process's environment is not the hooks'", name, env)
		}
	}
	// None of the chain's (the start gate, create's report pipe); others
	// it has are those create's caller left it, as runc's hooks have.
	if fds, err := os.ReadFile(filepath.Join(out, "createContainer.fds")); err != nil || strings.Contains(string(fds), fifoName) || !strings.Contains(string(fds), " 0 -> ") {
		t.Errorf("createContainer hook's descriptors:\n%s(%v)\nwant none of the chain's (the start gate %s, create's report pipe)", fds, err, fifoName)
	}
	if env, _ := os.ReadFile(filepath.Join(out, "startContainer.env")); string(env) != "from-the-process 0 "+initMnt+"\n" {
		t.Errorf("startContainer hook saw %q; want the process's environment, uid 0 and the container's mount namespace %q", env, initMnt)
	}

	for _, failing := range []struct {
		name  string
		hooks specs.Hooks
	}{
		{"prestart", specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no network >&2; exit 1"}}}}}, //lint:ignore SA1019 Docker still uses prestart
		{"createContainer", specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no network >&2; exit 1"}}}}},
	} {
		bundle := e.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/bin/sleep", "100"}
			s.Hooks = &failing.hooks
			// A mount point barco-mount makes, and must take away again.
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/made-for-a-volume", Type: "bind", Source: out, Options: []string{"rbind"}})
		})
		r := e.create("--bundle", bundle, "hooks-fail")
		if r.Code == 0 || !strings.Contains(r.Stderr, "hook /bin/sh: exit status 1: no network") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("create with a failing %s hook: status %d, %q; want one line with the hook's message", failing.name, r.Code, r.Stderr)
		}
		if r := e.barco("state", "hooks-fail"); r.Code == 0 {
			t.Errorf("a container is left after a failing %s hook", failing.name)
		}
		if d := cgroupDirsOf("hooks-fail"); len(d) > 0 {
			t.Errorf("cgroups left after a failing %s hook: %q", failing.name, d)
		}
		if _, err := os.Lstat(filepath.Join(bundle, "rootfs", "made-for-a-volume")); err == nil {
			t.Errorf("the volume's mount point is left in the rootfs after a failing %s hook", failing.name)
		}
	}
	// A startContainer hook that fails keeps the process from running,
	// fails start, and no poststart hook runs.
	ran := filepath.Join(out, "ran")
	bundle := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "echo > /hooks/ran"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/false"}},
			Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + ran + ".poststart"}}}}
	})
	e.mustCreate("--bundle", bundle, "hooks-start-fail")
	if r := e.barco("start", "hooks-start-fail"); r.Code == 0 || !strings.Contains(r.Stderr, "did not start") {
		t.Errorf("start with a failing startContainer hook: status %d, %q; want a failure", r.Code, r.Stderr)
	}
	e.barco("delete", "--force", "hooks-start-fail")
	for _, f := range []string{ran, ran + ".poststart"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was made after the startContainer hook failed", f)
		}
	}
	// The spec's rule for every hook: an absolute path.
	bundle = e.bundle(func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "true"}}} })
	if r := e.create("--bundle", bundle, "hooks-relative"); r.Code != 125 || !strings.Contains(r.Stderr, "hooks.poststop") {
		t.Errorf("create with a relative hook path: status %d, %q; want 125 naming hooks.poststop", r.Code, r.Stderr)
	}
}

// A state larger than a variable or an argument can hold (Kubernetes
// puts a pod's annotations in it): every hook still gets it whole, the
// create and start ones too, which the chain passes in a memfd.
func TestOCIHooksWithLargeAnnotations(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	big := strings.Repeat("a", 300<<10)
	keep := func(dir, name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + dir + "/" + name}}
	}
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Annotations = map[string]string{"big": big}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{keep(out, "prestart")}, //lint:ignore SA1019 Docker still uses prestart
			CreateRuntime:   []specs.Hook{keep(out, "createRuntime")},
			CreateContainer: []specs.Hook{keep(out, "createContainer")},
			StartContainer:  []specs.Hook{keep("/hooks", "startContainer")},
			Poststart:       []specs.Hook{keep(out, "poststart")},
		}
	})
	e.mustCreate("--bundle", dir, "bighooks")
	initPID := e.state("bighooks").Pid
	e.must("start", "bighooks")
	e.must("delete", "--force", "bighooks")
	for _, name := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		var s specs.State
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err != nil || s.Annotations["big"] != big || s.Pid != initPID || s.ID != "bighooks" {
			t.Errorf("%s hook's stdin: %d bytes, pid %d, %v; want the state with the %d-byte annotation and pid %d",
				name, len(data), s.Pid, err, len(big), initPID)
		}
	}
}

// The memfd of a large state goes down the chain through every stage,
// linked or exec'd, above the descriptors the process keeps: the
// createContainer and startContainer hooks get the state whole, and
// neither they nor the process hold the memfd.
func TestOCILargeHookStateStaysInTheChain(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		e := newOCI(t)
		out := testutil.SearchableTempDir(t)
		big := strings.Repeat("a", 300<<10)
		keep := func(dir, name string) specs.Hook {
			return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + dir + "/" + name + "; ls -l /proc/self/fd > " + dir + "/" + name + ".fds"}}
		}
		dir := e.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/bin/sh", "-c", "ls -l /proc/self/fd > /hooks/process.fds"}
			s.Annotations = map[string]string{"big": big}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
			s.Hooks = &specs.Hooks{
				CreateContainer: []specs.Hook{keep(out, "createContainer")},
				StartContainer:  []specs.Hook{keep("/hooks", "startContainer")},
			}
		})
		id := "bigstate-" + filepath.Base(t.Name())
		// fd 3 kept: the memfd must not take its number. Stdio on
		// files, as onFiles has it.
		errFile := filepath.Join(t.TempDir(), "stderr")
		r := testutil.Run(t, nil, "sh", "-c", fmt.Sprintf("exec 3</dev/null; exec %q --root %q create --preserve-fds 1 --bundle %q %q </dev/null >/dev/null 2>%q",
			e.bin, e.root, dir, id, errFile))
		if stderr, _ := os.ReadFile(errFile); r.Code != 0 {
			t.Fatalf("create: status %d, %s", r.Code, stderr)
		}
		initPID := e.state(id).Pid
		// The init, at the start gate, holds the start hooks' memfd and
		// no longer the create hooks'.
		if n := hookMemfdsOf(t, initPID); n != 1 {
			t.Errorf("the created container's init holds %d memfds, want 1 (the start hooks')", n)
		}
		e.must("start", id)
		e.waitStatus(id, specs.StateStopped)
		e.must("delete", id)
		for _, name := range []string{"createContainer", "startContainer"} {
			data, err := os.ReadFile(filepath.Join(out, name))
			var s specs.State
			if err == nil {
				err = json.Unmarshal(data, &s)
			}
			if err != nil || s.Annotations["big"] != big || s.Pid != initPID {
				t.Errorf("%s hook's stdin: %d bytes, pid %d, %v; want the state with the %d-byte annotation and pid %d",
					name, len(data), s.Pid, err, len(big), initPID)
			}
		}
		for _, name := range []string{"createContainer", "startContainer", "process"} {
			fds, err := os.ReadFile(filepath.Join(out, name+".fds"))
			if err != nil || !strings.Contains(string(fds), " 3 -> ") || strings.Contains(string(fds), "memfd") {
				t.Errorf("%s's descriptors: %v\n%s\nwant 3 (kept, from create's) and no memfd", name, err, fds)
			}
		}
	})
}

// hookMemfdsOf counts the hook sets' memfds process pid holds (those of
// stages carried past pivot_root, BARCO_EXEC_STAGES=1, are not counted).
func hookMemfdsOf(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); strings.HasPrefix(target, "/memfd:barco-hooks") {
			n++
		}
	}
	return n
}

// SIGTERM to create while a prestart hook runs ends the hook (its process
// group) and create, which fails with one line and leaves nothing: with
// the stages linked into create, and exec'd (create passes the signal on).
func TestOCIHookStoppedBySignal(t *testing.T) {
	for _, env := range [][]string{nil, {"BARCO_EXEC_STAGES=1"}} {
		t.Run(strings.Join(append([]string{"stages"}, env...), " "), func(t *testing.T) { hookStoppedBySignal(t, env) })
	}
}

func hookStoppedBySignal(t *testing.T, env []string) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	pidFile := filepath.Join(out, "hook.pid")
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 60"}}}} //lint:ignore SA1019 Docker still uses prestart
	})
	var stderr bytes.Buffer
	cmd := exec.Command(e.bin, "--root", e.root, "create", "--bundle", dir, "hooks-term")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hookPID, _ := strconv.Atoi(strings.TrimSpace(fileWritten(pidFile)))
	if hookPID == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the prestart hook did not start")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), "stopped by terminated") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("create after SIGTERM during its prestart hook: %v, %q; want a failure, one line", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("create did not end within 10 s of SIGTERM during its prestart hook")
	}
	if err := unix.Kill(hookPID, 0); err == nil {
		unix.Kill(hookPID, unix.SIGKILL)
		t.Errorf("the hook, pid %d, still runs", hookPID)
	}
	if r := e.barco("state", "hooks-term"); r.Code == 0 {
		t.Error("a container is left")
	}
	if d := cgroupDirsOf("hooks-term"); len(d) > 0 {
		t.Errorf("cgroups left: %q", d)
	}
}

// SIGTERM to create while a createContainer hook runs (barco-ns has left
// the init, detached, and create waits for it at the start gate) ends
// create, as a program that does not catch it; delete --force then
// removes the container, the hook with it. With the stages linked into
// create, and exec'd.
func TestOCICreateContainerHookStoppedBySignal(t *testing.T) {
	for _, env := range [][]string{nil, {"BARCO_EXEC_STAGES=1"}} {
		t.Run(strings.Join(append([]string{"stages"}, env...), " "), func(t *testing.T) { createContainerHookStoppedBySignal(t, env) })
	}
}

func createContainerHookStoppedBySignal(t *testing.T, env []string) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	mark := filepath.Join(out, "hook.started")
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo started > " + mark + "; exec sleep 60"}}}}
	})
	// On a file: the init inherits create's stdio, and holds it.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "create", "--bundle", dir, "cc-hook-term")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errText := func() string { data, _ := os.ReadFile(stderr.Name()); return string(data) }
	if fileWritten(mark) == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the createContainer hook did not start: %q", errText())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Again each second: the hook may start a moment before barco-ns has
	// given the signals back, and one caught then is dropped.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
wait:
	for {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if cmd.ProcessState.Success() {
				t.Errorf("create after SIGTERM during its createContainer hook succeeded: %q", errText())
			}
			break wait
		case <-tick.C:
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Error("create did not end within 10 s of SIGTERM during its createContainer hook")
			break wait
		}
	}
	if r := e.barco("delete", "--force", "cc-hook-term"); r.Code != 0 {
		t.Errorf("delete --force after create was stopped: status %d, %s", r.Code, r.Stderr)
	}
	// The hook ran in the container's cgroup, which is gone only with it.
	if d := cgroupDirsOf("cc-hook-term"); len(d) > 0 {
		t.Errorf("cgroups left: %q", d)
	}
}

// The hooks before pivot_root find the container's filesystem built, as
// runc's: /dev, /proc, /sys and the volumes at the root path. The
// createContainer hooks run in the container's mount namespace, with the
// host's paths; prestart and createRuntime in the runtime's, where they
// reach it through /proc/PID/root, or by joining it (NVIDIA's prestart
// hook mounts the GPU's devices there, which barco-mount's /dev covered
// when the hooks ran before it; its CDI hooks, createContainer ones,
// write into the container's libraries).
func TestOCICreateHooksSeeTheMounts(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	vol := testutil.SearchableTempDir(t)
	if err := os.WriteFile(filepath.Join(vol, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(name, via, more string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `st=$(cat); ` +
			`pid=$(echo "$st" | sed 's/.*"pid": *\([0-9]*\).*/\1/'); ` +
			`r=` + via + `$(echo "$st" | sed 's/.*"bundle": *"\([^"]*\)".*/\1/')/rootfs; ` +
			`{ test -c $r/dev/null && echo dev; test -e $r/proc/1/stat && echo proc; ` +
			`test -d $r/sys/kernel && echo sys; test -e $r/vol/marker && echo volume; } > ` + out + `/` + name + more}}
	}
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/true"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{check("prestart", "/proc/$pid/root", "")}, //lint:ignore SA1019 Docker still uses prestart
			CreateRuntime:   []specs.Hook{check("createRuntime", "/proc/$pid/root", "")},
			CreateContainer: []specs.Hook{check("createContainer", "", "; pwd > "+out+"/cwd")}}
	})
	e.mustCreate("--bundle", dir, "seen")
	e.must("delete", "--force", "seen")
	for _, name := range []string{"prestart", "createRuntime", "createContainer"} {
		if seen, err := os.ReadFile(filepath.Join(out, name)); string(seen) != "dev\nproc\nsys\nvolume\n" {
			t.Errorf("the %s hook found in the root path %q (%v); want dev, proc, sys and volume", name, seen, err)
		}
	}
	// In the rootfs, as runc's (it chdirs there before them).
	if cwd, err := os.ReadFile(filepath.Join(out, "cwd")); string(cwd) != filepath.Join(dir, "rootfs")+"\n" {
		t.Errorf("the createContainer hook's working directory: %q (%v), want the rootfs", cwd, err)
	}
	// And nothing of them is left in the rootfs, which is the bundle's.
	for _, p := range []string{"vol/marker", "proc/self", "dev/null"} {
		if _, err := os.Lstat(filepath.Join(dir, "rootfs", p)); err == nil {
			t.Errorf("%s is still in the rootfs after delete", p)
		}
	}
}

// A shared root and a read-only one, with a createContainer hook that
// writes into the rootfs: pivot_root cannot take a shared root, so the
// propagation comes after it, and read-only after the hooks, as runc's.
func TestOCIRootPropagationAndReadOnly(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo > /out/mountinfo; " +
			"cat /from-hook > /out/from-hook; touch /x 2> /out/touch"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		s.Linux.RootfsPropagation = "shared"
		s.Root.Readonly = true
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			`r=$(sed 's/.*"bundle": *"\([^"]*\)".*/\1/')/rootfs; echo written > $r/from-hook`}}}}
	})
	e.mustCreate("--bundle", dir, "shared-ro")
	e.must("start", "shared-ro")
	e.waitStatus("shared-ro", specs.StateStopped)
	e.must("delete", "shared-ro")
	if mi, err := os.ReadFile(filepath.Join(out, "mountinfo")); err != nil || !strings.Contains(string(mi), " shared:") || !strings.Contains(string(mi), " ro") {
		t.Errorf("the container's / in its mountinfo: %q (%v); want it shared and read-only", mi, err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "from-hook")); string(got) != "written\n" {
		t.Errorf("the file the createContainer hook wrote into a read-only root: %q, want written", got)
	}
	if msg, _ := os.ReadFile(filepath.Join(out, "touch")); !strings.Contains(string(msg), "Read-only file system") {
		t.Errorf("touch /x in the container: %q, want a read-only file system", msg)
	}
}

// The masked and read-only paths come after the createContainer hooks, as
// runc's (it applies them after pivot_root): a hook may set a sysctl of
// the container's namespaces through its /proc/sys, which the container
// then finds read-only.
func TestOCICreateContainerHookWritesProcSys(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "hostname > /out/hostname; " +
			"echo x 2> /out/write > /proc/sys/kernel/hostname; test -e /proc/kcore && wc -c < /proc/kcore > /out/kcore"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			`r=$(sed 's/.*"bundle": *"\([^"]*\)".*/\1/')/rootfs; echo from-hook > $r/proc/sys/kernel/hostname`}}}}
	})
	e.mustCreate("--bundle", dir, "procsys")
	e.must("start", "procsys")
	e.waitStatus("procsys", specs.StateStopped)
	e.must("delete", "procsys")
	if got, _ := os.ReadFile(filepath.Join(out, "hostname")); string(got) != "from-hook\n" {
		t.Errorf("the container's hostname: %q, want the hook's from-hook", got)
	}
	if msg, _ := os.ReadFile(filepath.Join(out, "write")); !strings.Contains(string(msg), "Read-only file system") {
		t.Errorf("a write to /proc/sys in the container: %q, want a read-only file system", msg)
	}
	if n, err := os.ReadFile(filepath.Join(out, "kcore")); err == nil && strings.TrimSpace(string(n)) != "0" {
		t.Errorf("/proc/kcore in the container: %s bytes, want it masked", n)
	}
}

// A hook that create runs may ask the runtime about the container being
// made, and about the others: state, list and ps read without waiting for
// create, which waits for its hooks.
func TestOCIStateFromCreateHooks(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	timeout := 5
	ask := func(name string) specs.Hook {
		q := func(args ...string) string {
			return fmt.Sprintf("%q --root %q %s", e.bin, e.root, strings.Join(args, " "))
		}
		return specs.Hook{Path: "/bin/sh", Timeout: &timeout, Args: []string{"sh", "-c",
			q("state", "asked") + " > " + out + "/" + name + ".state; " +
				q("list", "--quiet") + " > " + out + "/" + name + ".list; " +
				q("ps", "asked") + " > " + out + "/" + name + ".ps"}}
	}
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "100"}
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{ask("createRuntime")}, CreateContainer: []specs.Hook{ask("createContainer")}}
	})
	e.mustCreate("--bundle", dir, "asked")
	defer e.barco("delete", "--force", "asked")
	for _, name := range []string{"createRuntime", "createContainer"} {
		data, err := os.ReadFile(filepath.Join(out, name+".state"))
		var s specs.State
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err != nil || s.ID != "asked" || s.Status != specs.StateCreating || s.Bundle != dir {
			t.Errorf("`state` from a %s hook: %q (%v); want the container being made, status creating", name, data, err)
		}
		if list, _ := os.ReadFile(filepath.Join(out, name+".list")); string(list) != "asked\n" {
			t.Errorf("`list --quiet` from a %s hook: %q, want asked", name, list)
		}
		if ps, err := os.ReadFile(filepath.Join(out, name+".ps")); err != nil || !strings.HasPrefix(string(ps), "PID") {
			t.Errorf("`ps` from a %s hook: %q (%v), want its table", name, ps, err)
		}
	}
	if s := e.state("asked"); s.Status != specs.StateCreated {
		t.Errorf("after create: status %s, want created", s.Status)
	}
}

// prestart and createRuntime run in the runtime's namespaces, also when
// the container joins one by path (here a network namespace, which
// barco-ns enters on its own thread before the clone).
func TestOCIHooksRunInRuntimeNamespaces(t *testing.T) {
	e := newOCI(t)
	name := "barco-test-hooks-" + strconv.Itoa(os.Getpid())
	if r := testutil.Run(t, nil, "ip", "netns", "add", name); r.Code != 0 {
		t.Fatalf("ip netns add: %s", r.Stderr)
	}
	t.Cleanup(func() { testutil.Run(t, nil, "ip", "netns", "delete", name) })
	joinedNS := ""
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &st); err == nil {
		joinedNS = fmt.Sprintf("net:[%d]", st.Ino)
	}
	hostNS, _ := os.Readlink("/proc/self/ns/net")
	out := testutil.SearchableTempDir(t)
	record := func(file string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "readlink /proc/self/ns/net > " + filepath.Join(out, file)}}
	}
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "readlink /proc/self/ns/net > /out/process"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = "/run/netns/" + name
			}
		}
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{record("prestart")}, CreateRuntime: []specs.Hook{record("createRuntime")}} //lint:ignore SA1019 Docker still uses prestart
	})
	if r := e.barco("run", "--bundle", dir, "hooks-ns"); r.Code != 0 {
		t.Fatalf("run: status %d, %s", r.Code, r.Stderr)
	}
	for file, want := range map[string]string{"prestart": hostNS, "createRuntime": hostNS, "process": joinedNS} {
		if got, _ := os.ReadFile(filepath.Join(out, file)); strings.TrimSpace(string(got)) != want {
			t.Errorf("%s in network namespace %q, want %q (host %s, joined %s)", file, got, want, hostNS, joinedNS)
		}
	}
}

// barco's parent cgroup (here the tests' own) goes with the last
// container in it, whichever create made it: two containers deleted in
// the order they were created leave no parent behind in any hierarchy.
func TestOCIDeleteLeavesNoParent(t *testing.T) {
	e := newOCI(t)
	parents := func() []string {
		m, _ := filepath.Glob("/sys/fs/cgroup/*/" + testParent)
		more, _ := filepath.Glob("/sys/fs/cgroup/" + testParent)
		return append(m, more...)
	}
	if d := parents(); len(d) > 0 {
		t.Skipf("the tests' parent cgroup is in use: %q", d)
	}
	dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "100"} })
	e.mustCreate("--bundle", dir, "parent-a")
	e.mustCreate("--bundle", dir, "parent-b")
	e.must("delete", "--force", "parent-a")
	e.must("delete", "--force", "parent-b")
	if d := parents(); len(d) > 0 {
		t.Errorf("parent cgroups left: %q", d)
	}
}

// run -b is create, start and a wait, in the foreground, with the
// process's status.
func TestOCIRun(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", "echo ran; exit 3"} })
	r := e.barco("run", "--bundle", dir, "run-1")
	if r.Code != 3 || r.Stdout != "ran\n" {
		t.Errorf("run: status %d, stdout %q, stderr %q; want 3 and the process's output", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.barco("state", "run-1"); r.Code == 0 {
		t.Error("run left its container")
	}
}

// run --detach is create and start: it returns once the process runs,
// and no barco process stays, as runc run --detach.
func TestOCIRunDetach(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "echo ran > /out/ran; exec sleep 100"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind"}})
	})
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--detach", "--bundle", dir, "run-d")
	// A file, not a pipe: the container keeps the stdio it was given, and
	// Wait would wait for the end of a pipe's copy.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			msg, _ := os.ReadFile(stderr.Name())
			t.Fatalf("run --detach: %v, %q", err, msg)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		e.barco("delete", "--force", "run-d")
		t.Fatal("run --detach did not return within 10 s")
	}
	defer e.barco("delete", "--force", "run-d")
	if got := fileWritten(filepath.Join(out, "ran")); got != "ran\n" {
		t.Errorf("the process wrote %q, want ran", got)
	}
	r := e.barco("state", "run-d")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"status": "running"`) {
		t.Errorf("state after run --detach: %d %q %q; want running", r.Code, r.Stdout, r.Stderr)
	}
}

// run passes a signal it catches on to the container's process, and ends
// with that process's status once it has removed the container.
func TestOCIRunForwardsSignals(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	ready := filepath.Join(out, "ready")
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "trap 'echo got USR1' USR1; trap 'echo got TERM; exit 7' TERM; " +
			"echo ready > /out/ready; while :; do sleep 0.05; done"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind"}})
	})
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--bundle", dir, "run-sig")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if fileWritten(ready) == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the container did not start: %q", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("run did not end within 10 s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 7 || stdout.String() != "got USR1\ngot TERM\n" {
		t.Errorf("run after SIGUSR1 and SIGTERM: status %d, stdout %q, stderr %q; want 7 and both signals seen", code, stdout.String(), stderr.String())
	}
	if r := e.barco("state", "run-sig"); r.Code == 0 {
		t.Error("run left its container")
	}
	if d := cgroupDirsOf("run-sig"); len(d) > 0 {
		t.Errorf("cgroups left: %q", d)
	}
}

// Twenty creates at once, each its own container, all deleted cleanly.
func TestOCIConcurrentCreates(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "100"} })
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if r := e.create("--bundle", dir, id); r.Code != 0 {
				errs <- id + ": " + r.Stderr
			}
		}("many-" + strconv.Itoa(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list := e.must("list")
	for i := 0; i < 20; i++ {
		id := "many-" + strconv.Itoa(i)
		if !strings.Contains(list, id+" ") {
			t.Errorf("list lacks %s:\n%s", id, list)
		}
		e.must("delete", "--force", id)
		if d := cgroupDirsOf(id); len(d) > 0 {
			t.Errorf("%s: cgroups left: %q", id, d)
		}
	}
}

// The config's process and kernel settings reach the process: rlimits,
// oom_score_adj, a namespaced sysctl, a seccomp rule, a masked path, the
// capability sets, the user and its groups.
func TestOCIConfigReachesTheProcess(t *testing.T) {
	e := newOCI(t)
	adj := 300
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", `
echo nofile=$(ulimit -n):$(ulimit -Hn)
echo oom=$(cat /proc/self/oom_score_adj)
echo forward=$(cat /proc/sys/net/ipv4/ip_forward)
echo masked=$(cat /etc/hostname 2>&1 | wc -c)
mkdir /x 2>/dev/null && echo mkdir=allowed || echo mkdir=denied
echo id=$(id -u):$(id -g):$(id -G | tr ' ' ,)
grep -E '^Cap(Eff|Bnd):' /proc/self/status | tr -d '\t'
`}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
		s.Process.OOMScoreAdj = &adj
		s.Process.User = specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{5}}
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Linux.MaskedPaths = []string{"/etc/hostname"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	})
	hostBefore, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	r := e.barco("run", "--bundle", dir, "cfg-1")
	got := testutil.KeyValues(r.Stdout, "=")
	for k, v := range map[string]string{"nofile": "512:1024", "oom": "300", "forward": "1", "masked": "0",
		"mkdir": "denied", "id": "0:0:0,5"} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q; status %d, output:\n%s%s", k, got[k], v, r.Code, r.Stdout, r.Stderr)
		}
	}
	// barco spec's three capabilities, in the bounding and effective sets.
	for _, want := range []string{"CapEff:0000000020000420\n", "CapBnd:0000000020000420\n"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("no %q in\n%s", want, r.Stdout)
		}
	}
	if host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(host) != string(hostBefore) {
		t.Errorf("the host's ip_forward went from %q to %q", hostBefore, host)
	}
}

// linux.devices become nodes in the container's /dev; the device cgroup
// holds the config's rules in their order, then the default ones; the
// umask and the mounts' order are the config's.
func TestOCIDevicesUmaskAndMountOrder(t *testing.T) {
	e := newOCI(t)
	mode := os.FileMode(0o640)
	gid := uint32(5)
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", `
ls -ln /dev/test1 /dev/fifo1 | awk '{print $1, $3, $4, $5, $6, $NF}'
touch /tmp/made; stat -c 'umask=%a' /tmp/made
awk '$5 ~ "^/(a|b)" {print "mount=" $5}' /proc/self/mountinfo
cat /dev/null && echo null=ok
sleep 30`}
		umask := uint32(0o027)
		s.Process.User.Umask = &umask
		s.Linux.Devices = []specs.LinuxDevice{
			{Path: "/dev/test1", Type: "c", Major: 10, Minor: 666, FileMode: &mode, GID: &gid},
			{Path: "/dev/fifo1", Type: "p", FileMode: &mode},
		}
		maj, min := int64(10), int64(229)
		s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: &maj, Minor: &min, Access: "rw"},
			{Allow: true, Type: "b", Major: &maj, Access: "r"},
		}}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/b", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/a", Source: src, Options: []string{"rbind"}},
			specs.Mount{Destination: "/b/x", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/a/y", Type: "tmpfs", Source: "tmpfs"})
	})
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "create", "--bundle", dir, "dev-1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(out)
		t.Fatalf("create: %v: %s", err, data)
	}
	var list []byte
	for _, d := range cgroupDirsOf("dev-1") {
		if strings.Contains(d, "/devices/") {
			list, _ = os.ReadFile(filepath.Join(d, "devices.list"))
		}
	}
	wantList := "c 10:229 rw\nb 10:* r\nc *:* m\nb *:* m\nc 1:3 rwm\n"
	if !strings.HasPrefix(string(list), wantList) {
		t.Errorf("devices.list:\n%s\nwant it to start with\n%s", list, wantList)
	}
	e.must("start", "dev-1")
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(out)
		if got = string(data); strings.Contains(got, "null=") {
			break
		}
	}
	e.must("kill", "dev-1", "KILL")
	for _, want := range []string{
		"crw-r----- 0 5 10, 666 /dev/test1\n",
		"prw-r----- 0 0", // a FIFO has no numbers: ls prints its size
		"umask=640\n",
		"mount=/b\nmount=/a\nmount=/b/x\nmount=/a/y\n",
		"null=ok\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the container's output:\n%s", want, got)
		}
	}
}

// --preserve-fds: the container's process gets the caller's fds 3.. at
// the same numbers, and no other descriptor of barco's.
func TestOCIPreserveFDs(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", `cat <&3; for f in /proc/self/fd/*; do echo "fd ${f##*/}"; done`}
	})
	f, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("from fd 3\n")
	f.Seek(0, 0)
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--preserve-fds", "1", "--bundle", dir, "pfd-1")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	// The shell's glob opens the directory it lists: fd 4 is its own.
	if want := "from fd 3\nfd 0\nfd 1\nfd 2\nfd 3\nfd 4\n"; err != nil || string(out) != want {
		t.Errorf("run --preserve-fds 1: %v, output %q, want %q", err, out, want)
	}
}

// Memory reservation, swappiness and the OOM killer switch reach the
// container's memory cgroup (v1 here).
func TestOCIMemorySoftLimits(t *testing.T) {
	e := newOCI(t)
	res, sw, off := int64(32<<20), uint64(7), true
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sleep", "30"}
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: &res, Swappiness: &sw, DisableOOMKiller: &off}}
	})
	e.mustCreate("--bundle", dir, "mem-1")
	var got []string
	for _, d := range cgroupDirsOf("mem-1") {
		if strings.Contains(d, "/memory/") {
			for _, f := range []string{"memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control"} {
				data, _ := os.ReadFile(filepath.Join(d, f))
				got = append(got, strings.SplitN(string(data), "\n", 2)[0])
			}
		}
	}
	if want := []string{"33554432", "7", "oom_kill_disable 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("memory cgroup: %q, want %q", got, want)
	}
}

// What the engines' configs ask beyond barco spec's: podman's umask and
// --read-only tmpfs mounts with tmpcopyup, its seccomp profile that lists
// a syscall twice, and, without a cgroup namespace (Docker and podman on
// a v1 host), /sys/fs/cgroup showing the container's own limits.
func TestOCIEngineConfigs(t *testing.T) {
	e := newOCI(t)
	umask := uint32(0o027)
	limit := int64(77)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", `
echo umask=$(umask)
echo passwd=$(grep -c ^root: /etc/passwd)
touch /etc/written && echo etc=writable
echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
mkdir /tmp/made 2>&1 | grep -q "Operation not permitted" && echo mkdir=EPERM
`}
		s.Process.User.Umask = &umask
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}})
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: limit}}
		// The first unconditional rule counts, as in libseccomp.
		eperm, eacces := uint(1), uint(13)
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces}}}
	})
	r := e.barco("run", "--bundle", dir, "eng-1")
	got := testutil.KeyValues(r.Stdout, "=")
	for k, v := range map[string]string{"umask": "0027", "passwd": "1", "etc": "writable", "pids": "77", "mkdir": "EPERM"} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q; status %d, output:\n%s%s", k, got[k], v, r.Code, r.Stdout, r.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "etc", "written")); err == nil {
		t.Error("the write to the tmpfs reached the image")
	}
	// Without a umask in the config, runc's 0022.
	dir = e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", "umask"} })
	if r := e.barco("run", "--bundle", dir, "eng-2"); r.Code != 0 || r.Stdout != "0022\n" {
		t.Errorf("default umask: status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// A hard limit above the caller's fails create, as with runc, rather than
// the process after start: the engines read that failure from create.
func TestOCIRlimitAboveHardLimitFailsCreate(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	e := newOCI(t)
	n := lim.Max + 1
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "ulimit -Hn"}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: n, Hard: n}}
	})
	var eff uint64
	status, _ := os.ReadFile("/proc/self/status")
	if v, ok := testutil.KeyValues(string(status), ":")["CapEff"]; ok {
		eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	}
	if eff&(1<<unix.CAP_SYS_RESOURCE) != 0 {
		// A root that may raise it (not the development VM): it is raised.
		if r := e.barco("run", "--bundle", dir, "rl-0"); r.Code != 0 || strings.TrimSpace(r.Stdout) != strconv.FormatUint(n, 10) {
			t.Errorf("with CAP_SYS_RESOURCE: status %d, stdout %q, stderr %q; want %d", r.Code, r.Stdout, r.Stderr, n)
		}
		return
	}
	r := e.create("--bundle", dir, "rl-1")
	if r.Code == 0 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "setrlimit nofile") || !strings.Contains(r.Stderr, "operation not permitted") {
		t.Errorf("create: status %d, stderr %q; want one line, setrlimit nofile: operation not permitted", r.Code, r.Stderr)
	}
	if r := e.barco("state", "rl-1"); r.Code == 0 {
		t.Error("the container was left")
	}
}

// A namespace the config names by path (a pod's network namespace, docker
// run --network container:A) is the one the container's process is in,
// also when the chain places it in v1 cgroups (always, with the default
// device rules on this hybrid host).
func TestOCIJoinNamespacePath(t *testing.T) {
	e := newOCI(t)
	sleeper := func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "30"} }
	e.mustCreate("--bundle", e.bundle(sleeper), "nsjoin-a")
	a := e.state("nsjoin-a").Pid
	dir := e.bundle(func(s *specs.Spec) {
		sleeper(s)
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace || n.Type == specs.IPCNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", a, map[specs.LinuxNamespaceType]string{
					specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc"}[n.Type])
			}
		}
	})
	e.mustCreate("--bundle", dir, "nsjoin-b")
	b := e.state("nsjoin-b").Pid
	for _, kind := range []string{"net", "ipc"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a, kind))
		got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b, kind))
		if host, _ := os.Readlink("/proc/self/ns/" + kind); want == "" || want == host || got != want {
			t.Errorf("%s namespace: the container is in %q, want %q (the host's is %q)", kind, got, want, host)
		}
	}
}

// With BARCO_EXEC_STAGES=1 create runs every stage from its own binary,
// and the container is created and runs as without it.
func TestOCICreateExecStages(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "echo ran > /ran"}
	})
	t.Setenv(chain.ExecStagesEnv, "1")
	e.mustCreate("--bundle", dir, "execstages-1")
	if s := e.state("execstages-1"); s.Status != specs.StateCreated || s.Pid <= 0 {
		t.Fatalf("state after create: %s, pid %d; want created and the init's pid", s.Status, s.Pid)
	}
	e.must("start", "execstages-1")
	e.waitStatus("execstages-1", specs.StateStopped)
	if out, err := os.ReadFile(filepath.Join(dir, "rootfs", "ran")); string(out) != "ran\n" {
		t.Errorf("the container's process wrote %q, %v; want \"ran\"", out, err)
	}
}

// With every stage exec'd too, the prestart hooks' state reaches barco-ns
// whole however large, in a memfd as the other hook sets (it was an
// argument, which Linux caps at 128 KiB, and create failed with E2BIG).
func TestOCIExecStagesLargePrestartState(t *testing.T) {
	e := newOCI(t)
	out := testutil.SearchableTempDir(t)
	big := strings.Repeat("a", 300<<10)
	dir := e.bundle(func(s *specs.Spec) {
		s.Annotations = map[string]string{"big": big}
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out + "/state"}}}} //lint:ignore SA1019 Docker still uses prestart
	})
	t.Setenv(chain.ExecStagesEnv, "1")
	e.mustCreate("--bundle", dir, "execstages-big")
	e.must("delete", "--force", "execstages-big")
	data, err := os.ReadFile(filepath.Join(out, "state"))
	var st specs.State
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.ID != "execstages-big" || st.Annotations["big"] != big || st.Pid <= 0 {
		t.Errorf("the prestart hook's state: %d bytes, %v; want the whole state, its 300 KiB annotation and the init's pid", len(data), err)
	}
}

// The stages' GOMAXPROCS=1 never reaches the container's process, which
// gets its config's own GOMAXPROCS, or none: with the first stages in
// barco's process and with every stage exec'd.
func TestOCIGOMAXPROCSIsTheConfigs(t *testing.T) {
	e := newOCI(t)
	for _, own := range []string{"", "7"} {
		dir := e.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/bin/sh", "-c", "echo ${GOMAXPROCS-unset} $(env | grep -c ^BARCO_)"}
			if own != "" {
				s.Process.Env = append(s.Process.Env, "GOMAXPROCS="+own)
			}
		})
		want := "unset 0\n"
		if own != "" {
			want = own + " 0\n"
		}
		for _, env := range [][]string{nil, {"BARCO_EXEC_STAGES=1"}} {
			r := testutil.Run(t, env, e.bin, "--root", e.root, "run", "-b", dir, "gmp-"+strconv.Itoa(len(env))+own)
			if r.Code != 0 || r.Stdout != want {
				t.Errorf("GOMAXPROCS %q in the config, %q: %q, status %d, %s; want %q", own, env, r.Stdout, r.Code, r.Stderr, want)
			}
		}
	}
}
