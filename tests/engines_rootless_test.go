//go:build engines

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// rootlessSkips are the cases rootless podman cannot run here, whatever
// the runtime: on cgroup v1 without systemd a user's containers have no
// cgroup (podman runs them without one, in its own), so no limits, no
// freezer and nothing to update. runc rootless fails these the same way.
var rootlessSkips = map[string]string{
	"limits": "no cgroup for a user's container on cgroup v1: podman rootless runs it without limits",
	"pause":  "no cgroup for a user's container on cgroup v1: podman refuses pause without one (can not pause containers on rootless containers with cgroup V1)",
	"update": "no cgroup for a user's container on cgroup v1: nothing to update (runc update fails: container could not join or create cgroup)",
}

// newRootlessPodman is podman as an unprivileged user with a subordinate
// id range, made for the test and removed after it: podman's storage,
// runtime directory and configuration in a directory of the user's, and
// the image imported by the user from build/rootfs. Its runtime is rt, or
// the user's own copy of barco where rt is this checkout's.
func newRootlessPodman(t *testing.T, rt string) *engine {
	t.Helper()
	u := newRootlessUser(t, true)
	if rt == barcoBin(t) {
		rt = u.bin("barco")
	}
	home := u.dir
	for _, d := range []string{"run", "config/containers", "storage", "tmp"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The same configuration as a user writes in ~/.config/containers
	// (README, Rootless).
	containersConf := fmt.Sprintf(`[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "youki", "barco"]

[engine.runtimes]
barco = [%q]
`, u.bin("barco"))
	storageConf := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, filepath.Join(home, "storage"), filepath.Join(home, "run", "containers"))
	for name, text := range map[string]string{"containers.conf": containersConf, "storage.conf": storageConf} {
		if err := os.WriteFile(filepath.Join(home, "config/containers", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tar := filepath.Join(home, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", u.rootfs(), "--exclude=./.barco-rootfs", "-cf", tar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v: %s", u.rootfs(), err, out)
	}
	// The wrapper runs podman as the user, in a clean environment: as the
	// user's login shell has it, with its own runtime directory.
	wrapper := filepath.Join(home, "podman")
	script := fmt.Sprintf(`#!/bin/sh
cd %[1]s || exit 125
exec setpriv --reuid %[2]d --regid %[3]d --init-groups --reset-env -- env HOME=%[1]s XDG_RUNTIME_DIR=%[1]s/run XDG_CONFIG_HOME=%[1]s/config TMPDIR=%[1]s/tmp PATH=/usr/bin:/usr/sbin:/bin:/sbin /usr/bin/podman "$@"
`, home, u.uid, u.gid)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	owner := strconv.Itoa(u.uid) + ":" + strconv.Itoa(u.gid)
	if out, err := exec.Command("chown", "-R", owner, filepath.Join(home, "run"), filepath.Join(home, "config"), filepath.Join(home, "storage"), filepath.Join(home, "tmp"), tar).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	// podman's pause process holds its user namespace, and conmon its
	// containers: gone before the user and its directory are.
	t.Cleanup(func() { killProcessesOf(t, u.name) })
	e := &engine{name: "podman", label: "podman-rootless", bin: wrapper, dir: home, runtime: rt, image: "barco-busybox", rootless: u}
	must(t, e.cmd("import", "-q", tar, e.image)...)
	return e
}
