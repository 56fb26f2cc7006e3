package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/testutil"
)

// nsMode is how barco-ns makes the namespaces barco-mount runs in.
type nsMode struct {
	name  string
	flags []string
	root  int // the host uid of the container's root
}

var nsModes = []nsMode{
	{"root", []string{"-m", "-p", "-u", "-i"}, 0},
	{"userns", []string{"-U", "-m", "-p", "-u", "-i"}, 100000},
}

// mountRun runs `barco-ns FLAGS -- barco-mount ARGS...` and fails the test
// if the host's mount table differs afterwards.
func mountRun(t *testing.T, mode nsMode, args ...string) testutil.Result {
	t.Helper()
	testutil.RequireRoot(t)
	ns, mnt := testutil.Bin(t, "barco-ns"), testutil.Bin(t, "barco-mount")
	before := hostMounts(t)
	argv := append(append([]string{ns}, mode.flags...), "--", mnt)
	r := testutil.Run(t, nil, append(argv, args...)...)
	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return r
}

// hostMounts is the host's mount table, without the mounts other tests on
// this machine may make meanwhile under the temporary directory.
func hostMounts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], os.TempDir()+"/") && !strings.Contains(f[4], "TestMount") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func expectValues(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// hostRootDev is the major:minor of the host's root filesystem.
func hostRootDev(t *testing.T) string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/" {
			return f[2]
		}
	}
	t.Fatal("no / in /proc/self/mountinfo")
	return ""
}

// listFDs prints the shell's descriptors as "fds=0,1,2,". It forks
// nothing and opens no pipe; the descriptor the glob itself opened is
// closed again by the time the loop tests it.
const listFDs = `printf fds=; for f in /proc/$$/fd/*; do [ -L "$f" ] && printf %s, "${f##*/}"; done; echo`

const viewScript = `
echo root=$(ls / | tr '\n' ,)
marker=$1 rootdev=$2
test -e "$marker" && echo marker=visible || echo marker=absent
set -- /proc/[0-9]*; echo procs=$#
echo pid1=$(cat /proc/1/comm)
echo x > /dev/null && echo devnull=ok
echo urandom=$(head -c 1 /dev/urandom | wc -c)
echo zero=$(head -c 3 /dev/zero | wc -c)
` + listFDs + `
echo stagefds=${BARCO_STAGE_FDS-unset}
echo devdir=$(ls /dev | tr '\n' ,)
for p in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts /proc/sched_debug /proc/latency_stats; do
	[ -e $p ] && echo "masked:$p=$(cat $p | wc -c)"
done
for d in /proc/acpi /proc/asound /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
	[ -e $d ] && echo "masked:$d=$(ls -A $d | wc -l)"
done
echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo procsys=writable || echo procsys=readonly
touch /proc/sysrq-trigger 2>/dev/null && echo sysrq=writable || echo sysrq=readonly
touch /sys/kernel/barco 2>/dev/null && echo sys=writable || echo sys=readonly
echo roots=$(awk '$5 == "/"' /proc/self/mountinfo | wc -l)
echo hostroot=$(awk -v dev="$rootdev" '$3 == dev && $4 == "/"' /proc/self/mountinfo | wc -l)
grep -q "^proc " /proc/mounts && echo proc=mounted
echo pts=$(awk '$2 == "/dev/pts" {print $3}' /proc/mounts)
echo shm=$(stat -c %a /dev/shm)
`

