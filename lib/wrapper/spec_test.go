package wrapper

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"barco/lib/chain"
)

func parseRun(t *testing.T, args ...string) *Spec {
	t.Helper()
	var s Spec
	var o chain.Options
	s.Declare(&o)
	rest, err := o.Parse(args)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	s.Program = rest
	return &s
}

func TestDefaultChain(t *testing.T) {
	s := parseRun(t, "--rootfs", "/srv/r", "--", "sh", "-c", "true")
	stages, err := s.Stages()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"barco-cgroup", "--pids", DefaultPidsLimit, "--devices", "default"},
		{"barco-ns", "-U", "-p", "-m", "-u", "-i", "-C", "-T", "-n", "--hostname", "barco", "--idmap", "/srv/r"},
		{"barco-mount", "--rootfs", "/srv/r", "--cgroupfs", "--overlay", "--hosts", "barco"},
		{"barco-caps", "--caps", "chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,sys_chroot,setfcap", "--bound", "net_raw", "--no-new-privs"},
		{"barco-seccomp"},
		{"sh", "-c", "true"},
	}
	if !reflect.DeepEqual(stages, want) {
		t.Errorf("chain\n%q\nwant\n%q", stages, want)
	}
}

func TestOptionsReachStages(t *testing.T) {
	s := parseRun(t, "--name", "web", "--rootfs", "/r", "--read-only", "-v", "/a:/b:ro", "--tmpfs", "/t",
		"-w", "/b", "-u", "nobody", "--group-add", "wheel", "--cap-add", "net_admin", "--cap-drop", "chown",
		"--security-opt", "seccomp=unconfined", "-m", "64M", "--memory-swap", "64M", "--cpus", "0.5",
		"--cpu-weight", "50", "--cpuset-cpus", "0", "--pids-limit", "0", "--net", "host",
		"--userns", "0:200000:65536", "--init", "prog")
	stages, _ := s.Stages()
	got := strings.Join(Argv(stages), " ")
	want := "barco-cgroup --name web --memory 64M --memory-swap 64M --cpus 0.5 --cpu-weight 50 --cpuset-cpus 0 --devices default -- " +
		"barco-ns -U -p -m -u -i -C -T --hostname web --uid-map 0:200000:65536 --gid-map 0:200000:65536 --init --idmap /r -- " +
		"barco-mount --rootfs /r --cgroupfs --read-only --volume /a:/b:ro --tmpfs /t --workdir /b --hosts web --resolv-conf /etc/resolv.conf -- " +
		"barco-caps --caps chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,sys_chroot,setfcap --bound net_raw --no-new-privs --user nobody --groups wheel --cap-add net_admin --cap-drop chown -- " +
		"barco-seccomp --profile unconfined -- prog"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if s := parseRun(t, "--no-userns", "x"); !strings.Contains(strings.Join(Argv(must(s.Stages())), " "), "barco-ns -p") {
		t.Error("--no-userns still asks for -U")
	}
}

func must(v [][]string, err error) [][]string {
	if err != nil {
		panic(err)
	}
	return v
}

