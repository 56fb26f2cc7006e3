package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"barco/lib/caps"
	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/hook"
	"barco/lib/jsondecode"
	"barco/lib/mount"
	"barco/lib/ns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// loadConfig reads BUNDLE/config.json and checks what create needs of it;
// it returns the file's contents too.
func loadConfig(bundle string) (*specs.Spec, []byte, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s specs.Spec
	if err := jsondecode.Unmarshal(data, &s); err != nil {
		return nil, nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	return &s, data, checkConfig(&s)
}

func checkConfig(s *specs.Spec) error {
	if !isSpecVersion(s.Version) {
		return fmt.Errorf("config.json: ociVersion %q: not a version of the runtime spec 1.x", s.Version)
	}
	if s.Process == nil {
		return errors.New("config.json: no process: there is nothing to run")
	}
	if len(s.Process.Args) == 0 {
		return errors.New("config.json: process.args is empty")
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("config.json: no root.path")
	}
	if s.Linux == nil {
		return errors.New("config.json: no linux section")
	}
	return nil
}

// isSpecVersion reports whether v is a version of the runtime spec 1.x:
// 1.MINOR.PATCH with an optional -SUFFIX of letters, digits, dots and
// dashes. Written out rather than as a regexp: compiling one at package
// init costs every barco command half a millisecond.
func isSpecVersion(v string) bool {
	rest, ok := strings.CutPrefix(v, "1.")
	if !ok {
		return false
	}
	minor, rest, ok := strings.Cut(rest, ".")
	if !ok || !allOf(minor, isDigit) {
		return false
	}
	patch, suffix, dashed := strings.Cut(rest, "-")
	if !allOf(patch, isDigit) {
		return false
	}
	return !dashed || allOf(suffix, func(c byte) bool { return isAlnum(c) || c == '.' || c == '-' })
}

// allOf reports whether s is not empty and every byte of it is ok.
func allOf(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// stageChain is a config translated into the standard chain of stages: what
// create runs, and what delete must undo.
type stageChain struct {
	stages      [][]string // one argv per stage, PROGRAM last
	env         []string   // the chain's environment: the process's own
	cgroup      cgroup.Options
	consoleSize *specs.Box // the terminal's, when the process has one
}

// unsupported is the error for a part of the config barco cannot honour:
// create refuses it rather than run a container that differs from it.
func unsupported(what string) error {
	return fmt.Errorf("config.json: %s: not supported by barco", what)
}

// translate turns the config of a bundle into the chain of stages that
// makes the container, with the same options a person would give them.
// pidFile is where barco-ns writes the init's pid.
func translate(s *specs.Spec, bundle, id, pidFile string) (*stageChain, error) {
	c := &stageChain{}
	cg, err := cgroupStage(s, id, &c.cgroup)
	if err != nil {
		return nil, err
	}
	ns, err := nsStage(s, pidFile)
	if err != nil {
		return nil, err
	}
	mnt, err := mountStage(s, bundle)
	if err != nil {
		return nil, err
	}
	cp, err := capsStage(s)
	if err != nil {
		return nil, err
	}
	sc, err := seccompStage(s)
	if err != nil {
		return nil, err
	}
	if err := checkProcess(s); err != nil {
		return nil, err
	}
	hooked, err := addHooks(s, bundle, id)
	if err != nil {
		return nil, err
	}
	c.stages = [][]string{cg, ns, mnt, cp, sc, s.Process.Args}
	if s.Linux.Seccomp != nil && !s.Process.NoNewPrivileges {
		// Without no_new_privs only CAP_SYS_ADMIN may load a filter, which
		// the process's capabilities seldom hold: the filter goes first,
		// as runc loads it, and the profile must allow what barco-caps
		// then does (capset, setresuid, setgroups, prctl).
		c.stages = [][]string{cg, ns, mnt, sc, cp, s.Process.Args}
	}
	// The process's environment is the chain's: a BARCO_ variable in it
	// would reconfigure the stages, so none is taken.
	for _, kv := range s.Process.Env {
		if !strings.HasPrefix(kv, "BARCO_") {
			c.env = append(c.env, kv)
		}
	}
	if s.Process.Terminal {
		c.consoleSize = s.Process.ConsoleSize
	}
	if hooked.runtime != "" {
		c.env = append(c.env, hook.RuntimeEnv+"="+hooked.runtime)
	}
	if hooked.create != "" {
		c.env = append(c.env, hook.CreateEnv+"="+hooked.create)
	}
	if hooked.start != "" {
		c.env = append(c.env, hook.StartEnv+"="+hooked.start)
	}
	return c, nil
}

// withRuntimeEnv is h with an environment: its own, or the runtime's
// (this command's, less barco's variables), as runc's hooks without one
// get runc's. The stages that run it have the container's process
// environment as theirs, which is the container user's to choose and no
// hook's on the host (PATH, LD_PRELOAD).
func withRuntimeEnv(h specs.Hook) specs.Hook {
	if h.Env != nil {
		return h
	}
	h.Env = []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BARCO_") {
			h.Env = append(h.Env, kv)
		}
	}
	return h
}