func TestMountContainerView(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			rootfs := testutil.Rootfs(t)
			marker := filepath.Join(testutil.SearchableTempDir(t), "host-only")
			os.WriteFile(marker, []byte("secret"), 0o644)
			r := mountRun(t, mode, "--rootfs", rootfs, "--", "/bin/sh", "-c", viewScript, "sh", marker, hostRootDev(t))
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			got := testutil.KeyValues(r.Stdout, "=")
			ents, _ := os.ReadDir(rootfs)
			var names []string
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), ".") {
					names = append(names, e.Name())
				}
			}
			expectValues(t, got, map[string]string{
				"root":     strings.Join(names, ",") + ",",
				"marker":   "absent",
				"procs":    "1",
				"pid1":     "sh",
				"devnull":  "ok",
				"urandom":  "1",
				"zero":     "3",
				"fds":      "0,1,2,",
				"stagefds": "unset",
				"devdir":   "fd,full,mqueue,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,urandom,zero,",
				"procsys":  "readonly",
				"sys":      "readonly",
				"roots":    "1",
				"hostroot": "0",
				"proc":     "mounted",
				"pts":      "devpts",
				"shm":      "1777",
			})
			masked := 0
			for k, v := range got {
				if strings.HasPrefix(k, "masked:") {
					masked++
					if v != "0" {
						t.Errorf("%s reads %s bytes or entries, want 0", strings.TrimPrefix(k, "masked:"), v)
					}
				}
			}
			if masked < 3 {
				t.Errorf("only %d masked paths checked (want /proc/keys, /proc/timer_list, /sys/firmware at least):\n%s", masked, r.Stdout)
			}
			if _, err := os.Stat("/proc/sysrq-trigger"); err == nil && got["sysrq"] != "readonly" {
				t.Errorf("/proc/sysrq-trigger is %s", got["sysrq"])
			}
		})
	}
}

func TestMountVolumesAndTmpfs(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			rootfs := testutil.CopyRootfs(t, mode.root)
			roDir, rwDir := testutil.SearchableTempDir(t), testutil.SearchableTempDir(t)
			os.WriteFile(filepath.Join(roDir, "hello"), []byte("hi\n"), 0o644)
			os.Chmod(roDir, 0o777)
			os.Chown(rwDir, 100000, 100000)
			r := mountRun(t, mode, "--rootfs", rootfs, "-v", roDir+":/data/ro:ro", "--volume", rwDir+":/data/rw",
				"--tmpfs", "/scratch:size=1m,mode=1777", "--", "/bin/sh", "-c", `
echo ro=$(cat /data/ro/hello)
touch /data/ro/new 2>/dev/null && echo rowrite=allowed || echo rowrite=refused
echo made-inside > /data/rw/out && echo rwwrite=allowed
echo scratch=$(stat -c %a /scratch)
echo scratchsize=$(df -k /scratch | awk 'NR == 2 {print $2}')
`)
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			expectValues(t, testutil.KeyValues(r.Stdout, "="), map[string]string{
				"ro": "hi", "rowrite": "refused", "rwwrite": "allowed", "scratch": "1777", "scratchsize": "1024",
			})
			if data, err := os.ReadFile(filepath.Join(rwDir, "out")); err != nil || string(data) != "made-inside\n" {
				t.Errorf("rw volume: host sees %q, %v", data, err)
			}
			if _, err := os.Stat(filepath.Join(roDir, "new")); err == nil {
				t.Error("ro volume was written")
			}
			if st, err := os.Stat(filepath.Join(rootfs, "data", "rw")); err != nil || !st.IsDir() {
				t.Errorf("volume destination not created in the rootfs: %v", err)
			}
		})
	}
}

