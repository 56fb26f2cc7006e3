package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Asked reports whether l sets anything at all.
func (l *Limits) Asked() bool {
	return len(l.Controllers()) > 0 || l.Devices != nil || l.CPUPeriod != 0
}

// DelegationHint says where an unprivileged user's limits work.
const DelegationHint = "an unprivileged user's limits work in a cgroup v2 subtree delegated to it, as systemd's user@UID.service is; systemd-run --user --scope starts a command there"

// Delegated checks that uid may make the cgroup c and start processes in
// it: only on cgroup v2, in a subtree delegated to uid, as systemd's
// Delegate=yes gives user@UID.service. The nearest existing directory on
// the way to c, with its cgroup.procs and cgroup.subtree_control, must be
// uid's; so must the cgroup.procs of the cgroup that holds both the
// caller's own cgroup and c, since the kernel moves a process only for a
// writer of that file (the common ancestor rule), a clone into a cgroup
// too. A cgroup v1 hierarchy is never delegated to a user: its cgroups
// belong to root.
func (c *Cgroup) Delegated(uid int) error {
	l := c.Layout
	if l.Mode != Unified {
		return fmt.Errorf("the hierarchies are %v, whose cgroups are root's", l.Mode)
	}
	mount := filepath.Clean(l.V2.Mount)
	existing := filepath.Dir(c.V2)
	for existing != mount && !isDir(existing) {
		existing = filepath.Dir(existing)
	}
	own := l.V2.Dir(l.V2.Own)
	common := commonDir(own, c.V2)
	for _, f := range []string{existing, existing + "/cgroup.procs", existing + "/cgroup.subtree_control", common + "/cgroup.procs"} {
		if err := ownedBy(f, uid); err != nil {
			return fmt.Errorf("%w (cgroup v2, not delegated to uid %d)", err, uid)
		}
	}
	return nil
}

// ownedBy checks that the file at p is uid's.
func ownedBy(p string, uid int) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is uid %d's", p, st.Uid)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// commonDir is the deepest directory that holds both a and b.
func commonDir(a, b string) string {
	a, b = path.Clean(a), path.Clean(b)
	for a != "/" && a != "." && !strings.HasPrefix(b+"/", a+"/") {
		a = path.Dir(a)
	}
	return a
}

// RecordDir is where the cgroups of a caller with effective uid uid are
// recorded with their owner: DefaultRecordDir for root; for another user,
// or root of a user namespace of a user's own (chain.HostRoot),
// barco/cgroups in its $XDG_RUNTIME_DIR, else none (a cgroup without a
// record is never swept by a later run).
func RecordDir(uid int) string {
	if uid == 0 && !chain.InChildUserNS() {
		return DefaultRecordDir
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "barco", "cgroups")
	}
	return ""
}

// errNoCgroup marks an unprivileged run that goes on without a cgroup.
var errNoCgroup = errors.New("no cgroup")

// checkUnprivileged decides, for a caller that is not root (o.UID), whether
// c can be made: nil when it can; errNoCgroup, after one line of debug
// output saying why, when it cannot and nothing needs it (no limit, no
// stats), so that PROGRAM runs in the caller's own cgroup; else the
// reason, which fails the run.
func (o *Options) checkUnprivileged(c *Cgroup, log *chain.Log) error {
	err := c.Delegated(o.UID)
	if err == nil {
		if o.Limits.Devices != nil && c.Layout.Mode == Unified {
			return chain.Errorf("a device filter on cgroup v2 is an eBPF program, which only root may attach; an unprivileged container opens only the host's devices its user may open anyway",
				"--devices: no device control for uid %d", o.UID)
		}
		return nil
	}
	if !o.Limits.Asked() && !o.Stats {
		log.Debugf("no cgroup for uid %d: %v; PROGRAM runs in the caller's cgroup, without limits", o.UID, err)
		return errNoCgroup
	}
	return chain.WithHint(fmt.Errorf("limits and --stats need a cgroup, and uid %d may make none: %w", o.UID, err), DelegationHint)
}

// DelegatedTo checks, as Delegated does, that uid may make a cgroup below
// parent on this machine.
func DelegatedTo(uid int, parent string) error {
	l, err := DetectLayout("/proc/self/mountinfo", "/proc/self/cgroup")
	if err != nil {
		return err
	}
	// Any name: Delegated looks at the directories above it.
	c, err := Locate(l, parent, "probe", nil)
	if err != nil {
		return err
	}
	return c.Delegated(uid)
}
