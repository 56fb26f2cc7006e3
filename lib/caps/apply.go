package caps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	"barco/lib/chain"

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
// gid, supplementary groups and uid. The syscall package's wrappers act on
// every thread already (AllThreadsSyscall); PR_SET_KEEPCAPS goes through
// libcap's psx, and the kernel resets it at exec. CAP_SETUID and
// CAP_SETGID are effective: Apply made every permitted capability
// effective first.
func setIdentity(p *Plan) error {
	id := p.Identity
	if p.ChangeUser {
		if _, err := cap.Prctlw(unix.PR_SET_KEEPCAPS, 1); err != nil {
			return fmt.Errorf("prctl PR_SET_KEEPCAPS: %w", err)
		}
		if err := syscall.Setresgid(id.GID, id.GID, id.GID); err != nil {
			return hintIDs(fmt.Errorf("setresgid %d: %w", id.GID, err))
		}
	}
	if p.ChangeUser || p.ChangeGroups {
		if err := syscall.Setgroups(id.Groups); err != nil {
			return hintIDs(fmt.Errorf("setgroups %v: %w", id.Groups, err))
		}
	}
	if p.ChangeUser {
		if err := syscall.Setresuid(id.UID, id.UID, id.UID); err != nil {
			return hintIDs(fmt.Errorf("setresuid %d: %w", id.UID, err))
		}
	}
	return nil
}

// Apply gives the process the plan's user, groups and capabilities, on
// every thread: capabilities and credentials are per thread in Linux, and
// the Go runtime runs several, so each change goes through libcap's psx
// (syscall.AllThreadsSyscall in a pure Go binary). The caller execs right
// afterwards; nothing in between may depend on the privileges dropped.
//
// The order is the one that works. The bounding set can only shrink while
// CAP_SETPCAP is effective, so it goes first. PR_SET_KEEPCAPS keeps the
// permitted set across the switch away from uid 0, which would otherwise
// clear it; gid and groups go before the uid, while CAP_SETGID is still
// effective. The permitted, effective and inheritable sets are set in
// one capset; the ambient set last, because the kernel clears it on a
// switch away from uid 0 and only accepts what is permitted and
// inheritable.
//
// Apply also keeps the parent-death signal, which ties the container to
// barco-ns: the kernel clears it on a change of uid or gid, and it is a
// property of one thread, so an exec from another thread (the goroutine
// may resume anywhere after the world stops) would lose it. It is read
// here, on the thread the stage started on, and set again on every
// thread. Locking the goroutine to its thread instead would cost the
// runtime one more thread, which every all-thread syscall must visit.
func Apply(p *Plan, caller Caller) error {
	var pdeathsig int
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&pdeathsig)), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_GET_PDEATHSIG: %w", err)
	}
	proc, err := cap.GetPID(0)
	if err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if fromProc(proc, cap.Effective) != caller.Permitted {
		// The steps below need CAP_SETPCAP, CAP_SETGID and CAP_SETUID
		// effective, not just permitted.
		if err := proc.Fill(cap.Effective, cap.Permitted); err != nil {
			return err
		}
		if err := proc.SetProc(); err != nil {
			return fmt.Errorf("capset: raise the permitted set: %w", err)
		}
	}
	if drop := caller.Bounding &^ p.Bounding; drop != 0 {
		// One all-thread prctl per capability: most of the stage's time.
		if err := cap.DropBound(drop.Values()...); err != nil {
			return hintPerm(fmt.Errorf("drop %s from the bounding set: %w", drop, err), "needs CAP_SETPCAP")
		}
		chain.Debugf("dropped %d capabilities from the bounding set", len(drop.Values()))
	}
	if err := setIdentity(p); err != nil {
		return err
	}
	want := cap.NewSet()
	for _, f := range []struct {
		flag cap.Flag
		set  Set
	}{{cap.Permitted, p.Permitted}, {cap.Effective, p.Effective}, {cap.Inheritable, p.Inheritable}} {
		if err := want.SetFlag(f.flag, true, f.set.Values()...); err != nil {
			return err
		}
	}
	if err := want.SetProc(); err != nil {
		return fmt.Errorf("capset permitted %s effective %s inheritable %s: %w",
			p.Permitted.Hex(), p.Effective.Hex(), p.Inheritable.Hex(), err)
	}
	if err := cap.ResetAmbient(); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	if p.Ambient != 0 {
		if err := cap.SetAmbient(true, p.Ambient.Values()...); err != nil {
			return hintPerm(fmt.Errorf("raise %s in the ambient set: %w", p.Ambient, err),
				"SECBIT_NO_CAP_AMBIENT_RAISE may be set")
		}
	}
	if p.NoNewPrivs {
		if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
			return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
		}
	}
	if pdeathsig != 0 {
		if _, err := cap.Prctlw(unix.PR_SET_PDEATHSIG, uintptr(pdeathsig)); err != nil {
			return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", err)
		}
	}
	chain.Debugf("applied: bounding %s, effective %s, ambient %s, uid %d",
		p.Bounding.Hex(), p.Effective.Hex(), p.Ambient.Hex(), p.Identity.UID)
	if chain.Debugging() {
		return debugCheckThreads()
	}
	return nil
}

// debugCheckThreads proves the all-thread promise under BARCO_DEBUG=1,
// where /proc is mounted.
func debugCheckThreads() error {
	n, err := CheckThreads("/proc/self/task")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		chain.Debugf("no /proc/self/task: threads not checked")
	case err != nil:
		return err
	default:
		chain.Debugf("all %d threads hold these credentials", n)
	}
	return nil
}

func hintPerm(err error, hint string) error {
	if errors.Is(err, unix.EPERM) {
		return chain.WithHint(err, hint)
	}
	return err
}

// hintIDs explains the usual failures of setgroups and setuid inside a
// user namespace.
func hintIDs(err error) error {
	switch {
	case errors.Is(err, unix.EINVAL):
		return chain.WithHint(err, "the id is not mapped in this user namespace")
	case errors.Is(err, unix.EPERM):
		return chain.WithHint(err, "needs CAP_SETUID and CAP_SETGID; in a user namespace, setgroups may be denied")
	}
	return err
}
