package ns

import (
	"os"
	"path"
	"strconv"
	"strings"

	"barco/lib/caps"
	"barco/lib/chain"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// inlineState is what the child of a --join holds once it has joined its
// namespaces, when the stages after barco-ns may run there as steps (see
// chain.Process.InlineSteps): a child that only joins (no namespace of its
// own, no setup for the first process of new ones: maps, hostname,
// idmapped mounts, hooks, sysctls, credentials) and whose joined
// namespaces belong to a process, whose root the stages read files in.
// ok is false otherwise.
func (c *Config) inlineState() (st *chain.ChildState, ok bool) {
	if !c.joinsInChild() || c.Flags != 0 || c.Init || c.Hostname != "" || len(c.Idmap) > 0 || len(c.Hooks) > 0 ||
		len(c.Sysctls) > 0 || c.UID >= 0 || c.GID >= 0 {
		return nil, false
	}
	st = &chain.ChildState{ParentPid: os.Getpid(), SyncFD: -1}
	var userPid string
	for _, j := range c.Joins {
		if j.Flag == unix.CLONE_NEWPID && !sameNamespace(j.Path, "/proc/self/ns/pid") {
			st.ParentPid = 0
		}
		pid, ok := processOf(j)
		switch {
		case j.Flag == unix.CLONE_NEWNS && ok:
			st.Root = "/proc/" + pid + "/root"
		case j.Flag == unix.CLONE_NEWUSER && ok:
			userPid = pid
		case j.inChild():
			return nil, false
		}
	}
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
		st.NoNewPrivs = true
	}
	if userPid == "" {
		// The child's credentials are this thread's.
		caller, err := caps.CurrentCaller()
		if err != nil {
			return nil, false
		}
		st.UID, st.GID, st.Groups = caller.UID, caller.GID, caller.Groups
		st.Permitted, st.Bounding = uint64(caller.Permitted), uint64(caller.Bounding)
		return st, true
	}
	// Where setgroups is denied, the child keeps this process's groups,
	// which its namespace may not map: barco-caps reads them itself.
	if data, err := chain.ReadFile("/proc/" + userPid + "/setgroups"); err != nil || strings.TrimSpace(string(data)) != "allow" {
		return nil, false
	}
	// setns into a user namespace gives every capability there, the
	// bounding set included; the child then becomes its root, with no
	// supplementary groups (see joinProgram).
	full := uint64(1)<<uint(cap.MaxBits()) - 1
	st.Permitted, st.Bounding = full, full
	return st, true
}

// processOf is the pid of the process whose namespace j names, when its
// path is /proc/PID/ns/KIND.
func processOf(j Join) (string, bool) {
	dir, kind := path.Split(path.Clean(j.Path))
	proc, ns := path.Split(strings.TrimSuffix(dir, "/"))
	pidDir, pid := path.Split(strings.TrimSuffix(proc, "/"))
	if ns != "ns" || pidDir != "/proc/" || (kind != "mnt" && kind != "user") {
		return "", false
	}
	if _, err := strconv.Atoi(pid); err != nil {
		return "", false
	}
	return pid, true
}

// inlineEnv is the environment the stages after barco-ns get, for their
// steps: this process's, with the resource limits PROGRAM starts with.
func (c *Config) inlineEnv() []string {
	env := os.Environ()
	if len(c.Rlimits) > 0 {
		env = withEnv(env, chain.RlimitsEnv, c.rlimitsValue())
	}
	return env
}

// rlimitsValue is c.Rlimits as chain.RlimitsEnv holds them.
func (c *Config) rlimitsValue() string {
	items := make([]string, len(c.Rlimits))
	for i, l := range c.Rlimits {
		items[i] = l.String()
	}
	return strings.Join(items, ",")
}

// sameNamespace reports whether the namespace files a and b are one.
func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Ino == sb.Ino && sa.Dev == sb.Dev
}