// hookedStages are the variables with the config's hooks that barco-ns,
// barco-mount and the last stage run (in the environment, not on a
// command line every user can read, and not limited to its size).
type hookedStages struct {
	runtime, create, start string // hook.RuntimeEnv's, CreateEnv's and StartEnv's values
}

// addHooks gives the chain the hooks that run as the container is made:
// prestart and createRuntime in barco-ns (hook.RuntimeEnv) once
// barco-mount has built the container's filesystem (the runtime's
// namespaces, the pid the host's); createContainer in barco-mount
// (hook.CreateEnv) just after them, before pivot_root (the container's
// namespaces, the host's paths); and
// startContainer in the stage that execs the process, once start opened
// the gate (the container's root, its user and capabilities, and the
// process's environment for a hook without one). Each gets the state with
// the init's host pid. poststart and poststop run in start and delete.
func addHooks(s *specs.Spec, bundle, id string) (hookedStages, error) {
	var out hookedStages
	h := s.Hooks
	if h == nil {
		return out, nil
	}
	//lint:ignore SA1019 prestart is deprecated in the spec, and still what Docker's config uses
	for name, list := range map[string][]specs.Hook{"prestart": h.Prestart, "createRuntime": h.CreateRuntime,
		"createContainer": h.CreateContainer, "startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop} {
		for _, one := range list {
			if err := hook.Check(one); err != nil {
				return out, fmt.Errorf("config.json: hooks.%s: %w", name, err)
			}
		}
	}
	// Status created for all of them, as crun and the validation suite
	// (runtime-tools' hooks_stdin) have it; runc says creating before
	// start.
	state := specs.State{Version: specs.Version, ID: id, Status: specs.StateCreated, Bundle: bundle, Annotations: s.Annotations}
	set := func(lists ...[]specs.Hook) (string, error) {
		var hooks []specs.Hook
		for _, list := range lists {
			for _, one := range list {
				hooks = append(hooks, withRuntimeEnv(one))
			}
		}
		if len(hooks) == 0 {
			return "", nil
		}
		data, err := json.Marshal(hook.Set{State: state, Hooks: hooks})
		return string(data), err
	}
	var err error
	//lint:ignore SA1019 prestart is deprecated in the spec, and still what Docker's config uses
	if out.runtime, err = set(h.Prestart, h.CreateRuntime); err != nil {
		return out, err
	}
	if out.create, err = set(h.CreateContainer); err != nil {
		return out, err
	}
	if len(h.StartContainer) > 0 {
		data, err := json.Marshal(hook.Set{State: state, Hooks: h.StartContainer})
		if err != nil {
			return out, err
		}
		out.start = string(data)
	}
	return out, nil
}

func checkProcess(s *specs.Spec) error {
	p := s.Process
	switch {
	case p.ApparmorProfile != "":
		return errors.New("config.json: process.apparmorProfile: this machine has no AppArmor to apply it")
	case p.SelinuxLabel != "":
		return errors.New("config.json: process.selinuxLabel: this machine has no SELinux to apply it")
	case p.User.Umask != nil && *p.User.Umask > 0o777:
		return fmt.Errorf("config.json: process.user.umask %#o: not a file mode mask", *p.User.Umask)
	}
	l := s.Linux
	switch {
	case l.MountLabel != "":
		return errors.New("config.json: linux.mountLabel: this machine has no SELinux to apply it")
	case l.IntelRdt != nil:
		return unsupported("linux.intelRdt")
	case l.Personality != nil:
		return unsupported("linux.personality")
	}
	return nil
}

