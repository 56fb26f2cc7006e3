// Command bench measures container start-to-exit latency and the memory of
// the processes that stay on the host, for barco's full chain, its partial
// chains, and runc, crun and bwrap where installed; and barco run, crun and
// bwrap rootless, as a user it makes for them and removes (rootless.go).
// It is a benchmark, not a test: it reports and never fails the build.
//
//	go run ./bench [-runs N] [-rounds N] [-warmup N] [-settle D] [-out FILE]
//	go run ./bench -engines [-runs N] [-rounds N] [-warmup N] [-settle D] [-out FILE]
//
// -engines measures `run --rm IMAGE true` through podman, Docker and ctr
// instead, with barco, runc and crun as their runtime (the engines started
// by scripts/engines; make bench-engines).
//
// The runs of each command are spread over rounds, and every round runs
// every command in turn, so that a machine that speeds up or slows down
// during the benchmark moves all the rows alike: the rows are compared
// side by side, not one after the other.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type result struct {
	Name     string  `json:"name"`
	Command  string  `json:"command"`
	Runs     int     `json:"runs"`
	MedianMS float64 `json:"median_ms"`
	P10MS    float64 `json:"p10_ms"`
	P90MS    float64 `json:"p90_ms"`
	MinMS    float64 `json:"min_ms"`
	// CPUMS and Faults are the medians of a run's CPU time (user and
	// system) and minor page faults (the major ones, reads from disk,
	// are none once the files are cached), of the command and every
	// process it waited for: what the wall time is made of on a machine
	// where the CPUs are busy, and, on a virtual machine, where a page
	// fault may cost 10 us.
	CPUMS  float64 `json:"cpu_ms"`
	Faults int     `json:"minor_faults"`
	HostKB int     `json:"host_peak_rss_kb,omitempty"`
	Error  string  `json:"error,omitempty"`
	// Times, CPUs and FaultCounts are the measured runs, for the parent
	// bench when this one runs a round for it (-only).
	Times       []float64 `json:"times_ms,omitempty"`
	CPUs        []float64 `json:"cpus_ms,omitempty"`
	FaultCounts []float64 `json:"faults,omitempty"`
}

type bench struct {
	name string
	argv []string
	env  []string // added to the environment
	// user, when set, runs the command: a rootless row.
	user *rootlessUser
	// sleepArgv is the same container running `sleep`, for the memory of
	// the processes that stay on the host; nil to skip.
	sleepArgv []string
	// around is a container that runs while argv is measured (the one
	// exec starts its process in), made before the runs of each round and
	// deleted after them.
	around *aroundContainer
}

// aroundContainer is a container a row needs running: run starts it (in
// the foreground, as runtime run does), state tells whether it runs, and
// remove deletes it.
type aroundContainer struct {
	run, state, remove []string
}

