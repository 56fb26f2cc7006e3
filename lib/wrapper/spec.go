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
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"barco/lib/chain"
)

// Spec is what `barco run` was asked for, in Docker's words.
type Spec struct {
	Name, Hostname, Rootfs string
	ReadOnly               bool
	Volumes, Tmpfs         []string
	Workdir                string
	User                   string
	GroupAdd               []string
	CapAdd, CapDrop        []string
	Seccomp                string
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
}

// DefaultPidsLimit caps the tasks of a container unless --pids-limit says
// otherwise, so that a fork bomb stays inside it.
const DefaultPidsLimit = "4096"

// DefaultPath is the container's PATH, as Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Declare adds the options of `barco run` and `barco chain` to o.
func (s *Spec) Declare(o *chain.Options) {
	o.String(&s.Name, "name", 0, "NAME", "container name: names its cgroup and its default hostname")
	o.String(&s.Hostname, "hostname", 0, "NAME", "hostname inside (default: --name, else barco)")
	o.String(&s.Rootfs, "rootfs", 0, "DIR", "root filesystem (default: the bundled busybox rootfs)")
	o.Bool(&s.ReadOnly, "read-only", 0, "mount the root filesystem read-only")
	o.Strings(&s.Volumes, "volume", 'v', "SRC:DST[:ro]", "bind mount SRC at DST (repeatable)")
	o.Strings(&s.Tmpfs, "tmpfs", 0, "DST[:OPTS]", "mount a tmpfs at DST (repeatable)")
	o.String(&s.Workdir, "workdir", 'w', "DIR", "working directory inside (default /)")
	o.String(&s.User, "user", 'u', "USER[:GROUP]", "user inside, by id or by name in the rootfs's /etc/passwd (default root)")
	o.Strings(&s.GroupAdd, "group-add", 0, "GROUP", "add a supplementary group (repeatable)")
	o.Strings(&s.CapAdd, "cap-add", 0, "CAP", "add capabilities to Docker's default set (repeatable, comma lists)")
	o.Strings(&s.CapDrop, "cap-drop", 0, "CAP", "drop capabilities (repeatable, comma lists; all drops every one)")
	o.Func("security-opt", 0, "seccomp=PROFILE", "seccomp profile: default, unconfined or a JSON file", func(v string) error {
		k, p, ok := strings.Cut(v, "=")
		if !ok || k != "seccomp" || p == "" {
			return fmt.Errorf("%q: only seccomp=PROFILE is supported", v)
		}
		s.Seccomp = p
		return nil
	})
	o.String(&s.Seccomp, "seccomp", 0, "PROFILE", "same as --security-opt seccomp=PROFILE")
	o.String(&s.Memory, "memory", 'm', "BYTES", "memory limit (K, M, G suffixes)")
	o.String(&s.MemorySwap, "memory-swap", 0, "BYTES", "memory plus swap limit")
	o.String(&s.CPUs, "cpus", 0, "N", "CPU limit, fractional (1.5)")
	o.String(&s.CPUWeight, "cpu-weight", 0, "W", "relative CPU weight, 1-10000")
	o.String(&s.CPUSetCPUs, "cpuset-cpus", 0, "LIST", "CPUs the container may use (0-1,3)")
	o.String(&s.PidsLimit, "pids-limit", 0, "N", "most tasks at once (default "+DefaultPidsLimit+"; 0 for no limit)")
	o.Func("net", 0, "none|host", "network: none (own namespace with loopback, the default) or host", func(v string) error {
		if v != "none" && v != "host" {
			return fmt.Errorf("%q: want none or host", v)
		}
		s.Net = v
		return nil
	})
	o.Strings(&s.UserNS, "userns", 0, "C:H:N", "uid and gid map of the user namespace (repeatable; default: subuid range or 0:100000:65536)")
	o.Bool(&s.NoUserNS, "no-userns", 0, "no user namespace: container root is host root")
	o.Bool(&s.Init, "init", 0, "run a minimal init as PID 1 that reaps zombies and forwards signals")
	o.Strings(&s.Env, "env", 'e', "K=V", "set a variable (K alone: take the host's value; repeatable)")
	o.Strings(&s.EnvFiles, "env-file", 0, "FILE", "read variables from FILE, one K=V a line")
	o.Bool(&s.TTY, "tty", 't', "run on a new pseudo-terminal, with the terminal in raw mode")
	o.Int(&s.PreserveFDs, "preserve-fds", 0, "N", "pass descriptors 3 .. 2+N on to PROGRAM, as runc's")
	o.Bool(&s.Debug, "debug", 0, "log every stage's steps on stderr (BARCO_DEBUG=1)")
}

// Validate checks what no stage would catch before the container starts.
func (s *Spec) Validate() error {
	if s.PreserveFDs < 0 {
		return fmt.Errorf("--preserve-fds %d: not a count", s.PreserveFDs)
	}
	if s.NoUserNS && len(s.UserNS) > 0 {
		return fmt.Errorf("--userns and --no-userns exclude each other")
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
	if pids == "" {
		pids = DefaultPidsLimit
	}
	if pids != "0" {
		cg = append(cg, "--pids", pids)
	}
	cg = append(cg, "--devices", "default")

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

	mnt := []string{"barco-mount", "--rootfs", rootfs}
	if s.ReadOnly {
		mnt = append(mnt, "--read-only")
	}
	for _, v := range s.Volumes {
		src, rest, _ := strings.Cut(v, ":")
		if abs, err := filepath.Abs(src); err == nil && src != "" {
			v = abs + ":" + rest
		}
		mnt = append(mnt, "--volume", v)
	}
	for _, t := range s.Tmpfs {
		mnt = append(mnt, "--tmpfs", t)
	}
	mnt = appendOpt(mnt, "--workdir", s.Workdir)

	caps := []string{"barco-caps"}
	caps = appendOpt(caps, "--user", s.User)
	if len(s.GroupAdd) > 0 {
		caps = append(caps, "--groups", strings.Join(s.GroupAdd, ","))
	}
	for _, c := range s.CapAdd {
		caps = append(caps, "--cap-add", c)
	}
	for _, c := range s.CapDrop {
		caps = append(caps, "--cap-drop", c)
	}

	sc := []string{"barco-seccomp"}
	sc = appendOpt(sc, "--profile", s.Seccomp)

	return [][]string{cg, ns, mnt, caps, sc, s.Program}, nil
}

func appendOpt(argv []string, name, value string) []string {
	if value == "" {
		return argv
	}
	return append(argv, name, value)
}

// Argv joins the stages into one command line, "--" between stages.
func Argv(stages [][]string) []string {
	var argv []string
	for i, st := range stages {
		if i > 0 {
			argv = append(argv, "--")
		}
		argv = append(argv, st...)
	}
	return argv
}

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
