package ns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Kinds are the namespace kinds by their util-linux unshare names.
var Kinds = []struct {
	Name  string
	Short rune
	Flag  uintptr
	Help  string
}{
	{"user", 'U', unix.CLONE_NEWUSER, "new user namespace, with the uid/gid maps below"},
	{"pid", 'p', unix.CLONE_NEWPID, "new pid namespace: PROGRAM is PID 1"},
	{"mount", 'm', unix.CLONE_NEWNS, "new mount namespace"},
	{"uts", 'u', unix.CLONE_NEWUTS, "new UTS namespace (hostname)"},
	{"ipc", 'i', unix.CLONE_NEWIPC, "new IPC namespace"},
	{"net", 'n', unix.CLONE_NEWNET, "new network namespace, with loopback up"},
	{"cgroup", 'C', unix.CLONE_NEWCGROUP, "new cgroup namespace, rooted at the current cgroup"},
	{"time", 'T', unix.CLONE_NEWTIME, "new time namespace"},
}

// Config is what barco-ns was asked for.
type Config struct {
	Flags    uintptr // CLONE_NEW* of the namespaces to create
	Hostname string
	UIDMaps  []IDMap // with CLONE_NEWUSER
	GIDMaps  []IDMap
	UID, GID int  // credentials to take before exec; -1 leaves them
	Init     bool // run a minimal init as PID 1
	Program  []string
	Maps     MapWriter // writes the maps; DirectMapWriter when nil
}

// childEnv names the variable by which a re-executed barco-ns knows it is
// the child inside the namespaces, and where its handshake pipe is.
const childEnv = "BARCO_NS_CHILD"

// childConfig is what the parent sends the child, once the maps are written.
type childConfig struct {
	Hostname string
	Loopback bool
	SetCreds bool
	UID, GID int
	Init     bool
	Program  []string
	// Inheritable is the parent's inheritable capability set, which the
	// child restores after raising its setup capabilities as ambient.
	Inheritable [2]uint32
}

// Validate checks the configuration before any namespace exists.
func (c *Config) Validate() error {
	if c.Hostname != "" && c.Flags&unix.CLONE_NEWUTS == 0 {
		return errors.New("--hostname needs a new UTS namespace (-u)")
	}
	if c.Flags&unix.CLONE_NEWUSER == 0 {
		if len(c.UIDMaps) > 0 || len(c.GIDMaps) > 0 {
			return errors.New("uid/gid maps need a new user namespace (-U)")
		}
		return nil
	}
	if err := ValidateIDMaps("uid", c.UIDMaps); err != nil {
		return err
	}
	if err := ValidateIDMaps("gid", c.GIDMaps); err != nil {
		return err
	}
	if c.UID >= 0 && !Maps(c.UIDMaps, uint32(c.UID)) {
		return fmt.Errorf("--uid %d: not mapped by the uid map %v", c.UID, c.UIDMaps)
	}
	if c.GID >= 0 && !Maps(c.GIDMaps, uint32(c.GID)) {
		return fmt.Errorf("--gid %d: not mapped by the gid map %v", c.GID, c.GIDMaps)
	}
	return nil
}

// Run starts PROGRAM in the new namespaces and waits for it, forwarding
// signals; it returns the status to exit with.
//
// The child is barco-ns itself, re-executed inside the namespaces, because
// a multi-threaded Go process cannot unshare them, and because the child
// has work to do before PROGRAM: wait for its id maps (the handshake), set
// the hostname, bring up loopback, take its credentials.
func Run(c *Config) (int, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	sup := chain.NewSupervisor()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("handshake pipe: %w", err)
	}
	defer w.Close()

	files := []uintptr{0, 1, 2}
	for fd := 3; fd < 3+chain.PreservedFDs(); fd++ {
		files = append(files, uintptr(fd))
	}
	syncFD := len(files)
	files = append(files, r.Fd())
	env := append(os.Environ(), childEnv+"="+strconv.Itoa(syncFD))
	ambient, err := childAmbientCaps(c.Flags&unix.CLONE_NEWUSER != 0)
	if err != nil {
		return 0, err
	}
	chain.Debugf("clone %s", flagNames(c.Flags))
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"barco-ns"}, &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags:  c.Flags,
			AmbientCaps: ambient,
		},
	})
	r.Close()
	if err != nil {
		return 0, cloneError(c.Flags, err)
	}
	chain.Debugf("child pid %d", pid)

	if err := handshake(c, pid, w); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = sup.Wait(pid)
		return 0, err
	}
	ws, err := sup.Wait(pid)
	if err != nil {
		return 0, err
	}
	chain.Debugf("child exited: %v", ws)
	return chain.ExitStatus(ws), nil
}

