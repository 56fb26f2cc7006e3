package mount

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// cgroupMount is one hierarchy to mount on /sys/fs/cgroup: dir under it,
// the filesystem type and its options.
type cgroupMount struct {
	dir, fstype, data string
	links             []string // other names of a combined hierarchy (cpu, cpuacct)
}

// cgroupMounts reads /proc/self/cgroup (as the container's cgroup namespace
// shows it) and gives the mounts that show the container its own cgroups,
// as runc makes them: on a unified host cgroup2 on /sys/fs/cgroup itself
// (dir ""); otherwise each v1 hierarchy in a directory of its own and, on a
// hybrid host, cgroup2 on "unified".
func cgroupMounts(procCgroup string) ([]cgroupMount, error) {
	var ms []cgroupMount
	v2 := false
	for _, line := range strings.Split(strings.TrimSpace(procCgroup), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2 = true
			continue
		}
		ctrls := f[1]
		if name, ok := strings.CutPrefix(ctrls, "name="); ok {
			ms = append(ms, cgroupMount{dir: name, fstype: "cgroup", data: "none,name=" + name})
			continue
		}
		m := cgroupMount{dir: ctrls, fstype: "cgroup", data: ctrls}
		if parts := strings.Split(ctrls, ","); len(parts) > 1 {
			m.links = parts
		}
		ms = append(ms, m)
	}
	switch {
	case len(ms) == 0 && v2:
		return []cgroupMount{{fstype: "cgroup2"}}, nil
	case v2:
		ms = append(ms, cgroupMount{dir: "unified", fstype: "cgroup2"})
	case len(ms) == 0:
		return nil, errors.New("/proc/self/cgroup lists no hierarchy")
	}
	return ms, nil
}

// readCgroupMounts reads the hierarchies, before pivot_root while the
// host's /proc is there.
func readCgroupMounts(proc string) ([]cgroupMount, error) {
	b, err := chain.ReadFile(proc + "/self/cgroup")
	if err != nil {
		return nil, err
	}
	return cgroupMounts(string(b))
}

// mountCgroupfs shows the container its cgroups ms, read-only, on
// /sys/fs/cgroup. It runs inside the container, after /sys is mounted;
// with a cgroup namespace the container sees its own cgroup as the root.
func mountCgroupfs(ms []cgroupMount, log *chain.Log) error {
	const base = "/sys/fs/cgroup"
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if len(ms) == 1 && ms[0].dir == "" {
		return mount("cgroup2", base, "cgroup2", flags|unix.MS_RDONLY, "")
	}
	if err := mount("tmpfs", base, "tmpfs", flags, "mode=755,size=64k"); err != nil {
		return err
	}
	for _, m := range ms {
		p := base + "/" + m.dir
		if err := unix.Mkdir(p, 0o755); err != nil {
			return &os.PathError{Op: "mkdir", Path: p, Err: err}
		}
		if err := mount("cgroup", p, m.fstype, flags|unix.MS_RDONLY, m.data); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
				// A hierarchy this namespace may not mount: leave it out
				// rather than fail the container.
				log.Debugf("no %s: %v", p, err)
				unix.Rmdir(p)
				continue
			}
			return err
		}
		for _, l := range m.links {
			if err := unix.Symlink(m.dir, base+"/"+l); err != nil && !errors.Is(err, unix.EEXIST) {
				return &os.PathError{Op: "symlink", Path: base + "/" + l, Err: err}
			}
		}
	}
	if err := mount("", base, "", unix.MS_REMOUNT|unix.MS_BIND|flags|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", base, err)
	}
	return nil
}
