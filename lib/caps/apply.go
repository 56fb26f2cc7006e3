package caps

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"barco/lib/chain"
	"barco/lib/creds"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// CurrentCaller reads the calling process's identity and capabilities.
func CurrentCaller() (Caller, error) {
	proc, err := cap.GetPID(0)
	if err != nil {
		return Caller{}, fmt.Errorf("capget: %w", err)
	}
	groups, err := unix.Getgroups()
	if err != nil {
		return Caller{}, fmt.Errorf("getgroups: %w", err)
	}
	c := Caller{UID: os.Geteuid(), GID: os.Getegid(), Groups: groups}
	c.Permitted = fromProc(proc, cap.Permitted)
	for v := cap.Value(0); v < cap.MaxBits() && v < 64; v++ {
		if in, err := cap.GetBound(v); err == nil && in {
			c.Bounding |= Of(v)
		}
	}
	return c, nil
}

func fromProc(proc *cap.Set, flag cap.Flag) Set {
	var s Set
	for v := cap.Value(0); v < cap.MaxBits() && v < 64; v++ {
		if in, err := proc.GetFlag(flag, v); err == nil && in {
			s |= Of(v)
		}
	}
	return s
}

// setIdentity keeps the capabilities across the switch of user, then sets
// gid, supplementary groups and uid, on the calling thread (see package
// creds). CAP_SETUID and CAP_SETGID are effective: Apply made every
// permitted capability effective first.
func setIdentity(p *Plan) error {
	id := p.Identity
	if p.ChangeUser {
		if err := creds.KeepCaps(); err != nil {
			return err
		}
		if err := creds.SetGID(id.GID); err != nil {
			return hintIDs(fmt.Errorf("setresgid %d: %w", id.GID, err))
		}
	}
	if p.ChangeUser || p.ChangeGroups {
		err := creds.SetGroups(id.Groups)
		if errors.Is(err, unix.EPERM) && !p.GroupsAsked && setgroupsDenied() {
			// A user namespace whose gid map an unprivileged caller wrote
			// itself: setgroups is denied there for good. As runc does,
			// the groups that --user implies are then left as they are
			// (the caller's own); only groups asked for are an error.
			err = nil
		}
		if err != nil {
			return hintIDs(fmt.Errorf("setgroups %v: %w", id.Groups, err))
		}
	}
	if p.ChangeUser {
		if err := creds.SetUID(id.UID); err != nil {
			return hintIDs(fmt.Errorf("setresuid %d: %w", id.UID, err))
		}
	}
	return nil
}

// capset sets the permitted, effective and inheritable sets of the calling
// thread.
func capset(permitted, effective, inheritable Set) error {
	return creds.Set(creds.Sets{Permitted: uint64(permitted), Effective: uint64(effective), Inheritable: uint64(inheritable)})
}

// Apply gives the calling thread the plan's user, groups and capabilities,
// and logs on log what it did. It locks the calling goroutine to its thread for good, and the caller
// execs right afterwards on that thread (chain.Process.Exec): credentials and
// capability sets are per thread, and the exec'ing thread's are the only
// ones the program gets, since execve ends every other thread. Changing
// every thread instead (syscall.AllThreadsSyscall, libcap's psx) signals
// each runtime thread for each change, which cost several milliseconds
// per start for the 26 bounding-set drops of the default set; runc's init
// works on one locked thread too. The other threads only run the Go
// runtime until the exec ends them.
//
// The order is the one that works. The bounding set can only shrink while
// CAP_SETPCAP is effective, so it goes first. PR_SET_KEEPCAPS keeps the
// permitted set across the switch away from uid 0, which would otherwise
// clear it; gid and groups go before the uid, while CAP_SETGID is still
// effective. The permitted, effective and inheritable sets are set in
// one capset; the ambient set last, because the kernel clears it on a
// switch away from uid 0 and only accepts what is permitted and
// inheritable. Exec sets the parent-death signal again, which the
// change of uid clears.
func Apply(p *Plan, caller Caller, log *chain.Log) error {
	if err := creds.LockThread(); err != nil {
		return err
	}
	cur, err := creds.Get()
	if err != nil {
		return err
	}
	inheritable := Set(cur.Inheritable)
	// The steps below need CAP_SETPCAP, CAP_SETGID and CAP_SETUID
	// effective, not just permitted.
	if err := capset(caller.Permitted, caller.Permitted, inheritable); err != nil {
		return fmt.Errorf("capset: raise the permitted set: %w", err)
	}
	if drop := caller.Bounding &^ p.Bounding; drop != 0 {
		for _, v := range drop.Values() {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(v), 0, 0, 0); err != nil {
				return hintPerm(fmt.Errorf("drop %s from the bounding set: %w", v, err), "needs CAP_SETPCAP")
			}
		}
		log.Debugf("dropped %d capabilities from the bounding set", len(drop.Values()))
	}
	if err := setIdentity(p); err != nil {
		return err
	}
	if err := capset(p.Permitted, p.Effective, p.Inheritable); err != nil {
		return fmt.Errorf("capset permitted %s effective %s inheritable %s: %w",
			p.Permitted.Hex(), p.Effective.Hex(), p.Inheritable.Hex(), err)
	}
	if err := creds.ClearAmbient(); err != nil {
		return err
	}
	for _, v := range p.Ambient.Values() {
		if err := creds.RaiseAmbient(int(v)); err != nil {
			return hintPerm(fmt.Errorf("raise %s in the ambient set: %w", v, err),
				"SECBIT_NO_CAP_AMBIENT_RAISE may be set")
		}
	}
	if p.NoNewPrivs {
		if err := creds.NoNewPrivs(); err != nil {
			return err
		}
	}
	log.Debugf("applied: bounding %s, effective %s, ambient %s, uid %d",
		p.Bounding.Hex(), p.Effective.Hex(), p.Ambient.Hex(), p.Identity.UID)
	return nil
}

func hintPerm(err error, hint string) error {
	if errors.Is(err, unix.EPERM) {
		return chain.WithHint(err, hint)
	}
	return err
}

// setgroupsDenied reports whether setgroups is denied in this process's
// user namespace (/proc/self/setgroups).
func setgroupsDenied() bool {
	data, err := chain.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}

// hintIDs explains the usual failures of setgroups and setuid inside a
// user namespace.
func hintIDs(err error) error {
	switch {
	case errors.Is(err, unix.EINVAL):
		return chain.WithHint(err, "the id is not mapped in this user namespace")
	case errors.Is(err, unix.EPERM) && setgroupsDenied():
		return chain.WithHint(err, "setgroups is denied in this user namespace: its maker was unprivileged, with no range in /etc/subgid")
	case errors.Is(err, unix.EPERM):
		return chain.WithHint(err, "needs CAP_SETUID and CAP_SETGID; in a user namespace, setgroups may be denied")
	}
	return err
}
