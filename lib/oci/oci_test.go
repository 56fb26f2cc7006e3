package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/jsondecode"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestIsCommand(t *testing.T) {
	for args, want := range map[string]bool{
		"create --bundle b id":                   true,
		"--root /r --log-format=json create x":   true,
		"--log /l --log-format json delete -f x": true,
		"run -b . id":                            true,
		"run --bundle=. id":                      true,
		"run -- /bin/true":                       false,
		"run --name x -- sh":                     false,
		"chain -- true":                          false,
		"-u 0 -m / -c /bin/sh":                   false,
		"features":                               true,
	} {
		if got := IsCommand(strings.Fields(args)); got != want {
			t.Errorf("IsCommand(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"a", "0f3c9d2e-1b2c", "web.1", "x_y+z"} {
		if err := checkID(ok); err != nil {
			t.Errorf("checkID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "-x", "_x", "cgroups", "a b", "é", strings.Repeat("x", 1025)} {
		if checkID(bad) == nil {
			t.Errorf("checkID(%q) accepted it", bad)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"9": unix.SIGKILL, "KILL": unix.SIGKILL, "SIGTERM": unix.SIGTERM, "usr1": unix.SIGUSR1} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "65", "NOPE", ""} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) accepted it", bad)
		}
	}
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// The engines' device rules: deny all, then some allowed, in their order;
// the defaults follow, whatever the config allows.
func TestDeviceRules(t *testing.T) {
	defaults := cgroup.DefaultDevices
	rule := func(s string) cgroup.DeviceRule {
		r, err := cgroup.ParseDeviceRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dev := func(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: i64(major), Minor: i64(minor), Access: access}
	}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  []cgroup.DeviceRule
	}{
		{"none: the defaults", nil, defaults},
		{"docker's: a deny of what was never allowed", []specs.LinuxDeviceCgroup{denyAll,
			dev(true, "c", 10, 200, "rwm"), dev(false, "c", 10, 229, "rwm")},
			append([]cgroup.DeviceRule{rule("c 10:200 rwm")}, defaults...)},
		{"in the order given", []specs.LinuxDeviceCgroup{denyAll,
			dev(true, "c", 10, 229, "rwm"), dev(true, "b", 8, 20, "rw"), dev(true, "b", 10, 200, "r")},
			append([]cgroup.DeviceRule{rule("c 10:229 rwm"), rule("b 8:20 rw"), rule("b 10:200 r")}, defaults...)},
		{"a deny takes back an allow", []specs.LinuxDeviceCgroup{denyAll,
			dev(true, "c", 10, 229, "rwm"), dev(true, "b", 8, 20, "rw"), dev(false, "c", 10, 229, "w")},
			append([]cgroup.DeviceRule{rule("c 10:229 rm"), rule("b 8:20 rw")}, defaults...)},
		{"what comes before the last deny-all is gone", []specs.LinuxDeviceCgroup{
			dev(true, "c", 10, 229, "rwm"), denyAll, dev(true, "b", 8, 20, "rw")},
			append([]cgroup.DeviceRule{rule("b 8:20 rw")}, defaults...)},
		{"podman --privileged: allow all", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil},
	} {
		got, err := deviceRules(c.rules)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: deviceRules = %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range [][]specs.LinuxDeviceCgroup{
		{dev(false, "c", 1, 3, "rwm")},
		{denyAll, {Allow: true, Type: "c", Access: "rwm"}, dev(false, "c", 1, 3, "rwm")},
	} {
		if got, err := deviceRules(bad); err == nil {
			t.Errorf("deviceRules(%v) = %v, want an error", bad, got)
		}
	}
}

// Zeros mean unset, as Docker writes them.
func TestLimitsZerosAreUnset(t *testing.T) {
	var l cgroup.Limits
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(0)},
		CPU:     &specs.LinuxCPU{Shares: u64(0), Quota: i64(50000), Period: u64(100000)},
		Pids:    &specs.LinuxPids{Limit: 0},
		BlockIO: &specs.LinuxBlockIO{Weight: new(uint16)},
	}
	if err := limits(r, &l); err != nil {
		t.Fatal(err)
	}
	if l.Memory != 64<<20 || l.MemorySwap != 128<<20 || l.CPUQuota != 50000 || l.CPUWeight != 0 || l.Pids != 0 {
		t.Errorf("limits %+v", l)
	}
	if got := strings.Join(l.Args(), " "); got != "--memory 67108864 --memory-swap 134217728 --cpu-quota 50000 --cpu-period 100000 --devices default" {
		t.Errorf("barco-cgroup options %q", got)
	}
	if err := limits(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, &l); err == nil {
		t.Error("hugepage limits were accepted")
	}
}