func handshake(c *Config, pid int, w *os.File) error {
	userns := c.Flags&unix.CLONE_NEWUSER != 0
	if userns {
		mw := c.Maps
		if mw == nil {
			mw = DirectMapWriter{}
		}
		chain.Debugf("write maps uid %v gid %v", c.UIDMaps, c.GIDMaps)
		if err := mw.WriteMaps(pid, c.UIDMaps, c.GIDMaps); err != nil {
			return chain.WithHint(err, "root can map any range; check the ranges against /etc/subuid and /etc/subgid")
		}
	}
	cc := childConfig{
		Hostname: c.Hostname,
		Loopback: c.Flags&unix.CLONE_NEWNET != 0,
		UID:      c.UID,
		GID:      c.GID,
		Init:     c.Init,
		Program:  c.Program,
	}
	var err error
	if cc.Inheritable, err = inheritableCaps(); err != nil {
		return err
	}
	if userns {
		// Become the mapped root unless told otherwise, as unshare --map-root.
		cc.SetCreds = true
		if cc.UID < 0 {
			cc.UID = 0
		}
		if cc.GID < 0 {
			cc.GID = 0
		}
	} else if c.UID >= 0 || c.GID >= 0 {
		cc.SetCreds = true
	}
	// The write end stays open for as long as the parent lives: the child
	// reads its end's hangup as the parent's death.
	if err := json.NewEncoder(w).Encode(cc); err != nil {
		return fmt.Errorf("send configuration to child %d: %w", pid, err)
	}
	return nil
}

func cloneError(flags uintptr, err error) error {
	err = &os.SyscallError{Syscall: "clone " + flagNames(flags), Err: err}
	switch {
	case errors.Is(err, unix.EPERM):
		return chain.WithHint(err, "creating these namespaces needs root, or unprivileged user namespaces enabled (sysctl kernel.unprivileged_userns_clone, AppArmor's restrict_unprivileged_userns)")
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EUSERS):
		return chain.WithHint(err, "a namespace limit is reached: see /proc/sys/user/max_*_namespaces")
	case errors.Is(err, unix.EINVAL):
		return chain.WithHint(err, "the kernel may lack a namespace kind (CONFIG_USER_NS, CONFIG_TIME_NS, ...)")
	}
	return err
}

func flagNames(flags uintptr) string {
	s := ""
	for _, k := range Kinds {
		if flags&k.Flag != 0 {
			if s != "" {
				s += "|"
			}
			s += "CLONE_NEW" + map[string]string{"mount": "NS", "user": "USER", "pid": "PID", "uts": "UTS", "ipc": "IPC", "net": "NET", "cgroup": "CGROUP", "time": "TIME"}[k.Name]
		}
	}
	if s == "" {
		return "(no new namespace)"
	}
	return s
}

// DefaultMaps fills in the maps of a new user namespace that were not
// given: with mapRoot, container 0 is the caller; otherwise the caller's
// subordinate ranges (subuid, subgid files) or FallbackRange. A gid map not
// given copies the uid map when that was given.
func (c *Config) DefaultMaps(mapRoot bool, subuid, subgid, passwd string) error {
	if c.Flags&unix.CLONE_NEWUSER == 0 {
		if mapRoot {
			return errors.New("--map-root needs a new user namespace (-U)")
		}
		return nil
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if mapRoot {
		if len(c.UIDMaps) > 0 || len(c.GIDMaps) > 0 {
			return errors.New("--map-root and --uid-map/--gid-map exclude each other")
		}
		c.UIDMaps = []IDMap{{Container: 0, Host: uid, Size: 1}}
		c.GIDMaps = []IDMap{{Container: 0, Host: gid, Size: 1}}
		return nil
	}
	if len(c.UIDMaps) > 0 && len(c.GIDMaps) == 0 {
		c.GIDMaps = c.UIDMaps
	}
	if len(c.GIDMaps) > 0 && len(c.UIDMaps) == 0 {
		c.UIDMaps = c.GIDMaps
	}
	if len(c.UIDMaps) > 0 {
		return nil
	}
	name := UserName(passwd, uid)
	var err error
	if c.UIDMaps, err = SubordinateMaps(subuid, name, uid); err != nil {
		return err
	}
	c.GIDMaps, err = SubordinateMaps(subgid, name, uid)
	return err
}

func inheritableCaps() ([2]uint32, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return [2]uint32{}, fmt.Errorf("capget: %w", err)
	}
	return [2]uint32{data[0].Inheritable, data[1].Inheritable}, nil
}

// childAmbientCaps are the capabilities the child keeps, as ambient, across
// its exec of itself. In a new user namespace that exec happens before its
// uid is mapped and would otherwise lose every capability it needs for its
// setup (hostname, loopback, credentials). It keeps all it holds rather
// than just those: were PROGRAM's exec to add capabilities, the kernel
// would clear the parent-death signal (commit_creds), and PROGRAM could
// outlive barco-ns.
func childAmbientCaps(userns bool) ([]uintptr, error) {
	last := uintptr(unix.CAP_LAST_CAP)
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = uintptr(n)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	var caps []uintptr
	for c := uintptr(0); c <= last; c++ {
		held := data[c/32].Permitted&(1<<(c%32)) != 0
		inBounding, _ := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
		// A new user namespace grants its creator every capability in it.
		if userns || (held && inBounding == 1) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}