// --device makes a node in /dev; in a user namespace, where mknod is not
// allowed, the host's node at the same path is bound, and only if it is
// that device.
func TestMountDevices(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			rootfs := testutil.CopyRootfs(t, mode.root)
			r := mountRun(t, mode, "--rootfs", rootfs, "--device", "/dev/net/tun:c:10:200:0600", "--device", "/dev/null:c:1:3:0600",
				"--", "/bin/sh", "-c", `ls -l /dev/net/tun /dev/null | awk '{print $1, $5, $6, $NF}'`)
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			want := "crw------- 10, 200 /dev/net/tun\ncrw------- 1, 3 /dev/null\n"
			if mode.root != 0 {
				// The host's nodes, with the host's modes.
				want = "crw------- 10, 200 /dev/net/tun\ncrw-rw-rw- 1, 3 /dev/null\n"
			}
			if r.Stdout != want {
				t.Errorf("devices:\n%s\nwant\n%s", r.Stdout, want)
			}
			r = mountRun(t, mode, "--rootfs", rootfs, "--device", "/dev/test1:c:10:666", "--", "/bin/sh", "-c", "ls -l /dev/test1")
			if mode.root != 0 {
				if r.Code != 125 || !strings.Contains(r.Stderr, "in a user namespace a device can only be the host's") {
					t.Errorf("a device the host lacks, in a user namespace: status %d, stderr %q", r.Code, r.Stderr)
				}
			} else if r.Code != 0 || !strings.Contains(r.Stdout, "10, 666") {
				t.Errorf("mknod 10:666: status %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}

// --tmpfs DST:tmpcopyup fills the tmpfs with what the rootfs has at DST,
// owners, modes and links included; the rootfs is not written.
func TestMountTmpfsCopyUp(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			rootfs := testutil.CopyRootfs(t, mode.root)
			etc := filepath.Join(rootfs, "etc")
			os.MkdirAll(filepath.Join(etc, "sub"), 0o750)
			os.Chown(filepath.Join(etc, "sub"), mode.root, mode.root)
			os.WriteFile(filepath.Join(etc, "sub", "f"), []byte("kept\n"), 0o640)
			os.Chown(filepath.Join(etc, "sub", "f"), mode.root+7, mode.root+8)
			os.Symlink("sub/f", filepath.Join(etc, "link"))
			r := mountRun(t, mode, "--rootfs", rootfs, "--read-only", "--tmpfs", "/etc:tmpcopyup", "--", "/bin/sh", "-c", `
cat /etc/link; stat -c '%a %u:%g' /etc/sub /etc/sub/f
echo new > /etc/new && echo written
df /etc | awk 'NR == 2 {print $1}'`)
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			if want := "kept\n750 0:0\n640 7:8\nwritten\ntmpfs\n"; r.Stdout != want {
				t.Errorf("output %q, want %q", r.Stdout, want)
			}
			if _, err := os.Stat(filepath.Join(etc, "new")); err == nil {
				t.Error("the write reached the rootfs")
			}
		})
	}
}

func TestMountReadOnlyAndWorkdir(t *testing.T) {
	r := mountRun(t, nsModes[0], "--rootfs", testutil.CopyRootfs(t, 0), "--read-only", "--tmpfs", "/tmp", "--workdir", "/etc",
		"--", "/bin/sh", "-c", `
echo pwd=$(pwd)
touch /new 2>/dev/null && echo root=writable || echo root=readonly
touch /tmp/new && echo tmp=writable
`)
	if r.Code != 0 {
		t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
	}
	expectValues(t, testutil.KeyValues(r.Stdout, "="), map[string]string{"pwd": "/etc", "root": "readonly", "tmp": "writable"})
}

// The original barco's demo mounts the host's root.
func TestMountHostRoot(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			r := mountRun(t, mode, "--rootfs", "/", "--", "/bin/sh", "-c",
				`test -d `+testutil.RepoRoot(t)+` && echo host=visible; set -- /proc/[0-9]*; echo procs=$#`)
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			expectValues(t, testutil.KeyValues(r.Stdout, "="), map[string]string{"host": "visible", "procs": "1"})
		})
	}
}