// cgroupStage is barco-cgroup --exec: the chain joins the cgroup that the
// config's cgroupsPath names (absolute, or relative to barco's own), made
// with the config's limits; delete removes it.
func cgroupStage(s *specs.Spec, id string, o *cgroup.Options) ([]string, error) {
	p := s.Linux.CgroupsPath
	if p == "" {
		p = path.Join("/", cgroup.OwnParent(), id)
	}
	if strings.Contains(p, ":") {
		return nil, errors.New("config.json: cgroupsPath " + strconv.Quote(p) + ": a systemd slice:prefix:name path; barco has no systemd cgroup driver")
	}
	clean := path.Clean(p)
	if clean == "/" || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
		return nil, fmt.Errorf("config.json: cgroupsPath %q: not a cgroup of the container's own", p)
	}
	o.Parent, o.Name = path.Dir(clean), path.Base(clean)
	if o.Parent == "." {
		o.Parent = ""
	}
	// As barco-cgroup decides: a user, or root of a user's own user
	// namespace (rootless podman), makes a cgroup only where one is
	// delegated to it, else runs without one.
	o.UID, o.Unprivileged = os.Geteuid(), !chain.HostRoot()
	if err := limits(s.Linux.Resources, &o.Limits); err != nil {
		return nil, err
	}
	if !chain.HostRoot() {
		// Device rules are root's (a v1 devices cgroup, or a v2 device
		// program, which only CAP_SYS_ADMIN attaches): a user's container
		// cannot make device nodes anyway. runc ignores them too.
		o.Limits.Devices = nil
	}
	argv := []string{"barco-cgroup", "--exec", "--parent", o.Parent, "--name", o.Name}
	return append(argv, o.Limits.Args()...), nil
}

// limits reads linux.resources; zeros mean unset, as the engines write
// them.
func limits(r *specs.LinuxResources, l *cgroup.Limits) error {
	if r == nil {
		l.Devices, _ = deviceRules(nil)
		return nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil && *m.Limit > 0 {
			l.Memory = *m.Limit
		}
		if m.Swap != nil && *m.Swap > 0 {
			l.MemorySwap = *m.Swap
		}
		if m.Reservation != nil && *m.Reservation > 0 {
			l.MemoryReservation = *m.Reservation
		}
		// Docker sends -1 (as the unsigned field's top value) for the
		// kernel's own; runc ignores above 100 the same way.
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			l.MemorySwappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			l.OOMKillDisable = true
		}
		//lint:ignore SA1019 Docker still sends memory.kernel, as 0; anything else is refused
		if (m.Kernel != nil && *m.Kernel > 0) || (m.KernelTCP != nil && *m.KernelTCP > 0) {
			return unsupported("linux.resources.memory kernel or kernelTCP")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares > 0 {
			l.CPUShares = *c.Shares
		}
		if c.Quota != nil && *c.Quota > 0 {
			l.CPUQuota = *c.Quota
			if c.Period != nil && *c.Period > 0 {
				l.CPUPeriod = *c.Period
			}
		}
		l.CpusetCPUs, l.CpusetMems = c.Cpus, c.Mems
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			return unsupported("linux.resources.cpu realtime")
		}
	}
	if p := r.Pids; p != nil && p.Limit > 0 {
		l.Pids = p.Limit
	}
	if b := r.BlockIO; b != nil && ((b.Weight != nil && *b.Weight > 0) || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0) {
		return unsupported("linux.resources.blockIO")
	}
	if len(r.HugepageLimits) > 0 {
		return unsupported("linux.resources.hugepageLimits")
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		return unsupported("linux.resources.network")
	}
	if len(r.Unified) > 0 {
		return unsupported("linux.resources.unified")
	}
	devs, err := deviceRules(r.Devices)
	if err != nil {
		return err
	}
	l.Devices = devs
	return nil
}