func TestEnviron(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "env")
	os.WriteFile(f, []byte("# comment\nA=1\n\nB=2\nHOME=/home/x\n"), 0o644)
	s := parseRun(t, "--name", "box", "--env-file", f, "-e", "B=3", "-e", "FROMHOST", "-e", "MISSING", "x")
	host := map[string]string{"FROMHOST": "h", "TERM": "screen", "SECRET": "s"}
	env, err := s.Environ(func(k string) (string, bool) { v, ok := host[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=" + DefaultPath, "HOME=/home/x", "HOSTNAME=box", "TERM=screen", "A=1", "B=3", "FROMHOST=h"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env %q\nwant %q", env, want)
	}
	// The host's parent cgroup goes to barco-cgroup, which takes its
	// default from the chain's environment.
	host[chain.CgroupParentEnv] = "outer"
	if env, err := s.Environ(func(k string) (string, bool) { v, ok := host[k]; return v, ok }); err != nil || !slices.Contains(env, chain.CgroupParentEnv+"=outer") {
		t.Errorf("with %s=outer on the host: env %q, %v; want it passed on", chain.CgroupParentEnv, env, err)
	}
	if _, err := parseRun(t, "-e", "=x", "y").Environ(os.LookupEnv); err == nil {
		t.Error("-e =x accepted")
	}
	// The chain's own variables would reconfigure its stages.
	os.WriteFile(f, []byte("BARCO_PRESERVE_FDS=3\n"), 0o644)
	for _, args := range [][]string{{"-e", "BARCO_GOMAXPROCS=1", "y"}, {"-e", "BARCO_DEBUG", "y"}, {"--env-file", f, "y"}} {
		_, err := parseRun(t, args...).Environ(func(string) (string, bool) { return "1", true })
		if err == nil || !strings.Contains(err.Error(), "configures barco's stages") {
			t.Errorf("%q: %v; want it refused", args, err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"": "''", "abc": "abc", "a b": "'a b'", "it's": `'it'\''s'`, "/x:y=z,1": "/x:y=z,1", "$HOME": "'$HOME'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLegacy(t *testing.T) {
	s, err := ParseLegacy([]string{"-u", "0", "-m", "/", "-c", "/bin/sh", "-a", ".", "-v"})
	if err != nil {
		t.Fatal(err)
	}
	// -a is argv[0], as the original's execve(cmd, {arg, NULL}).
	if s.User != "0" || s.Rootfs != "/" || !reflect.DeepEqual(s.Program, []string{"/bin/sh"}) || s.Argv0 == nil || *s.Argv0 != "." || !s.Debug {
		t.Errorf("legacy spec %+v", s)
	}
	env, err := s.Environ(func(string) (string, bool) { return "", false })
	if err != nil || !slices.Contains(env, chain.Argv0Env+"=.") {
		t.Errorf("legacy -a . gives the environment %q (%v), want %s=.", env, err, chain.Argv0Env)
	}
	if s, _ := ParseLegacy([]string{"-m", "/", "-c", "/bin/sh"}); s == nil || s.Argv0 != nil {
		t.Errorf("without -a, argv[0] is not CMD's own: %+v", s)
	}
	if _, err := ParseLegacy([]string{"-u", "0", "-c", "sh"}); err == nil {
		t.Error("legacy without -m accepted")
	}
	if !IsLegacy([]string{"-u", "0"}) || IsLegacy([]string{"run"}) {
		t.Error("IsLegacy")
	}
}

// The root filesystem's modes: an idmapped overlay by default; the image
// is written only with --no-overlay, and then never through an idmap.
func TestRootfsModes(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		ns, mount  string
		notInChain string
	}{
		{nil, "--idmap /r", "--rootfs /r --cgroupfs --overlay", ""},
		{[]string{"--read-only"}, "--idmap /r", "--rootfs /r --cgroupfs --read-only", "--overlay"},
		{[]string{"--persist", "/p"}, "--idmap /r", "--rootfs /r --cgroupfs --persist /p", "--overlay"},
		{[]string{"--no-idmap"}, "", "--rootfs /r --cgroupfs --overlay", "--idmap"},
		{[]string{"--no-overlay"}, "", "--rootfs /r", "--idmap"},
		{[]string{"--no-userns"}, "", "--rootfs /r --cgroupfs --overlay", "--idmap"},
	} {
		s := parseRun(t, append(append([]string{"--rootfs", "/r"}, tc.args...), "prog")...)
		stages := must(s.Stages())
		ns, mnt, all := strings.Join(stages[1], " "), strings.Join(stages[2], " "), strings.Join(Argv(stages), " ")
		if !strings.Contains(ns, tc.ns) || !strings.Contains(mnt, tc.mount) || (tc.notInChain != "" && strings.Contains(all, tc.notInChain)) {
			t.Errorf("%q: barco-ns %q, barco-mount %q", tc.args, ns, mnt)
		}
	}
	for _, bad := range [][]string{{"--read-only", "--persist", "/p"}, {"--no-overlay", "--read-only"}} {
		if err := parseRun(t, append(bad, "prog")...).Validate(); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// Every option is checked as it is parsed, by the stage's own parser,
// and the error names what the user typed.
func TestBadOptionsNameWhatWasTyped(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-v", "/etc"}, `option -v: "/etc": want SRC:DST[:ro]`},
		{[]string{"--volume", "/a:b"}, `option --volume: "/a:b": destination "b" is not absolute`},
		{[]string{"--memory", "1"}, `option --memory: "1": below the minimum memory limit, 6M`},
		{[]string{"-m", "-1"}, `option -m: not a size in bytes: "-1"`},
		{[]string{"--name", "a\nb"}, `option --name: "a\nb": not a name`},
		{[]string{"--name", strings.Repeat("x", 300)}, `option --name: "xxx`},
		{[]string{"--hostname", "a b"}, `option --hostname: "a b": not a hostname`},
		{[]string{"--tmpfs", "/t:bogus"}, `option --tmpfs: "/t:bogus": bad option "bogus"`},
		{[]string{"--cap-add", "foo"}, `option --cap-add: unknown capability "foo"`},
		{[]string{"--userns", "1:2"}, `option --userns: id map "1:2"`},
		{[]string{"--pids-limit", "x"}, `option --pids-limit: not a number of tasks: "x"`},
		{[]string{"--cpus", "0"}, `option --cpus: not a number of CPUs: "0"`},
		{[]string{"--seccomp", "/no/such/profile.json"}, `option --seccomp: open /no/such/profile.json: no such file or directory`},
		{[]string{"-w", "rel"}, `option -w: "rel": not an absolute path`},
	} {
		var s Spec
		var o chain.Options
		s.Declare(&o)
		_, err := o.Parse(append(c.args, "prog"))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line starting %q", c.args, err, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", strings.Repeat("x", 70)}, "--name " + strings.Repeat("x", 70) + ": not a hostname (1 to 64 characters), and it is the hostname too"},
		{[]string{"--preserve-fds", "100"}, "--preserve-fds 100: descriptor "},
		{[]string{"--memory-swap", "1G"}, "--memory-swap 1G: needs --memory"},
	} {
		s := parseRun(t, append(c.args, "prog")...)
		if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: Validate: %v, want %q", c.args, err, c.want)
		}
	}
	if err := parseRun(t, "--name", strings.Repeat("x", 70), "--hostname", "x", "prog").Validate(); err != nil {
		t.Errorf("a long name with its own --hostname: %v", err)
	}
}

