package caps

import (
	"fmt"
	"math/bits"
	"strings"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// Set is a set of capabilities as the kernel's 64-bit masks hold them: bit
// N is capability N (CAP_CHOWN is bit 0).
type Set uint64

// DockerDefault is Docker's default set: the 14 capabilities a container
// keeps unless told otherwise.
var DockerDefault = Of(cap.CHOWN, cap.DAC_OVERRIDE, cap.FSETID, cap.FOWNER, cap.MKNOD,
	cap.NET_RAW, cap.SETGID, cap.SETUID, cap.SETFCAP, cap.SETPCAP, cap.NET_BIND_SERVICE,
	cap.SYS_CHROOT, cap.KILL, cap.AUDIT_WRITE)

// PodmanDefault is podman's and CRI-O's default set, the 11 of Docker's
// without NET_RAW (raw sockets have a history of kernel exploits; ping
// works through ICMP sockets), MKNOD and AUDIT_WRITE. barco run gives it.
var PodmanDefault = Of(cap.CHOWN, cap.DAC_OVERRIDE, cap.FOWNER, cap.FSETID, cap.KILL,
	cap.NET_BIND_SERVICE, cap.SETFCAP, cap.SETGID, cap.SETPCAP, cap.SETUID, cap.SYS_CHROOT)

// Of is the set holding vals.
func Of(vals ...cap.Value) Set {
	var s Set
	for _, v := range vals {
		s |= 1 << v
	}
	return s
}

// Has reports whether v is in s.
func (s Set) Has(v cap.Value) bool { return v < 64 && s&(1<<v) != 0 }

// Values lists the capabilities in s in ascending order.
func (s Set) Values() []cap.Value {
	vals := make([]cap.Value, 0, bits.OnesCount64(uint64(s)))
	for rest := uint64(s); rest != 0; rest &= rest - 1 {
		vals = append(vals, cap.Value(bits.TrailingZeros64(rest)))
	}
	return vals
}

// Hex is the mask as /proc/PID/status shows it: 16 hex digits.
func (s Set) Hex() string { return fmt.Sprintf("%016x", uint64(s)) }

// String lists the names, "cap_chown,cap_kill", or "none".
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	names := make([]string, 0, bits.OnesCount64(uint64(s)))
	for _, v := range s.Values() {
		names = append(names, Name(v))
	}
	return strings.Join(names, ",")
}

// Name is the name of v as capabilities(7) writes it, in lower case:
// "cap_net_raw".
func Name(v cap.Value) string {
	if n := v.String(); !strings.HasPrefix(n, "cap_") {
		return "cap_" + n // a capability newer than libcap's table: "cap_41"
	}
	return v.String()
}

// ParseName reads one capability name as users write it: "CAP_NET_RAW",
// "cap_net_raw", "NET_RAW" or "net_raw".
func ParseName(name string) (cap.Value, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "cap_") {
		n = "cap_" + n
	}
	v, err := cap.FromName(n)
	if err != nil || v >= 64 {
		return 0, fmt.Errorf("unknown capability %q", name)
	}
	return v, nil
}

// List is a capability list from the command line: the names it gives,
// or "all".
type List struct {
	All bool
	Set Set
}

// ParseList reads a comma-separated list of capability names, or "all", or
// "none" (or "").
func ParseList(text string) (List, error) {
	var l List
	for _, item := range strings.Split(text, ",") {
		switch strings.ToLower(strings.TrimSpace(item)) {
		case "", "none":
			continue
		case "all":
			l.All = true
			continue
		}
		v, err := ParseName(item)
		if err != nil {
			return List{}, err
		}
		l.Set |= Of(v)
	}
	return l, nil
}

// Merge adds the capabilities of m to l.
func (l *List) Merge(m List) {
	l.All = l.All || m.All
	l.Set |= m.Set
}

// resolve is the list as a set, "all" standing for every capability in
// all.
func (l List) resolve(all Set) Set {
	if l.All {
		return all
	}
	return l.Set
}