// A config becomes the standard chain, with the stages' own options.
func TestTranslate(t *testing.T) {
	s := DefaultSpec()
	s.Process.Args = []string{"/bin/echo", "hi"}
	s.Process.User = specs.User{UID: 10, GID: 10, AdditionalGids: []uint32{5}}
	s.Process.Cwd = "/test"
	s.Linux.CgroupsPath = "/parent/ctr"
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1000}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1000}}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/etc/x", Type: "bind", Source: "/etc", Options: []string{"bind", "nosuid", "nodev", "noexec", "rshared"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m", "mode=1777"}})
	ch, err := translate(s, "/b", "ctr", "/state/pid")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(chain.JoinStages(ch.stages), " ")
	for _, want := range []string{
		"barco-cgroup --exec --parent /parent --name ctr --devices default --",
		"barco-ns --detach --pid-file /state/pid -p -n -i -u -m -C -U --uid-map 0:1000:1000 --gid-map 0:1000:1000 --hostname barco --",
		"barco-mount --rootfs /b/rootfs --read-only --cgroupfs --volume /srv:/data:ro --volume /etc:/etc/x:nosuid,nodev,noexec,norbind,rshared --tmpfs /tmp:size=1m,mode=1777,exec --workdir /test --mask",
		"--volume /etc:/etc/x:nosuid,nodev,noexec,norbind,rshared",
		"barco-caps --caps audit_write,kill,net_bind_service --permitted audit_write,kill,net_bind_service --effective audit_write,kill,net_bind_service --inheritable none --ambient none --user 10:10 --groups 5 --no-new-privs --",
		"barco-seccomp --profile unconfined -- /bin/echo hi",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("chain lacks %q:\n%s", want, got)
		}
	}
	if ch.cgroup.Parent != "/parent" || ch.cgroup.Name != "ctr" {
		t.Errorf("cgroup %s/%s", ch.cgroup.Parent, ch.cgroup.Name)
	}
}

// A seccomp profile goes to barco-seccomp as its JSON; without
// no_new_privs the filter is loaded before barco-caps drops CAP_SYS_ADMIN.
func TestTranslateSeccomp(t *testing.T) {
	s := DefaultSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}}}
	ch, err := translate(s, "/b", "x", "/p")
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.stages[4]; got[0] != "barco-seccomp" || got[1] != "--profile" || !strings.HasPrefix(got[2], `{"defaultAction":"SCMP_ACT_ERRNO"`) {
		t.Errorf("seccomp stage %q", got)
	}
	s.Process.NoNewPrivileges = false
	ch, _ = translate(s, "/b", "x", "/p")
	if ch.stages[3][0] != "barco-seccomp" || ch.stages[4][0] != "barco-caps" {
		t.Errorf("without no_new_privs: stages %q, want barco-seccomp before barco-caps", ch.stages[3:5])
	}
}

