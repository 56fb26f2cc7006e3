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
	path              string   // the process's cgroup in it, as /proc/self/cgroup shows it
	clone             int      // the host's directory of that cgroup, detached (readCgroupMounts), or -1
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
			ms = append(ms, cgroupMount{dir: name, fstype: "cgroup", data: "none,name=" + name, path: f[2], clone: -1})
			continue
		}
		m := cgroupMount{dir: ctrls, fstype: "cgroup", data: ctrls, path: f[2], clone: -1}
		if parts := strings.Split(ctrls, ","); len(parts) > 1 {
			m.links = parts
		}
		ms = append(ms, m)
	}
	switch {
	case len(ms) == 0 && v2:
		return []cgroupMount{{fstype: "cgroup2", clone: -1}}, nil
	case v2:
		ms = append(ms, cgroupMount{dir: "unified", fstype: "cgroup2", clone: -1})
	case len(ms) == 0:
		return nil, errors.New("/proc/self/cgroup lists no hierarchy")
	}
	return ms, nil
}

// readCgroupMounts reads the hierarchies, before pivot_root while the
// host's /proc and /sys/fs/cgroup are there. Without a cgroup namespace of
// its own, a fresh mount of a v1 hierarchy would show the container the
// host's root cgroup: its own cgroup's directory is cloned instead, to be
// bound there, as runc binds it (the engines' containers on a v1 host have
// no cgroup namespace, and a program reads its memory limit at
// /sys/fs/cgroup/memory/memory.limit_in_bytes).
func readCgroupMounts(proc string, log *chain.Log) ([]cgroupMount, error) {
	b, err := chain.ReadFile(proc + "/self/cgroup")
	if err != nil {
		return nil, err
	}
	ms, err := cgroupMounts(string(b))
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		if m.fstype != "cgroup" || m.path == "/" || m.path == "" {
			continue
		}
		src := "/sys/fs/cgroup/" + m.dir + m.path
		if fd, err := cloneTree(src, 0); err == nil {
			ms[i].clone = fd
		} else {
			// The fresh mount then, as with a cgroup namespace.
			log.Debugf("cgroupfs: %v", err)
		}
	}
	return ms, nil
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
		if m.clone >= 0 {
			err := setattr(m.clone, "", unix.AT_EMPTY_PATH, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, p)
			if err == nil {
				if err = unix.MoveMount(m.clone, "", unix.AT_FDCWD, p, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
					err = &os.PathError{Op: "move_mount cgroup onto", Path: p, Err: err}
				}
			}
			unix.Close(m.clone)
			if err != nil {
				return err
			}
		} else if err := mount("cgroup", p, m.fstype, flags|unix.MS_RDONLY, m.data); err != nil {
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
