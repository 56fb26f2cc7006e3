package mount

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Config is what barco-mount is asked to build.
type Config struct {
	Rootfs   string   // the directory that becomes /
	ReadOnly bool     // make / read-only once everything is mounted
	Volumes  []Volume // bind mounts from the host, in order
	Tmpfs    []Tmpfs  // extra tmpfs mounts, after the volumes
	Workdir  string   // the program's working directory; "/" when empty
	Force    bool     // run when it cannot be told whether this is the host's mount namespace
	// Overlay puts an overlay on the rootfs whose upper layer, a tmpfs of
	// OverlaySize, takes every write and goes with the container.
	Overlay     bool
	OverlaySize string
	// Persist, when set, is the directory that keeps the overlay's upper
	// layer (Persist/upper, Persist/work) across runs.
	Persist string
	// Hosts, when set, is the name for the container's own /etc/hostname
	// and /etc/hosts; ResolvConf a host file to copy to /etc/resolv.conf.
	Hosts, ResolvConf string
	// Cgroupfs shows the container its cgroups on /sys/fs/cgroup.
	Cgroupfs bool
	// Propagation is the propagation of the container's root mount, an
	// MS_* flag (MS_REC|MS_SHARED for rshared); 0 leaves it private.
	Propagation uintptr
	// Order is the order in which the volumes and tmpfs mounts were given
	// (see order); empty, the volumes come first.
	Order []MountRef
	// Masked and Readonly, when either is set, replace the default masked
	// and read-only paths.
	Masked, Readonly []string
	// Devices are nodes made in /dev besides the default ones.
	Devices []Device

	// The parts of the default filesystem, each of which can be left out.
	NoProc  bool // no /proc
	NoDev   bool // no /dev tmpfs with its devices (the rootfs's own /dev stays)
	NoSys   bool // no /sys
	NoMasks bool // no masked and read-only paths

	// Proc is where the host's procfs is mounted, for the namespace check
	// and the user-namespace test; "/proc" when empty.
	Proc string
	// Log is the stage's debug log.
	Log *chain.Log

	// child, set by Steps, is the process the filesystem is built for
	// from a thread of another process, which joined its namespaces.
	child *linkedChild
}

// Volume is one --volume SRC:DST[:ro|rw].
type Volume struct {
	Source   string // host path
	Dest     string // absolute path in the container
	ReadOnly bool
	// Propagation is an MS_* propagation flag (see Propagations), 0 for
	// the namespace's private one.
	Propagation uintptr
	// Attrs are MOUNT_ATTR_NOSUID, _NODEV and _NOEXEC, as asked.
	Attrs uint64
	// NoRecursive binds SRC's own mount only, not those below it.
	NoRecursive bool
	// Idmap takes the read-only idmapped clone of Source that barco-ns
	// made (barco-ns --idmap SOURCE) instead of a plain bind.
	Idmap bool
}

// Tmpfs is one --tmpfs DST[:OPTIONS].
type Tmpfs struct {
	Dest  string  // absolute path in the container
	Flags uintptr // MS_* flags
	Data  string  // size=...,mode=...
	// CopyUp fills the tmpfs with a copy of what the rootfs has at Dest,
	// as an OCI config's tmpcopyup.
	CopyUp bool
	// Propagation is an MS_* propagation flag (see Propagations), 0 for
	// the namespace's private one.
	Propagation uintptr
}

// ParseVolume parses SRC:DST[:OPTS], OPTS a comma list of ro, rw and idmap.
// DST must be absolute and not /.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Volume{}, fmt.Errorf("%q: want SRC:DST[:ro]", s)
	}
	v := Volume{Source: parts[0]}
	dest, err := containerPath(parts[1])
	if err != nil {
		return Volume{}, fmt.Errorf("%q: %w", s, err)
	}
	v.Dest = dest
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				v.ReadOnly = true
			case "rw":
			case "idmap":
				v.Idmap = true
			case "nosuid":
				v.Attrs |= unix.MOUNT_ATTR_NOSUID
			case "nodev":
				v.Attrs |= unix.MOUNT_ATTR_NODEV
			case "noexec":
				v.Attrs |= unix.MOUNT_ATTR_NOEXEC
			case "norbind":
				v.NoRecursive = true
			default:
				if f, ok := Propagations[o]; ok {
					v.Propagation = f
					continue
				}
				return Volume{}, fmt.Errorf("%q: unknown option %q (want ro, rw, idmap, nosuid, nodev, noexec, norbind or a propagation)", s, o)
			}
		}
		if v.Idmap {
			// barco-ns makes idmapped clones read-only: see ns.idmappedMounts.
			v.ReadOnly = true
		}
	}
	return v, nil
}

