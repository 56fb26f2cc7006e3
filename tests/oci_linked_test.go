package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"barco/lib/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// linkedMark is what --debug logs when create builds the container's
// filesystem from a thread of barco's own process, with no barco-mount
// image (lib/ns/linked.go).
const linkedMark = "with barco-mount's work from a thread of this process"

// probe prints what a container's process sees of what the stages made:
// its mounts (ids and anonymous devices left out), credentials, filter,
// umask, limits, names, network, cgroups, devices, descriptors,
// environment and working directory.
const probe = `cut -d' ' -f4- /proc/self/mountinfo | sed 's/ [0-9]*:[0-9]* / X /'
grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp)' /proc/self/status
umask
cat /proc/self/limits
hostname
cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/msgmax
cat /proc/self/cgroup /proc/self/oom_score_adj
cat /sys/class/net/lo/flags
ls -ln /dev /sys/fs/cgroup
ls -l /proc/self/fd | sed 's/.* [0-9]* [A-Z][a-z][a-z] [ 0-9:]* //; s/pipe:.*/pipe/'
env | sort
pwd
`

// linkedBundle is a bundle whose config has what the linked create sets
// up itself: a volume, a tmpfs on a path the rootfs lacks, a working
// directory, a user with groups, rlimits, a sysctl, oom_score_adj, and a
// filter loaded before the capabilities are dropped (no no_new_privs) that
// denies close_range.
func linkedBundle(e *ociEnv, args ...string) string {
	vol := testutil.SearchableTempDir(e.t)
	if err := os.WriteFile(filepath.Join(vol, "in"), []byte("from the host\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	adj := 300
	return e.bundle(func(s *specs.Spec) {
		s.Process.Args = args
		s.Process.Cwd = "/tmp"
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}}
		s.Process.NoNewPrivileges = false
		s.Process.OOMScoreAdj = &adj
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: 500, Soft: 400})
		s.Hostname = "linked"
		s.Linux.Sysctl = map[string]string{"kernel.msgmax": "4321"}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/made-by-barco", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}})
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"close_range"}, Action: specs.ActErrno}}}
	})
}

// The linked create makes the container its process sees when every stage
// runs as its binary (BARCO_EXEC_STAGES=1), byte for byte, and starts no
// barco-mount image.
func TestOCILinkedCreateMatchesTheStages(t *testing.T) {
	e := newOCI(t)
	dir := linkedBundle(e, "/bin/sh", "-c", probe)
	debug := testutil.Run(t, nil, e.bin, "--root", e.root, "--debug", "run", "--bundle", linkedBundle(e, "env"), "debug")
	if debug.Code != 0 || !strings.Contains(debug.Stderr, linkedMark) || strings.Contains(debug.Stderr, "barco-mount[1]") {
		t.Errorf("run did not build the filesystem from its own thread: status %d\n%s", debug.Code, debug.Stderr)
	}
	if strings.Contains(debug.Stdout, "BARCO") {
		t.Errorf("barco's own variables reached the container's environment:\n%s", debug.Stdout)
	}
	linked := testutil.Run(t, nil, e.bin, "--root", e.root, "run", "--bundle", dir, "same")
	if linked.Code != 0 {
		t.Fatalf("linked run: status %d, %s", linked.Code, linked.Stderr)
	}
	stages := testutil.Run(t, []string{"BARCO_EXEC_STAGES=1"}, e.bin, "--root", e.root, "run", "--bundle", dir, "same")
	if stages.Code != 0 {
		t.Fatalf("stages run: status %d, %s", stages.Code, stages.Stderr)
	}
	if linked.Stdout != stages.Stdout {
		t.Errorf("the container differs:\nlinked:\n%s\nstages:\n%s", linked.Stdout, stages.Stdout)
	}
	for _, want := range []string{"/data ro,", "/made-by-barco rw,", "Groups:\t10 20", "Uid:\t1000", "linked\n", "4321\n", "300\n", "/tmp\n", "Seccomp:\t2"} {
		if !strings.Contains(linked.Stdout, want) {
			t.Errorf("no %q in what the process saw:\n%s", want, linked.Stdout)
		}
	}
}

