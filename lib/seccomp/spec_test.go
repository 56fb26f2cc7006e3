package seccomp

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func rulesFor(f *Filter, name string) []string {
	var out []string
	for _, r := range f.Rules {
		if r.Syscall == name {
			out = append(out, r.String())
		}
	}
	return out
}

func TestResolveDefaultByCapabilities(t *testing.T) {
	plain := mustResolve(t, DefaultProfile(), amd64Env())
	admin := mustResolve(t, DefaultProfile(), amd64Env("CAP_SYS_ADMIN"))
	if got := rulesFor(plain, "mount"); len(got) != 0 {
		t.Errorf("without CAP_SYS_ADMIN, mount rules %q; want none", got)
	}
	if got := rulesFor(admin, "mount"); !slices.Equal(got, []string{"mount allow"}) {
		t.Errorf("with CAP_SYS_ADMIN, mount rules %q", got)
	}
	if got := rulesFor(plain, "clone"); !slices.Equal(got, []string{"clone allow if arg0&0x7e020000 == 0x0"}) {
		t.Errorf("without CAP_SYS_ADMIN, clone rules %q", got)
	}
	if got := rulesFor(admin, "clone"); !slices.Equal(got, []string{"clone allow"}) {
		t.Errorf("with CAP_SYS_ADMIN, clone rules %q", got)
	}
	if got := rulesFor(plain, "clone3"); !slices.Equal(got, []string{"clone3 errno ENOSYS"}) {
		t.Errorf("without CAP_SYS_ADMIN, clone3 rules %q", got)
	}
	if !slices.Equal(plain.Arches, []string{"amd64", "x86", "x32"}) {
		t.Errorf("arches %q, want amd64 x86 x32", plain.Arches)
	}
	if plain.Default != (Action{Kind: ActErrno, Ret: 1}) {
		t.Errorf("default %v, want errno EPERM", plain.Default)
	}
}

func TestResolveDefaultByArchitecture(t *testing.T) {
	env := amd64Env()
	env.Arch = "arm64"
	f := mustResolve(t, DefaultProfile(), env)
	if !slices.Equal(f.Arches, []string{"arm64", "arm"}) {
		t.Errorf("arches %q, want arm64 arm", f.Arches)
	}
	if len(rulesFor(f, "arch_prctl")) != 0 || len(rulesFor(f, "set_tls")) != 1 {
		t.Errorf("arm64 has arch_prctl %q, set_tls %q", rulesFor(f, "arch_prctl"), rulesFor(f, "set_tls"))
	}
}

func TestResolveCustom(t *testing.T) {
	p := parse(t, `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 38,
		"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
		"flags": ["SECCOMP_FILTER_FLAG_LOG"],
		"syscalls": [
			{"name": "read", "action": "SCMP_ACT_ALLOW"},
			{"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "same as default: dropped"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["umount2"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["new_thing"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
			{"names": ["old_thing"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.1"}},
			{"names": ["x86_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["x86"]}},
			{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
				{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}, {"index": 0, "value": 5, "op": "SCMP_CMP_LT"},
				{"index": 1, "value": 9, "op": "SCMP_CMP_NE"}]}
		]}`)
	f := mustResolve(t, p, amd64Env())
	var got []string
	for _, r := range f.Rules {
		got = append(got, r.String())
	}
	want := []string{
		"read allow",
		"umount2 allow",
		"kill allow if arg0 > 0x1",
		"kill allow if arg0 < 0x5",
		"kill allow if arg1 != 0x9",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f.Default.String() != "errno ENOSYS" || !f.Log || !slices.Equal(f.Arches, []string{"amd64", "x86"}) {
		t.Errorf("default %v, log %v, arches %q", f.Default, f.Log, f.Arches)
	}
	var b bytes.Buffer
	if err := f.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "default errno ENOSYS\narches amd64 x86\nflag SECCOMP_FILTER_FLAG_LOG\nread allow\n") {
		t.Errorf("text:\n%s", b.String())
	}
}

