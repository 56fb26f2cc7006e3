package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"barco/lib/chain"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Verbs are the OCI runtime commands, runc's names.
var Verbs = []string{"create", "start", "state", "kill", "delete", "list", "spec", "features",
	"ps", "exec", "pause", "resume", "update"}

// globalNames are runc's global options, which only the OCI form has.
var globalNames = []string{"--root", "--log", "--log-format", "--debug", "--systemd-cgroup"}

// IsCommand reports whether args (without argv[0]) are an OCI runtime
// command: a verb, after global options if any. `run` is one only with a
// bundle (-b, --bundle): barco run -- PROGRAM is barco's own.
func IsCommand(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if isGlobal(a) {
			if !strings.Contains(a, "=") && a != "--debug" && a != "--systemd-cgroup" {
				i++
			}
			continue
		}
		if a == "run" {
			for _, b := range args[i+1:] {
				if b == "--" {
					return false
				}
				if b == "-b" || b == "--bundle" || strings.HasPrefix(b, "--bundle=") {
					return true
				}
			}
			return false
		}
		for _, v := range Verbs {
			if a == v {
				return true
			}
		}
		return false
	}
	return false
}

func isGlobal(a string) bool {
	name, _, _ := strings.Cut(a, "=")
	for _, g := range globalNames {
		if name == g {
			return true
		}
	}
	return false
}

// globals are the global options.
type globals struct {
	root, log, logFormat string
	debug, systemdCgroup bool
	stderr               io.Writer
	// proc is barco's process, into which barco-cgroup and barco-ns are
	// linked: create runs them in it.
	proc *chain.Process
}

