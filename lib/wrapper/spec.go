// Package wrapper turns one `barco run` command line into the standard
// chain of stages (shared/design/chain.md) and runs it. It never does a
// stage's work itself.
//
// Synopsis
//
//	barco run [OPTIONS] [--] PROGRAM [ARG...]
//	barco chain [OPTIONS] [--] PROGRAM [ARG...]
//	barco -u UID -m DIR -c CMD [-a ARG] [-v]
package wrapper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"barco/lib/caps"
	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/mount"
	"barco/lib/ns"
	"barco/lib/seccomp"
	"golang.org/x/sys/unix"
)

// Spec is what `barco run` was asked for, in Docker's words.
type Spec struct {
	Name, Hostname, Rootfs string
	ReadOnly               bool
	Persist                string
	NoIdmap, NoOverlay     bool
	Volumes, Tmpfs         []string
	Workdir                string
	User                   string
	GroupAdd               []string
	CapAdd, CapDrop        []string
	Seccomp                string
	seccompJSON            string // the profile of a Seccomp file
	Memory, MemorySwap     string
	CPUs, CPUWeight        string
	CPUSetCPUs, PidsLimit  string
	Net                    string
	UserNS                 []string
	NoUserNS               bool
	Init                   bool
	Env, EnvFiles          []string
	TTY, Debug             bool
	PreserveFDs            int
	Program                []string
	// Argv0, when set, is PROGRAM's argv[0] (the original command line's
	// -a); PROGRAM is still found by its own name.
	Argv0 *string
	// volumeFirst records, for each --volume and --tmpfs in the order
	// given, whether it was a volume.
	volumeFirst []bool
	// Rootless is a caller that is not root (see Resolve). Its container
	// root is the caller itself: no idmapped root, no device rules, and
	// the default pids limit only where a cgroup is delegated to it
	// (RootlessCgroup).
	Rootless       bool
	RootlessCgroup bool
}

// DefaultPidsLimit caps the tasks of a container unless --pids-limit says
// otherwise, so that a fork bomb stays inside it.
const DefaultPidsLimit = "4096"

