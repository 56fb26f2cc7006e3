package oci

import (
	"barco/lib/cgroup"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The engines' exec process.json files, as they wrote them (see
// shared/oci): each translates to a chain of the same stages as create's.
func TestExecChainOfEngineProcess(t *testing.T) {
	containerd := `{"terminal":true,"user":{"uid":0,"gid":0,"additionalGids":[0]},"args":["sh"],"env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin","BARCO_DEBUG=1"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN","CAP_KILL"],"permitted":["CAP_CHOWN","CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true}`
	f := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(f, []byte(containerd), 0o644); err != nil {
		t.Fatal(err)
	}
	config := DefaultSpec()
	p, err := execProcess(config, execOptions{process: f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	joins := []string{"--join", "mnt=/proc/9/ns/mnt", "--join", "pid=/proc/9/ns/pid"}
	ch, err := execChain(config, p, joins, []string{"/sys/fs/cgroup/memory/x", "/sys/fs/cgroup/pids/x"}, "/run/p", true)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"barco-cgroup", "--join", "/sys/fs/cgroup/memory/x", "--join", "/sys/fs/cgroup/pids/x"},
		{"barco-ns", "--detach", "--pid-file", "/run/p", "--join", "mnt=/proc/9/ns/mnt", "--join", "pid=/proc/9/ns/pid",
			"--workdir", "/", "--ctty", "--rlimit", "RLIMIT_NOFILE=1024:1024"},
		{"barco-caps", "--caps", "chown,kill", "--permitted", "chown,kill", "--effective", "chown,kill", "--inheritable", "none",
			"--ambient", "none", "--user", "0:0", "--groups", "0", "--no-new-privs", "--umask", "0022"},
		{"barco-seccomp", "--profile", "unconfined"},
		{"sh"},
	}
	if !reflect.DeepEqual(ch.stages, want) {
		t.Errorf("stages:\n%q\nwant\n%q", ch.stages, want)
	}
	if !reflect.DeepEqual(ch.env, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Errorf("env %q: want the process's, without BARCO_ variables", ch.env)
	}

	// The container's seccomp filter, first without no_new_privs, and
	// docker's oomScoreAdj; no --detach: barco-ns waits.
	config.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	p.NoNewPrivileges = false
	zero := 0
	p.OOMScoreAdj = &zero
	p.Terminal = false
	// No cgroup to join (a rootless container in its caller's cgroup):
	// no barco-cgroup, which would make one.
	ch, err = execChain(config, p, nil, nil, "/run/p", false)
	if err != nil {
		t.Fatal(err)
	}
	if ch.stages[0][0] != "barco-ns" {
		t.Errorf("without cgroups to join: stages %q, want barco-ns first", ch.stages)
	}
	if ch.stages[1][0] != "barco-seccomp" || ch.stages[2][0] != "barco-caps" || !strings.HasPrefix(ch.stages[1][2], `{"defaultAction":"SCMP_ACT_ALLOW"`) {
		t.Errorf("without no_new_privs: %q, want the config's filter before barco-caps", ch.stages[1:3])
	}
	if ns := ch.stages[0]; slices.Contains(ns, "--detach") || slices.Contains(ns, "--ctty") || !slices.Contains(ns, "--oom-score-adj") {
		t.Errorf("barco-ns %q", ns)
	}
}

// Without --process, the container's process with runc's options applied.
func TestExecProcessFromOptions(t *testing.T) {
	config := DefaultSpec()
	o := execOptions{user: "1000:100", cwd: "/tmp", env: []string{"X=1"}, caps: []string{"CAP_SYS_ADMIN"}, groups: []string{"5", "6"}, noNewPrivs: true}
	p, err := execProcess(config, o, []string{"id", "-u"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Args, []string{"id", "-u"}) || p.User.UID != 1000 || p.User.GID != 100 || p.Cwd != "/tmp" ||
		!reflect.DeepEqual(p.User.AdditionalGids, []uint32{5, 6}) || p.Env[len(p.Env)-1] != "X=1" || !p.NoNewPrivileges {
		t.Errorf("process %+v", p)
	}
	if c := p.Capabilities; !slices.Contains(c.Bounding, "CAP_SYS_ADMIN") || !slices.Contains(c.Effective, "CAP_SYS_ADMIN") || slices.Contains(c.Ambient, "CAP_SYS_ADMIN") {
		t.Errorf("--cap: %+v", c)
	}
	if slices.Contains(config.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || config.Process.Args[0] != "sh" {
		t.Error("exec changed the container's own process")
	}
	for name, tc := range map[string]struct {
		o    execOptions
		args []string
	}{
		"no command":            {execOptions{}, nil},
		"bad user":              {execOptions{user: "root"}, []string{"id"}},
		"process and a command": {execOptions{process: "/p.json"}, []string{"id"}},
		"missing file":          {execOptions{process: "/nonexistent/p.json"}, nil},
	} {
		if _, err := execProcess(config, tc.o, tc.args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p, _ = execProcess(config, execOptions{}, []string{"true"})
	for name, edit := range map[string]func(*specs.Process){
		"apparmor":     func(p *specs.Process) { p.ApparmorProfile = "x" },
		"relative cwd": func(p *specs.Process) { p.Cwd = "tmp" },
		"capability":   func(p *specs.Process) { p.Capabilities.Bounding = []string{"CAP_TEST"} },
		"rlimit":       func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_TEST"}} },
	} {
		q := *p
		c := *p.Capabilities
		q.Capabilities = &c
		edit(&q)
		if _, err := execChain(config, &q, nil, nil, "/p", true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// update's resources: the engines' JSON with zeros meaning unset, and
// runc's options over it.
func TestUpdateResources(t *testing.T) {
	docker := `{"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}`
	r, err := updateResources(updateOptions{resources: "-"}, strings.NewReader(docker))
	if err != nil {
		t.Fatal(err)
	}
	l := limitsOf(t, r)
	if l.Memory != 100663296 || l.MemorySwap != 201326592 || l.CPUShares != 0 || l.CPUQuota != 0 {
		t.Errorf("docker's update: %+v", l)
	}
	o := updateOptions{set: map[string]string{"memory": "64M", "cpu-share": "512", "pids-limit": "10", "cpuset-cpus": "0"}}
	r, err = updateResources(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	l = limitsOf(t, r)
	if l.Memory != 64<<20 || l.CPUShares != 512 || l.Pids != 10 || l.CpusetCPUs != "0" {
		t.Errorf("options: %+v", l)
	}
	if _, err := updateResources(updateOptions{set: map[string]string{"memory": "lots"}}, nil); err == nil {
		t.Error("--memory lots accepted")
	}
	if _, err := updateResources(updateOptions{resources: "-"}, strings.NewReader("{")); err == nil {
		t.Error("bad JSON accepted")
	}
	data, _ := json.Marshal(r)
	if !strings.Contains(string(data), `"limit":67108864`) {
		t.Errorf("resources %s", data)
	}
}

func limitsOf(t *testing.T, r *specs.LinuxResources) cgroup.Limits {
	t.Helper()
	var l cgroup.Limits
	if err := limits(r, &l); err != nil {
		t.Fatal(err)
	}
	return l
}