// A failure after the filesystem is built fails create as the stages'
// does, with the same message, and removes what the build made: the mount
// point it created in the rootfs, and the cgroups and state of the
// container. (The stages leave the mount point when the failure comes
// after barco-seccomp's filter, which binds barco-mount's undoing too;
// the linked create undoes it from its own thread.)
func TestOCILinkedCreateFailureLeavesNothing(t *testing.T) {
	e := newOCI(t)
	dir := linkedBundle(e, "/no/such/program")
	made := filepath.Join(dir, "rootfs", "made-by-barco")
	var stderr [2]string
	for i, stages := range []string{"", "1"} {
		t.Setenv("BARCO_EXEC_STAGES", stages)
		r := e.create("--bundle", dir, "fails")
		stderr[i] = r.Stderr
		if r.Code == 0 || !strings.Contains(r.Stderr, "barco-caps: exec /no/such/program: no such file or directory") {
			t.Errorf("create, BARCO_EXEC_STAGES=%q: status %d, stderr %q; want barco-caps' exec error", stages, r.Code, r.Stderr)
		}
		if _, err := os.Lstat(made); err == nil && stages == "" {
			t.Errorf("the linked create left %s", made)
		}
		os.Remove(made)
		if dirs := cgroupDirsOf("fails"); len(dirs) > 0 {
			t.Errorf("create, BARCO_EXEC_STAGES=%q, left cgroups %v", stages, dirs)
		}
		if r := e.barco("state", "fails"); r.Code == 0 {
			t.Errorf("create, BARCO_EXEC_STAGES=%q, left its container", stages)
		}
	}
	pid := regexp.MustCompile(`\[[0-9]+\]`)
	if a, b := pid.ReplaceAllString(stderr[0], ""), pid.ReplaceAllString(stderr[1], ""); a != b {
		t.Errorf("the failures differ:\nlinked: %q\nstages: %q", a, b)
	}
}

// A created container ends on the SIGTERM of kill, as the stages' does
// (their Go image at the gate has the runtime's handler), although its
// init, at the gate as steps, is the init of its pid namespace, which the
// kernel lets ignore a signal left at its default action.
func TestOCILinkedCreatedEndsOnSIGTERM(t *testing.T) {
	e := newOCI(t)
	for _, stages := range []string{"", "1"} {
		t.Setenv("BARCO_EXEC_STAGES", stages)
		dir := e.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/true"} })
		e.mustCreate("--bundle", dir, "term")
		e.must("kill", "term", "TERM")
		e.waitStatus("term", specs.StateStopped)
		if r := e.barco("start", "term"); r.Code == 0 {
			t.Errorf("BARCO_EXEC_STAGES=%q: start after SIGTERM ran the container", stages)
		}
		e.must("delete", "term")
	}
}

// Where clone3 is refused (a kernel before 5.7, or a filter barco runs
// under, as Docker's default profile refuses it with ENOSYS), create
// starts the child as it does with a user namespace: barco-mount's binary.
func TestOCILinkedCreateWithoutClone3(t *testing.T) {
	e := newOCI(t)
	dir := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", "echo ran in $(hostname)"}
		s.Hostname = "barco"
	})
	noClone3 := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}`
	r := testutil.Run(t, nil, filepath.Join(filepath.Dir(e.bin), "barco-seccomp"), "--allow-new-privs", "--profile", noClone3, "--",
		e.bin, "--root", e.root, "--debug", "run", "--bundle", dir, "noclone3")
	if r.Code != 0 || r.Stdout != "ran in barco\n" {
		t.Fatalf("run under a filter without clone3: status %d, stdout %q, stderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "no clone3 with CLONE_INTO_CGROUP: the child execs barco-mount") || !strings.Contains(r.Stderr, "barco-mount[1]") {
		t.Errorf("no fallback to barco-mount's binary in the debug log:\n%s", r.Stderr)
	}
}
