package cgroup

import (
	"fmt"
	"path"
	"strings"

	"barco/lib/chain"
)

// Mode is the way cgroups are mounted on a machine.
type Mode int

const (
	// Legacy is cgroup v1 alone.
	Legacy Mode = iota + 1
	// Hybrid is cgroup v1 for the controllers, with a cgroup v2 hierarchy
	// (usually /sys/fs/cgroup/unified) that tracks processes only.
	Hybrid
	// Unified is cgroup v2 alone.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "cgroup v1"
	case Hybrid:
		return "cgroup v1 (hybrid)"
	case Unified:
		return "cgroup v2"
	}
	return "no cgroups"
}

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	Mount       string   // where it is mounted: /sys/fs/cgroup/memory
	Root        string   // the cgroup mounted there; "/" except inside containers
	Controllers []string // v1 controllers bound to it; nil for cgroup v2
	Own         string   // this process's cgroup in it, from /proc/self/cgroup
}

// Dir is the directory of cgroup p (a path from the hierarchy's root).
func (h *Hierarchy) Dir(p string) string {
	rel := strings.TrimPrefix(path.Clean("/"+p), path.Clean(h.Root))
	return path.Join(h.Mount, rel)
}

// Has reports whether controller c is bound to this v1 hierarchy.
func (h *Hierarchy) Has(c string) bool {
	for _, x := range h.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// Layout is where the cgroup hierarchies of a machine are mounted.
type Layout struct {
	Mode Mode
	// V1 are the cgroup v1 hierarchies that have controllers (named
	// hierarchies such as name=systemd belong to their managers).
	V1 []*Hierarchy
	// V2 is the cgroup v2 hierarchy, nil if none is mounted.
	V2 *Hierarchy
}

// Controller is the v1 hierarchy that controller c is bound to, or nil.
func (l *Layout) Controller(c string) *Hierarchy {
	for _, h := range l.V1 {
		if h.Has(c) {
			return h
		}
	}
	return nil
}

// DetectLayout reads the mount table (/proc/self/mountinfo) and the
// process's own cgroups (/proc/self/cgroup) from the files given.
func DetectLayout(mountinfo, procCgroup string) (*Layout, error) {
	own, err := readOwnCgroups(procCgroup)
	if err != nil {
		return nil, err
	}
	data, err := chain.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	l := &Layout{}
	seen := map[string]bool{}
	hidden := hiddenMounts(string(data))
	for rest := string(data); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		// Only cgroup mounts matter; looking for " - cgroup" spares splitting
		// the other lines. A space in a mount point is escaped (\040), so
		// " - " is only ever the separator of the optional fields.
		if !strings.Contains(line, " - cgroup") {
			continue
		}
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		fields := strings.Fields(line)
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 >= len(fields) || hidden[fields[0]] {
			continue
		}
		fstype, superOpts := fields[sep+1], fields[sep+3]
		root, mount := unescapeMount(fields[3]), unescapeMount(fields[4])
		switch fstype {
		case "cgroup2":
			// The first mount wins; later ones are bind mounts of it.
			if l.V2 == nil {
				l.V2 = &Hierarchy{Mount: mount, Root: root, Own: own[""]}
			}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(superOpts, ",") {
				if knownV1Controllers[o] {
					ctrls = append(ctrls, o)
				}
			}
			key := strings.Join(ctrls, ",")
			if len(ctrls) == 0 || seen[key] {
				continue
			}
			seen[key] = true
			l.V1 = append(l.V1, &Hierarchy{Mount: mount, Root: root, Controllers: ctrls, Own: ownV1(own, ctrls)})
		}
	}
	switch {
	case len(l.V1) > 0 && l.V2 != nil:
		l.Mode = Hybrid
	case len(l.V1) > 0:
		l.Mode = Legacy
	case l.V2 != nil:
		l.Mode = Unified
	default:
		return nil, fmt.Errorf("no cgroup hierarchy mounted (read %s)", mountinfo)
	}
	return l, nil
}

// hiddenMounts is the set of mount ids of mountinfo that a process does
// not see: a tmpfs over /sys/fs/cgroup/unified hides that cgroup2 mount,
// whose directories are then the tmpfs's, not cgroups. The tree of mount
// and parent ids says it, not the order of the lines: mountinfo lists
// mounts as they were made, and one made early may be attached late
// (open_tree or fsmount, then move_mount, as barco-mount builds a root).
// A mount is hidden when another is mounted on it at the same point, or
// when its point is not reachable: its parent's is not, or another mount
// in its parent sits at or above its point, attached after it (else that
// one would be its parent).
func hiddenMounts(mountinfo string) map[string]bool {
	type mnt struct{ id, parent, point string }
	byID := map[string]mnt{}
	children := map[string][]mnt{}
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.SplitN(line, " ", 6)
		if len(f) < 6 {
			continue
		}
		m := mnt{id: f[0], parent: f[1], point: f[4]}
		byID[m.id] = m
		children[m.parent] = append(children[m.parent], m)
	}
	reached := map[string]bool{}
	var reachable func(m mnt, depth int) bool
	reachable = func(m mnt, depth int) bool {
		if r, ok := reached[m.id]; ok {
			return r
		}
		r := true
		if p, ok := byID[m.parent]; ok && p.id != m.id {
			for _, c := range children[p.id] {
				r = r && (c.id == m.id || !under(m.point, c.point))
			}
			// depth bounds the walk: a corrupt file must not loop.
			r = r && depth < 64 && reachable(p, depth+1)
		}
		reached[m.id] = r
		return r
	}
	hidden := map[string]bool{}
	for _, m := range byID {
		stacked := false
		for _, c := range children[m.id] {
			stacked = stacked || c.point == m.point
		}
		if stacked || !reachable(m, 0) {
			hidden[m.id] = true
		}
	}
	return hidden
}

// under reports whether path is below dir.
func under(path, dir string) bool {
	return dir == "/" && path != "/" || strings.HasPrefix(path, dir+"/")
}

var knownV1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "blkio": true, "pids": true, "hugetlb": true, "net_cls": true,
	"net_prio": true, "perf_event": true, "rdma": true, "misc": true,
}

// readOwnCgroups maps each controller list of /proc/self/cgroup ("cpu,cpuacct",
// "" for cgroup v2) and each single controller to the process's cgroup.
func readOwnCgroups(file string) (map[string]string, error) {
	data, err := chain.ReadFile(file)
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		// 4:memory:/user.slice  or  0::/init.scope
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		own[parts[1]] = parts[2]
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}

func ownV1(own map[string]string, ctrls []string) string {
	if p, ok := own[ctrls[0]]; ok {
		return p
	}
	return "/"
}

// unescapeMount undoes the octal escapes of mountinfo (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