// Defaults of a --tmpfs: noexec, nosuid and nodev, as docker's; the
// option exec allows executing.
const tmpfsDefaultFlags = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV

// ParseTmpfs parses DST[:OPTIONS], OPTIONS being a comma-separated list of
// size=N[k|m|g|%], mode=OCTAL, nr_inodes=N, ro, noexec, exec.
func ParseTmpfs(s string) (Tmpfs, error) {
	dest, opts, _ := strings.Cut(s, ":")
	d, err := containerPath(dest)
	if err != nil {
		return Tmpfs{}, fmt.Errorf("%q: %w", s, err)
	}
	t := Tmpfs{Dest: d, Flags: tmpfsDefaultFlags}
	var data []string
	for _, o := range strings.Split(opts, ",") {
		key, val, hasVal := strings.Cut(o, "=")
		switch {
		case o == "":
		case o == "ro":
			t.Flags |= unix.MS_RDONLY
		case o == "noexec":
			t.Flags |= unix.MS_NOEXEC
		case o == "exec":
			t.Flags &^= unix.MS_NOEXEC
		case o == "tmpcopyup":
			t.CopyUp = true
		case hasVal && (key == "size" || key == "nr_inodes") && validSize(val):
			data = append(data, o)
		case hasVal && key == "mode" && validMode(val):
			data = append(data, o)
		case Propagations[o] != 0:
			t.Propagation = Propagations[o]
		default:
			return Tmpfs{}, fmt.Errorf("%q: bad option %q (want size=N[k|m|g|%%], mode=OCTAL, nr_inodes=N, ro, noexec, exec, tmpcopyup, or a propagation: shared, slave, private, unbindable)", s, o)
		}
	}
	t.Data = strings.Join(data, ",")
	return t, nil
}

func validSize(v string) bool {
	v = strings.TrimRight(v, "kKmMgG%")
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}

func validMode(v string) bool {
	n, err := strconv.ParseUint(v, 8, 32)
	return err == nil && n <= 0o7777
}

// containerPath checks that p is absolute and cleans it; / itself is
// refused, since a mount on it would hide the whole rootfs.
// MountRef names one of Config's volumes or tmpfs mounts.
type MountRef struct {
	volume bool
	index  int
}

// order is the order to make the volumes and tmpfs mounts in: as given,
// else the volumes, then the tmpfs mounts.
func (c *Config) order() []MountRef {
	if len(c.Order) == len(c.Volumes)+len(c.Tmpfs) {
		return c.Order
	}
	var o []MountRef
	for i := range c.Volumes {
		o = append(o, MountRef{volume: true, index: i})
	}
	for i := range c.Tmpfs {
		o = append(o, MountRef{index: i})
	}
	return o
}

// AddVolume and AddTmpfs add a mount in its place in the order.
func (c *Config) AddVolume(v Volume) {
	c.Order = append(c.Order, MountRef{volume: true, index: len(c.Volumes)})
	c.Volumes = append(c.Volumes, v)
}

func (c *Config) AddTmpfs(t Tmpfs) {
	c.Order = append(c.Order, MountRef{index: len(c.Tmpfs)})
	c.Tmpfs = append(c.Tmpfs, t)
}

// Propagations are the mount propagation types by their mount(8) names.
var Propagations = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_REC | unix.MS_PRIVATE,
	"shared": unix.MS_SHARED, "rshared": unix.MS_REC | unix.MS_SHARED,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_REC | unix.MS_SLAVE,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_REC | unix.MS_UNBINDABLE,
}

func containerPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("destination %q is not absolute", p)
	}
	p = path.Clean(p)
	if p == "/" {
		return "", errors.New("destination / is the rootfs itself")
	}
	return p, nil
}
