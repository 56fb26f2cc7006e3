// Package hook runs OCI runtime-spec hooks: each a program started with
// the container's state (JSON) on its stdin, which must exit 0 within its
// timeout. barco-ns runs the hooks it is given (RuntimeEnv: the OCI
// prestart and createRuntime hooks) once its child exists, or once
// barco-mount has built the container's filesystem, barco-mount before
// pivot_root (createContainer), the stage that execs PROGRAM once the
// start gate opens (StartEnv: startContainer), and the OCI mode's start
// and delete the poststart and poststop hooks.
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// StartEnv names the variable with the hooks the stage that execs PROGRAM
// runs once the start gate opens, before the exec, as a Set in JSON: the
// OCI startContainer hooks.
const StartEnv = "BARCO_START_HOOKS"

// RuntimeEnv names the variable with hooks barco-ns runs, as its --hook
// does, as a Set in JSON: the OCI prestart and createRuntime hooks, kept
// out of the command line as CreateEnv's are.
const RuntimeEnv = "BARCO_RUNTIME_HOOKS"

// CreateEnv names the variable with hooks barco-mount runs before
// pivot_root, as its --hook does, as a Set in JSON: the OCI
// createContainer hooks, which the environment keeps out of the command
// line, which every user of the host can read in /proc.
const CreateEnv = "BARCO_CREATE_HOOKS"

// A Set is hooks and the state they are given.
type Set struct {
	State specs.State  `json:"state"`
	Hooks []specs.Hook `json:"hooks"`
}

// Parse reads a hook in the runtime spec's JSON form, as a stage's option
// gives it: {"path": ..., "args": [...], "env": [...], "timeout": N}.
func Parse(s string) (specs.Hook, error) {
	var h specs.Hook
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return h, fmt.Errorf("hook %s: %w", s, err)
	}
	return h, Check(h)
}

// Check checks what the runtime spec asks of a hook: an absolute path,
// and a timeout, if any, above zero.
func Check(h specs.Hook) error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("hook %q: the path must be absolute", h.Path)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("hook %s: timeout %d: not positive", h.Path, *h.Timeout)
	}
	return nil
}

// ParseState reads the state hooks are given, in JSON.
func ParseState(s string) (specs.State, error) {
	var st specs.State
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return st, fmt.Errorf("hook state %s: %w", s, err)
	}
	return st, nil
}

// Run runs hooks in order, each with st on its stdin, within its
// timeout; the first that fails is the error. A hook may exit without
// reading its stdin. A hook without an environment of its own gets env,
// or with env nil this process's, less barco's own variables.
func Run(hooks []specs.Hook, st specs.State, env []string) error {
	return RunContext(context.Background(), hooks, st, env)
}

// RunContext is Run, and ends the hook running when ctx is done (its
// process group killed).
func RunContext(ctx context.Context, hooks []specs.Hook, st specs.State, env []string) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if err := run(ctx, h, data, env); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, h specs.Hook, state []byte, env []string) error {
	if err := Check(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hook %s: %w", h.Path, err)
	}
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = env
	}
	if cmd.Env == nil {
		// This process's, less barco's own variables: they describe
		// the chain's descriptors, none of which the hook has.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "BARCO_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
	}
	// A Reader, not a pipe we write: a hook that never reads its stdin
	// costs no EPIPE.
	cmd.Stdin = bytes.NewReader(state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// In a process group of its own, which a timeout kills whole: a
	// child of the hook left holding its stderr would hold up the wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("hook %s: timed out after %d s", h.Path, *h.Timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("hook %s: stopped", h.Path)
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
		// It exited 0; a child it left holds its stderr.
		err = nil
	}
	if err != nil {
		// One line, whatever the hook wrote.
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg != "" {
			return fmt.Errorf("hook %s: %w: %s", h.Path, err, msg)
		}
		return fmt.Errorf("hook %s: %w", h.Path, err)
	}
	return nil
}

// HostPID is this process's pid in the pid namespace of the proc
// filesystem at proc: the first field of NSpid in its status. Read
// through the host's /proc, before pivot_root, it is the pid the runtime
// spec's state holds ("as seen by the host") for a process in a pid
// namespace of its own, where getpid gives 1.
func HostPID(proc string) (int, error) {
	data, err := os.ReadFile(filepath.Join(proc, "self/status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, errors.New(filepath.Join(proc, "self/status") + ": no NSpid")
}