// deviceRules reads the device cgroup rules. A config without any gets the
// default devices, as with runc and crun. Otherwise the rules after the
// last deny-all come first, in their order (the runtime spec's validator
// reads them back so from devices.list), then the defaults, which every
// container has whatever its config allows, as with crun. Rules that deny
// nothing at first allow every device: no device control.
func deviceRules(rules []specs.LinuxDeviceCgroup) ([]cgroup.DeviceRule, error) {
	if len(rules) == 0 {
		return append([]cgroup.DeviceRule{}, cgroup.DefaultDevices...), nil
	}
	denyAll := -1
	for i, r := range rules {
		if d := deviceRule(r); !r.Allow && d.Type == 'a' && d.Major < 0 && d.Minor < 0 && d.Access == "rwm" {
			denyAll = i
		}
	}
	if denyAll < 0 {
		for _, r := range rules {
			if !r.Allow {
				return nil, unsupported("linux.resources.devices: a deny rule without a deny-all rule first")
			}
		}
		return nil, nil
	}
	var out []cgroup.DeviceRule
	for _, r := range rules[denyAll+1:] {
		d := deviceRule(r)
		if r.Allow {
			out = append(out, d)
			continue
		}
		// A deny takes back what it covers of the rules allowed since the
		// deny-all; one that covers part of a wider rule has no form in a
		// list of allowed devices.
		kept := out[:0]
		for _, a := range out {
			switch {
			case covers(d, a):
				a.Access = strings.Map(func(c rune) rune {
					if strings.ContainsRune(d.Access, c) {
						return -1
					}
					return c
				}, a.Access)
				if a.Access == "" {
					continue
				}
			case overlaps(d, a):
				return nil, unsupported(fmt.Sprintf("linux.resources.devices: deny %s after allow %s", d, a))
			}
			kept = append(kept, a)
		}
		out = kept
	}
	return append(out, cgroup.DefaultDevices...), nil
}

// deviceRule is r with the runtime spec's defaults: any type, any
// major and minor, every access.
func deviceRule(r specs.LinuxDeviceCgroup) cgroup.DeviceRule {
	d := cgroup.DeviceRule{Type: 'a', Major: -1, Minor: -1, Access: r.Access}
	if r.Type != "" {
		d.Type = r.Type[0]
	}
	if r.Major != nil {
		d.Major = *r.Major
	}
	if r.Minor != nil {
		d.Minor = *r.Minor
	}
	if d.Access == "" {
		d.Access = "rwm"
	}
	return d
}

// covers says whether every device a names is one d names.
func covers(d, a cgroup.DeviceRule) bool {
	return (d.Type == 'a' || d.Type == a.Type) && (d.Major < 0 || d.Major == a.Major) && (d.Minor < 0 || d.Minor == a.Minor)
}

// overlaps says whether some access to some device is in both d and a.
func overlaps(d, a cgroup.DeviceRule) bool {
	match := func(x, y int64) bool { return x < 0 || y < 0 || x == y }
	return (d.Type == 'a' || a.Type == 'a' || d.Type == a.Type) && match(d.Major, a.Major) && match(d.Minor, a.Minor) &&
		strings.ContainsAny(d.Access, a.Access)
}

var nsOptions = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "-p", specs.NetworkNamespace: "-n", specs.MountNamespace: "-m",
	specs.IPCNamespace: "-i", specs.UTSNamespace: "-u", specs.UserNamespace: "-U",
	specs.CgroupNamespace: "-C", specs.TimeNamespace: "-T",
}