// DefaultPath is the container's PATH, as Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Declare adds the options of `barco run` and `barco chain` to o. Each
// value is checked as it is parsed, with the stage's own parser, so that a
// mistake is reported with the option as the user typed it, before
// anything is started.
func (s *Spec) Declare(o *chain.Options) {
	o.Func("name", 0, "NAME", "container name: names its cgroup and its default hostname ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most "+strconv.Itoa(cgroup.MaxNameLen)+")", func(v string) error {
		s.Name = v
		return cgroup.ValidName(v)
	})
	o.Func("hostname", 0, "NAME", "hostname inside (default: --name, else barco)", func(v string) error {
		s.Hostname = v
		if err := validHostname(v); err != nil {
			return fmt.Errorf("%q: %w", v, err)
		}
		return nil
	})
	o.String(&s.Rootfs, "rootfs", 0, "DIR", "root filesystem (default: the bundled busybox rootfs)")
	o.Bool(&s.ReadOnly, "read-only", 0, "mount the root filesystem read-only")
	o.String(&s.Persist, "persist", 0, "DIR", "keep what the container writes to / in DIR across runs (made if missing, owned by the container's root)")
	o.Bool(&s.NoIdmap, "no-idmap", 0, "do not idmap the root filesystem: its files keep their host owners, unmapped ones show as nobody")
	o.Bool(&s.NoOverlay, "no-overlay", 0, "write straight into the root filesystem, as runc does (implies --no-idmap)")
	o.Func("volume", 'v', "SRC:DST[:OPTS]", "bind mount SRC at DST; OPTS ro, or idmap: container root owns what host root owns, read-only (repeatable)", func(v string) error {
		if _, err := mount.ParseVolume(v); err != nil {
			return err
		}
		s.Volumes = append(s.Volumes, v)
		s.volumeFirst = append(s.volumeFirst, true)
		return nil
	})
	o.Func("tmpfs", 0, "DST[:OPTS]", "mount a tmpfs at DST, noexec, nosuid and nodev unless OPTS has exec (repeatable)", func(v string) error {
		if _, err := mount.ParseTmpfs(v); err != nil {
			return err
		}
		s.Tmpfs = append(s.Tmpfs, v)
		s.volumeFirst = append(s.volumeFirst, false)
		return nil
	})
	o.Func("workdir", 'w', "DIR", "working directory inside, absolute (default /)", func(v string) error {
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%q: not an absolute path", v)
		}
		s.Workdir = v
		return nil
	})
	o.String(&s.User, "user", 'u', "USER[:GROUP]", "user inside, by id or by name in the rootfs's /etc/passwd (default root)")
	o.Strings(&s.GroupAdd, "group-add", 0, "GROUP", "add a supplementary group (repeatable)")
	o.Func("cap-add", 0, "CAP", "add capabilities to the default set (repeatable, comma lists)", capList(&s.CapAdd))
	o.Func("cap-drop", 0, "CAP", "drop capabilities (repeatable, comma lists; all drops every one)", capList(&s.CapDrop))
	o.Func("security-opt", 0, "seccomp=PROFILE", "seccomp profile: default, unconfined or a JSON file", func(v string) error {
		k, p, ok := strings.Cut(v, "=")
		if !ok || k != "seccomp" || p == "" {
			return fmt.Errorf("%q: only seccomp=PROFILE is supported", v)
		}
		return s.setSeccomp(p)
	})
	o.Func("seccomp", 0, "PROFILE", "same as --security-opt seccomp=PROFILE", s.setSeccomp)
	o.Func("memory", 'm', "BYTES", "memory limit (K, M, G suffixes; at least "+cgroup.FormatSize(cgroup.MinMemory)+")", func(v string) error {
		s.Memory = v
		_, err := cgroup.ParseMemory(v)
		return err
	})
	o.Func("memory-swap", 0, "BYTES", "memory plus swap limit (-1: no swap limit)", func(v string) error {
		s.MemorySwap = v
		_, err := cgroup.ParseSwap(v)
		return err
	})
	o.Func("cpus", 0, "N", "CPU limit, fractional (1.5)", func(v string) error {
		s.CPUs = v
		_, err := cgroup.ParseCPUs(v)
		return err
	})
	o.Func("cpu-weight", 0, "W", "relative CPU weight, 1-10000", func(v string) error {
		s.CPUWeight = v
		_, err := cgroup.ParseWeight(v)
		return err
	})
	o.Func("cpuset-cpus", 0, "LIST", "CPUs the container may use (0-1,3)", func(v string) error {
		s.CPUSetCPUs = v
		_, err := cgroup.ParseCPUSet(v)
		return err
	})
	o.Func("pids-limit", 0, "N", "most tasks of PROGRAM at once (default "+DefaultPidsLimit+"; 0 for no limit)", func(v string) error {
		s.PidsLimit = v
		if v == "0" {
			return nil
		}
		_, err := cgroup.ParsePids(v)
		return err
	})
	o.Func("net", 0, "none|host", "network: none (own namespace with loopback, the default) or host", func(v string) error {
		if v != "none" && v != "host" {
			return fmt.Errorf("%q: want none or host", v)
		}
		s.Net = v
		return nil
	})
	o.Func("userns", 0, "C:H:N", "uid and gid map of the user namespace (repeatable; default: subuid range or 0:100000:65536)", func(v string) error {
		if _, err := ns.ParseIDMap(v); err != nil {
			return err
		}
		s.UserNS = append(s.UserNS, v)
		return nil
	})
	o.Bool(&s.NoUserNS, "no-userns", 0, "no user namespace: container root is host root")
	o.Bool(&s.Init, "init", 0, "run a minimal init as PID 1 that reaps zombies and forwards signals")
	o.Strings(&s.Env, "env", 'e', "K=V", "set a variable (K alone: take the host's value; not BARCO_ ones; repeatable)")
	o.Strings(&s.EnvFiles, "env-file", 0, "FILE", "read variables from FILE, one K=V a line")
	o.Bool(&s.TTY, "tty", 't', "give the container its own terminal (/dev/pts/0), relayed to barco's in raw mode")
	o.Int(&s.PreserveFDs, "preserve-fds", 0, "N", "pass descriptors 3 .. 2+N on to PROGRAM, as runc's")
	o.Bool(&s.Debug, "debug", 0, "log every stage's steps on stderr (BARCO_DEBUG=1)")
}

