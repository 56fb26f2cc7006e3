package caps

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"barco/lib/chain"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// Command is the barco-caps stage.
func Command() *chain.Stage {
	st := &chain.Stage{
		Name:     "barco-caps",
		Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]",
		Summary: `Set the user, groups and the five capability sets, then exec PROGRAM.

PROGRAM keeps Docker's 14 default capabilities (chown, dac_override, fsetid,
fowner, mknod, net_raw, setgid, setuid, setfcap, setpcap, net_bind_service,
sys_chroot, kill, audit_write), or the --caps set, plus --cap-add and
--ambient, minus --cap-drop; that set is its bounding set. As root, PROGRAM
holds all of it; as another user it holds only the capabilities named
explicitly, passed through the ambient set. The inheritable set equals the
ambient set, which is empty by default.

Names are capabilities(7) names in any case, with or without CAP_: CAP_NET_RAW,
net_raw. LIST is comma-separated; "all" is every capability the caller holds.
User and group names are looked up in /etc/passwd and /etc/group of the
current root (the container's, inside the chain).`,
		Example: `barco-caps --print --user nobody --cap-add net_bind_service
barco-caps --cap-drop all --cap-add net_raw -- grep Cap /proc/self/status`,
		Notes: `--user NAME sets the gid from /etc/passwd and the supplementary groups to
that gid and the groups that list NAME as a member, as login does; a UID not
in /etc/passwd gets gid 0, as with docker run --user. --groups adds to them;
without --user it replaces the supplementary groups. Without either, the
user and groups stay as they are.`,
		NoProgram: true,
	}
	var (
		spec      Spec
		printOnly bool
		umask     = -1
	)
	o := &st.Options
	o.Func("caps", 0, "LIST", "the capabilities to keep instead of Docker's default set (all, none)", func(v string) error {
		l, err := ParseList(v)
		spec.Caps = &l
		return err
	})
	o.Func("cap-add", 0, "LIST", "add capabilities (repeatable)", listOption(&spec.Add))
	o.Func("cap-drop", 0, "LIST", "drop capabilities (repeatable; all keeps only --cap-add)", listOption(&spec.Drop))
	o.Func("ambient", 0, "LIST", "add capabilities and keep them across exec in the ambient set (repeatable)", listOption(&spec.Ambient))
	exact := func(pick func(*ExactSets) *List) func(string) error {
		return func(v string) error {
			if spec.Exact == nil {
				spec.Exact = &ExactSets{}
			}
			return listOption(pick(spec.Exact))(v)
		}
	}
	o.Func("permitted", 0, "LIST", "the permitted set exactly, instead of one derived from the user (with --effective and --inheritable)", exact(func(e *ExactSets) *List { return &e.Permitted }))
	o.Func("effective", 0, "LIST", "the effective set exactly (a subset of --permitted)", exact(func(e *ExactSets) *List { return &e.Effective }))
	o.Func("inheritable", 0, "LIST", "the inheritable set exactly", exact(func(e *ExactSets) *List { return &e.Inheritable }))
	o.Func("bound", 0, "LIST", "keep in the bounding set only, with --no-new-privs: held by no process, but a binary whose file capabilities name them still starts (Debian's ping: cap_net_raw=ep)", listOption(&spec.Bound))
	o.String(&spec.User, "user", 'u', "UID|NAME[:GID|GROUP]", "run PROGRAM as this user and group")
	o.Func("groups", 0, "LIST", "supplementary groups, names or numbers (repeatable)", func(v string) error {
		for _, g := range strings.Split(v, ",") {
			if g != "" {
				spec.Groups = append(spec.Groups, g)
			}
		}
		return nil
	})
	o.Bool(&spec.NoNewPrivs, "no-new-privs", 0, "set no_new_privs: setuid bits and file capabilities grant nothing")
	o.Func("umask", 0, "MODE", "the file mode creation mask PROGRAM starts with, in octal (0022); default: the caller's", func(v string) error {
		m, err := ParseUmask(v)
		umask = m
		return err
	})
	o.Bool(&printOnly, "print", 0, "print the resolved sets, user and groups; apply nothing, run nothing")

	st.Steps = func(in *chain.Inline, program []string) (func(*sysprog.Builder), error) {
		if printOnly {
			return nil, chain.ErrNotInline
		}
		return planSteps(spec, umask, in)
	}
	st.Main = func(p *chain.Process, program []string) (int, error) {
		if !printOnly && len(program) == 0 {
			return 0, &chain.OptionError{Msg: "no PROGRAM given"}
		}
		caller, err := CurrentCaller()
		if err != nil {
			return 0, err
		}
		plan, err := Resolve(spec, caller, HostAccounts)
		if err != nil {
			return 0, err
		}
		if printOnly {
			return 0, plan.Write(p.Stdout)
		}
		if err := Apply(plan, caller, p.Log); err != nil {
			return 0, err
		}
		if umask >= 0 {
			// A process attribute, kept across exec, as the user is.
			unix.Umask(umask)
		}
		return p.Exec(program, os.Environ())
	}
	return st
}

// ParseUmask reads a file mode creation mask in octal: 022, 0022, 0o022.
func ParseUmask(v string) (int, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O"), 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("umask %q: not an octal mode from 0 to 0777", v)
	}
	return int(m), nil
}

func listOption(l *List) func(string) error {
	return func(v string) error {
		m, err := ParseList(v)
		l.Merge(m)
		return err
	}
}

// planSteps resolves spec for a child in the state in.State, whose
// container files are read in its root, and returns what appends Apply's
// steps and the umask to the child's program (see chain.Inline). The
// child's state becomes the plan's.
func planSteps(spec Spec, umask int, in *chain.Inline) (func(*sysprog.Builder), error) {
	st := in.State
	caller := Caller{UID: st.UID, GID: st.GID, Groups: st.Groups, Permitted: Set(st.Permitted), Bounding: Set(st.Bounding)}
	acc := HostAccounts
	acc.Root = st.Root
	plan, err := Resolve(spec, caller, acc)
	if err != nil {
		return nil, err
	}
	id := plan.Identity
	if plan.ChangeUser {
		st.UID, st.GID = id.UID, id.GID
	}
	if plan.ChangeUser || plan.ChangeGroups {
		st.Groups = id.Groups
	}
	st.Permitted, st.Bounding = uint64(plan.Permitted), uint64(plan.Bounding)
	st.NoNewPrivs = st.NoNewPrivs || plan.NoNewPrivs
	in.CredentialsChanged = true
	in.Log.Debugf("as steps: bounding %s, effective %s, ambient %s, uid %d",
		plan.Bounding.Hex(), plan.Effective.Hex(), plan.Ambient.Hex(), id.UID)
	return func(b *sysprog.Builder) {
		// The inheritable set is the one Apply's first capset gives: the
		// child's is cleared there, as barco-ns's setup clears it.
		emitApply(b, plan, caller, 0)
		if umask >= 0 {
			b.Sys("umask", unix.SYS_UMASK, sysprog.Int(umask))
		}
	}, nil
}
