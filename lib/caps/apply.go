package caps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/creds"
	"barco/lib/sysprog"

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

// emitIdentity appends the steps that keep the capabilities across the
// switch of user, then set gid, supplementary groups and uid. CAP_SETUID
// and CAP_SETGID are effective: Apply made every permitted capability
// effective first.
func emitIdentity(b *sysprog.Builder, p *Plan) {
	id := p.Identity
	if p.ChangeUser {
		b.Sys("prctl PR_SET_KEEPCAPS", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_KEEPCAPS), sysprog.Int(1),
			sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
		b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_KEEPCAPS: %w", errno) })
		b.Sys("setresgid", unix.SYS_SETRESGID, sysprog.Int(id.GID), sysprog.Int(id.GID), sysprog.Int(id.GID))
		b.Explain(func(errno syscall.Errno) error { return hintIDs(fmt.Errorf("setresgid %d: %w", id.GID, errno)) })
	}
	if p.ChangeUser || p.ChangeGroups {
		setgroupsErr := func(errno syscall.Errno) error { return hintIDs(fmt.Errorf("setgroups %v: %w", id.Groups, errno)) }
		list := make([]uint32, max(len(id.Groups), 1))
		for i, g := range id.Groups {
			list[i] = uint32(g)
		}
		b.Sys("setgroups", unix.SYS_SETGROUPS, sysprog.Int(len(id.Groups)), sysprog.Ptr(unsafe.Pointer(&list[0])))
		b.Explain(setgroupsErr)
		if !p.GroupsAsked {
			// A user namespace whose gid map an unprivileged caller wrote
			// itself: setgroups is denied there for good. As runc does,
			// the groups that --user implies are then left as they are
			// (the caller's own); only groups asked for are an error.
			denied, done := b.Label(), b.Label()
			b.On(unix.EPERM, denied)
			b.Jump(done)
			b.Mark(denied)
			emitIfSetgroupsDenied(b, done)
			b.Fail("setgroups", unix.EPERM)
			b.Explain(setgroupsErr)
			b.Mark(done)
		}
	}
	if p.ChangeUser {
		b.Sys("setresuid", unix.SYS_SETRESUID, sysprog.Int(id.UID), sysprog.Int(id.UID), sysprog.Int(id.UID))
		b.Explain(func(errno syscall.Errno) error { return hintIDs(fmt.Errorf("setresuid %d: %w", id.UID, errno)) })
	}
}

// setgroupsDeny is the first word of /proc/self/setgroups when it says
// "deny\n"; the mask keeps its five bytes ("allow\n" is longer).
var setgroupsDeny = binary.LittleEndian.Uint64([]byte("deny\n\x00\x00\x00"))

const setgroupsDenyMask = 0xff_ffff_ffff

// emitIfSetgroupsDenied appends the steps that go to denied when
// /proc/self/setgroups says "deny", as setgroupsDenied reads it, and on
// to the step after them when it says otherwise or cannot be read.
func emitIfSetgroupsDenied(b *sysprog.Builder, denied sysprog.Label) {
	other := b.Label()
	buf := b.Bytes(8)
	f := b.Sys("open /proc/self/setgroups", unix.SYS_OPENAT, sysprog.Int(unix.AT_FDCWD), sysprog.FixedString("/proc/self/setgroups"),
		sysprog.Int(unix.O_RDONLY|unix.O_CLOEXEC))
	b.OnAny(other)
	b.Sys("read /proc/self/setgroups", unix.SYS_READ, f.Result(), sysprog.Ptr(buf), sysprog.Int(8))
	b.OnAny(sysprog.Next)
	b.Sys("close /proc/self/setgroups", unix.SYS_CLOSE, f.Result())
	b.OnAny(sysprog.Next)
	b.JumpUnlessMasked(sysprog.Load(buf, 0), setgroupsDenyMask, sysprog.Imm(uintptr(setgroupsDeny)), other)
	b.Jump(denied)
	b.Mark(other)
}