func capList(list *[]string) func(string) error {
	return func(v string) error {
		if _, err := caps.ParseList(v); err != nil {
			return err
		}
		*list = append(*list, v)
		return nil
	}
}

// setSeccomp takes --seccomp PROFILE. A file is read here, on the host:
// barco-seccomp runs inside the container, after pivot_root, where the
// host's files are out of reach, so it gets the profile's JSON itself.
func (s *Spec) setSeccomp(v string) error {
	s.Seccomp, s.seccompJSON = v, ""
	if v == seccomp.ProfileDefault || v == seccomp.ProfileUnconfined {
		return nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return err
	}
	if _, err := seccomp.ParseProfile(data); err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return err
	}
	// The kernel takes at most 32 pages for one argument (MAX_ARG_STRLEN).
	if b.Len() >= 32*4096 {
		return fmt.Errorf("%s: %d bytes without spaces, more than the 128 KiB barco can pass on as one argument", v, b.Len())
	}
	s.seccompJSON = b.String()
	return nil
}

// maxHostname is the kernel's limit (HOST_NAME_MAX).
const maxHostname = 64

// validHostname accepts what barco-ns sets: at most 64 letters, digits,
// '-', '_' and '.'.
func validHostname(h string) error {
	if h == "" || len(h) > maxHostname {
		return fmt.Errorf("not a hostname (1 to %d characters)", maxHostname)
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("not a hostname (letters, digits, '-', '_' and '.')")
		}
	}
	return nil
}

// Validate checks, before anything is started, what the options alone do
// not tell: how they go together, and what the host has.
func (s *Spec) Validate() error {
	if s.PreserveFDs < 0 {
		return fmt.Errorf("--preserve-fds %d: not a count", s.PreserveFDs)
	}
	for fd := 3; fd < 3+s.PreserveFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--preserve-fds %d: descriptor %d is not open", s.PreserveFDs, fd)
		}
	}
	if s.NoUserNS && len(s.UserNS) > 0 {
		return fmt.Errorf("--userns and --no-userns exclude each other")
	}
	if err := s.validateRootless(); err != nil {
		return err
	}
	exclusive := 0
	for _, set := range []bool{s.ReadOnly, s.Persist != "", s.NoOverlay} {
		if set {
			exclusive++
		}
	}
	if exclusive > 1 {
		return fmt.Errorf("--read-only, --persist and --no-overlay exclude each other")
	}
	if s.Hostname == "" && s.Name != "" {
		if err := validHostname(s.Name); err != nil {
			return fmt.Errorf("--name %s: %w, and it is the hostname too unless --hostname is given", s.Name, err)
		}
	}
	if s.MemorySwap != "" {
		mem, _ := cgroup.ParseMemory(s.Memory)
		swap, _ := cgroup.ParseSwap(s.MemorySwap)
		if swap > 0 && (s.Memory == "" || swap < mem) {
			return fmt.Errorf("--memory-swap %s: needs --memory, no larger than it", s.MemorySwap)
		}
	}
	if s.Rootfs != "" {
		st, err := os.Stat(s.Rootfs)
		if err != nil {
			return fmt.Errorf("rootfs %s: %w", s.Rootfs, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("rootfs %s: not a directory", s.Rootfs)
		}
	}
	for _, v := range s.Volumes {
		src, _, _ := strings.Cut(v, ":")
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("--volume %s: %w", v, err)
		}
	}
	return nil
}

// DefaultRootfs is the bundled busybox rootfs: $BARCO_ROOTFS, else
// build/rootfs beside the bin/ directory barco runs from.
func DefaultRootfs() string {
	if r := os.Getenv("BARCO_ROOTFS"); r != "" {
		return r
	}
	self, err := os.Executable()
	if err != nil {
		return "build/rootfs"
	}
	return filepath.Join(filepath.Dir(filepath.Dir(self)), "build", "rootfs")
}

func (s *Spec) hostname() string {
	switch {
	case s.Hostname != "":
		return s.Hostname
	case s.Name != "":
		return s.Name
	}
	return "barco"
}