// nsStage is barco-ns --detach: it makes the namespaces, writes the
// init's pid, and leaves the init to the engine's subreaper.
func nsStage(s *specs.Spec, pidFile string) ([]string, error) {
	argv := []string{"barco-ns", "--detach", "--pid-file", pidFile}
	seen := map[specs.LinuxNamespaceType]bool{}
	joined := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		opt, ok := nsOptions[n.Type]
		if !ok {
			return nil, fmt.Errorf("config.json: namespace type %q: unknown", n.Type)
		}
		if seen[n.Type] {
			return nil, fmt.Errorf("config.json: namespace %s: given twice", n.Type)
		}
		seen[n.Type] = true
		if n.Path != "" && (n.Type == specs.MountNamespace || n.Type == specs.UserNamespace) {
			// barco-ns joins them only with no new namespace at all.
			return nil, unsupported("joining a " + string(n.Type) + " namespace by path")
		}
		if n.Path != "" {
			kind := string(n.Type)
			if n.Type == specs.NetworkNamespace {
				kind = "net"
			}
			if _, err := ns.ParseJoin(kind + "=" + n.Path); err != nil {
				return nil, fmt.Errorf("config.json: namespace %s: %w", n.Type, err)
			}
			argv = append(argv, "--join", kind+"="+n.Path)
			joined[n.Type] = true
			continue
		}
		argv = append(argv, opt)
	}
	if seen[specs.UserNamespace] {
		if len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
			return nil, errors.New("config.json: a user namespace without uidMappings and gidMappings")
		}
		for _, m := range s.Linux.UIDMappings {
			argv = append(argv, "--uid-map", fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size))
		}
		for _, m := range s.Linux.GIDMappings {
			argv = append(argv, "--gid-map", fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size))
		}
		// barco-ns makes the init root of the namespace; barco-caps then
		// takes the process's own user.
	} else if len(s.Linux.UIDMappings)+len(s.Linux.GIDMappings) > 0 {
		return nil, errors.New("config.json: uidMappings and gidMappings need a user namespace")
	}
	if s.Process.OOMScoreAdj != nil {
		argv = append(argv, "--oom-score-adj", strconv.Itoa(*s.Process.OOMScoreAdj))
	}
	keys := make([]string, 0, len(s.Linux.Sysctl))
	for k := range s.Linux.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kv := k + "=" + s.Linux.Sysctl[k]
		if err := chain.CheckSysctl(kv); err != nil {
			return nil, fmt.Errorf("config.json: linux.sysctl: %w", err)
		}
		argv = append(argv, "--sysctl", kv)
	}
	for _, r := range s.Process.Rlimits {
		v := fmt.Sprintf("%s=%d:%d", r.Type, r.Soft, r.Hard)
		if _, err := chain.ParseRlimit(v); err != nil {
			return nil, fmt.Errorf("config.json: process.rlimits: %w", err)
		}
		argv = append(argv, "--rlimit", v)
	}
	if s.Hostname != "" && !joined[specs.UTSNamespace] {
		// A joined UTS namespace keeps its own name: it is another's.
		if !seen[specs.UTSNamespace] {
			return nil, errors.New("config.json: hostname needs a uts namespace of the container's own")
		}
		argv = append(argv, "--hostname", s.Hostname)
	}
	if s.Domainname != "" {
		return nil, unsupported("domainname")
	}
	if !seen[specs.MountNamespace] {
		return nil, unsupported("a container without a mount namespace of its own")
	}
	return argv, nil
}

// The mounts every container gets from barco-mount; a config that lacks
// one of them gets barco-mount's --no-* option.
var defaultMounts = map[string]string{
	"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs",
	"/dev/mqueue": "mqueue", "/sys": "sysfs", "/sys/fs/cgroup": "cgroup",
}

// shmIsDefault says whether a /dev/shm tmpfs with opts is barco-mount's
// own: 64 MiB, mode 1777, nosuid, nodev, noexec.
func shmIsDefault(opts []string) bool {
	for _, o := range opts {
		switch o {
		case "nosuid", "nodev", "noexec", "rw", "mode=1777", "size=65536k", "size=64m", "size=67108864":
		default:
			return false
		}
	}
	return true
}

