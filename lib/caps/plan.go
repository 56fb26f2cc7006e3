package caps

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Spec is what the command line asks for.
type Spec struct {
	Caps    *List // --caps: the set to keep; nil means DockerDefault
	Add     List  // --cap-add
	Drop    List  // --cap-drop; "all" drops the base set, keeping only Add
	Ambient List  // --ambient: also added, and passed on through exec
	Bound   List  // --bound: kept in the bounding set only; needs NoNewPrivs
	// Exact, when not nil, gives the permitted, effective and inheritable
	// sets as they are (an OCI config's), instead of deriving them from
	// the user; the ambient set is Ambient.
	Exact      *ExactSets
	User       string   // --user UID|NAME[:GID|GROUP]; "" keeps the caller's
	Groups     []string // --groups
	NoNewPrivs bool
}

// ExactSets are the sets --permitted, --effective and --inheritable give.
type ExactSets struct {
	Permitted, Effective, Inheritable List
}

// Caller is the state of the calling process that a plan starts from.
type Caller struct {
	UID, GID  int
	Groups    []int
	Permitted Set
	Bounding  Set
}

// Plan is a Spec resolved against the caller and the account files: the
// five sets, the identity and the no_new_privs bit that PROGRAM starts
// with (unless it is itself setuid or has file capabilities).
type Plan struct {
	Bounding, Permitted, Effective, Inheritable, Ambient Set

	Identity     Identity
	ChangeUser   bool // set gid, groups and uid
	ChangeGroups bool // set the supplementary groups only
	GroupsAsked  bool // --groups named supplementary groups
	NoNewPrivs   bool

	accounts Accounts // for the names that Write shows
}

// Resolve turns spec into a plan.
//
// The kept set K is the base set (Docker's default or --caps) with --cap-add
// and --ambient added and --cap-drop removed; it becomes the bounding set.
// What PROGRAM holds depends on whom it runs as, because execve(2) treats
// root and other users differently:
//
//   - as uid 0, PROGRAM gets the whole bounding set in its permitted and
//     effective sets, so they are K;
//   - as any other user, PROGRAM keeps only its ambient set, so the
//     capabilities named explicitly (--caps LIST, --cap-add, --ambient)
//     go there, and it holds those and no others, as with setpriv.
//
// The inheritable set equals the ambient set, which the kernel requires to
// be a subset of it. A capability the caller does not hold cannot be
// passed on, and is an error rather than silently missing.
func Resolve(spec Spec, caller Caller, acc Accounts) (*Plan, error) {
	// "all" is what the caller can pass on: held and not out of bounds.
	all := caller.Permitted & caller.Bounding
	base := DockerDefault
	if spec.Caps != nil {
		base = spec.Caps.resolve(all)
	}
	add := spec.Add.resolve(all)
	amb := spec.Ambient.resolve(all)
	if both := (spec.Add.Set | spec.Ambient.Set) & spec.Drop.Set; both != 0 {
		return nil, fmt.Errorf("capability %s: both added and dropped", both)
	}
	var keep Set
	if spec.Drop.All {
		keep = add | amb
	} else {
		keep = (base | add | amb) &^ spec.Drop.resolve(all)
	}

	p := &Plan{NoNewPrivs: spec.NoNewPrivs, accounts: acc}
	if spec.User != "" {
		id, err := acc.LookupUser(spec.User)
		if err != nil {
			return nil, err
		}
		p.Identity, p.ChangeUser = id, true
	} else {
		// The names are for --print only, which looks them up itself.
		p.Identity = Identity{UID: caller.UID, GID: caller.GID, Groups: caller.Groups}
	}
	if len(spec.Groups) > 0 {
		extra, err := acc.LookupGroups(spec.Groups)
		if err != nil {
			return nil, err
		}
		p.GroupsAsked = true
		if !p.ChangeUser {
			p.Identity.Groups, p.ChangeGroups = nil, true
		}
		for _, g := range extra {
			p.Identity.Groups = appendNew(p.Identity.Groups, g)
		}
	}

	raised := keep
	if p.Identity.UID != 0 {
		named := add | amb
		if spec.Caps != nil {
			named |= base
		}
		raised = named & keep
		amb = raised
	}
	// In the bounding set only: no process holds them, since no_new_privs
	// keeps every exec from gaining a capability (root's own rule and file
	// capabilities alike), yet the kernel still starts a binary whose file
	// capabilities name them, which it refuses when they are out of bounds.
	bound := spec.Bound.resolve(all) &^ keep
	if bound != 0 && !spec.NoNewPrivs {
		return nil, fmt.Errorf("--bound %s: needs --no-new-privs, or root would hold them after its next exec", bound)
	}
	if missing := (keep | bound) &^ caller.Bounding; missing != 0 {
		return nil, fmt.Errorf("capability %s: not in the caller's bounding set", missing)
	}
	if missing := raised &^ caller.Permitted; missing != 0 {
		return nil, fmt.Errorf("capability %s: not held by the caller", missing)
	}
	p.Bounding = keep | bound
	p.Permitted, p.Effective = raised, raised
	p.Inheritable, p.Ambient = amb, amb
	if spec.Exact != nil {
		return p, p.exact(spec, all, caller)
	}
	return p, nil
}