func main() {
	runs := flag.Int("runs", 200, "measured runs per command")
	rounds := flag.Int("rounds", 5, "rounds the runs are spread over, every command in each")
	warmup := flag.Int("warmup", 20, "unmeasured runs first, per command")
	out := flag.String("out", "build/bench.json", "where to write the numbers")
	only := flag.String("only", "", "comma-separated names to run (internal use)")
	rss := flag.Bool("rss", false, "with -only: the host memory, no timing (internal use)")
	userFlag := flag.String("rootless-user", "", "with -only: the user of the rootless rows, made already, and its directory (internal use)")
	engines := flag.Bool("engines", false, "podman, docker and ctr with each runtime, instead (scripts/engines start first)")
	flag.DurationVar(&settle, "settle", settle, "idle time before each command's runs in each round")
	flag.Parse()
	if *engines {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["runs"] {
			*runs = 20
		}
		if !set["rounds"] {
			*rounds = 4
		}
		if !set["warmup"] {
			*warmup = 2
		}
		if !set["out"] {
			*out = "build/bench-engines.json"
		}
	}

	root, _ := os.Getwd()
	bin := filepath.Join(root, "bin")
	rootfs := filepath.Join(root, "build", "rootfs")
	work, err := os.MkdirTemp("", "barco-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)

	var benches []bench
	var user *rootlessUser
	if *engines {
		benches = engineBenches(filepath.Join(bin, "barco"))
	} else {
		benches = barcoBenches(bin, rootfs)
		benches = append(benches, others(work, rootfs, filepath.Join(bin, "barco"))...)
		// The rootless rows, as a user made for them (and removed after), with
		// a subordinate range and its own copies of bin/ and the rootfs.
		if *userFlag != "" {
			user, err = lookupRootlessUser(*userFlag)
		} else if *only == "" {
			user, err = makeRootlessUser(bin, rootfs)
			if user != nil {
				defer user.remove()
				removeOnSignal(user)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: no rootless rows:", err)
		} else if user != nil {
			benches = append(benches, rootlessBenches(user)...)
		}
	}
	if *only != "" {
		// One round for the parent bench, raw times included.
		var results []result
		for _, b := range benches {
			if !contains(strings.Split(*only, ","), b.name) {
				continue
			}
			if *rss {
				if b.sleepArgv != nil {
					results = append(results, result{Name: b.name, HostKB: hostPeakRSS(b)})
				}
			} else {
				results = append(results, measure(b, *runs, *warmup))
			}
		}
		json.NewEncoder(os.Stdout).Encode(results)
		return
	}
	results := make([]result, len(benches))
	perRound := max(*runs / *rounds, 1)
	for round := 0; round < *rounds; round++ {
		w := 2
		if round == 0 {
			w = *warmup
		}
		for i, b := range benches {
			if results[i].Error != "" {
				continue
			}
			var r result
			if strings.HasPrefix(b.name, "crun") && !*engines {
				// crun 1.8 refuses this machine's hybrid cgroup layout
				// unless the empty v2 mount is hidden: run it in a private
				// mount namespace with a tmpfs over /sys/fs/cgroup/unified.
				r = crunInPrivateMountNS(b.name, user, "-runs", strconv.Itoa(perRound), "-warmup", strconv.Itoa(w), "-settle", settle.String())
			} else {
				r = measure(b, perRound, w)
			}
			if r.Error != "" {
				results[i] = r
				continue
			}
			results[i].Name, results[i].Command = r.Name, r.Command
			results[i].Times = append(results[i].Times, r.Times...)
			results[i].CPUs = append(results[i].CPUs, r.CPUs...)
			results[i].FaultCounts = append(results[i].FaultCounts, r.FaultCounts...)
		}
	}
	for i, b := range benches {
		if results[i].Error != "" {
			continue
		}
		results[i].summarize()
		switch {
		case *engines:
		case strings.HasPrefix(b.name, "crun") && b.sleepArgv != nil:
			results[i].HostKB = crunInPrivateMountNS(b.name, user, "-rss").HostKB
		case b.sleepArgv != nil:
			results[i].HostKB = hostPeakRSS(b)
		}
		results[i].Times, results[i].CPUs, results[i].FaultCounts = nil, nil, nil
	}
	title := "start to exit of /bin/true"
	if *engines {
		title = "ENGINE run --rm IMAGE true"
	}
	printTable(title, results)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		data, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "results": results}, "", "  ")
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err == nil {
			fmt.Printf("\nnumbers written to %s\n", *out)
		}
	}
}