// logf writes one line to --log, in its format, at level.
func (g *globals) logf(level, format string, args ...any) {
	if g.log == "" {
		return
	}
	f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	msg := fmt.Sprintf(format, args...)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(line, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

func (g *globals) warnf(format string, args ...any) {
	fmt.Fprintf(g.stderr, "barco: warning: "+format+"\n", args...)
	g.logf("warning", format, args...)
}

func (g *globals) debugf(format string, args ...any) {
	if g.debug {
		g.logf("debug", format, args...)
	}
}

// Main runs one OCI runtime command. Its failure is one line on stderr
// and, with --log, a line of level error there (the engines read the
// last one's msg).
func Main(p *chain.Process, args []string) (int, error) {
	g := &globals{logFormat: "text", stderr: p.Stderr, proc: p}
	var o chain.Options
	o.String(&g.root, "root", 0, "DIR", "")
	o.String(&g.log, "log", 0, "FILE", "")
	o.Func("log-format", 0, "text|json", "", func(v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("want text or json, not %q", v)
		}
		g.logFormat = v
		return nil
	})
	o.Bool(&g.debug, "debug", 0, "")
	o.Bool(&g.systemdCgroup, "systemd-cgroup", 0, "")
	rest, err := o.Parse(args)
	if err != nil {
		return 0, err
	}
	if g.root == "" {
		if g.root, err = defaultRoot(); err != nil {
			return 0, err
		}
	}
	status, err := g.dispatch(p, rest)
	if err != nil {
		g.logf("error", "%v", err)
	}
	return status, err
}

func (g *globals) dispatch(p *chain.Process, args []string) (int, error) {
	if g.systemdCgroup {
		return 0, errors.New("--systemd-cgroup: this machine has no systemd; barco manages cgroups itself")
	}
	if len(args) == 0 {
		return 0, &chain.OptionError{Msg: "no command given"}
	}
	verb, args := args[0], args[1:]
	var o chain.Options
	var co createOptions
	var force, all, quiet bool
	var format string
	var eo execOptions
	var uo updateOptions
	switch verb {
	case "update":
		uo.declare(&o)
	case "exec":
		eo.declare(&o)
	case "create", "run":
		o.String(&co.bundle, "bundle", 'b', "DIR", "")
		o.String(&co.pidFile, "pid-file", 0, "FILE", "")
		o.String(&co.consoleSocket, "console-socket", 0, "SOCKET", "")
		o.Int(&co.preserveFDs, "preserve-fds", 0, "N", "")
		o.Func("no-pivot", 0, "", "", func(string) error { return errors.New("--no-pivot: barco always pivots") })
		o.Bool(new(bool), "no-new-keyring", 0, "")
		o.Bool(&co.detach, "detach", 'd', "")
	case "delete":
		o.Bool(&force, "force", 'f', "")
	case "kill":
		o.Bool(&all, "all", 'a', "")
	case "list", "ps":
		o.String(&format, "format", 'f', "table|json", "")
		if verb == "list" {
			o.Bool(&quiet, "quiet", 'q', "")
		}
	case "spec":
		o.String(&co.bundle, "bundle", 'b', "DIR", "")
		o.Bool(new(bool), "rootless", 0, "")
	}
	rest, err := o.Parse(args)
	if err != nil {
		return 0, err
	}
	id := ""
	if len(rest) > 0 {
		id = rest[0]
	}
	needID := func(n int) error {
		if len(rest) < n {
			return fmt.Errorf("%s: no container id given", verb)
		}
		if len(rest) > n {
			return fmt.Errorf("%s: unexpected argument %q", verb, rest[n])
		}
		return nil
	}
	switch verb {
	case "create":
		if err := needID(1); err != nil {
			return 0, err
		}
		return 0, create(g, id, co)
	case "run":
		if err := needID(1); err != nil {
			return 0, err
		}
		if co.detach {
			return 0, runDetached(g, id, co)
		}
		return run(g, id, co)
	case "start":
		if err := needID(1); err != nil {
			return 0, err
		}
		return 0, start(g, id)
	case "state":
		if err := needID(1); err != nil {
			return 0, err
		}
		out, err := stateJSON(g, id)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(p.Stdout, "%s\n", out)
		return 0, nil
	case "kill":
		if len(rest) == 1 {
			rest = append(rest, "TERM")
		}
		if err := needID(2); err != nil {
			return 0, err
		}
		sig, err := parseSignal(rest[1])
		if err != nil {
			return 0, err
		}
		return 0, kill(g, id, sig, all)
	case "delete":
		if err := needID(1); err != nil {
			return 0, err
		}
		return 0, remove(g, id, force)
	case "list":
		return 0, list(g, p.Stdout, format, quiet)
	case "ps":
		if err := needID(1); err != nil {
			return 0, err
		}
		return 0, ps(g, p.Stdout, id, format)
	case "exec":
		if len(rest) == 0 {
			return 0, errors.New("exec: no container id given")
		}
		return execCommand(g, id, rest[1:], eo)
	case "update":
		if err := needID(1); err != nil {
			return 0, err
		}
		r, err := updateResources(uo, p.Stdin)
		if err != nil {
			return 0, err
		}
		return 0, update(g, id, r)
	case "pause", "resume":
		if err := needID(1); err != nil {
			return 0, err
		}
		if verb == "pause" {
			return 0, pause(g, id)
		}
		return 0, resume(g, id)
	case "spec":
		return 0, writeSpec(bundleDir(co.bundle))
	case "features":
		return 0, writeFeatures(p.Stdout)
	}
	return 0, fmt.Errorf("%s: not supported by barco yet", verb)
}

// runDetached is run --detach: create and start, and no barco process
// stays, as after create; the container is left to the caller, whose
// subreaper waits for its init, as runc run --detach does.
func runDetached(g *globals, id string, o createOptions) error {
	c, st, err := createLocked(g, id, o)
	if err != nil {
		return err
	}
	if _, err := startLocked(g, c, st); err != nil {
		_ = remove(g, id, true)
		return err
	}
	return nil
}

// run is create, start and a wait for the process, in the foreground:
// barco is the subreaper that the init is left to, and exits with its
// status once it has deleted the container.
func run(g *globals, id string, o createOptions) (int, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	// Caught from the start, so that none ends barco with the container
	// left; once it runs, each goes on to it, as runc run forwards them.
	// They stay caught until the process ends: a signal.Stop would give
	// each back through a round trip to the Go runtime's signal thread,
	// seven thread switches there and back (about 0.5 ms here) for no
	// use, and one caught after the init is gone signals nothing
	// (signalInit checks the init's start time).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, chain.ForwardedSignals...)
	c, st, err := createLocked(g, id, o)
	if err != nil {
		return 0, err
	}
	st, err = startLocked(g, c, st)
	if err != nil {
		_ = remove(g, id, true)
		return 0, err
	}
	go func() {
		for s := range sigs {
			if sig, ok := s.(syscall.Signal); ok {
				_ = signalInit(st, unix.Signal(sig))
			}
		}
	}()
	var ws unix.WaitStatus
	for {
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid == st.Pid {
			break
		}
	}
	status := ws.ExitStatus()
	if ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	return status, remove(g, id, true)
}

// list prints the containers as runc's list: a table, or with quiet their
// ids only, or with format json their states.
func list(g *globals, w io.Writer, format string, quiet bool) error {
	rows, err := listRows(g)
	if err != nil {
		return err
	}
	if quiet {
		for _, r := range rows {
			fmt.Fprintln(w, r.ID)
		}
		return nil
	}
	if format == "json" {
		out := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			out = append(out, map[string]any{"ociVersion": r.Version, "id": r.ID, "pid": r.Pid, "status": r.Status,
				"bundle": r.Bundle, "rootfs": r.Rootfs, "created": r.Created, "owner": r.Owner, "annotations": r.Annotations})
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
	for _, r := range rows {
		pid := r.Pid
		if r.Status == specs.StateStopped {
			pid = 0
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.ID, pid, r.Status, r.Bundle, r.Created.Format(time.RFC3339Nano), r.Owner)
	}
	return tw.Flush()
}

// ps prints the host pids of the container's processes.
func ps(g *globals, w io.Writer, id, format string) error {
	st, err := loadState(g.root, id)
	if err != nil {
		return err
	}
	pids := cgroupPids(st)
	if pids == nil {
		pids = []int{}
	}
	if format == "json" {
		return json.NewEncoder(w).Encode(pids)
	}
	fmt.Fprintln(w, "PID")
	for _, pid := range pids {
		fmt.Fprintln(w, strconv.Itoa(pid))
	}
	return nil
}