// A hostile rootfs whose proc, dev or volume target is a symlink to a host
// path must not make barco-mount mount or create anything outside it
// (runc's CVE-2019-16884, CVE-2019-19921, CVE-2025-31133 are of this kind).
func TestMountHostileRootfs(t *testing.T) {
	victim := testutil.SearchableTempDir(t)
	victimFile := filepath.Join(victim, "file")
	os.WriteFile(victimFile, []byte("host data\n"), 0o644)
	volume := testutil.SearchableTempDir(t)
	os.WriteFile(filepath.Join(volume, "payload"), []byte("payload\n"), 0o644)

	cases := []struct {
		name   string
		setup  func(rootfs string)
		args   []string
		status int
		stderr string
	}{
		{"proc symlink", func(r string) { os.Remove(r + "/proc"); os.Symlink(victim, r+"/proc") },
			nil, 125, "/proc"},
		{"proc relative symlink", func(r string) { os.Remove(r + "/proc"); os.Symlink("../../../../../.."+victim, r+"/proc") },
			nil, 125, "/proc"},
		{"dev symlink", func(r string) { os.Remove(r + "/dev"); os.Symlink(victim, r+"/dev") },
			nil, 125, "/dev"},
		{"sys symlink", func(r string) { os.Remove(r + "/sys"); os.Symlink(victim, r+"/sys") },
			nil, 125, "/sys"},
		{"dev/null symlink to a host file", func(r string) { os.Symlink(victimFile, r+"/dev/null") },
			[]string{"--no-dev"}, 125, "not the null device"},
		{"volume target symlink to a host path", func(r string) { os.Symlink(victim, r+"/data") },
			[]string{"-v", volume + ":/data"}, 125, "/data"},
		{"volume target symlink through /proc", func(r string) { os.Symlink("/proc/self/root"+victim, r+"/data") },
			[]string{"-v", volume + ":/data"}, 125, "/data"},
		{"volume target symlink inside", func(r string) { os.Symlink("/etc", r+"/data") },
			[]string{"-v", volume + ":/data"}, 0, ""},
	}
	for _, mode := range nsModes {
		for _, c := range cases {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) {
				rootfs := testutil.CopyRootfs(t, mode.root)
				c.setup(rootfs)
				args := append(append([]string{"--rootfs", rootfs}, c.args...), "--", "/bin/sh", "-c", "cat /data/payload /etc/payload")
				r := mountRun(t, mode, args...)
				if r.Code != c.status || !strings.Contains(r.Stderr, c.stderr) {
					t.Errorf("status %d, stderr %q; want %d and %q", r.Code, r.Stderr, c.status, c.stderr)
				}
				if c.status == 0 && r.Stdout != "payload\npayload\n" {
					t.Errorf("volume through an inner symlink: %q", r.Stdout)
				}
				ents, _ := os.ReadDir(victim)
				if data, _ := os.ReadFile(victimFile); len(ents) != 1 || string(data) != "host data\n" {
					t.Errorf("the host directory changed: %v, file %q", ents, data)
				}
				if _, err := os.Stat("/etc/payload"); err == nil {
					t.Error("the volume landed on the host's /etc")
				}
			})
		}
	}
}

func TestMountRefusesHostNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	before := hostMounts(t)
	r := testutil.Run(t, nil, testutil.Bin(t, "barco-mount"), "--rootfs", testutil.Rootfs(t), "--", "/bin/true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "refusing to change the mounts of the host's mount namespace") {
		t.Errorf("in the host's mount namespace: status %d, stderr %q", r.Code, r.Stderr)
	}
	if after := hostMounts(t); after != before {
		t.Errorf("the host's mount table changed:\n%s\n---\n%s", before, after)
	}
}