func barcoBenches(bin, rootfs string) []bench {
	b := func(n string) string { return filepath.Join(bin, n) }
	ns := []string{b("barco-ns"), "-U", "-p", "-m", "-u", "-i", "-C", "-n", "--hostname", "bench", "--"}
	mount := []string{"barco-mount", "--rootfs", rootfs, "--"}
	// The default root of barco run: idmapped on the host side, overlaid
	// inside.
	nsIdmap := append(append(append([]string(nil), ns[:len(ns)-1]...), "--idmap", rootfs), "--")
	mountOverlay := []string{"barco-mount", "--rootfs", rootfs, "--overlay", "--"}
	caps := []string{"barco-caps", "--"}
	seccomp := []string{"barco-seccomp", "--"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	withProgram := func(argv []string, prog ...string) []string { return append(append([]string(nil), argv...), prog...) }
	list := []struct {
		name string
		argv []string
		prog string
	}{
		{"baseline: fork+exec /bin/true", nil, "/bin/true"},
		{"barco-cgroup", []string{b("barco-cgroup"), "--pids", "4096", "--devices", "default", "--"}, "/bin/true"},
		{"barco-ns", ns, "/bin/true"},
		{"barco-ns + mount", cat(ns, mount), "/bin/true"},
		{"barco-ns --idmap + mount --overlay", cat(nsIdmap, mountOverlay), "/bin/true"},
		{"barco-ns + mount + caps", cat(ns, mount, caps), "/bin/true"},
		{"barco-ns + mount + caps + seccomp", cat(ns, mount, caps, seccomp), "/bin/true"},
		{"barco run (full chain)", []string{b("barco"), "run", "--"}, "/bin/true"},
	}
	var out []bench
	for _, l := range list {
		out = append(out, bench{
			name:      l.name,
			argv:      withProgram(l.argv, l.prog),
			sleepArgv: withProgram(l.argv, "/bin/sleep", "1"),
		})
	}
	out[0].sleepArgv = nil
	// The same chain with every stage exec'd from its own binary, for what
	// running the later stages in one process saves.
	full := out[len(out)-1]
	full.name = "barco run, every stage exec'd"
	full.env = []string{"BARCO_EXEC_STAGES=1"}
	return append(out, full)
}

// others are the OCI runtimes on one bundle, runc spec's default with
// /bin/true, barco's OCI mode among them, and bwrap.
func others(work, rootfs, barco string) []bench {
	var out []bench
	bundle := filepath.Join(work, "bundle")
	haveBundle := false
	makeBundle := func() bool {
		if haveBundle {
			return true
		}
		if err := exec.Command("cp", "-a", rootfs, filepath.Join(work, "rootfs")).Run(); err != nil {
			return false
		}
		os.MkdirAll(bundle, 0o755)
		cmd := exec.Command("runc", "spec")
		cmd.Dir = bundle
		if cmd.Run() != nil {
			return false
		}
		// The container's root in a user namespace (host uid 100000)
		// must reach the rootfs.
		os.Chmod(work, 0o755)
		for _, userns := range []bool{false, true} {
			for _, args := range [][]string{{"/bin/true"}, {"/bin/sleep", "1"}, {"/bin/sleep", "100000"}} {
				var spec map[string]any
				data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
				json.Unmarshal(data, &spec)
				proc := spec["process"].(map[string]any)
				proc["terminal"] = false
				proc["args"] = args
				// runc wants the rootfs as a real directory, not a symlink.
				spec["root"].(map[string]any)["path"] = filepath.Join(work, "rootfs")
				dir := filepath.Join(work, "bundle-"+filepath.Base(args[0]))
				if len(args) > 1 && args[1] != "1" {
					dir += "-long"
				}
				if userns {
					linux := spec["linux"].(map[string]any)
					linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "user"})
					idmap := []any{map[string]any{"containerID": 0, "hostID": 100000, "size": 65536}}
					linux["uidMappings"], linux["gidMappings"] = idmap, idmap
					dir += "-userns"
				}
				data, _ = json.Marshal(spec)
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
			}
		}
		haveBundle = true
		return true
	}
	for _, userns := range []string{"", "-userns"} {
		for _, rt := range []string{barco, "runc", "crun"} {
			if _, err := exec.LookPath(rt); err == nil && makeBundle() {
				name := filepath.Base(rt)
				if rt == barco {
					// create, start, a wait and delete, as the others' run.
					name = "barco run -b (OCI mode)"
				}
				if userns != "" {
					name += " in a userns"
				}
				out = append(out, bench{
					name:      name,
					argv:      []string{rt, "run", "-b", filepath.Join(work, "bundle-true"+userns), "bench-" + filepath.Base(rt)},
					sleepArgv: []string{rt, "run", "-b", filepath.Join(work, "bundle-sleep"+userns), "bench-mem-" + filepath.Base(rt)},
				})
			}
		}
	}
	// exec of /bin/true into a running container, which each runtime made.
	for _, rt := range []string{barco, "runc", "crun"} {
		if _, err := exec.LookPath(rt); err == nil && makeBundle() {
			name, id := filepath.Base(rt)+" exec", "bench-exec-"+filepath.Base(rt)
			if rt == barco {
				name = "barco exec (OCI mode)"
			}
			out = append(out, bench{
				name: name,
				argv: []string{rt, "exec", id, "/bin/true"},
				around: &aroundContainer{
					run:    []string{rt, "run", "-b", filepath.Join(work, "bundle-sleep-long"), id},
					state:  []string{rt, "state", id},
					remove: []string{rt, "delete", "-f", id},
				},
			})
		}
	}
	if _, err := exec.LookPath("bwrap"); err == nil {
		bw := []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--"}
		out = append(out, bench{name: "bwrap", argv: append(bw[:len(bw):len(bw)], "/bin/true"), sleepArgv: append(bw[:len(bw):len(bw)], "/bin/sleep", "1")})
	}
	return out
}

