package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// ParseJoinDir checks a --join DIR: an absolute directory on a mounted
// cgroup hierarchy, v1 or v2.
func ParseJoinDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%q: not an absolute path", dir)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return "", &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	if fs.Type != unix.CGROUP_SUPER_MAGIC && fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return "", fmt.Errorf("%s: not a cgroup directory (no cgroup or cgroup2 file system there)", dir)
	}
	return filepath.Clean(dir), nil
}

// JoinOnly is what --join allows with it: nothing else of barco-cgroup's.
func (o *Options) JoinOnly(exec bool) error {
	switch {
	case exec:
		return errors.New("--join and --exec exclude each other")
	case len(o.Limits.Args()) > 0 || o.Stats:
		return errors.New("--join runs PROGRAM in cgroups as they are: no limits or --stats with it")
	case o.Name != "" || o.parentGiven:
		return errors.New("--join names its cgroups by their directories: no --name or --parent with it")
	}
	return nil
}

// JoinExisting moves this process, all its threads, into each cgroup
// directory of dirs (one per hierarchy, as /proc/PID/cgroup lists a
// process's), and execs PROGRAM in place, as cgexec does: what PROGRAM
// starts is accounted and limited there. Nothing is made or removed.
func JoinExisting(p *chain.Process, dirs []string, program []string) (int, error) {
	pid := strconv.Itoa(os.Getpid())
	for _, dir := range dirs {
		p.Log.Debugf("join %s", dir)
		if err := writeFile(dir, "cgroup.procs", pid); err != nil {
			return 0, fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return p.Exec(program, os.Environ())
}

// ProcessDirs are the cgroup directories of the process pid, in every
// mounted hierarchy with controllers and in v2's: where a process must go
// to be accounted and limited as pid is (an OCI exec joins its container's
// init so). mountinfo is /proc/self/mountinfo, or a test copy.
func ProcessDirs(mountinfo string, pid int) ([]string, error) {
	l, err := DetectLayout(mountinfo, "/proc/"+strconv.Itoa(pid)+"/cgroup")
	if err != nil {
		return nil, err
	}
	return l.OwnDirs(), nil
}

// OwnDirs are the directories of the cgroups the layout was read for
// (Hierarchy.Own), v2 first.
func (l *Layout) OwnDirs() []string {
	var dirs []string
	if l.V2 != nil && l.V2.Own != "" {
		dirs = append(dirs, l.V2.Dir(l.V2.Own))
	}
	for _, h := range l.V1 {
		dirs = append(dirs, h.Dir(h.Own))
	}
	return dirs
}