func TestMountErrors(t *testing.T) {
	file := filepath.Join(testutil.SearchableTempDir(t), "file")
	os.WriteFile(file, nil, 0o644)
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			// A rootfs without /proc, /dev and /sys: barco-mount makes them,
			// and must remove them again when the start fails.
			rootfs := testutil.CopyRootfs(t, mode.root)
			for _, d := range []string{"proc", "dev", "sys"} {
				os.Remove(filepath.Join(rootfs, d))
			}
			listing := func() string {
				out, _ := exec.Command("find", rootfs).Output()
				return string(out)
			}
			before := listing()
			cases := []struct {
				args   []string
				status int
				stderr string
			}{
				{[]string{"--rootfs", "/nonexistent", "--", "/bin/sh"}, 125, "rootfs /nonexistent: no such directory"},
				{[]string{"--rootfs", file, "--", "/bin/sh"}, 125, "rootfs " + file + ": not a directory"},
				{[]string{"--rootfs", rootfs, "-v", file + ":/new/dir", "--", "/no/such/program"}, 127, "/no/such/program"},
				{[]string{"--rootfs", rootfs, "--read-only", "--tmpfs", "/new/tmp", "--", "no-such-program"}, 127, "no-such-program"},
				{[]string{"--rootfs", rootfs, "-v", "/nonexistent:/data", "--", "/bin/sh"}, 125, "/nonexistent"},
				{[]string{"--rootfs", rootfs, "--workdir", "/nonexistent", "--", "/bin/sh"}, 125, "/nonexistent"},
				{[]string{"--rootfs", rootfs, "-v", "/tmp:data", "--", "/bin/sh"}, 125, "not absolute"},
				{[]string{"--rootfs", rootfs, "--tmpfs", "/t:size=lots", "--", "/bin/sh"}, 125, "size=lots"},
				{[]string{"--rootfs", rootfs, "--bogus", "--", "/bin/sh"}, 125, "--bogus"},
				{[]string{"--", "/bin/sh"}, 125, "--rootfs"},
				{[]string{"--rootfs", rootfs, "--console-socket", "1", "--", "/bin/sh"}, 125, "descriptor 1 is not an open socket"},
				{[]string{"--rootfs", rootfs, "--console-socket", "77", "--", "/bin/sh"}, 125, "descriptor 77 is not an open socket"},
				{[]string{"--rootfs", rootfs, "--console-socket", "/nonexistent/sock", "--", "/bin/sh"}, 125, "connect to console socket /nonexistent/sock"},
				{[]string{"--rootfs", rootfs, "--no-dev", "--console-socket", "/nonexistent/sock", "--", "/bin/sh"}, 125, "--no-dev"},
				{[]string{"--rootfs", rootfs, "--device", "/etc/x:c:1:3", "--", "/bin/sh"}, 125, "not under /dev"},
				{[]string{"--rootfs", rootfs, "--device", "/dev/x:z:1:3", "--", "/bin/sh"}, 125, "want c, b, u or p"},
				{[]string{"--rootfs", rootfs, "--no-dev", "--device", "/dev/x:c:1:3", "--", "/bin/sh"}, 125, "--no-dev"},
			}
			for _, c := range cases {
				r := mountRun(t, mode, c.args...)
				lines := testutil.Lines(r.Stderr)
				if r.Code != c.status || len(lines) != 1 || !strings.HasPrefix(lines[0], "barco-mount: ") || !strings.Contains(lines[0], c.stderr) {
					t.Errorf("%q: status %d, stderr %q; want %d and one line with %q", c.args, r.Code, r.Stderr, c.status, c.stderr)
				}
				if after := listing(); after != before {
					t.Errorf("%q left entries in the rootfs:\n%s", c.args, after)
					before = after
				}
			}
		})
	}
}

// In a user namespace, the container's root is host uid 100000: a rootfs
// only host root can search fails, with a hint.
func TestMountUserNSRootfsNotSearchable(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 0)
	os.Chmod(rootfs, 0o700)
	r := mountRun(t, nsModes[1], "--rootfs", rootfs, "--", "/bin/true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "uid 100000") {
		t.Errorf("status %d, stderr %q; want 125 and a hint naming uid 100000", r.Code, r.Stderr)
	}
}

// A stage named after barco-mount runs from a file carried across
// pivot_root, which the container cannot write; the container's program
// gets neither the copies nor the variable that lists them.
func TestMountCarriesNextStage(t *testing.T) {
	for _, mode := range nsModes {
		t.Run(mode.name, func(t *testing.T) {
			r := mountRun(t, mode, "--rootfs", testutil.Rootfs(t), "--", "barco-ns", "-u", "--hostname", "inner", "--",
				"/bin/sh", "-c", `
echo hostname=$(hostname)
`+listFDs+`
echo stagefds=${BARCO_STAGE_FDS-unset}
echo x >> /proc/1/exe 2>/dev/null && echo stagewrite=allowed || echo stagewrite=refused
`)
			if r.Code != 0 {
				t.Fatalf("status %d, stderr %s", r.Code, r.Stderr)
			}
			expectValues(t, testutil.KeyValues(r.Stdout, "="), map[string]string{
				"hostname": "inner", "fds": "0,1,2,", "stagefds": "unset", "stagewrite": "refused",
			})
		})
	}
}

