package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"barco/lib/testutil"
)

// imageListing is every entry under dir with its type, mode, owner, size
// and mtime, one a line: what `ls -lnR --full-time` would show. An image a
// container ran on must list the same before and after.
func imageListing(t *testing.T, dir string) string {
	t.Helper()
	l, err := listTreeWith(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func checkImageUnchanged(t *testing.T, dir, before string) {
	t.Helper()
	if after := imageListing(t, dir); after != before {
		t.Errorf("the image %s changed:\n%s", dir, lineDiff(before, after))
	}
}

// The default root: container root owns the image's files (idmapped), and
// writes freely to an overlay that goes with the container; the image on
// the host lists the same before and after, mtimes included.
func TestDefaultRootIsIdmappedAndEphemeral(t *testing.T) {
	bothStageModes(t, func(t *testing.T) {
		rootfs := testutil.CopyRootfs(t, 0)
		before := imageListing(t, rootfs)
		out := barcoRun(t, "--rootfs", rootfs, "--", "/bin/sh", "-c", `
	echo passwd-owner=$(stat -c %u:%g /etc/passwd) bin-owner=$(stat -c %u:%g /bin/busybox)
	echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && echo append=ok
	mkdir /newdir && touch /newdir/f /bin/newfile && echo create=ok
	rm /etc/group && echo delete=ok
	chown 1000:1000 /newdir/f && echo chown=ok
	echo whoami=$(whoami) bob=$(id -u bob)
	`)
		want := map[string]string{"passwd-owner": "0:0 bin-owner=0:0", "append": "ok", "create": "ok",
			"delete": "ok", "chown": "ok", "whoami": "root bob=1000"}
		got := testutil.KeyValues(out, "=")
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s=%q, want %q; output:\n%s", k, got[k], v, out)
			}
		}
		checkImageUnchanged(t, rootfs, before)
		// A second container sees the image, not the first one's writes.
		if out := barcoRun(t, "--rootfs", rootfs, "--", "/bin/sh", "-c", "ls /newdir /etc/group 2>&1 | head -1"); !strings.Contains(out, "No such file") && !strings.Contains(out, "/etc/group") {
			t.Errorf("the second container sees %q", out)
		}
	})
}

// --persist keeps the written layer: the second run sees the first's
// files, which the host holds under the container's own ids only.
func TestPersistKeepsTheUpperLayer(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 0)
	before := imageListing(t, rootfs)
	keep := filepath.Join(testutil.SearchableTempDir(t), "state")
	barcoRun(t, "--rootfs", rootfs, "--persist", keep, "--", "/bin/sh", "-c", "echo kept > /etc/kept; mkdir -p /var/lib/app && touch /var/lib/app/db")
	if out := barcoRun(t, "--rootfs", rootfs, "--persist", keep, "--", "/bin/sh", "-c", "cat /etc/kept; ls /var/lib/app"); out != "kept\ndb\n" {
		t.Errorf("second run with --persist: %q, want the first run's files", out)
	}
	checkImageUnchanged(t, rootfs, before)
	err := filepath.WalkDir(keep, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid < 100000 || st.Uid >= 165536 || st.Gid < 100000 || st.Gid >= 165536 {
			t.Errorf("%s is owned by %d:%d on the host, outside the container's range 100000-165535", p, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(keep, "upper", "etc", "kept")); err != nil {
		t.Errorf("the written layer is not in %s/upper: %v", keep, err)
	}
}

// --read-only: container root owns the image's files and writes nothing.
func TestReadOnlyRoot(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 0)
	before := imageListing(t, rootfs)
	out := barcoRun(t, "--rootfs", rootfs, "--read-only", "--", "/bin/sh", "-c",
		"echo owner=$(stat -c %u /etc/passwd); touch /x 2>&1; echo >> /etc/passwd 2>&1; true")
	for _, want := range []string{"owner=0\n", "touch: /x: Read-only file system\n", "Read-only file system"} {
		if !strings.Contains(out, want) {
			t.Errorf("--read-only: no %q in\n%s", want, out)
		}
	}
	checkImageUnchanged(t, rootfs, before)
}

// The files Docker gives every container, bound from the container's own
// copies: the image's /etc is unchanged.
func TestEtcFilesAreTheContainers(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 0)
	before := imageListing(t, rootfs)
	out := barcoRun(t, "--rootfs", rootfs, "--name", "web-1", "--", "/bin/sh", "-c", "cat /etc/hostname /etc/hosts")
	for _, want := range []string{"web-1\n", "127.0.0.1\tlocalhost\n", "\tweb-1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("/etc/hostname and /etc/hosts: no %q in\n%s", want, out)
		}
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if out := barcoRun(t, "--rootfs", rootfs, "--net", "host", "--", "cat", "/etc/resolv.conf"); out != string(hostResolv) {
		t.Errorf("--net host: /etc/resolv.conf is %q, want the host's %q", out, hostResolv)
	}
	checkImageUnchanged(t, rootfs, before)
}