// engineBenches are `run --rm IMAGE true` through each engine of
// scripts/engines (its wrappers in BARCO_ENGINES_DIR/bin, default
// /run/barco-engines) with barco, runc and crun. crun runs through the
// wrapper that hides this hybrid host's empty cgroup2 mount from it, in a
// mount namespace of its own per call (unshare, a mount, an exec: about
// 2 ms a call, which its rows include).
func engineBenches(barco string) []bench {
	dir := os.Getenv("BARCO_ENGINES_DIR")
	if dir == "" {
		dir = "/run/barco-engines"
	}
	binOf := func(n string) string { return filepath.Join(dir, "bin", n) }
	runtimes := []struct{ name, path string }{{"barco", barco}, {"runc", "/usr/sbin/runc"}, {"crun", binOf("crun")}}
	var out []bench
	for _, rt := range runtimes {
		out = append(out,
			bench{name: "podman + " + rt.name, argv: []string{binOf("podman"), "--runtime", rt.path, "run", "--rm", "barco-busybox", "true"}},
			bench{name: "docker + " + rt.name, argv: []string{binOf("docker"), "run", "--rm", "--runtime", rt.name, "--network", "none", "barco-busybox", "true"}},
			// One id for every run: --rm removes the container each time.
			bench{name: "ctr + " + rt.name, argv: []string{binOf("ctr"), "run", "--rm", "--runc-binary", rt.path,
				"--runc-root", filepath.Join(dir, "containerd", "runc"), "localhost/barco-busybox:latest", "bench-" + rt.name, "true"}})
	}
	// Side by side per engine.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.SplitN(out[i].name, " ", 2)[0] < strings.SplitN(out[j].name, " ", 2)[0]
	})
	return out
}

// summarize sets the statistics from r.Times, r.CPUs and r.FaultCounts.
func (r *result) summarize() {
	times := sorted(r.Times)
	r.Runs = len(times)
	r.MedianMS, r.P10MS, r.P90MS, r.MinMS = pct(times, 0.5), pct(times, 0.1), pct(times, 0.9), times[0]
	if len(r.CPUs) > 0 {
		r.CPUMS = pct(sorted(r.CPUs), 0.5)
	}
	if len(r.FaultCounts) > 0 {
		r.Faults = int(pct(sorted(r.FaultCounts), 0.5))
	}
}

func sorted(xs []float64) []float64 {
	out := append([]float64(nil), xs...)
	sort.Float64s(out)
	return out
}

// pct is the p-th quantile of sorted xs, the lower one between two.
func pct(xs []float64, p float64) float64 { return xs[int(p*float64(len(xs)-1))] }

// crunInPrivateMountNS runs this bench with -only name and args in a
// private mount namespace where /sys/fs/cgroup/unified is hidden.
func crunInPrivateMountNS(name string, user *rootlessUser, args ...string) result {
	self, _ := os.Executable()
	script := `mount --make-rprivate / && mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"`
	if user != nil {
		args = append(args, "-rootless-user", user.name+":"+user.dir)
	}
	cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", script, "sh", self, "-only", name}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var rs []result
	if err == nil {
		err = json.Unmarshal(out, &rs)
	}
	if err == nil && len(rs) != 1 {
		err = fmt.Errorf("%s: %d results", name, len(rs))
	}
	if err != nil {
		return result{Name: name, Error: err.Error()}
	}
	return rs[0]
}

// settle is the idle time before each command's runs, in every round.
// Each run leaves the kernel work it defers (a network namespace, for one,
// is torn down by a kernel worker after its last process ends), which
// lands on the runs that follow; and crun's rows start a bench process of
// their own first (crunInPrivateMountNS), an idle time the others had
// not. The same pause before every row measures them all alike.
var settle = 300 * time.Millisecond

