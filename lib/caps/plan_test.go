package caps

import (
	"fmt"
	"strings"
	"testing"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// fullRoot is root on a host whose bounding set lacks cap_sys_resource,
// as some hosts do.
var fullRoot = Caller{UID: 0, GID: 0,
	Permitted: Set(1<<41-1) &^ Of(cap.SYS_RESOURCE),
	Bounding:  Set(1<<41-1) &^ Of(cap.SYS_RESOURCE)}

func list(t *testing.T, s string) List {
	t.Helper()
	l, err := ParseList(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestResolveSets(t *testing.T) {
	a := testAccounts(t)
	none := Set(0)
	nbs := Of(cap.NET_BIND_SERVICE)
	all := fullRoot.Permitted
	cases := []struct {
		name               string
		spec               Spec
		bnd, prm, inh, amb Set
		uid, gid           int
	}{
		{"default", Spec{}, DockerDefault, DockerDefault, none, none, 0, 0},
		{"cap-add", Spec{Add: list(t, "sys_admin")}, DockerDefault | Of(cap.SYS_ADMIN), DockerDefault | Of(cap.SYS_ADMIN), none, none, 0, 0},
		{"cap-drop", Spec{Drop: list(t, "net_raw,mknod")}, DockerDefault &^ Of(cap.NET_RAW, cap.MKNOD), DockerDefault &^ Of(cap.NET_RAW, cap.MKNOD), none, none, 0, 0},
		{"drop all add one", Spec{Drop: list(t, "all"), Add: list(t, "kill")}, Of(cap.KILL), Of(cap.KILL), none, none, 0, 0},
		{"caps none", Spec{Caps: &List{}}, none, none, none, none, 0, 0},
		{"caps all minus", Spec{Caps: &List{All: true}, Drop: list(t, "sys_admin")}, all &^ Of(cap.SYS_ADMIN), all &^ Of(cap.SYS_ADMIN), none, none, 0, 0},
		{"root ambient", Spec{Ambient: list(t, "net_bind_service")}, DockerDefault, DockerDefault, nbs, nbs, 0, 0},
		{"nobody", Spec{User: "nobody"}, DockerDefault, none, none, none, 65534, 65534},
		{"nobody cap-add", Spec{User: "nobody", Add: list(t, "net_bind_service")}, DockerDefault, nbs, nbs, nbs, 65534, 65534},
		{"www caps", Spec{User: "www", Caps: &List{Set: nbs}}, nbs, nbs, nbs, nbs, 33, 33},
		{"nobody ambient new", Spec{User: "nobody", Ambient: list(t, "sys_time")}, DockerDefault | Of(cap.SYS_TIME), Of(cap.SYS_TIME), Of(cap.SYS_TIME), Of(cap.SYS_TIME), 65534, 65534},
		{"numeric root", Spec{User: "0:10"}, DockerDefault, DockerDefault, none, none, 0, 10},
	}
	for _, c := range cases {
		p, err := Resolve(c.spec, fullRoot, a)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Bounding != c.bnd || p.Permitted != c.prm || p.Effective != c.prm || p.Inheritable != c.inh || p.Ambient != c.amb {
			t.Errorf("%s: B %s P %s E %s I %s A %s; want B %s P=E %s I %s A %s", c.name,
				p.Bounding.Hex(), p.Permitted.Hex(), p.Effective.Hex(), p.Inheritable.Hex(), p.Ambient.Hex(),
				c.bnd.Hex(), c.prm.Hex(), c.inh.Hex(), c.amb.Hex())
		}
		if p.Identity.UID != c.uid || p.Identity.GID != c.gid {
			t.Errorf("%s: uid %d gid %d, want %d %d", c.name, p.Identity.UID, p.Identity.GID, c.uid, c.gid)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	a := testAccounts(t)
	cases := []struct {
		spec   Spec
		caller Caller
		want   string
	}{
		{Spec{Add: list(t, "sys_resource")}, fullRoot, "capability cap_sys_resource: not in the caller's bounding set"},
		{Spec{Add: list(t, "kill"), Drop: list(t, "kill")}, fullRoot, "capability cap_kill: both added and dropped"},
		{Spec{User: "nosuch"}, fullRoot, "user nosuch: not found in " + a.Passwd},
		{Spec{Groups: []string{"staff"}}, fullRoot, "group staff: not found in " + a.Group},
		// A caller that lost cap_net_raw from its permitted set but not its bounding set.
		{Spec{}, Caller{Permitted: DockerDefault &^ Of(cap.NET_RAW), Bounding: fullRoot.Bounding}, "capability cap_net_raw: not held by the caller"},
		{Spec{User: "www", Add: list(t, "net_raw")}, Caller{Permitted: DockerDefault &^ Of(cap.NET_RAW), Bounding: fullRoot.Bounding}, "capability cap_net_raw: not held by the caller"},
	}
	for _, c := range cases {
		_, err := Resolve(c.spec, c.caller, a)
		if err == nil || err.Error() != c.want {
			t.Errorf("Resolve(%+v) error = %v; want %q", c.spec, err, c.want)
		}
	}
	// Without a user, the default set is root's, and a non-root caller
	// that holds nothing only asks for what it names.
	p, err := Resolve(Spec{}, Caller{UID: 1000, GID: 1000, Bounding: fullRoot.Bounding}, a)
	if err != nil || p.Permitted != 0 || p.Bounding != DockerDefault {
		t.Errorf("non-root caller, default spec: %+v, %v", p, err)
	}
}

func TestResolveGroups(t *testing.T) {
	a := testAccounts(t)
	p, err := Resolve(Spec{User: "www", Groups: []string{"wheel", "33"}}, fullRoot, a)
	if err != nil || !p.ChangeUser || fmtInts(p.Identity.Groups) != "[33 10]" {
		t.Errorf("--user www --groups wheel,33: %+v, %v", p, err)
	}
	p, err = Resolve(Spec{Groups: []string{"audio"}}, Caller{UID: 0, GID: 0, Groups: []int{0, 10}, Permitted: fullRoot.Permitted, Bounding: fullRoot.Bounding}, a)
	if err != nil || p.ChangeUser || !p.ChangeGroups || fmtInts(p.Identity.Groups) != "[29]" {
		t.Errorf("--groups audio alone replaces the groups: %+v, %v", p, err)
	}
	p, err = Resolve(Spec{}, Caller{UID: 0, GID: 0, Groups: []int{0, 10}, Permitted: fullRoot.Permitted, Bounding: fullRoot.Bounding}, a)
	if err != nil || p.ChangeUser || p.ChangeGroups || fmtInts(p.Identity.Groups) != "[0 10]" {
		t.Errorf("no --user, no --groups: %+v, %v", p, err)
	}
}

func TestPlanWrite(t *testing.T) {
	a := testAccounts(t)
	p, err := Resolve(Spec{User: "alice", Add: list(t, "net_bind_service"), NoNewPrivs: true}, fullRoot, a)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `bounding     00000000a80425fb cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setpcap,cap_net_bind_service,cap_net_raw,cap_sys_chroot,cap_mknod,cap_audit_write,cap_setfcap
permitted    0000000000000400 cap_net_bind_service
effective    0000000000000400 cap_net_bind_service
inheritable  0000000000000400 cap_net_bind_service
ambient      0000000000000400 cap_net_bind_service
uid          1000(alice)
gid          100(users)
groups       100(users),10(wheel),29(audio)
no_new_privs 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func fmtInts(v []int) string { return fmt.Sprint(v) }

// Without --user the identity stays, and --print names it from the files.
func TestPlanWriteUnchangedUser(t *testing.T) {
	a := testAccounts(t)
	p, err := Resolve(Spec{}, Caller{UID: 33, GID: 33, Groups: []int{33, 10}, Permitted: fullRoot.Permitted, Bounding: fullRoot.Bounding}, a)
	if err != nil || p.ChangeUser || p.ChangeGroups {
		t.Fatalf("%+v, %v", p, err)
	}
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"uid          33(www)\n", "gid          33(www)\n", "groups       33(www),10(wheel)\n", "no_new_privs 0\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

// --bound keeps capabilities in the bounding set only, and only with
// no_new_privs, which keeps root from taking them at its next exec.
func TestPlanBound(t *testing.T) {
	a := testAccounts(t)
	base := PodmanDefault
	spec := Spec{Caps: &List{Set: base}, Bound: list(t, "net_raw"), NoNewPrivs: true}
	p, err := Resolve(spec, fullRoot, a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounding.Hex() != "00000000800425fb" || p.Permitted != base || p.Effective != base || p.Ambient != 0 {
		t.Errorf("bounding %s permitted %s effective %s ambient %s; want net_raw in the bounding set only",
			p.Bounding.Hex(), p.Permitted.Hex(), p.Effective.Hex(), p.Ambient.Hex())
	}
	spec.NoNewPrivs = false
	if _, err := Resolve(spec, fullRoot, a); err == nil || !strings.Contains(err.Error(), "--no-new-privs") {
		t.Errorf("--bound without --no-new-privs: %v, want a refusal", err)
	}
}
