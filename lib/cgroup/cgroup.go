package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Cgroup is one cgroup: a directory in each v1 hierarchy it joins (see
// V1Controllers), and one in the v2 hierarchy when there is one.
type Cgroup struct {
	Layout *Layout
	// V1 maps each v1 hierarchy the cgroup joins to its directory in it.
	V1 map[*Hierarchy]string
	// V2 is the cgroup's directory in the v2 hierarchy, "" if none.
	V2 string
	// v1 are the keys of V1 in the layout's order, so that every pass
	// over the hierarchies goes the same way.
	v1 []*Hierarchy
	// SharedParent says the parent is barco's own (OwnParent): Remove
	// takes it away when it is empty, whichever run made it. Two runs that
	// overlap would otherwise leave it, each having seen the other's
	// cgroup in it at its end.
	SharedParent bool
	// created are the directories made for it, parents before children.
	created []string
	// Records is the directory of ownership records (DefaultRecordDir);
	// "" keeps none, and sweeps nothing.
	Records  string
	recorded bool
	// sweeping, when not nil, is closed once the removal of stale cgroups
	// that ForkExec started is done.
	sweeping chan struct{}
	// Log is the stage's debug log.
	Log *chain.Log
	// leftPids is the pids limit that ForkExec leaves to a stage child
	// to write (chain.PidsLimitEnv), finalPids the one the v1 start
	// writes once the child runs; 0 when there is none.
	leftPids, finalPids int64
}

// pidsDir is the cgroup's directory that holds pids.max.
func (c *Cgroup) pidsDir() string {
	if d := c.Dir("pids"); d != "" {
		return d
	}
	return c.V2
}

// alwaysV1 are the v1 controllers whose hierarchies every cgroup joins,
// whatever its limits: pids counts the tasks (and holds barco run's
// default limit), devices is a security boundary, memory accounts and
// tells of the kernel's out-of-memory kills.
var alwaysV1 = []string{"pids", "devices", "memory"}

// V1Controllers are the v1 controllers whose hierarchies a cgroup with the
// limits l joins: those of alwaysV1, those the limits set, and cpuacct for
// the CPU time of --stats on pure v1 (in the hybrid layout it comes from
// the v2 hierarchy's cpu.stat). Joining a v1 hierarchy costs a mkdir, a
// thread move and back, and an rmdir on every start; runc joins them all,
// but a cgroup barco made is never updated, so one without a limit in a
// hierarchy would only mirror the caller's cgroup there.
func V1Controllers(l *Limits, stats bool, mode Mode) []string {
	c := append([]string{}, alwaysV1...)
	for _, x := range l.Controllers() {
		if x = v1Name(x); !contains(c, x) {
			c = append(c, x)
		}
	}
	if stats && mode == Legacy {
		c = append(c, "cpuacct")
	}
	return c
}

// Locate names the cgroup parent/name, without creating anything, in the
// v2 hierarchy of l and in each v1 hierarchy that has one of the
// controllers ctrls (see V1Controllers). A relative parent is taken from
// the process's own cgroup, as runc does: in v1 (and the v2 tree of the
// hybrid layout) below it, in v2 beside it (below its parent, since a v2
// cgroup with processes in it cannot delegate controllers).
func Locate(l *Layout, parent, name string, ctrls []string) (*Cgroup, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("cgroup name %q: not a single path component", name)
	}
	c := &Cgroup{Layout: l, V1: map[*Hierarchy]string{}}
	where := func(h *Hierarchy, base string) string {
		p := parent
		if !path.IsAbs(p) {
			p = path.Join(base, p)
		}
		return h.Dir(path.Join(p, name))
	}
	for _, h := range l.V1 {
		for _, ctrl := range h.Controllers {
			if contains(ctrls, ctrl) {
				c.V1[h] = where(h, h.Own)
				c.v1 = append(c.v1, h)
				break
			}
		}
	}
	if l.V2 == nil {
		return c, nil
	}
	if l.Mode == Hybrid {
		// No controllers to delegate: match the v1 cgroups.
		c.V2 = where(l.V2, l.V2.Own)
	} else {
		c.V2 = where(l.V2, path.Dir(l.V2.Own))
	}
	return c, nil
}

// Dir is the cgroup's directory in the v1 hierarchy of controller ctrl, or
// "" when no hierarchy has it or the cgroup does not join it.
func (c *Cgroup) Dir(ctrl string) string {
	if h := c.Layout.Controller(ctrl); h != nil {
		return c.V1[h]
	}
	return ""
}

// dirs are all the cgroup's directories, v2 first.
func (c *Cgroup) dirs() []string {
	var d []string
	if c.V2 != "" {
		d = append(d, c.V2)
	}
	for _, h := range c.v1 {
		d = append(d, c.V1[h])
	}
	return d
}

// DefaultParent is the parent cgroup of barco's cgroups unless told
// otherwise, in every hierarchy.
const DefaultParent = "barco"

// ParentEnv names the variable that replaces DefaultParent as barco's own
// parent, shared by its runs and removed when empty: a test suite, or a
// second installation, keeps its cgroups apart from the machine's.
const ParentEnv = chain.CgroupParentEnv