// mountStage is barco-mount with the config's root and mounts. The default
// filesystem of the runtime spec is barco-mount's own; other mounts are
// volumes (bind) and tmpfs.
func mountStage(s *specs.Spec, bundle string) ([]string, error) {
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	argv := []string{"barco-mount", "--rootfs", root}
	if s.Root.Readonly {
		argv = append(argv, "--read-only")
	}
	have := map[string]bool{}
	var extra []string
	for _, m := range s.Mounts {
		dest := path.Clean(m.Destination)
		if !path.IsAbs(dest) {
			return nil, fmt.Errorf("config.json: mount destination %q: not absolute", m.Destination)
		}
		if t, ok := defaultMounts[dest]; ok && (m.Type == t || (t == "cgroup" && m.Type == "cgroup2")) {
			have[dest] = true
			if dest != "/dev/shm" || shmIsDefault(m.Options) {
				continue
			}
			// Another size (docker run --shm-size): a tmpfs of that size
			// over barco-mount's own.
		}
		if m.Source != "" && !path.IsAbs(m.Source) && isBind(m) {
			// Relative to the bundle, as runc reads it.
			m.Source = filepath.Join(bundle, m.Source)
		}
		opt, err := mountOption(m, dest)
		if err != nil {
			return nil, err
		}
		extra = append(extra, opt...)
	}
	if !have["/proc"] {
		// The start gate reopens its FIFO through the container's /proc.
		return nil, unsupported("a container without /proc")
	}
	if !have["/dev"] {
		argv = append(argv, "--no-dev")
	}
	if !have["/sys"] {
		argv = append(argv, "--no-sys")
	}
	if have["/sys/fs/cgroup"] {
		argv = append(argv, "--cgroupfs")
	}
	argv = append(argv, extra...)
	for _, d := range s.Linux.Devices {
		if !have["/dev"] {
			return nil, fmt.Errorf("config.json: linux.devices %s: needs the /dev mount", d.Path)
		}
		mode := os.FileMode(0o666)
		if d.FileMode != nil {
			mode = *d.FileMode
		}
		uid, gid := uint32(0), uint32(0)
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		argv = append(argv, "--device", fmt.Sprintf("%s:%s:%d:%d:%o:%d:%d", d.Path, d.Type, d.Major, d.Minor, mode.Perm(), uid, gid))
	}
	if cwd := s.Process.Cwd; cwd != "" && cwd != "/" {
		if !path.IsAbs(cwd) {
			return nil, fmt.Errorf("config.json: process.cwd %q: not absolute", cwd)
		}
		argv = append(argv, "--workdir", cwd)
	}
	if len(s.Linux.MaskedPaths)+len(s.Linux.ReadonlyPaths) == 0 {
		argv = append(argv, "--no-masks")
	}
	for _, l := range []struct {
		opt   string
		paths []string
	}{{"--mask", s.Linux.MaskedPaths}, {"--readonly", s.Linux.ReadonlyPaths}} {
		for _, p := range l.paths {
			if !path.IsAbs(p) {
				return nil, fmt.Errorf("config.json: %s %q: not absolute", strings.TrimPrefix(l.opt, "--"), p)
			}
			argv = append(argv, l.opt, p)
		}
	}
	if p := s.Linux.RootfsPropagation; p != "" {
		if _, ok := mount.Propagations[p]; !ok {
			return nil, fmt.Errorf("config.json: linux.rootfsPropagation %q: unknown", p)
		}
		argv = append(argv, "--propagation", p)
	}
	return argv, nil
}