func parse(t *testing.T, s string) *Profile {
	t.Helper()
	p, err := ParseProfile([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveErrors(t *testing.T) {
	cases := []struct{ profile, want string }{
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_DENY"}`, `defaultAction: unknown action "SCMP_ACT_DENY"`},
		{`{"defaultAction": "SCMP_ACT_NOTIFY"}`, "SCMP_ACT_NOTIFY: not supported"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}`, "errnoRet with action SCMP_ACT_ALLOW"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}`, "errnoRet 5000: above 4095"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}`, `unknown architecture "SCMP_ARCH_VAX"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_Z80"]}]}`, `archMap: unknown architecture "SCMP_ARCH_Z80"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}`, `flag "SECCOMP_FILTER_FLAG_NOPE"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}`, "listenerPath: not supported"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_BLOCK"}]}`, `syscalls[0] (read): unknown action "SCMP_ACT_BLOCK"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}`, `unknown operator "SCMP_CMP_ALMOST"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "argument index 6"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}`, "both name and names"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`, "no syscall names"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["vax"]}}]}`, `includes: unknown architecture "vax"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["SYS_ADMIN"]}}]}`, `excludes: unknown capability "SYS_ADMIN"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [null]}`, "syscalls[0]: null"},
	}
	for _, c := range cases {
		p, err := ParseProfile([]byte(c.profile))
		if err == nil {
			_, err = Resolve(p, amd64Env())
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n  error %v\n  want %q", c.profile, err, c.want)
		}
	}
}

func TestParseProfileErrors(t *testing.T) {
	cases := []struct{ profile, want string }{
		{"", "empty profile"},
		{"{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n    {\"names\": [\"read\"] \"action\": \"SCMP_ACT_ERRNO\"}\n  ]\n}",
			"line 4 column 24: invalid character '\"' after object key:value pair"},
		{"{\n  \"defaultAction\": 7\n}", "line 2 column 20: cannot use number for defaultAction (want a string)"},
		{"{\n  \"syscalls\": [{\"names\": [\"read\"], \"args\": [{\"index\": -1}]}]\n}", "line 2 column 56: cannot use number -1 for syscalls.args.index (want a number from 0 up)"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "errnoret": 1}`, `unknown field "errnoret"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW"} {}`, "line 1 column 37: data after the profile"},
		{"{\n\"defaultAction\": \"SCMP_ACT_ALLOW\"", "line 2 column 33: unexpected end of profile"},
		{`{"syscalls": [{"names": ["read"], "includes": {"minKernel": "6"}}]}`, "invalid kernel version"},
	}
	for _, c := range cases {
		_, err := ParseProfile([]byte(c.profile))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n  error %v\n  want %q", c.profile, err, c.want)
		}
	}
}

// Docker's default profile as JSON (what `docker` users hand around)
// resolves exactly as the Go value does.
func TestDefaultProfileJSONRoundTrip(t *testing.T) {
	data, err := json.Marshal(DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	mustResolve(t, p, amd64Env()).WriteText(&a)
	mustResolve(t, DefaultProfile(), amd64Env()).WriteText(&b)
	if a.String() != b.String() {
		t.Errorf("JSON round trip changed the rules")
	}
}

func TestParseKernelRelease(t *testing.T) {
	for release, want := range map[string]KernelVersion{
		"6.1.0-18-amd64": {Kernel: 6, Major: 1},
		"3.12-1-amd64":   {Kernel: 3, Major: 12},
		"6.18.44-fc":     {Kernel: 6, Major: 18},
		"10.0":           {Kernel: 10, Major: 0},
	} {
		if got, err := ParseKernelRelease(release); err != nil || got != want {
			t.Errorf("ParseKernelRelease(%q) = %v, %v", release, got, err)
		}
	}
	for _, release := range []string{"linux", "6", "6.", "6.x", ".1", "-6.1", "6.99999999999999999999"} {
		if got, err := ParseKernelRelease(release); err == nil {
			t.Errorf("ParseKernelRelease(%q) = %v, no error", release, got)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	def, _ := json.Marshal(DefaultProfile())
	f.Add(def)
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
		"syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}],
		"includes": {"caps": ["CAP_KILL"], "minKernel": "4.8"}, "excludes": {"arches": ["x32"]}}]}`))
	f.Add([]byte("{\n\"defaultAction\": 1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		fl, err := Resolve(p, amd64Env())
		if err != nil {
			return
		}
		for _, r := range fl.Rules {
			if r.Syscall == "" || len(r.Args) > maxArgs {
				t.Errorf("bad rule %+v", r)
			}
			for _, a := range r.Args {
				if a.Index >= maxArgs {
					t.Errorf("bad argument index in %+v", r)
				}
			}
		}
		var b bytes.Buffer
		if err := fl.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		// The code generator may refuse a filter (too long) but never
		// lays out a broken program.
		prog, err := Compile(fl)
		if err != nil {
			if strings.Contains(err.Error(), "assembler") {
				t.Fatal(err)
			}
			return
		}
		if n := len(prog.Instructions); n == 0 || n > maxInstructions {
			t.Fatalf("program of %d instructions", n)
		}
	})
}