// What the stages cannot do yet is refused, never silently dropped.
func TestTranslateRefusals(t *testing.T) {
	for name, edit := range map[string]func(*specs.Spec){
		"rlimit unknown": func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_TEST", Hard: 1, Soft: 1}}
		},
		"seccomp notify": func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActNotify} },
		"mount ns path":  func(s *specs.Spec) { s.Linux.Namespaces[4].Path = "/proc/1/ns/mnt" },
		"capability":     func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_TEST"} },
		"host sysctl":    func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} },
		"systemd path":   func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:barco:x" },
		"mount option": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"uid=5"}})
		},
		"user ns path": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
		},
	} {
		s := DefaultSpec()
		edit(s)
		if _, err := translate(s, "/b", "x", "/p"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStateRoundTripAndStatus(t *testing.T) {
	root := t.TempDir()
	c, err := newContainer(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	st := &State{State: specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: os.Getpid(),
		Bundle: "rel/bundle", Annotations: map[string]string{"a": "b"}}, InitStart: startTime(os.Getpid()), Config: json.RawMessage(`{"ociVersion": "1.2.0"}`)}
	if err := c.save(st); err != nil {
		t.Fatal(err)
	}
	if _, err := newContainer(root, "c1"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second create of c1: %v", err)
	}
	c.close()
	c, err = openContainer(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// No gate: a live init is running; with the gate it is created.
	got, err := c.load()
	if err != nil || got.Status != specs.StateRunning || got.Bundle != "rel/bundle" || got.Annotations["a"] != "b" {
		t.Errorf("load: %+v, %v", got, err)
	}
	os.WriteFile(c.path(fifoName), nil, 0o600)
	if got, _ := c.load(); got.Status != specs.StateCreated {
		t.Errorf("with the gate: %s, want created", got.Status)
	}
	// A pid whose start time differs is not the init.
	st.InitStart++
	c.save(st)
	if got, _ := c.load(); got.Status != specs.StateStopped {
		t.Errorf("another process on the init's pid: %s, want stopped", got.Status)
	}
	if ids, _ := listIDs(root); !reflect.DeepEqual(ids, []string{"c1"}) {
		t.Errorf("listIDs = %q", ids)
	}
	if _, err := openContainer(root, "nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("open of an unknown id: %v", err)
	}
}

func TestDirsToRemove(t *testing.T) {
	base := t.TempDir()
	a := filepath.Join(base, "p", "a")
	b := filepath.Join(base, "p", "b")
	got := dirsToRemove([]string{a, b}, "barco")
	want := []string{a, b, filepath.Join(base, "p")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dirsToRemove = %q, want %q", got, want)
	}
	// barco's own parent, there already, is removed too (when empty); any
	// other existing parent is not.
	own := filepath.Join(base, "barco")
	other := filepath.Join(base, "other")
	for _, d := range []string{own, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got = dirsToRemove([]string{filepath.Join(own, "c"), filepath.Join(other, "c")}, "barco")
	want = []string{filepath.Join(own, "c"), filepath.Join(other, "c"), own}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dirsToRemove with existing parents = %q, want %q", got, want)
	}
}

func TestLoadConfigVersion(t *testing.T) {
	dir := t.TempDir()
	for v, ok := range map[string]bool{"1.0.2-dev": true, "1.2.1": true, "1.10.0-rc.1+x": false, "1.0.2-rc.1-a": true,
		"invalid": false, "2.0.0": false, "1.0": false, "1..0": false, "1.0.": false, "1.0.2-": false, "1.0.2 ": false, "": false} {
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"`+v+`","process":{"args":["x"],"cwd":"/"},"root":{"path":"r"},"linux":{}}`), 0o644)
		_, _, err := loadConfig(dir)
		if (err == nil) != ok {
			t.Errorf("ociVersion %q: %v", v, err)
		}
	}
}

// A create killed between its mkdir and its first save leaves a directory
// without a state: delete --force removes it, and the id is free again.
func TestDeleteForceRemovesAStatelessDirectory(t *testing.T) {
	g := &globals{root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(g.root, "half"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := remove(g, "half", false); err == nil {
		t.Error("delete without --force removed it")
	}
	if err := remove(g, "half", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(g.root, "half")); err == nil {
		t.Error("the directory is still there")
	}
}

// A /dev/shm of another size than barco-mount's own is a tmpfs over it.
func TestShmSize(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want string
	}{
		{[]string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}, ""},
		{[]string{"nosuid", "noexec", "nodev", "mode=1777", "size=1g"}, "/dev/shm:noexec,mode=1777,size=1g"},
	} {
		s := DefaultSpec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: c.opts})
		argv, err := mountStage(s, "/bundle")
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for i, a := range argv {
			if a == "--tmpfs" {
				got = argv[i+1]
			}
		}
		if got != c.want {
			t.Errorf("%v: --tmpfs %q, want %q", c.opts, got, c.want)
		}
	}
}

// The state file decodes as encoding/json decodes it: jsondecode hands
// the config (a json.RawMessage) and the time to encoding/json.
func TestStateDecodesAsEncodingJSON(t *testing.T) {
	timeout := 5
	st := State{State: specs.State{Version: specs.Version, ID: "a", Status: specs.StateCreated, Pid: 42,
		Bundle: "/b", Annotations: map[string]string{"k": "v"}}, InitStart: 7, Created: time.Now().UTC(),
		Owner: "root", CgroupDirs: []string{"/sys/fs/cgroup/x"}, Rootfs: "rootfs",
		Hooks:  &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true", Args: []string{"true"}, Timeout: &timeout}}},
		Config: json.RawMessage(`{"ociVersion":"1.0.2","process":{"args":["sh"]}}`)}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var want, got State
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if err := jsondecode.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("encoding/json: %+v\njsondecode: %+v", want, got)
	}
	spec, err := got.Spec()
	if err != nil || spec.Process.Args[0] != "sh" {
		t.Fatalf("spec %+v, %v", spec, err)
	}
}

// encode writes what json.Marshal writes, byte for byte, for a config
// already compact (json.Marshal compacts it, encode does not).
func TestStateEncodesAsEncodingJSON(t *testing.T) {
	timeout := 5
	hostile := []string{"", "plain", "quote\" back\\slash", "ctl \x00\x01\b\f\n\r\t\x1f", "<html> & more",
		"bad \xff\xfe utf8", "line\u2028para\u2029", "é中😀", "\x7f"}
	for _, str := range hostile {
		for _, full := range []bool{false, true} {
			st := State{State: specs.State{Version: specs.Version, ID: str, Status: specs.StateCreated, Bundle: str},
				Created: time.Date(2026, 12, 6, 17, 0, 0, 123456789, time.UTC), Owner: str,
				Config: json.RawMessage(`{"ociVersion":"1.0.2","process":{"args":["sh"]}}`)}
			if full {
				st.Pid, st.InitStart, st.Rootfs = 42, 7, str
				st.Annotations = map[string]string{str: str, "b": "2", "a": "1"}
				st.CgroupDirs = []string{str, "/sys/fs/cgroup/x"}
				st.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: str, Args: []string{str}, Timeout: &timeout}}}
			}
			want, err := json.Marshal(&st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("encode:\n%s\njson.Marshal:\n%s", got, want)
			}
		}
	}
	// Every field of State is one encode writes: a field added to State
	// and not to encode would be lost at the first save.
	var fields []string
	for f := range reflect.TypeFor[State]().Fields() {
		fields = append(fields, f.Name)
	}
	if got := strings.Join(fields, ","); got != "State,InitStart,Created,Owner,CgroupDirs,Rootfs,Hooks,Config" {
		t.Fatalf("State's fields are %s: encode them in encode", got)
	}
}

// The fields of the embedded specs.State are encode's too: a field a new
// runtime-spec adds there would be lost at the first save.
func TestStateEncodesSpecsStateFields(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[specs.State]().Fields() {
		fields = append(fields, f.Name+":"+f.Tag.Get("json"))
	}
	want := "Version:ociVersion,ID:id,Status:status,Pid:pid,omitempty,Bundle:bundle,Annotations:annotations,omitempty"
	if got := strings.Join(fields, ","); got != want {
		t.Fatalf("specs.State's fields are %s: encode them in encode", got)
	}
}

// A config as create reads it (indented, a final newline, HTML's
// characters, U+2028, bytes not UTF-8, all of which json.Marshal would
// compact or escape) still makes a state file that is JSON and decodes to
// the same State.
func TestStateEncodesRawConfig(t *testing.T) {
	config := "\n {\n\t\"ociVersion\" : \"1.0.2\",\r\n \"hostname\": \"<a>&\u2028\xff\",\n \"process\": {\"args\": [ \"sh\" ]} }\n\n"
	if !json.Valid([]byte(config)) {
		t.Fatal("test config not valid")
	}
	st := State{State: specs.State{Version: specs.Version, ID: "a", Status: specs.StateCreated, Bundle: "/b"},
		Created: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Config: json.RawMessage(config)}
	got, err := st.encode()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	if want := strings.Trim(config, " \t\r\n"); string(back.Config) != want {
		t.Fatalf("config %q, want %q", back.Config, want)
	}
	back.Config = st.Config
	if !reflect.DeepEqual(back, st) {
		t.Fatalf("decoded %+v, want %+v", back, st)
	}
}