// OwnParent is barco's own parent cgroup: $BARCO_CGROUP_PARENT, else
// DefaultParent.
func OwnParent() string {
	if p := os.Getenv(ParentEnv); p != "" {
		return p
	}
	return DefaultParent
}

// ErrInUse is returned by Create when the cgroup exists already.
var ErrInUse = errors.New("name already in use")

// Create makes the cgroup in each of its hierarchies, with the parents it
// lacks, and writes the limits l. On failure it removes whatever it made.
//
// The calling process is recorded as its owner first (see
// DefaultRecordDir). A cgroup of the same name whose recorded owner is gone
// is stale and removed first. Other stale cgroups are removed in the
// background once the child runs (ForkExec), and Remove waits for that.
func (c *Cgroup) Create(l *Limits) error { return c.create(l, false) }

// Open uses the cgroup where it exists and makes it where it does not,
// then writes the limits l into it (for --exec). On failure it removes
// only what it made.
func (c *Cgroup) Open(l *Limits) error { return c.create(l, true) }

func (c *Cgroup) create(l *Limits, reuse bool) (err error) {
	defer func() {
		if err != nil {
			c.Remove()
		}
	}()
	if !reuse {
		if c.Records != "" && removeIfStale(recordPath(c.Records, c.dirs()), c.Log) {
			c.Log.Debugf("a stale cgroup of the same name was removed")
		}
		if err := c.writeRecord(); err != nil {
			// Without a record the cgroup is only never swept.
			c.Log.Debugf("%v", err)
		}
	}
	for _, dir := range c.dirs() {
		err := c.mkdir(dir)
		switch {
		case errors.Is(err, unix.EEXIST) && reuse:
		case errors.Is(err, unix.EEXIST):
			return chain.WithHint(fmt.Errorf("cgroup %s: %w", dir, ErrInUse), "choose another --name")
		case err != nil:
			return err
		default:
			c.created = append(c.created, dir)
		}
	}
	if c.Layout.Mode == Unified {
		if err := c.enableControllers(l.Controllers()); err != nil {
			return err
		}
	}
	if dir := c.Dir("cpuset"); dir != "" {
		if err := inheritCpuset(dir); err != nil {
			return err
		}
	}
	return c.apply(l)
}

// enableControllers enables the controllers need on the way to the v2
// cgroup: a controller reaches it only if every cgroup above it enables it
// for its children, here the parents Create made, top down, then the
// parent. Enabling one in a parent also reaches the children it has.
func (c *Cgroup) enableControllers(need []string) error {
	parent := filepath.Dir(c.V2)
	var above []string
	for _, p := range c.created {
		if strings.HasPrefix(parent, p+"/") {
			above = append(above, p)
		}
	}
	for _, p := range append(above, parent) {
		if err := EnableControllers(p, c.Layout.V2.Mount, need); err != nil {
			return err
		}
	}
	return nil
}

// apply writes l into the cgroup: into the v1 hierarchies where there
// are any (in hybrid mode v2 has no controllers), else into v2.
func (c *Cgroup) apply(l *Limits) error {
	if c.Layout.Mode == Unified {
		if err := ApplyV2(c.V2, l, c.Log); err != nil {
			return err
		}
		if l.Devices != nil {
			return AttachDeviceFilter(c.V2, l.Devices)
		}
		return nil
	}
	dirs := map[string]string{}
	for _, h := range c.v1 {
		for _, ctrl := range h.Controllers {
			dirs[ctrl] = c.V1[h]
		}
	}
	return ApplyV1(dirs, l, c.Log)
}