// emitCapset appends the capset of the calling thread's permitted,
// effective and inheritable sets, whose failure explain tells.
func emitCapset(b *sysprog.Builder, permitted, effective, inheritable Set, explain func(syscall.Errno) error) {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{
		{Permitted: uint32(permitted), Effective: uint32(effective), Inheritable: uint32(inheritable)},
		{Permitted: uint32(permitted >> 32), Effective: uint32(effective >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	b.Sys("capset", unix.SYS_CAPSET, sysprog.Ptr(unsafe.Pointer(hdr)), sysprog.Ptr(unsafe.Pointer(&data[0])))
	b.Explain(explain)
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
	var b sysprog.Builder
	drops := emitApply(&b, p, caller, Set(cur.Inheritable))
	prog, err := b.Program(chain.ExitFailed)
	if err != nil {
		return err
	}
	// Raw system calls, on this thread: it is locked, and none of them
	// waits.
	if err := sysprog.Run(prog); err != nil {
		return err
	}
	if drops > 0 {
		log.Debugf("dropped %d capabilities from the bounding set", drops)
	}
	log.Debugf("applied: bounding %s, effective %s, ambient %s, uid %d",
		p.Bounding.Hex(), p.Effective.Hex(), p.Ambient.Hex(), p.Identity.UID)
	return nil
}

// emitApply appends Apply's steps for a thread whose inheritable set is
// inheritable, and returns how many capabilities they drop from the
// bounding set.
func emitApply(b *sysprog.Builder, p *Plan, caller Caller, inheritable Set) int {
	// The steps below need CAP_SETPCAP, CAP_SETGID and CAP_SETUID
	// effective, not just permitted.
	emitCapset(b, caller.Permitted, caller.Permitted, inheritable, func(errno syscall.Errno) error {
		return fmt.Errorf("capset: raise the permitted set: %w", errno)
	})
	drop := (caller.Bounding &^ p.Bounding).Values()
	for _, v := range drop {
		b.Sys("prctl PR_CAPBSET_DROP", unix.SYS_PRCTL, sysprog.Int(unix.PR_CAPBSET_DROP), sysprog.Int(int(v)),
			sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
		b.Explain(func(errno syscall.Errno) error {
			return hintPerm(fmt.Errorf("drop %s from the bounding set: %w", v, errno), "needs CAP_SETPCAP")
		})
	}
	emitIdentity(b, p)
	emitCapset(b, p.Permitted, p.Effective, p.Inheritable, func(errno syscall.Errno) error {
		return fmt.Errorf("capset permitted %s effective %s inheritable %s: %w",
			p.Permitted.Hex(), p.Effective.Hex(), p.Inheritable.Hex(), errno)
	})
	b.Sys("prctl PR_CAP_AMBIENT_CLEAR_ALL", unix.SYS_PRCTL, sysprog.Int(unix.PR_CAP_AMBIENT),
		sysprog.Int(unix.PR_CAP_AMBIENT_CLEAR_ALL), sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
	b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_CAP_AMBIENT_CLEAR_ALL: %w", errno) })
	for _, v := range p.Ambient.Values() {
		b.Sys("prctl PR_CAP_AMBIENT_RAISE", unix.SYS_PRCTL, sysprog.Int(unix.PR_CAP_AMBIENT),
			sysprog.Int(unix.PR_CAP_AMBIENT_RAISE), sysprog.Int(int(v)), sysprog.Int(0), sysprog.Int(0))
		b.Explain(func(errno syscall.Errno) error {
			return hintPerm(fmt.Errorf("raise %s in the ambient set: %w", v, errno), "SECBIT_NO_CAP_AMBIENT_RAISE may be set")
		})
	}
	if p.NoNewPrivs {
		b.Sys("prctl PR_SET_NO_NEW_PRIVS", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_NO_NEW_PRIVS), sysprog.Int(1),
			sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
		b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", errno) })
	}
	return len(drop)
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
