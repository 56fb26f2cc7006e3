package mount

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"barco/lib/chain"
	"barco/lib/sysprog"
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
//
// self is the /proc directory of the process they are for (/proc/self).
func readCgroupMounts(self string, log *chain.Log) ([]cgroupMount, error) {
	b, err := chain.ReadFile(self + "/cgroup")
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
	var b sysprog.Builder
	left, err := emitCgroupfs(&b, ms)
	if err != nil {
		return err
	}
	p, err := runSteps(&b)
	if p == nil {
		return err
	}
	for _, l := range left {
		if errno := p.Errno(l.mount); errno != 0 {
			l.err.Err = errno
			log.Debugf("no %s: %v", l.err.Target, &l.err)
		}
	}
	return err
}

// leftOut is a hierarchy's mount, which a namespace may not make, and
// its error but for the errno.
type leftOut struct {
	mount sysprog.Ref
	err   MountError
}

// emitCgroupfs appends the steps of mountCgroupfs: a tmpfs with a
// directory for each hierarchy, mounted there or bound from its clone, the
// other names of a combined one as symbolic links, then all read-only. A
// hierarchy this namespace may not mount (EPERM, EBUSY) is left out
// rather than failing the container; it returns those mounts.
func emitCgroupfs(b *sysprog.Builder, ms []cgroupMount) ([]leftOut, error) {
	const base = "/sys/fs/cgroup"
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if len(ms) == 1 && ms[0].dir == "" {
		_, err := emitMount(b, "cgroup2", base, "cgroup2", flags|unix.MS_RDONLY, "")
		return nil, err
	}
	if _, err := emitMount(b, "tmpfs", base, "tmpfs", flags, "mode=755,size=64k"); err != nil {
		return nil, err
	}
	var left []leftOut
	for _, m := range ms {
		p := base + "/" + m.dir
		path, err := sysprog.CString(p)
		if err != nil {
			return nil, fmt.Errorf("cgroup directory %q: %w", p, err)
		}
		b.Sys("mkdir "+p, unix.SYS_MKDIRAT, sysprog.Int(unix.AT_FDCWD), path, sysprog.Int(0o755))
		b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "mkdir", Path: p, Err: errno} })
		var leave *sysprog.Label
		if m.clone >= 0 {
			if err := emitSetattr(b, sysprog.Int(m.clone), "", unix.AT_EMPTY_PATH,
				unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, p); err != nil {
				return nil, err
			}
			b.Sys("move_mount "+p, unix.SYS_MOVE_MOUNT, sysprog.Int(m.clone), sysprog.FixedString(""), sysprog.Int(unix.AT_FDCWD), path,
				sysprog.Int(unix.MOVE_MOUNT_F_EMPTY_PATH))
			b.Explain(func(errno syscall.Errno) error {
				return &os.PathError{Op: "move_mount cgroup onto", Path: p, Err: errno}
			})
			b.Sys("close the clone of "+p, unix.SYS_CLOSE, sysprog.Int(m.clone))
			b.OnAny(sysprog.Next)
		} else {
			mount, err := emitMount(b, "cgroup", p, m.fstype, flags|unix.MS_RDONLY, m.data)
			if err != nil {
				return nil, err
			}
			left = append(left, leftOut{mount: mount,
				err: MountError{Source: "cgroup", Target: p, FSType: m.fstype, Flags: flags | unix.MS_RDONLY, Data: m.data}})
			l := b.Label()
			leave = &l
			b.On(unix.EPERM, l)
			b.On(unix.EBUSY, l)
		}
		if err := emitLinks(b, base, m); err != nil {
			return nil, err
		}
		if leave != nil {
			done := b.Label()
			b.Jump(done)
			b.Mark(*leave)
			b.Sys("rmdir "+p, unix.SYS_UNLINKAT, sysprog.Int(unix.AT_FDCWD), path, sysprog.Int(unix.AT_REMOVEDIR))
			b.OnAny(sysprog.Next)
			b.Mark(done)
		}
	}
	if _, err := emitMount(b, "", base, "", unix.MS_REMOUNT|unix.MS_BIND|flags|unix.MS_RDONLY, ""); err != nil {
		return nil, err
	}
	b.Explain(func(errno syscall.Errno) error {
		return fmt.Errorf("make %s read-only: %w", base, &MountError{Target: base, Flags: unix.MS_REMOUNT | unix.MS_BIND | flags | unix.MS_RDONLY, Err: errno})
	})
	return left, nil
}

// emitLinks appends the symbolic links base/NAME -> m.dir for the other
// names of a combined hierarchy; one already there is fine.
func emitLinks(b *sysprog.Builder, base string, m cgroupMount) error {
	target, err := sysprog.CString(m.dir)
	if err != nil {
		return fmt.Errorf("cgroup directory %q: %w", m.dir, err)
	}
	for _, l := range m.links {
		link := base + "/" + l
		path, err := sysprog.CString(link)
		if err != nil {
			return fmt.Errorf("cgroup link %q: %w", link, err)
		}
		b.Sys("symlink "+link, unix.SYS_SYMLINKAT, target, sysprog.Int(unix.AT_FDCWD), path)
		b.On(unix.EEXIST, sysprog.Next)
		b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "symlink", Path: link, Err: errno} })
	}
	return nil
}