// /sys/fs/cgroup shows the container's own cgroup, read-only: its pids
// limit is the one barco run was given.
func TestSysFsCgroupIsTheContainersOwn(t *testing.T) {
	out := barcoRun(t, "--pids-limit", "77", "--", "/bin/sh", "-c", `
	for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do test -f $f && echo pids.max=$(cat $f); done
	mkdir /sys/fs/cgroup/x 2>/dev/null && echo mkdir=allowed || echo mkdir=refused
	grep -q ' /sys/fs/cgroup ro,' /proc/self/mountinfo && echo cgroupfs=ro
	`)
	for _, want := range []string{"pids.max=77\n", "mkdir=refused\n", "cgroupfs=ro\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("/sys/fs/cgroup: no %q in\n%s", want, out)
		}
	}
}

// podman's capabilities: NET_RAW is held by no process, so a raw socket
// fails (busybox ping uses one), while ICMP sockets are open to every group.
func TestDefaultCapabilitiesAndPing(t *testing.T) {
	out := barcoRun(t, "--", "/bin/sh", "-c", `
	grep -E '^Cap(Eff|Bnd):' /proc/self/status | tr -d '\t'
	echo ping_group_range=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\t' ' ')
	ping -c1 -W1 127.0.0.1 2>&1 | tail -1
	`)
	for _, want := range []string{"CapEff:00000000800405fb\n", "CapBnd:00000000800425fb\n",
		"ping_group_range=0 65535\n", "ping: permission denied (are you root?)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// A real distribution in the default container: root owns its files,
// useradd and apt work, ping works through its ICMP socket, and the image
// is the same afterwards. apt reaches Debian's mirrors through the host's
// network (--net host).
func TestDebianRootfs(t *testing.T) {
	rootfs := testutil.DebianRootfs(t)
	before := imageListing(t, rootfs)
	out := barcoRun(t, "--rootfs", rootfs, "--net", "host", "--", "bash", "-c", `
	echo passwd-owner=$(stat -c %U:%G /etc/passwd)
	echo x >> /etc/motd && echo motd=ok
	useradd -m bob && echo bob=$(su bob -c 'id -un; touch ~/f; stat -c %U ~/f' | tr '\n' ,)
	apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends hello >/dev/null 2>&1; echo hello=$(hello 2>&1)
	`)
	want := map[string]string{"passwd-owner": "root:root", "motd": "ok", "bob": "bob,bob,", "hello": "Hello, world!"}
	got := testutil.KeyValues(out, "=")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q; output:\n%s", k, got[k], v, out)
		}
	}
	// Debian's ping has file capabilities (cap_net_raw=ep): it starts, and
	// pings through an ICMP socket in the container's own network.
	if out := barcoRun(t, "--rootfs", rootfs, "--", "bash", "-c", "ping -c1 -W2 127.0.0.1 | grep -c 'bytes from 127.0.0.1'"); out != "1\n" {
		t.Errorf("ping in the container's network: %q", out)
	}
	checkImageUnchanged(t, rootfs, before)
}

// -v SRC:DST:idmap shows SRC's files with their host owners, as the root
// does, read-only; a plain volume keeps the user namespace's view.
func TestIdmappedVolume(t *testing.T) {
	src := testutil.SearchableTempDir(t)
	f := filepath.Join(src, "f")
	if err := os.WriteFile(f, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	out := barcoRun(t, "-v", src+":/idmapped:idmap", "-v", src+":/plain", "--", "/bin/sh", "-c",
		"stat -c 'idmapped=%u:%g' /idmapped/f; stat -c 'plain=%u:%g' /plain/f; touch /idmapped/x 2>/dev/null && echo write=allowed || echo write=refused")
	for _, want := range []string{"idmapped=1000:1000\n", "plain=65534:65534\n", "write=refused\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "x")); err == nil {
		t.Error("a write through the idmapped volume reached the host")
	}
}

// Even a container that may mount cannot write through an idmapped mount
// to the host's disk: remounted read-write, the read-only root and an
// idmapped volume write to a tmpfs of the container's.
func TestIdmappedMountsStayReadOnlyForSysAdmin(t *testing.T) {
	rootfs := testutil.CopyRootfs(t, 0)
	before := imageListing(t, rootfs)
	vol := testutil.SearchableTempDir(t)
	barcoRun(t, "--rootfs", rootfs, "--read-only", "--cap-add", "sys_admin", "-v", vol+":/mnt:idmap", "--", "/bin/sh", "-c",
		"mount -o remount,bind,rw /; touch /pwn; chmod 4755 /pwn; mount -o remount,bind,rw /mnt; cp /bin/busybox /mnt/sh; chmod 4755 /mnt/sh; true")
	checkImageUnchanged(t, rootfs, before)
	if entries, _ := os.ReadDir(vol); len(entries) != 0 {
		t.Errorf("the container wrote %d entries into the idmapped volume's source on the host", len(entries))
	}
}

// A volume below a tmpfs, given after it, is seen: the mounts are made in
// the order given (podman binds /run/.containerenv under a tmpfs /run).
func TestVolumeBelowATmpfs(t *testing.T) {
	dir := testutil.SearchableTempDir(t)
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := barcoRun(t, "--tmpfs", "/run", "-v", f+":/run/f", "--", "cat", "/run/f"); out != "kept\n" {
		t.Errorf("the volume below the tmpfs: %q", out)
	}
}
