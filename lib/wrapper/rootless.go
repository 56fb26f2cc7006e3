package wrapper

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"barco/lib/caps"
	"barco/lib/chain"
	"barco/lib/ns"
)

// rangeHint says how a user gets subordinate ids.
const rangeHint = "an administrator adds one: usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST USER"

// validateRootless refuses, each with one line saying why, what an
// unprivileged caller's container cannot have: no user namespace, an
// idmapped volume, or a --user other than root without a subordinate
// range (the container then maps its root alone).
func (s *Spec) validateRootless() error {
	if !s.Rootless {
		return nil
	}
	if s.NoUserNS {
		return fmt.Errorf("--no-userns: an unprivileged caller's container needs a user namespace, whose root is the caller")
	}
	for _, v := range s.Volumes {
		_, rest, _ := strings.Cut(v, ":")
		if _, opts, _ := strings.Cut(rest, ":"); slices.Contains(strings.Split(opts, ","), "idmap") {
			return chain.Errorf("without :idmap, the caller's own files show as owned by the container's root",
				"--volume %s: an idmapped volume needs root (only root may idmap a disk filesystem)", v)
		}
	}
	if len(s.UserNS) > 0 || (s.User == "" && len(s.GroupAdd) == 0) {
		// barco-ns checks given maps against the caller's ranges.
		return nil
	}
	caller, err := ns.ReadCaller(uint32(os.Geteuid()), uint32(os.Getegid()), "/etc/subuid", "/etc/subgid", "/etc/passwd")
	if err != nil {
		return err
	}
	rootfs := s.Rootfs
	if rootfs == "" {
		rootfs = DefaultRootfs()
	}
	// The names as barco-caps will resolve them, in the container's files.
	accounts := caps.Accounts{Passwd: filepath.Join(rootfs, "etc/passwd"), Group: filepath.Join(rootfs, "etc/group")}
	if s.User != "" && !caller.HasRanges() {
		if id, err := accounts.LookupUser(s.User); err == nil && (id.UID != 0 || id.GID != 0) {
			return chain.Errorf(rangeHint, "--user %s: uid %d has no range in %s, so the container has its root alone",
				s.User, caller.UID, caller.SubUIDFile)
		}
	}
	if len(s.GroupAdd) > 0 && len(caller.SubGIDs) == 0 {
		// The kernel denies setgroups in a user namespace whose gid map
		// an unprivileged process wrote itself.
		return chain.Errorf(rangeHint, "--group-add %s: uid %d has no range in %s, so the container may not set its groups",
			strings.Join(s.GroupAdd, ","), caller.UID, caller.SubGIDFile)
	}
	return nil
}
