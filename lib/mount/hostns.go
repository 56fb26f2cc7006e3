package mount

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// userNS describes the user namespace barco-mount runs in.
type userNS struct {
	nested   bool // not the initial user namespace
	hostRoot int  // the host uid of uid 0 here; -1 when 0 is not mapped
}

// readUserNS reads proc/self/uid_map, and tells the initial user
// namespace from a nested one by its inode (chain.InitialUserNS): a nested
// one may map all ids onto themselves too.
func readUserNS(proc string) (userNS, error) {
	data, err := chain.ReadFile(proc + "/self/uid_map")
	if err != nil {
		return userNS{}, fmt.Errorf("read uid map: %w", err)
	}
	ns := parseUIDMap(string(data))
	if initial, err := chain.InitialUserNS(proc); err == nil {
		ns.nested = !initial
	}
	return ns, nil
}

func parseUIDMap(data string) userNS {
	ns := userNS{hostRoot: -1}
	lines := strings.Split(strings.TrimSpace(data), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		outside, err2 := strconv.ParseUint(f[1], 10, 32)
		count, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if inside == 0 && count > 0 {
			ns.hostRoot = int(outside)
		}
		if len(lines) == 1 && inside == 0 && outside == 0 && count == 4294967295 {
			return ns
		}
	}
	ns.nested = true
	return ns
}

// hostNSHint says how to get a mount namespace of one's own.
const hostNSHint = "run it in a new mount namespace (barco-ns -m, unshare -m)"

// errCannotTell marks the failure of checkNotHostNS that --force
// overrides: the check could not tell, not that this is the host's.
var errCannotTell = errors.New("cannot tell whether this is the host's mount namespace")

// checkNotHostNS refuses the host's mount namespace, that of PID 1 in
// proc. When PID 1's is unreadable (a root without every capability PID 1
// has), the kernel's thread kthreadd, PID 2 with parent 0, stands for it:
// it lives in the initial namespaces. In a nested user namespace neither is
// readable; there no mount of the host's namespace (owned by the initial
// user namespace) can be changed anyway, so that is no reason to refuse.
func checkNotHostNS(proc string, uns userNS) error {
	var self, host unix.Stat_t
	if err := unix.Stat(proc+"/self/ns/mnt", &self); err != nil {
		return fmt.Errorf("check mount namespace: %w", &os.PathError{Op: "stat", Path: proc + "/self/ns/mnt", Err: err})
	}
	err := unix.Stat(proc+"/1/ns/mnt", &host)
	if denied(err) && !uns.nested && isKthreadd(proc) {
		err = unix.Stat(proc+"/2/ns/mnt", &host)
	}
	switch {
	case err == nil:
		if self.Dev != host.Dev || self.Ino != host.Ino {
			return nil
		}
		// PID 1 is this process when proc belongs to a pid namespace we
		// are the init of: a proc mounted for it, never the host's.
		if link, _ := os.Readlink(proc + "/self"); link == "1" {
			return nil
		}
		return chain.Errorf(hostNSHint, "refusing to change the mounts of the host's mount namespace")
	case denied(err) && uns.nested:
		return nil
	}
	return chain.Errorf(hostNSHint+"; or, if it is not the host's, give --force", "%w: %v",
		errCannotTell, &os.PathError{Op: "stat", Path: proc + "/1/ns/mnt", Err: err})
}

func denied(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// isKthreadd reports whether PID 2 of proc has parent 0, which only the
// kernel's kthreadd has in the initial pid namespace.
func isKthreadd(proc string) bool {
	data, err := chain.ReadFile(proc + "/2/stat")
	if err != nil {
		return false
	}
	// "2 (kthreadd) S 0 ...": the fields after the command name.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	return i > 0 && len(f) > 1 && f[1] == "0"
}