// measure times argv runs times after warmup runs, into r.Times, after
// the settle time.
func measure(b bench, runs, warmup int) result {
	r := result{Name: b.name, Command: strings.Join(append(append([]string(nil), b.env...), b.argv...), " ")}
	null, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer null.Close()
	path, err := exec.LookPath(b.argv[0])
	if err != nil {
		r.Error = err.Error()
		return r
	}
	attr := &syscall.ProcAttr{Env: append(os.Environ(), b.env...), Files: []uintptr{null.Fd(), null.Fd(), null.Fd()}}
	if b.user != nil {
		attr.Env, attr.Dir, attr.Sys = append(b.user.env(), b.env...), b.user.dir, &syscall.SysProcAttr{Credential: b.user.cred()}
	}
	if b.around != nil {
		stop, err := b.around.start()
		if err != nil {
			r.Error = err.Error()
			return r
		}
		defer stop()
	}
	var ru syscall.Rusage
	time.Sleep(settle)
	runOnce := func() (time.Duration, error) {
		t0 := time.Now()
		pid, err := syscall.ForkExec(path, b.argv, attr)
		if err != nil {
			return 0, err
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, &ru); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if ws.ExitStatus() != 0 {
			return d, fmt.Errorf("exit status %d", ws.ExitStatus())
		}
		return d, nil
	}
	for i := 0; i < warmup; i++ {
		if _, err := runOnce(); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	for i := 0; i < runs; i++ {
		d, err := runOnce()
		if err != nil {
			r.Error = err.Error()
			return r
		}
		r.Times = append(r.Times, float64(d.Microseconds())/1000)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.CPUs = append(r.CPUs, float64(cpu.Microseconds())/1000)
		r.FaultCounts = append(r.FaultCounts, float64(ru.Minflt))
	}
	return r
}

// start runs the container, waits until its state says it runs, and
// returns what deletes it and waits for its run to end.
func (c *aroundContainer) start() (stop func(), err error) {
	run := exec.Command(c.run[0], c.run[1:]...)
	if err := run.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(c.run, " "), err)
	}
	stop = func() {
		exec.Command(c.remove[0], c.remove[1:]...).Run()
		run.Wait()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command(c.state[0], c.state[1:]...).Output()
		if strings.Contains(string(out), `"running"`) {
			return stop, nil
		}
	}
	stop()
	return nil, fmt.Errorf("%s: not running after 10 s", strings.Join(c.run, " "))
}

// hostPeakRSS runs b's sleepArgv (a container sleeping for a second) and
// sums the peak resident memory (VmHWM) of its processes that stay in the
// host's pid namespace, sampled just before the container ends.
func hostPeakRSS(b bench) int {
	cmd := exec.Command(b.sleepArgv[0], b.sleepArgv[1:]...)
	cmd.Env = append(os.Environ(), b.env...)
	if b.user != nil {
		cmd.Env, cmd.Dir = append(b.user.env(), b.env...), b.user.dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.user.cred()}
	}
	if err := cmd.Start(); err != nil {
		return 0
	}
	defer cmd.Wait()
	time.Sleep(700 * time.Millisecond)
	hostNS, _ := os.Readlink("/proc/self/ns/pid")
	total := 0
	for _, pid := range descendants(cmd.Process.Pid) {
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); ns != hostNS {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				f := strings.Fields(l)
				n, _ := strconv.Atoi(f[1])
				total += n
			}
		}
	}
	return total
}

func descendants(root int) []int {
	out := []int{root}
	for i := 0; i < len(out); i++ {
		p := out[i]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, task := range tasks {
			data, _ := os.ReadFile(task)
			for _, f := range strings.Fields(string(data)) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

func printTable(title string, rs []result) {
	fmt.Printf("%-36s %9s %9s %9s %9s %9s %7s %12s\n", title, "median", "p10", "p90", "min", "cpu", "faults", "host RSS")
	for _, r := range rs {
		if r.Error != "" {
			fmt.Printf("%-36s failed: %s\n", r.Name, r.Error)
			continue
		}
		mem := "-"
		if r.HostKB > 0 {
			mem = fmt.Sprintf("%.1f MiB", float64(r.HostKB)/1024)
		}
		fmt.Printf("%-36s %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7d %12s\n", r.Name, r.MedianMS, r.P10MS, r.P90MS, r.MinMS, r.CPUMS, r.Faults, mem)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