// isBind says whether mountOption reads m as a bind mount.
func isBind(m specs.Mount) bool {
	return m.Type == "bind" || m.Type == "" || m.Type == "none" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// mountOption is the barco-mount option for one mount of the config.
func mountOption(m specs.Mount, dest string) ([]string, error) {
	bind := isBind(m)
	ro, rbind := false, false
	prop := ""
	var attrs []string
	var data []string
	for _, o := range m.Options {
		switch o {
		case "bind":
			bind = true
		case "rbind":
			bind, rbind = true, true
		case "ro":
			ro = true
		case "nosuid", "nodev":
			attrs = append(attrs, o)
		case "rw", "relatime", "strictatime", "noatime":
			// Nothing a container could tell.
		case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
			prop = o
		case "noexec":
			attrs = append(attrs, o)
			data = append(data, o)
		case "exec", "tmpcopyup":
			data = append(data, o)
		default:
			if k, _, ok := strings.Cut(o, "="); ok && (k == "size" || k == "mode" || k == "nr_inodes") {
				data = append(data, o)
				continue
			}
			return nil, unsupported(fmt.Sprintf("mount option %q on %s", o, dest))
		}
	}
	switch {
	case bind && slices.Contains(data, "tmpcopyup"):
		return nil, unsupported("mount option \"tmpcopyup\" on a bind mount (" + dest + ")")
	case bind:
		var opts []string
		if ro {
			opts = append(opts, "ro")
		}
		opts = append(opts, attrs...)
		if !rbind {
			opts = append(opts, "norbind")
		}
		if prop != "" {
			opts = append(opts, prop)
		}
		v := m.Source + ":" + dest
		if len(opts) > 0 {
			v += ":" + strings.Join(opts, ",")
		}
		return []string{"--volume", v}, nil
	case m.Type == "tmpfs":
		if ro {
			data = append(data, "ro")
		}
		if prop != "" {
			data = append(data, prop)
		}
		if !slices.Contains(data, "noexec") && !slices.Contains(data, "exec") {
			// barco-mount's tmpfs is noexec unless told; a config's only
			// when it says so.
			data = append(data, "exec")
		}
		v := dest
		if len(data) > 0 {
			v += ":" + strings.Join(data, ",")
		}
		return []string{"--tmpfs", v}, nil
	}
	return nil, unsupported(fmt.Sprintf("mount of type %q on %s", m.Type, dest))
}

// capsStage is barco-caps with the process's user and capabilities.
func capsStage(s *specs.Spec) ([]string, error) {
	p := s.Process
	argv := []string{"barco-caps"}
	set := func(names []string) (string, error) {
		var out []string
		for _, n := range names {
			if _, err := caps.ParseList(n); err != nil {
				return "", fmt.Errorf("config.json: capability %q: %w", n, err)
			}
			out = append(out, strings.ToLower(strings.TrimPrefix(strings.ToUpper(n), "CAP_")))
		}
		if len(out) == 0 {
			return "none", nil
		}
		return strings.Join(out, ","), nil
	}
	c := p.Capabilities
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	// The five sets as given; the kernel then applies its exec rules, as
	// under runc (root's permitted set is its bounding set). An ambient
	// capability the kernel would refuse, not both permitted and
	// inheritable, is left out, as runc and crun do: runc spec's own
	// config asks for three.
	var ambient []string
	for _, a := range c.Ambient {
		if slices.Contains(c.Permitted, a) && slices.Contains(c.Inheritable, a) {
			ambient = append(ambient, a)
		}
	}
	for _, s := range []struct {
		opt   string
		names []string
	}{
		{"--caps", c.Bounding}, {"--permitted", c.Permitted}, {"--effective", c.Effective},
		{"--inheritable", c.Inheritable}, {"--ambient", ambient},
	} {
		list, err := set(s.names)
		if err != nil {
			return nil, err
		}
		argv = append(argv, s.opt, list)
	}
	user := strconv.FormatUint(uint64(p.User.UID), 10) + ":" + strconv.FormatUint(uint64(p.User.GID), 10)
	argv = append(argv, "--user", user)
	if len(p.User.AdditionalGids) > 0 {
		gids := make([]string, len(p.User.AdditionalGids))
		for i, g := range p.User.AdditionalGids {
			gids[i] = strconv.FormatUint(uint64(g), 10)
		}
		argv = append(argv, "--groups", strings.Join(gids, ","))
	}
	if p.NoNewPrivileges {
		argv = append(argv, "--no-new-privs")
	}
	// runc's and crun's default, whatever the engine's own umask: podman
	// sets 0022 explicitly, Docker and containerd rely on it.
	umask := uint32(0o022)
	if p.User.Umask != nil {
		umask = *p.User.Umask
	}
	argv = append(argv, "--umask", fmt.Sprintf("%04o", umask))
	return argv, nil
}

// seccompStage is barco-seccomp: no filter unless the config has one.
func seccompStage(s *specs.Spec) ([]string, error) {
	argv := []string{"barco-seccomp"}
	if s.Linux.Seccomp == nil {
		argv = append(argv, "--profile", "unconfined")
		if !s.Process.NoNewPrivileges {
			argv = append(argv, "--allow-new-privs")
		}
		return argv, nil
	}
	sc := s.Linux.Seccomp
	if sc.ListenerPath != "" || hasNotify(sc) {
		return nil, unsupported("linux.seccomp: SCMP_ACT_NOTIFY and listenerPath")
	}
	// barco-seccomp reads a profile given as its JSON, the OCI form
	// included: the config's own, with nothing on the host's disk.
	data, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	argv = append(argv, "--profile", string(data))
	if !s.Process.NoNewPrivileges {
		argv = append(argv, "--allow-new-privs")
	}
	return argv, nil
}

func hasNotify(sc *specs.LinuxSeccomp) bool {
	if sc.DefaultAction == specs.ActNotify {
		return true
	}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActNotify {
			return true
		}
	}
	return false
}