// exact sets the permitted, effective and inheritable sets as given, each
// within the bounding set, with the kernel's rules checked here so that a
// wrong set is one clear line rather than a capset EPERM.
func (p *Plan) exact(spec Spec, all Set, caller Caller) error {
	e := spec.Exact
	p.Permitted = e.Permitted.resolve(all)
	p.Effective = e.Effective.resolve(all)
	p.Inheritable = e.Inheritable.resolve(all)
	p.Ambient = spec.Ambient.resolve(all)
	switch {
	case p.Effective&^p.Permitted != 0:
		return fmt.Errorf("effective capability %s: not permitted", p.Effective&^p.Permitted)
	case p.Ambient&^(p.Permitted&p.Inheritable) != 0:
		return fmt.Errorf("ambient capability %s: not both permitted and inheritable", p.Ambient&^(p.Permitted&p.Inheritable))
	case p.Permitted&^caller.Permitted != 0:
		return fmt.Errorf("capability %s: not held by the caller", p.Permitted&^caller.Permitted)
	}
	return nil
}

// Write prints the plan for --print: the five sets by mask and name, as
// /proc/PID/status would show them once PROGRAM runs, then the identity.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	for _, s := range []struct {
		name string
		set  Set
	}{
		{"bounding", p.Bounding}, {"permitted", p.Permitted}, {"effective", p.Effective},
		{"inheritable", p.Inheritable}, {"ambient", p.Ambient},
	} {
		fmt.Fprintf(&b, "%-12s %s %s\n", s.name, s.set.Hex(), s.set)
	}
	id := p.Identity
	if id.UserName == "" {
		id.UserName = p.accounts.UserName(id.UID)
	}
	if id.GroupName == "" {
		id.GroupName = p.accounts.GroupName(id.GID)
	}
	fmt.Fprintf(&b, "%-12s %s\n", "uid", named(id.UID, id.UserName))
	fmt.Fprintf(&b, "%-12s %s\n", "gid", named(id.GID, id.GroupName))
	groups := make([]string, len(id.Groups))
	for i, g := range id.Groups {
		groups[i] = named(g, p.accounts.GroupName(g))
	}
	if len(groups) == 0 {
		groups = []string{"none"}
	}
	fmt.Fprintf(&b, "%-12s %s\n", "groups", strings.Join(groups, ","))
	nnp := 0
	if p.NoNewPrivs {
		nnp = 1
	}
	fmt.Fprintf(&b, "%-12s %d\n", "no_new_privs", nnp)
	_, err := io.WriteString(w, b.String())
	return err
}

func named(id int, name string) string {
	if name == "" {
		return strconv.Itoa(id)
	}
	return fmt.Sprintf("%d(%s)", id, name)
}