// Stages is the chain, one argv per stage, ending with PROGRAM.
func (s *Spec) Stages() ([][]string, error) {
	rootfs := s.Rootfs
	if rootfs == "" {
		rootfs = DefaultRootfs()
	}
	rootfs, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, err
	}
	// A symbolic link is followed here, on the host, as crun does: the
	// mount of the root is made on the directory itself.
	if resolved, err := filepath.EvalSymlinks(rootfs); err == nil {
		rootfs = resolved
	}

	cg := []string{"barco-cgroup"}
	if s.Name != "" {
		cg = append(cg, "--name", s.Name)
	}
	cg = appendOpt(cg, "--memory", s.Memory)
	cg = appendOpt(cg, "--memory-swap", s.MemorySwap)
	cg = appendOpt(cg, "--cpus", s.CPUs)
	cg = appendOpt(cg, "--cpu-weight", s.CPUWeight)
	cg = appendOpt(cg, "--cpuset-cpus", s.CPUSetCPUs)
	pids := s.PidsLimit
	if pids == "" && (!s.Rootless || s.RootlessCgroup) {
		pids = DefaultPidsLimit
	}
	if pids != "0" && pids != "" {
		cg = append(cg, "--pids", pids)
	}
	if !s.Rootless {
		// An unprivileged container opens only the host's devices its
		// user may open anyway, and only root may set device rules on v2.
		cg = append(cg, "--devices", "default")
	}

	ns := []string{"barco-ns"}
	if !s.NoUserNS {
		ns = append(ns, "-U")
	}
	ns = append(ns, "-p", "-m", "-u", "-i", "-C", "-T")
	if s.Net != "host" {
		ns = append(ns, "-n")
	}
	ns = append(ns, "--hostname", s.hostname())
	for _, m := range s.UserNS {
		ns = append(ns, "--uid-map", m, "--gid-map", m)
	}
	if s.Init {
		ns = append(ns, "--init")
	}
	if s.idmapped() {
		ns = append(ns, "--idmap", rootfs)
	}
	volumes := make([]string, len(s.Volumes))
	for i, v := range s.Volumes {
		src, rest, _ := strings.Cut(v, ":")
		if abs, err := filepath.Abs(src); err == nil && src != "" {
			src = abs
		}
		volumes[i] = src + ":" + rest
		if _, opts, _ := strings.Cut(rest, ":"); !s.NoUserNS && !s.Rootless && slices.Contains(strings.Split(opts, ","), "idmap") {
			ns = append(ns, "--idmap", src)
		}
	}

	mnt := []string{"barco-mount", "--rootfs", rootfs, "--cgroupfs"}
	switch {
	case s.ReadOnly:
		mnt = append(mnt, "--read-only")
	case s.Persist != "":
		persist, err := filepath.Abs(s.Persist)
		if err != nil {
			return nil, err
		}
		mnt = append(mnt, "--persist", persist)
	case !s.NoOverlay:
		mnt = append(mnt, "--overlay")
	}
	// In the order given, which barco-mount keeps: a volume below a tmpfs
	// comes after it.
	vi, ti := 0, 0
	for _, isVolume := range s.mountOrder() {
		if isVolume {
			mnt = append(mnt, "--volume", volumes[vi])
			vi++
		} else {
			mnt = append(mnt, "--tmpfs", s.Tmpfs[ti])
			ti++
		}
	}
	mnt = appendOpt(mnt, "--workdir", s.Workdir)
	// The files of /etc every container has; not written into an image
	// that --no-overlay leaves as the container's own.
	if !s.NoOverlay {
		mnt = append(mnt, "--hosts", s.hostname())
		if s.Net == "host" {
			mnt = append(mnt, "--resolv-conf", "/etc/resolv.conf")
		}
	}

	// podman's default set, not barco-caps' own (Docker's): see
	// caps.PodmanDefault. NET_RAW stays in the bounding set alone, where
	// no_new_privs (set here already, not only by barco-seccomp, so that no
	// exec in between lets root take it) keeps it from every process, while
	// a ping with file capabilities (cap_net_raw=ep) still starts, and then
	// pings through an ICMP socket.
	capsArgv := []string{"barco-caps", "--caps", strings.ReplaceAll(caps.PodmanDefault.String(), "cap_", ""), "--bound", "net_raw", "--no-new-privs"}
	capsArgv = appendOpt(capsArgv, "--user", s.User)
	if len(s.GroupAdd) > 0 {
		capsArgv = append(capsArgv, "--groups", strings.Join(s.GroupAdd, ","))
	}
	for _, c := range s.CapAdd {
		capsArgv = append(capsArgv, "--cap-add", c)
	}
	for _, c := range s.CapDrop {
		capsArgv = append(capsArgv, "--cap-drop", c)
	}

	sc := []string{"barco-seccomp"}
	if s.seccompJSON != "" {
		sc = append(sc, "--profile", s.seccompJSON)
	} else {
		sc = appendOpt(sc, "--profile", s.Seccomp)
	}

	return [][]string{cg, ns, mnt, capsArgv, sc, s.Program}, nil
}