// A host profile reaches barco-seccomp as its JSON: barco-seccomp runs after
// pivot_root, where the host's file is out of reach.
func TestSeccompFileIsPassedAsJSON(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(f, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	s := parseRun(t, "--security-opt", "seccomp="+f, "prog")
	stages, err := s.Stages()
	if err != nil {
		t.Fatal(err)
	}
	if got := stages[4]; !reflect.DeepEqual(got, []string{"barco-seccomp", "--profile", `{"defaultAction":"SCMP_ACT_ALLOW"}`}) {
		t.Errorf("barco-seccomp stage %q", got)
	}
	os.WriteFile(f, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "bogus": 1}`), 0o644)
	var o chain.Options
	(&Spec{}).Declare(&o)
	if _, err := o.Parse([]string{"--seccomp", f, "prog"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("a profile with an unknown field: %v", err)
	}
}

// Volumes and tmpfs mounts reach barco-mount in the order given: a volume
// on a path below a tmpfs must come after it.
func TestMountsKeepTheirOrder(t *testing.T) {
	s := parseRun(t, "--tmpfs", "/run", "-v", "/a:/run/a", "--tmpfs", "/tmp", "prog")
	got := strings.Join(must(s.Stages())[2], " ")
	if !strings.Contains(got, "--tmpfs /run --volume /a:/run/a --tmpfs /tmp") {
		t.Errorf("barco-mount %q: the mounts out of their order", got)
	}
}