// Descriptors barco-mount inherits, such as one of a host directory, do not
// reach the program (the way out of CVE-2024-21626).
func TestMountProgramGetsOnlyStdFDs(t *testing.T) {
	testutil.RequireRoot(t)
	hostDir, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "-p", "-f", "--propagation", "private",
		testutil.Bin(t, "barco-mount"), "--rootfs", testutil.Rootfs(t), "--", "/bin/sh", "-c", listFDs)
	cmd.ExtraFiles = []*os.File{hostDir}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if out.String() != "fds=0,1,2,\n" {
		t.Errorf("the program's descriptors: %q, want 0,1,2 only", out.String())
	}
}

// When the start fails, Undo removes what barco-mount made in the rootfs,
// resolving each path in the container, never through a magic link. Here
// a volume mounted after a mount point was made (the data of an earlier
// container, say) puts, on that mount point's path, a symlink to
// /proc/self/fd/N: N the descriptor of the host's root, open while the
// filesystem is built. Undo must not remove the host's file it leads to,
// whether the start fails before pivot_root or after it; and it leaves the
// rootfs as it found it.
func TestMountUndoStaysInTheRootfs(t *testing.T) {
	const entries, firstFD = 40, 30
	for _, mode := range nsModes {
		for _, fail := range []struct{ name, arg, stderr string }{
			{"build", "-v", "dangling symbolic link"},
			{"workdir", "--workdir", "/nonexistent"},
		} {
			t.Run(mode.name+"/"+fail.name, func(t *testing.T) {
				victim := testutil.SearchableTempDir(t)
				os.Chown(victim, mode.root, mode.root)
				victimFile := filepath.Join(victim, "e")
				os.WriteFile(victimFile, []byte("host data\n"), 0o644)
				os.Chown(victimFile, mode.root, mode.root)
				volume := testutil.SearchableTempDir(t)
				rootfs := testutil.CopyRootfs(t, mode.root)
				var args []string
				for k := 0; k < entries; k++ {
					s := fmt.Sprintf("s%d", k)
					os.MkdirAll(filepath.Join(rootfs, "A", s), 0o755)
					os.Lchown(filepath.Join(rootfs, "A"), mode.root, mode.root)
					os.Lchown(filepath.Join(rootfs, "A", s), mode.root, mode.root)
					os.Symlink("/A/"+s, filepath.Join(rootfs, fmt.Sprintf("L%d", k)))
					os.Symlink(fmt.Sprintf("/proc/self/fd/%d%s", firstFD+k, victim), filepath.Join(volume, s))
					args = append(args, "--tmpfs", fmt.Sprintf("/L%d/e", k))
				}
				os.Symlink("/nowhere", filepath.Join(rootfs, "dangling"))
				listing := func() string {
					out, _ := exec.Command("find", rootfs).Output()
					return string(out)
				}
				before := listing()
				args = append(args, "-v", volume+":/A")
				if fail.name == "build" {
					args = append(args, "-v", volume+":/dangling")
				} else {
					args = append(args, "--workdir", "/nonexistent")
				}
				r := mountRun(t, mode, append(append([]string{"--rootfs", rootfs}, args...), "--", "/bin/true")...)
				if r.Code != 125 || !strings.Contains(r.Stderr, fail.stderr) {
					t.Errorf("status %d, stderr %q; want 125 and %q", r.Code, r.Stderr, fail.stderr)
				}
				if data, err := os.ReadFile(victimFile); string(data) != "host data\n" {
					t.Errorf("the host's file %s after the failed start: %q (%v)", victimFile, data, err)
				}
				if after := listing(); after != before {
					t.Errorf("the failed start left the rootfs changed:\n%s", after)
				}
			})
		}
	}
}