// idmapped says whether the root filesystem is idmapped: under a user
// namespace, unless asked not to. A write straight into the image must not
// go through an idmapped mount (it would store the container's root as the
// host's), so --no-overlay has none either. Nor has a rootless container:
// only root may idmap a disk filesystem, and the caller's own files show
// as the container root's through the uid map alone.
func (s *Spec) idmapped() bool { return !s.NoUserNS && !s.NoIdmap && !s.NoOverlay && !s.Rootless }

// mountOrder says, for each volume and tmpfs mount in the order given,
// whether it is a volume; a Spec made in code, without that order, has
// its volumes first.
func (s *Spec) mountOrder() []bool {
	if len(s.volumeFirst) == len(s.Volumes)+len(s.Tmpfs) {
		return s.volumeFirst
	}
	order := make([]bool, 0, len(s.Volumes)+len(s.Tmpfs))
	for range s.Volumes {
		order = append(order, true)
	}
	for range s.Tmpfs {
		order = append(order, false)
	}
	return order
}

func appendOpt(argv []string, name, value string) []string {
	if value == "" {
		return argv
	}
	return append(argv, name, value)
}

// Argv joins the stages into one command line, "--" between stages.
func Argv(stages [][]string) []string { return chain.JoinStages(stages) }

// Environ is the container's environment: a clean one with PATH, HOME,
// HOSTNAME and TERM, then --env-file files and -e variables in order.
func (s *Spec) Environ(host func(string) (string, bool)) ([]string, error) {
	term, ok := host("TERM")
	if !ok || term == "" {
		term = "xterm"
	}
	env := []string{"PATH=" + DefaultPath, "HOME=/root", "HOSTNAME=" + s.hostname(), "TERM=" + term}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		for i, old := range env {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				env[i] = kv
				return
			}
		}
		env = append(env, kv)
	}
	add := func(kv, where string) error {
		k, _, hasValue := strings.Cut(kv, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("%s: %q is not K=V", where, kv)
		}
		if strings.HasPrefix(k, "BARCO_") {
			// They would reach the stages, not only PROGRAM, and
			// reconfigure them (the OCI mode drops them so).
			return fmt.Errorf("%s: %s: a BARCO_ variable configures barco's stages, not PROGRAM (see --debug, --preserve-fds)", where, k)
		}
		if !hasValue {
			v, ok := host(k)
			if !ok {
				return nil
			}
			kv = k + "=" + v
		}
		set(kv)
		return nil
	}
	for _, f := range s.EnvFiles {
		lines, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if err := add(l, "env file "+f); err != nil {
				return nil, err
			}
		}
	}
	for _, kv := range s.Env {
		if err := add(kv, "--env"); err != nil {
			return nil, err
		}
	}
	if s.Debug {
		set("BARCO_DEBUG=1")
	}
	if v, ok := host(chain.ExecStagesEnv); ok && v == "1" {
		set(chain.ExecStagesEnv + "=1")
	}
	if v, ok := host(chain.CgroupParentEnv); ok && v != "" {
		// barco-cgroup takes its default parent from the chain's
		// environment, linked or exec'd; PROGRAM does not get it.
		set(chain.CgroupParentEnv + "=" + v)
	}
	if s.PreserveFDs > 0 {
		set(chain.PreserveFDsEnv + "=" + strconv.Itoa(s.PreserveFDs))
	}
	if s.Argv0 != nil {
		set(chain.Argv0Env + "=" + *s.Argv0)
	}
	return env, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return lines, nil
}