// mkdir makes the cgroup directory dir. It tries dir alone first, which
// is all it takes when the parent exists, and makes the parents only when
// that fails with ENOENT; also when another barco-cgroup removed the
// parent as it finished, between the two.
func (c *Cgroup) mkdir(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	for try := 0; err == unix.ENOENT && try < 3; try++ {
		if perr := c.mkdirParents(filepath.Dir(dir)); perr != nil {
			return perr
		}
		err = unix.Mkdir(dir, 0o755)
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return nil
}

// mkdirParents makes dir and the parents it lacks, top down.
func (c *Cgroup) mkdirParents(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	if err == unix.ENOENT {
		if perr := c.mkdirParents(filepath.Dir(dir)); perr != nil {
			return perr
		}
		err = unix.Mkdir(dir, 0o755)
	}
	switch err {
	case nil:
		c.created = append(c.created, dir)
		return c.inheritCpusetIfV1(dir)
	case unix.EEXIST:
		return nil
	}
	return &os.PathError{Op: "mkdir", Path: dir, Err: err}
}

func (c *Cgroup) inheritCpusetIfV1(dir string) error {
	if h := c.Layout.Controller("cpuset"); h != nil && c.V1[h] != "" && strings.HasPrefix(dir, h.Mount+"/") {
		return inheritCpuset(dir)
	}
	return nil
}

// inheritCpuset gives a new v1 cpuset cgroup its parent's CPUs and memory
// nodes: v1 starts it with none, and a cgroup without CPUs takes no tasks.
func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readFile(dir, f)
		if err != nil || v != "" {
			continue
		}
		pv, err := readFile(filepath.Dir(dir), f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, pv); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleLater removes, in the background, the recorded cgroups
// whose owner is gone (see DefaultRecordDir); Remove waits for it.
func (c *Cgroup) removeStaleLater() {
	if c.Records == "" || c.sweeping != nil {
		return
	}
	done := make(chan struct{})
	c.sweeping = done
	go func() {
		defer close(done)
		sweep(c.Records, c.Log)
	}()
}

// Kill kills every process left in the cgroup: through cgroup.kill where
// the v2 hierarchy has it, else by signalling what cgroup.procs lists
// until it is empty.
func (c *Cgroup) Kill() error {
	if c.V2 != "" {
		err := writeFile(c.V2, "cgroup.kill", "1")
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, dir := range c.dirs() {
		if err := killProcs(dir); err != nil {
			return err
		}
	}
	return nil
}

func killProcs(dir string) error {
	self := os.Getpid()
	for i := 0; i < 100; i++ {
		pids, err := Procs(dir)
		if err != nil || len(pids) == 0 {
			return err
		}
		for _, pid := range pids {
			if pid != self {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	return nil
}

// Procs lists the processes in the cgroup directory dir.
func Procs(dir string) ([]int, error) {
	data, err := chain.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// RemoveTimeout bounds how long Remove waits for killed processes to go.
const RemoveTimeout = 10 * time.Second

// Remove kills what is left in the cgroup and removes it from each of its
// hierarchies, then removes the parents it created if they are empty. It
// waits first for the removal of stale cgroups that ForkExec started.
func (c *Cgroup) Remove() error {
	if c.sweeping != nil {
		<-c.sweeping
		c.sweeping = nil
	}
	var first error
	var leaves, parents []string
	for _, d := range c.created {
		if contains(c.dirs(), d) {
			leaves = append(leaves, d)
		} else {
			parents = append(parents, d)
		}
	}
	deadline := time.Now().Add(RemoveTimeout)
	killed := false
	for _, dir := range leaves {
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				if first == nil {
					first = &os.PathError{Op: "rmdir", Path: dir, Err: err}
				}
				break
			}
			if !killed {
				c.Log.Debugf("kill what is left in %s", dir)
				if err := c.Kill(); err != nil && first == nil {
					first = err
				}
				killed = true
			} else {
				_ = killProcs(dir)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if c.SharedParent {
		for _, dir := range leaves {
			if p := filepath.Dir(dir); !contains(parents, p) {
				parents = append(parents, p)
			}
		}
	}
	for i := len(parents) - 1; i >= 0; i-- {
		// Another barco-cgroup may be using the parent: then it stays.
		_ = unix.Rmdir(parents[i])
	}
	if first == nil {
		c.removeRecord()
	}
	c.created = nil
	return first
}

// Stats are what a cgroup used, read at its end.
type Stats struct {
	MemoryPeak int64         // bytes, -1 if unknown
	CPUTime    time.Duration // -1 if unknown
	PidsPeak   int64         // -1 if unknown
}

// ReadStats reads the peak memory, CPU time and highest task count.
func (c *Cgroup) ReadStats() Stats {
	s := Stats{MemoryPeak: -1, CPUTime: -1, PidsPeak: -1}
	if c.Layout.Mode == Unified {
		s.MemoryPeak = readInt(c.V2, "memory.peak")
		s.PidsPeak = readInt(c.V2, "pids.peak")
	} else {
		s.MemoryPeak = readInt(c.Dir("memory"), "memory.max_usage_in_bytes")
		s.PidsPeak = readInt(c.Dir("pids"), "pids.peak")
		if ns := readInt(c.Dir("cpuacct"), "cpuacct.usage"); ns >= 0 {
			s.CPUTime = time.Duration(ns)
		}
	}
	if s.CPUTime < 0 && c.V2 != "" {
		// cpu.stat is there in v2 even without the cpu controller.
		if us := readKey(c.V2, "cpu.stat", "usage_usec"); us >= 0 {
			s.CPUTime = time.Duration(us) * time.Microsecond
		}
	}
	return s
}

// OOMKills is how many processes of the cgroup the kernel killed for
// memory.
func (c *Cgroup) OOMKills() int64 {
	if c.Layout.Mode == Unified {
		return readKey(c.V2, "memory.events", "oom_kill")
	}
	return readKey(c.Dir("memory"), "memory.oom_control", "oom_kill")
}

func readInt(dir, file string) int64 {
	if dir == "" {
		return -1
	}
	v, err := readFile(dir, file)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// readKey reads the value of key in a flat keyed file ("oom_kill 1").
func readKey(dir, file, key string) int64 {
	if dir == "" {
		return -1
	}
	v, err := readFile(dir, file)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(v, "\n") {
		if k, val, ok := strings.Cut(line, " "); ok && k == key {
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// FormatSize writes a byte count the way the user would: 64M, 1G, 1536K.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return strconv.FormatInt(n, 10)
}
