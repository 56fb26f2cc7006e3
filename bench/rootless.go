package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rootlessUser is the unprivileged user of the rootless rows: made for the
// bench with a subordinate id range, with its own copies of bin/ and the
// rootfs (dir/bin, dir/build/rootfs, where barco finds its default
// rootfs), and removed at the end.
type rootlessUser struct {
	name     string
	uid, gid int
	dir      string
}

func (u *rootlessUser) cred() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}
}

// env is a clean environment of the user's, with no XDG_RUNTIME_DIR.
func (u *rootlessUser) env() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + u.dir, "USER=" + u.name, "LOGNAME=" + u.name}
}

func (u *rootlessUser) run(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = u.env(), u.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred()}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s as %s: %v: %s", strings.Join(argv, " "), u.name, err, out)
	}
	return nil
}

// makeRootlessUser makes the user, its directory, and a rootless bundle of
// runc spec --rootless for crun, when runc is there to write one.
func makeRootlessUser(bin, rootfs string) (u *rootlessUser, err error) {
	for _, tool := range []string{"useradd", "userdel", "/usr/bin/newuidmap", "/usr/bin/newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("bxbench%d", os.Getpid())
	args := []string{"-M", "-d", "/nonexistent", "-s", "/bin/sh",
		"-K", "SUB_UID_MIN=700000000", "-K", "SUB_UID_MAX=800000000", "-K", "SUB_UID_COUNT=65536",
		"-K", "SUB_GID_MIN=700000000", "-K", "SUB_GID_MAX=800000000", "-K", "SUB_GID_COUNT=65536", name}
	if out, err := exec.Command("useradd", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	u = &rootlessUser{name: name}
	defer func() {
		if err != nil {
			u.remove()
			u = nil
		}
	}()
	if err = u.lookup(); err != nil {
		return u, err
	}
	if u.dir, err = os.MkdirTemp("", "barco-bench-rootless-"); err != nil {
		return u, err
	}
	for _, d := range []string{"bin", "build"} {
		if err = os.Mkdir(filepath.Join(u.dir, d), 0o755); err != nil {
			return u, err
		}
	}
	copies := [][]string{{"cp", "-a", rootfs, filepath.Join(u.dir, "build", "rootfs")}}
	for _, b := range []string{"barco", "barco-cgroup", "barco-ns", "barco-mount", "barco-caps", "barco-seccomp"} {
		copies = append(copies, []string{"cp", filepath.Join(bin, b), filepath.Join(u.dir, "bin", b)})
	}
	copies = append(copies, []string{"chown", "-R", "-h", strconv.Itoa(u.uid) + ":" + strconv.Itoa(u.gid), u.dir})
	for _, c := range copies {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return u, fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	if _, err := exec.LookPath("runc"); err == nil {
		if err := u.crunBundle(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: no rootless crun row:", err)
		}
	}
	return u, nil
}

// crunBundle writes dir/bundle-true and dir/bundle-sleep: runc spec
// --rootless, written as the user (it maps the writer's own ids), with
// /bin/true or /bin/sleep 1 on the user's rootfs.
func (u *rootlessUser) crunBundle() error {
	spec := filepath.Join(u.dir, "spec")
	if err := u.run("sh", "-c", "mkdir "+spec+" && cd "+spec+" && runc spec --rootless"); err != nil {
		return err
	}
	for _, args := range [][]string{{"/bin/true"}, {"/bin/sleep", "1"}} {
		var config map[string]any
		data, err := os.ReadFile(filepath.Join(spec, "config.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &config); err != nil {
			return err
		}
		proc := config["process"].(map[string]any)
		proc["terminal"], proc["args"] = false, args
		config["root"].(map[string]any)["path"] = filepath.Join(u.dir, "build", "rootfs")
		data, _ = json.Marshal(config)
		dir := filepath.Join(u.dir, "bundle-"+filepath.Base(args[0]))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
			return err
		}
		for _, p := range []string{dir, filepath.Join(dir, "config.json")} {
			if err := os.Chown(p, u.uid, u.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupRootlessUser finds the user a parent bench made: "NAME:DIR".
func lookupRootlessUser(v string) (*rootlessUser, error) {
	name, dir, ok := strings.Cut(v, ":")
	if !ok {
		return nil, errors.New("-rootless-user: want NAME:DIR")
	}
	u := &rootlessUser{name: name, dir: dir}
	return u, u.lookup()
}

func (u *rootlessUser) lookup() error {
	pw, err := user.Lookup(u.name)
	if err != nil {
		return err
	}
	u.uid, _ = strconv.Atoi(pw.Uid)
	u.gid, _ = strconv.Atoi(pw.Gid)
	return nil
}

// remove kills what the user still runs, by pid, then removes it, its
// subordinate ranges with it, and its directory.
func (u *rootlessUser) remove() {
	for try := 0; try < 50 && u.uid != 0; try++ {
		found := false
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			var st syscall.Stat_t
			if syscall.Stat(d, &st) != nil || int(st.Uid) != u.uid {
				continue
			}
			if stat, _ := os.ReadFile(d + "/stat"); strings.Contains(string(stat), ") Z ") {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command("userdel", "-f", u.name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: userdel %s: %v: %s", u.name, err, out)
	}
	if u.dir != "" {
		os.RemoveAll(u.dir)
	}
}

// removeOnSignal removes the user when the bench is interrupted.
func removeOnSignal(u *rootlessUser) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		u.remove()
		fmt.Fprintf(os.Stderr, "bench: %v\n", sig)
		os.Exit(130)
	}()
}

// rootlessBenches are the rootless rows: barco run, bwrap --unshare-all
// and crun, each as the user.
func rootlessBenches(u *rootlessUser) []bench {
	rootfs := filepath.Join(u.dir, "build", "rootfs")
	barco := []string{filepath.Join(u.dir, "bin", "barco"), "run", "--"}
	bw := []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--"}
	out := []bench{
		{name: "barco run (rootless)", argv: append(barco[:3:3], "/bin/true"), sleepArgv: append(barco[:3:3], "/bin/sleep", "1"), user: u},
	}
	if _, err := exec.LookPath("bwrap"); err == nil {
		out = append(out, bench{name: "bwrap (rootless)", argv: append(bw[:len(bw):len(bw)], "/bin/true"), sleepArgv: append(bw[:len(bw):len(bw)], "/bin/sleep", "1"), user: u})
	}
	if _, err := os.Stat(filepath.Join(u.dir, "bundle-true", "config.json")); err == nil {
		if _, err := exec.LookPath("crun"); err == nil {
			crun := []string{"crun", "--root", filepath.Join(u.dir, "crun-state"), "run", "-b"}
			out = append(out, bench{name: "crun (rootless)",
				argv:      append(crun[:5:5], filepath.Join(u.dir, "bundle-true"), "bench-crun-rootless"),
				sleepArgv: append(crun[:5:5], filepath.Join(u.dir, "bundle-sleep"), "bench-mem-crun-rootless"), user: u})
		}
	}
	return out
}
