package mount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// openTreeCloexec is OPEN_TREE_CLOEXEC, which x/sys/unix does not name.
const openTreeCloexec = unix.O_CLOEXEC

// Attributes of the kernel filesystems, as the OCI runtime spec's defaults.
const (
	procAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	sysAttrs  = procAttrs | unix.MOUNT_ATTR_RDONLY
)

// device is a node of the default /dev.
type device struct {
	name         string
	major, minor uint32
}

var devices = []device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// maskedPaths are hidden: a directory under an empty read-only tmpfs, a
// file under /dev/null. dir says which to try first.
var maskedPaths = []struct {
	path string
	dir  bool
}{
	{"/proc/acpi", true}, {"/proc/asound", true}, {"/proc/kcore", false},
	{"/proc/keys", false}, {"/proc/latency_stats", false}, {"/proc/timer_list", false},
	{"/proc/timer_stats", false}, {"/proc/sched_debug", false}, {"/proc/scsi", true},
	{"/proc/interrupts", false}, {"/sys/firmware", true}, {"/sys/devices/virtual/powercap", true},
}

// readonlyPaths are bound onto themselves read-only.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// host holds what is taken from the host before pivot_root, as detached
// mounts: after it, no host path can be reached any more.
type host struct {
	root    int   // the clone of the rootfs, attached at cfg.Rootfs
	proc    int   // a new procfs, or -1
	sys     int   // a new sysfs or a read-only clone of the host's /sys, or -1
	devices []int // clones of the host's device nodes, in a user namespace
	volumes []int // clones of the volume sources, by index in cfg.Volumes
	volDir  []bool
	tmpfs   []int // the tmpfs mounts, by index in cfg.Tmpfs
	// devNodes are clones of the host's nodes for cfg.Devices, by index
	// (-1 for those made by mknod).
	devNodes []int
	// dev are /dev's tmpfs, devpts, shm and mqueue (-1 where not
	// allowed), made before /sys: mountinfo lists mounts in the order they
	// were made, which is the order an OCI config gives.
	dev     [4]int
	etc     int       // a tmpfs holding etcFiles, or -1
	etcList []etcFile // what it holds
	cgroups []cgroupMount
	// hostRoot is the mount namespace's root, for leaveRoot, or -1.
	hostRoot int
}

func (h *host) close() {
	fds := []int{h.root, h.proc, h.sys, h.etc, h.dev[0], h.dev[1], h.dev[2], h.dev[3], h.hostRoot}
	fds = append(fds, h.devices...)
	fds = append(fds, h.volumes...)
	fds = append(fds, h.tmpfs...)
	fds = append(fds, h.devNodes...)
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// Root is the container's root once Enter has returned.
type Root struct {
	created []string // entries Enter made in the rootfs, for Undo
	// mounted are the container paths build mounted on, in order, for
	// Undo: a later mount can change what an earlier path leads to.
	mounted  []string
	readOnly bool
	log      *chain.Log
}

// Enter builds the container filesystem in cfg.Rootfs and makes it the
// root of the current mount namespace. beforePivot runs at the last moment
// the host's files can be reached (barco-mount carries the next stages
// across there, and runs the createContainer hooks), with the container's
// filesystem built at cfg.Rootfs: its /proc, /dev, /sys and volumes are
// there, as runc's hooks see them.
//
// On failure nothing is left on the host: every mount is made in this
// mount namespace only, after all of them have been made private, and the
// entries made in the rootfs are removed again.
func Enter(cfg *Config, beforePivot func() error) (*Root, error) {
	proc := cfg.Proc
	if proc == "" {
		proc = "/proc"
	}
	// This process's user namespace is the child's of planLinked too.
	uns, err := readUserNS(proc)
	if err != nil {
		return nil, err
	}
	// --force overrides a check that cannot tell, never a namespace
	// known to be the host's: pivot_root there would move the root of
	// every process of the machine. A stage of this process made the
	// mount namespace of planLinked's child.
	if cfg.child == nil {
		if err := checkNotHostNS(proc, uns); err != nil && !(cfg.Force && errors.Is(err, errCannotTell)) {
			return nil, err
		}
	}
	if err := checkRootfs(cfg.Rootfs, uns); err != nil {
		return nil, err
	}
	cfg.Log.Debugf("rootfs %s; nested user namespace: %v", cfg.Rootfs, uns.nested)
	if err := makePrivate(); err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, chain.WithHint(err, "barco-mount needs CAP_SYS_ADMIN over its mount namespace: with a user namespace, a new mount namespace too (barco-ns -U -m)")
		}
		return nil, err
	}

	h := &host{root: -1, proc: -1, sys: -1, etc: -1, dev: [4]int{-1, -1, -1, -1}, hostRoot: -1}
	defer h.close()
	if err := h.take(cfg, proc, uns); err != nil {
		return nil, err
	}
	r := &Root{log: cfg.Log}
	if err := r.buildIn(cfg, h, uns); err != nil {
		unix.Unmount(cfg.Rootfs, unix.MNT_DETACH)
		return nil, accessHint(err, uns)
	}
	// The hooks run in the rootfs, as runc's (it chdirs there for them).
	err = unix.Fchdir(h.root)
	if err != nil {
		err = &os.PathError{Op: "chdir", Path: cfg.Rootfs, Err: err}
	} else {
		err = beforePivot()
	}
	if err != nil {
		if h.enterRoot() == nil {
			r.Undo()
		}
		h.leaveRoot()
		unix.Unmount(cfg.Rootfs, unix.MNT_DETACH)
		return nil, err
	}
	if err := pivot(h.root, cfg.Rootfs); err != nil {
		if h.enterRoot() == nil {
			r.Undo()
		}
		h.leaveRoot()
		unix.Unmount(cfg.Rootfs, unix.MNT_DETACH)
		return nil, err
	}
	// The host's root is past reach now: its descriptor would be a way
	// back to it (/proc/self/fd/N) for any path resolved from here on.
	unix.Close(h.hostRoot)
	h.hostRoot = -1
	cfg.Log.Debugf("pivot_root into %s", cfg.Rootfs)
	if err := r.finish(cfg, h); err != nil {
		r.Undo()
		return nil, accessHint(err, uns)
	}
	return r, nil
}

// makePrivate makes every mount of this namespace private, so that none
// made here reaches the host: a raw system call (see sysprog), as the
// mounts after it.
func makePrivate() error {
	var b sysprog.Builder
	if _, err := emitMount(&b, "", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	_, err := runSteps(&b)
	return err
}

// buildIn builds the container filesystem in the rootfs, chrooted there,
// where its paths are the container's as after pivot_root, and comes back
// to the host's root, undoing what it made if it fails.
func (r *Root) buildIn(cfg *Config, h *host, uns userNS) error {
	var err error
	if h.hostRoot, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	if err := h.enterRoot(); err != nil {
		return err
	}
	if err = r.build(cfg, h, uns); err == nil {
		if err = h.leaveRoot(); err == nil {
			return nil
		}
	}
	// Still chrooted in the rootfs, or with its root at least: the
	// container's paths.
	r.Undo()
	h.leaveRoot()
	return err
}

// enterRoot chroots into the rootfs (h.root): the container's paths, for
// build and Undo, before pivot_root.
func (h *host) enterRoot() error { return chrootTo(h.root, "the rootfs") }

// leaveRoot chroots back to the root of the mount namespace, which
// pivot_root needs, and the hooks (theirs are the host's paths).
func (h *host) leaveRoot() error { return chrootTo(h.hostRoot, "/") }

// chrootTo makes the directory open at fd, named name, the root.
func chrootTo(fd int, name string) error {
	if err := unix.Fchdir(fd); err != nil {
		return &os.PathError{Op: "chdir", Path: name, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return &os.PathError{Op: "chroot", Path: name, Err: err}
	}
	return nil
}

func checkRootfs(dir string, uns userNS) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("rootfs %s: no such directory", dir)
		}
		return accessHint(&os.PathError{Op: "rootfs", Path: dir, Err: err}, uns)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("rootfs %s: not a directory", dir)
	}
	if uns.nested {
		// The container's root is an unprivileged uid on the host: a rootfs
		// of mode 0700 owned by host root would fail later, and less clearly.
		if err := unix.Access(dir, unix.X_OK); err != nil {
			return accessHint(&os.PathError{Op: "rootfs", Path: dir, Err: err}, uns)
		}
	}
	return nil
}

func accessHint(err error, uns userNS) error {
	if !uns.nested || !errors.Is(err, unix.EACCES) {
		return err
	}
	return chain.WithHint(err, fmt.Sprintf("the container's root is uid %d on the host: it must be able to search the rootfs "+
		"and the directories above it, and to write where mount points are missing (chmod 755; chown -R to the mapped range)", uns.hostRoot))
}

// take opens, before pivot_root, everything the container takes from the
// host, and attaches a clone of the rootfs at cfg.Rootfs for pivot_root.
func (h *host) take(cfg *Config, proc string, uns userNS) error {
	pool := takeIdmappedPool()
	defer pool.close()
	if !cfg.NoProc && cfg.child != nil {
		// The child's own, as only a process of its pid namespace can
		// make it.
		h.proc, cfg.child.proc = cfg.child.proc, -1
	} else if !cfg.NoProc {
		// Mounted now, while the host's /proc is in this namespace: in a
		// user namespace the kernel allows a new procfs only next to a
		// fully visible one.
		fd, err := newMount("proc", procAttrs, nil)
		if errors.Is(err, unix.EPERM) && uns.nested {
			err = chain.WithHint(err, "in a user namespace /proc needs a pid namespace of its own: barco-ns -p; or --no-proc")
		}
		if err != nil {
			return err
		}
		h.proc = fd
	}
	if !cfg.NoDev {
		if err := h.takeDev(cfg.Log); err != nil {
			return err
		}
	}
	if !cfg.NoSys {
		fd, err := newMount("sysfs", sysAttrs, nil)
		if errors.Is(err, unix.EPERM) {
			// sysfs needs a network namespace owned by our user namespace;
			// without one, the host's /sys read-only, as rootless runc does.
			cfg.Log.Debugf("sysfs not allowed here; binding the host's /sys read-only")
			fd, err = cloneTree("/sys", unix.AT_RECURSIVE)
			if err == nil {
				h.sys = fd
				err = setattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, sysAttrs, "/sys")
			}
		} else if err == nil {
			h.sys = fd
		}
		if err != nil {
			return err
		}
	}
	// Volumes and tmpfs mounts after /proc, /dev and /sys, in the order
	// given: mountinfo lists mounts in the order they were made, which an
	// OCI config's validator reads back.
	h.volumes = make([]int, len(cfg.Volumes))
	h.volDir = make([]bool, len(cfg.Volumes))
	h.tmpfs = make([]int, len(cfg.Tmpfs))
	for i := range h.volumes {
		h.volumes[i] = -1
	}
	for i := range h.tmpfs {
		h.tmpfs[i] = -1
	}
	for _, m := range cfg.order() {
		if m.volume {
			if err := h.takeVolume(cfg.Volumes[m.index], m.index, uns); err != nil {
				return err
			}
			continue
		}
		t := cfg.Tmpfs[m.index]
		fd, err := newMount("tmpfs", msToAttrs(t.Flags), splitData(t.Data))
		if err != nil {
			return fmt.Errorf("tmpfs %s: %w", t.Dest, err)
		}
		h.tmpfs[m.index] = fd
	}
	if cfg.Cgroupfs && !cfg.NoSys {
		var err error
		self := proc + "/self"
		if cfg.child != nil {
			self = proc + "/" + strconv.Itoa(cfg.child.pid)
		}
		if h.cgroups, err = readCgroupMounts(self, cfg.Log); err != nil {
			return err
		}
	}
	files, err := etcFiles(cfg)
	if err != nil {
		return err
	}
	if len(files) > 0 {
		if h.etc, err = writeEtcFiles(files); err != nil {
			return err
		}
		h.etcList = files
	}
	if !cfg.NoDev {
		if err := h.takeDeviceNodes(cfg.Devices, uns); err != nil {
			return err
		}
	}
	if !cfg.NoDev && uns.nested {
		// A user namespace cannot mknod: bind the host's nodes instead.
		for _, d := range devices {
			fd, err := cloneTree("/dev/"+d.name, 0)
			if err != nil {
				return err
			}
			h.devices = append(h.devices, fd)
		}
	}
	// The rootfs: the idmapped clone barco-ns made of it, if there is one,
	// else a clone made here.
	fd := pool.take(cfg.Rootfs)
	if fd >= 0 {
		cfg.Log.Debugf("rootfs %s: the idmapped mount barco-ns made", cfg.Rootfs)
		if !cfg.Overlay && cfg.Persist == "" {
			// Read-only, for good: see lockedReadOnly.
			idm := fd
			var err error
			fd, err = lockedReadOnly(cfg.Rootfs, idm, uns)
			unix.Close(idm)
			if err != nil {
				return err
			}
		}
	} else {
		var err error
		if fd, err = cloneTree(cfg.Rootfs, unix.AT_RECURSIVE); err != nil {
			return accessHint(err, uns)
		}
	}
	if cfg.Overlay || cfg.Persist != "" {
		lower := fd
		var err error
		fd, err = overlayRoot(cfg, cfg.Rootfs, lower, uns)
		unix.Close(lower)
		if err != nil {
			return err
		}
		cfg.Log.Debugf("overlay root: upper layer in %s", map[bool]string{true: cfg.Persist, false: "a tmpfs"}[cfg.Persist != ""])
	}
	h.root = fd
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, cfg.Rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount rootfs onto", Path: cfg.Rootfs, Err: err}
	}
	return h.takeIdmappedVolumes(cfg, pool, uns)
}

// takeVolume clones the source of volume i, with its attributes.
func (h *host) takeVolume(v Volume, i int, uns userNS) error {
	if v.Idmap {
		// Made at the end: see takeIdmappedVolumes.
		h.volDir[i] = true
		return nil
	}
	sourceErr := func(err error) error {
		return accessHint(&os.PathError{Op: "volume source", Path: v.Source, Err: err}, uns)
	}
	source, err := sysprog.CString(v.Source)
	if err != nil {
		return sourceErr(err)
	}
	var b sysprog.Builder
	tree := b.Sys("open_tree "+v.Source, unix.SYS_OPEN_TREE, sysprog.Int(unix.AT_FDCWD), source,
		sysprog.Imm(uintptr(unix.OPEN_TREE_CLONE|openTreeCloexec|recursive(!v.NoRecursive))))
	b.Explain(func(errno syscall.Errno) error { return sourceErr(errno) })
	stx := (*unix.Statx_t)(b.Bytes(int(unsafe.Sizeof(unix.Statx_t{}))))
	stat := b.Sys("stat "+v.Source, unix.SYS_STATX, tree.Result(), sysprog.FixedString(""), sysprog.Int(unix.AT_EMPTY_PATH),
		sysprog.Int(unix.STATX_TYPE), sysprog.Ptr(unsafe.Pointer(stx)))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "stat", Path: v.Source, Err: errno} })
	attrs := v.Attrs
	if v.ReadOnly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if attrs != 0 {
		if err := emitSetattr(&b, tree.Result(), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attrs, v.Source); err != nil {
			return err
		}
	}
	p, err := runSteps(&b)
	if p == nil {
		return err
	}
	if fd := p.Value(tree); fd != sysprog.NoResult {
		h.volumes[i] = int(fd)
	}
	if p.Value(stat) != sysprog.NoResult {
		h.volDir[i] = stx.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	return err
}

// takeIdmappedVolumes puts each idmapped volume under its read-only
// overlay (lockedReadOnly), last: the overlay's layer is attached on the
// volume's source, which then hides the host's directory from any later
// look-up in this mount namespace. A source inside the rootfs would be
// attached inside the container, and is refused.
func (h *host) takeIdmappedVolumes(cfg *Config, pool *idmappedPool, uns userNS) error {
	for i, v := range cfg.Volumes {
		if !v.Idmap {
			continue
		}
		if rel, err := filepath.Rel(cfg.Rootfs, v.Source); err == nil && !strings.HasPrefix(rel, "..") {
			return fmt.Errorf("volume %s:%s:idmap: the source is inside the rootfs %s", v.Source, v.Dest, cfg.Rootfs)
		}
		idm := pool.take(v.Source)
		if idm < 0 {
			return fmt.Errorf("volume %s:%s:idmap: no idmapped mount of %s came from barco-ns (barco-ns -U --idmap %s)", v.Source, v.Dest, v.Source, v.Source)
		}
		fd, err := lockedReadOnly(v.Source, idm, uns)
		unix.Close(idm)
		if err != nil {
			return fmt.Errorf("volume %s:%s:idmap: %w", v.Source, v.Dest, err)
		}
		h.volumes[i] = fd
	}
	return nil
}

func recursive(yes bool) uint {
	if yes {
		return unix.AT_RECURSIVE
	}
	return 0
}

// pivot makes the mount open at root (attached at dir) the root, and
// detaches the old one. pivot_root(".", ".") stacks the old root on the new
// one, so no directory for it is needed in the rootfs (and --rootfs / works).
func pivot(root int, dir string) error {
	var b sysprog.Builder
	b.Sys("chdir", unix.SYS_FCHDIR, sysprog.Int(root))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "chdir", Path: dir, Err: errno} })
	dot := sysprog.FixedString(".")
	b.Sys("pivot_root", unix.SYS_PIVOT_ROOT, dot, dot)
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "pivot_root", Path: dir, Err: errno} })
	b.Sys("detach old root", unix.SYS_UMOUNT2, dot, sysprog.Int(unix.MNT_DETACH))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "detach old root", Path: "/", Err: errno} })
	b.Sys("chdir", unix.SYS_CHDIR, sysprog.FixedString("/"))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "chdir", Path: "/", Err: errno} })
	_, err := runSteps(&b)
	return err
}

// build makes the container filesystem, from inside it (chrooted in the
// rootfs, see buildIn). Only the container can be reached by path from
// here, so fixed paths in it are safe; user-given ones are still resolved
// with openat2, to refuse magic links.
func (r *Root) build(cfg *Config, h *host, uns userNS) error {
	// In the runtime spec's order of the default mounts, /proc, /dev, /sys,
	// which an OCI config lists and its validator reads back in mountinfo.
	if h.proc >= 0 {
		if err := r.attach(h.root, h.proc, "/proc", noSymlinks, true); err != nil {
			return err
		}
	}
	if !cfg.NoDev {
		if err := r.makeDev(cfg, h, uns); err != nil {
			return err
		}
	}
	if h.sys >= 0 {
		if err := r.attach(h.root, h.sys, "/sys", noSymlinks, true); err != nil {
			return err
		}
		if cfg.Cgroupfs {
			if err := mountCgroupfs(h.cgroups, cfg.Log); err != nil {
				return err
			}
		}
	}
	if h.etc >= 0 {
		if err := r.bindEtcFiles(h.root, h.etc, h.etcList); err != nil {
			return err
		}
	}
	cfg.Log.Debugf("default filesystem ready")
	// In the order given, volumes and tmpfs mounts alike: a volume on a
	// path below a tmpfs is made after it, or the tmpfs would hide it.
	for _, m := range cfg.order() {
		if m.volume {
			i, v := m.index, cfg.Volumes[m.index]
			if err := r.attach(h.root, h.volumes[i], v.Dest, inRoot, h.volDir[i]); err != nil {
				return fmt.Errorf("volume %s:%s: %w", v.Source, v.Dest, err)
			}
			if err := propagate(v.Dest, v.Propagation); err != nil {
				return fmt.Errorf("volume %s:%s: %w", v.Source, v.Dest, err)
			}
			cfg.Log.Debugf("volume %s on %s", v.Source, v.Dest)
			continue
		}
		t := cfg.Tmpfs[m.index]
		if t.CopyUp {
			if err := copyUpInto(h.root, t.Dest, h.tmpfs[m.index], strings.Contains(","+t.Data, ",mode=")); err != nil {
				return fmt.Errorf("tmpfs %s: tmpcopyup: %w", t.Dest, err)
			}
		}
		err := r.attach(h.root, h.tmpfs[m.index], t.Dest, inRoot, true)
		if err == nil {
			err = propagate(t.Dest, t.Propagation)
		}
		if err != nil {
			return fmt.Errorf("tmpfs %s: %w", t.Dest, err)
		}
	}
	return nil
}

// propagate gives the mount on the container path dest the propagation
// flag (MS_SHARED...), if any. The path is resolved in the container,
// whose root it cannot leave.
func propagate(dest string, flag uintptr) error {
	if flag == 0 {
		return nil
	}
	return mount("", dest, "", flag, "")
}

// attach moves the detached mount mnt onto the container path dest,
// created if missing.
func (r *Root) attach(root, mnt int, dest string, resolve uint64, dir bool) error {
	target, err := makeIn(root, dest, !dir, resolve, &r.created)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	var b sysprog.Builder
	emitNotTheRoot(&b, root, target, dest)
	empty := sysprog.FixedString("")
	moved := b.Sys("move_mount onto "+dest, unix.SYS_MOVE_MOUNT, sysprog.Int(mnt), empty, sysprog.Int(target), empty,
		sysprog.Int(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "move_mount onto", Path: dest, Err: errno} })
	p, err := runSteps(&b)
	if p != nil && p.Value(moved) != sysprog.NoResult {
		r.mounted = append(r.mounted, dest)
	}
	return err
}

// emitNotTheRoot appends the steps that refuse a mount point (target,
// open) that is the container's root itself, reached through a symlink
// (mnt/root -> /): a mount there would hide the whole rootfs, and vanish
// under the root once attached. statx, not fstat: its layout is the same
// on every architecture, and a device is read as one word (major, minor).
func emitNotTheRoot(b *sysprog.Builder, root, target int, dest string) {
	empty := sysprog.FixedString("")
	size := int(unsafe.Sizeof(unix.Statx_t{}))
	ino, dev := unsafe.Offsetof(unix.Statx_t{}.Ino), unsafe.Offsetof(unix.Statx_t{}.Dev_major)
	rootStx, targetStx := b.Bytes(size), b.Bytes(size)
	b.Sys("stat /", unix.SYS_STATX, sysprog.Int(root), empty, sysprog.Int(unix.AT_EMPTY_PATH), sysprog.Int(unix.STATX_INO), sysprog.Ptr(rootStx))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "stat", Path: "/", Err: errno} })
	b.Sys("stat "+dest, unix.SYS_STATX, sysprog.Int(target), empty, sysprog.Int(unix.AT_EMPTY_PATH), sysprog.Int(unix.STATX_INO), sysprog.Ptr(targetStx))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "stat", Path: dest, Err: errno} })
	other := b.Label()
	b.JumpUnless(sysprog.Load(targetStx, ino), sysprog.Load(rootStx, ino), other)
	b.JumpUnless(sysprog.Load(targetStx, dev), sysprog.Load(rootStx, dev), other)
	b.Fail("check "+dest, unix.EINVAL)
	b.Explain(func(syscall.Errno) error {
		return fmt.Errorf("%s resolves to the container's / itself, which a mount would hide", dest)
	})
	b.Mark(other)
}

// takeDev makes /dev's filesystems, as detached mounts for makeDev.
func (h *host) takeDev(log *chain.Log) error {
	var err error
	if h.dev[0], err = newMount("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_STRICTATIME, [][2]string{{"mode", "755"}, {"size", "65536k"}}); err != nil {
		return err
	}
	if h.dev[1], err = newMount("devpts", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC,
		[][2]string{{"newinstance", ""}, {"ptmxmode", "0666"}, {"mode", "0620"}}); err != nil {
		return err
	}
	if h.dev[2], err = newMount("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC,
		[][2]string{{"source", "shm"}, {"mode", "1777"}, {"size", "65536k"}}); err != nil {
		return err
	}
	if h.dev[3], err = newMount("mqueue", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, nil); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return err
		}
		// Only for an IPC namespace owned by our user namespace.
		log.Debugf("no /dev/mqueue: %v", err)
		h.dev[3] = -1
	}
	return nil
}

// makeDev mounts /dev as the OCI runtime spec's default: a tmpfs with the
// six usual devices, devpts, shm, mqueue and the fd links.
func (r *Root) makeDev(cfg *Config, h *host, uns userNS) error {
	fd, err := makeIn(h.root, "/dev", false, noSymlinks, &r.created)
	if err != nil {
		return err
	}
	unix.Close(fd)
	cstr, empty := sysprog.FixedString, sysprog.FixedString("")

	// The tmpfs and the standard nodes, with no umask.
	var b sysprog.Builder
	moved := b.Sys("move_mount /dev", unix.SYS_MOVE_MOUNT, sysprog.Int(h.dev[0]), empty, sysprog.Int(unix.AT_FDCWD), cstr("/dev"),
		sysprog.Int(unix.MOVE_MOUNT_F_EMPTY_PATH))
	b.Explain(func(errno syscall.Errno) error {
		return &os.PathError{Op: "move_mount tmpfs onto", Path: "/dev", Err: errno}
	})
	umask := b.Sys("umask", unix.SYS_UMASK, sysprog.Int(0))
	for i, d := range devices {
		p := "/dev/" + d.name
		if slices.ContainsFunc(cfg.Devices, func(d Device) bool { return d.Path == p }) {
			continue
		}
		if uns.nested {
			f := b.Sys("create "+p, unix.SYS_OPENAT, sysprog.Int(unix.AT_FDCWD), cstr(p),
				sysprog.Int(unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC), sysprog.Int(0o666))
			b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "create", Path: p, Err: errno} })
			b.Sys("close "+p, unix.SYS_CLOSE, f.Result())
			b.OnAny(sysprog.Next)
			b.Sys("bind host device onto "+p, unix.SYS_MOVE_MOUNT, sysprog.Int(h.devices[i]), empty, sysprog.Int(unix.AT_FDCWD), cstr(p),
				sysprog.Int(unix.MOVE_MOUNT_F_EMPTY_PATH))
			b.Explain(func(errno syscall.Errno) error {
				return &os.PathError{Op: "bind host device onto", Path: p, Err: errno}
			})
			continue
		}
		b.Sys("mknod "+p, unix.SYS_MKNODAT, sysprog.Int(unix.AT_FDCWD), cstr(p), sysprog.Int(unix.S_IFCHR|0o666),
			sysprog.Imm(uintptr(unix.Mkdev(d.major, d.minor))))
		b.Explain(func(errno syscall.Errno) error {
			err := &os.PathError{Op: "mknod", Path: p, Err: errno}
			if errno == unix.EPERM {
				return chain.WithHint(err, "CAP_MKNOD is missing, or a device cgroup denies it")
			}
			return err
		})
	}
	nodes, err := runSteps(&b)
	if nodes == nil {
		return err
	}
	if nodes.Value(moved) != sysprog.NoResult {
		r.mounted = append(r.mounted, "/dev")
	}
	if old := nodes.Value(umask); old != sysprog.NoResult {
		defer unix.Umask(int(old))
	}
	if err != nil {
		return err
	}
	if err := h.makeDeviceNodes(cfg.Devices); err != nil {
		return err
	}

	// The mounts below /dev and its links.
	b = sysprog.Builder{}
	for _, d := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue"} {
		b.Sys("mkdir "+d, unix.SYS_MKDIRAT, sysprog.Int(unix.AT_FDCWD), cstr(d), sysprog.Int(0o755))
		b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "mkdir", Path: d, Err: errno} })
	}
	for i, d := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue"} {
		if fd := h.dev[i+1]; fd >= 0 {
			b.Sys("move_mount "+d, unix.SYS_MOVE_MOUNT, sysprog.Int(fd), empty, sysprog.Int(unix.AT_FDCWD), cstr(d),
				sysprog.Int(unix.MOVE_MOUNT_F_EMPTY_PATH))
			b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "move_mount onto", Path: d, Err: errno} })
		}
	}
	links := [][2]string{
		{"pts/ptmx", "/dev/ptmx"}, {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	for _, l := range links {
		b.Sys("symlink "+l[1], unix.SYS_SYMLINKAT, cstr(l[0]), sysprog.Int(unix.AT_FDCWD), cstr(l[1]))
		b.On(unix.EEXIST, sysprog.Next) // a --device at that path
		b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "symlink", Path: l[1], Err: errno} })
	}
	_, err = runSteps(&b)
	return err
}

// Undo removes, after a failure, what Enter made in the rootfs: the
// mounts it made, last first, so that each path leads where it did when
// it was made, then the entries it created, if still empty. It runs in the
// container's view (chrooted in the rootfs before pivot_root), and when
// the process exits instead of exec'ing (chain.Process.OnFailure), so that
// a failed start leaves the rootfs as it found it.
//
// Every path is resolved in the container, refusing magic links: before
// pivot_root the host's root is open (leaveRoot), and a symlink that a
// mount brought in (a volume's) to /proc/self/fd/N would lead there.
func (r *Root) Undo() {
	if r == nil {
		return
	}
	if r.readOnly {
		unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY})
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.log.Debugf("undo: open /: %v", err)
		return
	}
	defer unix.Close(root)
	for i := len(r.mounted) - 1; i >= 0; i-- {
		r.unmountIn(root, r.mounted[i])
	}
	for i := len(r.created) - 1; i >= 0; i-- {
		p := r.created[i]
		// Mounts that others made there (a createContainer hook's).
		for n := 0; n < 16 && r.unmountIn(root, p); n++ {
		}
		if err := removeEmpty(root, p); err != nil {
			r.log.Debugf("undo: remove %s: %v", p, err)
		}
	}
	r.mounted, r.created = nil, nil
}

// unmountIn detaches the mount on the container path p, and reports
// whether there was one. The path is checked first as build resolved it,
// in root without magic links; nothing else runs in this mount namespace
// meanwhile, so the kernel's own look-up of it that follows is the same.
func (r *Root) unmountIn(root int, p string) bool {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return false
	}
	fd, err := openIn(root, rel, unix.O_PATH, inRoot)
	if err != nil {
		r.log.Debugf("undo: unmount %s: %v", p, pathError("open", p, err))
		return false
	}
	unix.Close(fd)
	return unix.Unmount("/"+rel, unix.MNT_DETACH) == nil
}

// mount is mount(2) with an error that names its flags.
func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &MountError{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

// newMount makes a detached mount of a new fstype filesystem.
func newMount(fstype string, attrs uint64, opts [][2]string) (int, error) {
	var b sysprog.Builder
	fs, mnt, err := emitNewMount(&b, fstype, attrs, opts)
	if err != nil {
		return -1, err
	}
	p, err := runSteps(&b)
	if p == nil {
		return -1, err
	}
	if fd := p.Value(fs); fd != sysprog.NoResult {
		unix.Close(int(fd))
	}
	if err != nil {
		return -1, err
	}
	return int(p.Value(mnt)), nil
}

// emitNewMount appends newMount's steps: fs is the filesystem context,
// for its caller to close, and mnt the mount.
func emitNewMount(b *sysprog.Builder, fstype string, attrs uint64, opts [][2]string) (fs, mnt sysprog.Ref, err error) {
	// The source names the mount in mountinfo, as mount(8)'s would,
	// unless opts name another.
	if !slices.ContainsFunc(opts, func(o [2]string) bool { return o[0] == "source" }) {
		opts = append([][2]string{{"source", fstype}}, opts...)
	}
	name, err := sysprog.CString(fstype)
	if err != nil {
		return fs, mnt, &os.PathError{Op: "fsopen", Path: fstype, Err: err}
	}
	fs = b.Sys("fsopen "+fstype, unix.SYS_FSOPEN, name, sysprog.Int(unix.FSOPEN_CLOEXEC))
	b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "fsopen", Path: fstype, Err: errno} })
	for _, o := range opts {
		optErr := func(err error) error { return fmt.Errorf("mount %s: option %s=%s: %w", fstype, o[0], o[1], err) }
		key, err := sysprog.CString(o[0])
		if err != nil {
			return fs, mnt, optErr(err)
		}
		if o[1] == "" {
			b.Sys("fsconfig "+o[0], unix.SYS_FSCONFIG, fs.Result(), sysprog.Int(unix.FSCONFIG_SET_FLAG), key, sysprog.Int(0), sysprog.Int(0))
		} else {
			value, err := sysprog.CString(o[1])
			if err != nil {
				return fs, mnt, optErr(err)
			}
			b.Sys("fsconfig "+o[0], unix.SYS_FSCONFIG, fs.Result(), sysprog.Int(unix.FSCONFIG_SET_STRING), key, value, sysprog.Int(0))
		}
		b.Explain(func(errno syscall.Errno) error { return optErr(errno) })
	}
	b.Sys("create "+fstype, unix.SYS_FSCONFIG, fs.Result(), sysprog.Int(unix.FSCONFIG_CMD_CREATE), sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
	b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("mount %s: %w", fstype, errno) })
	mnt = b.Sys("fsmount "+fstype, unix.SYS_FSMOUNT, fs.Result(), sysprog.Int(unix.FSMOUNT_CLOEXEC), sysprog.Imm(uintptr(attrs)))
	b.Explain(func(errno syscall.Errno) error {
		return fmt.Errorf("mount %s (%s): %w", fstype, AttrNames(attrs), errno)
	})
	return fs, mnt, nil
}

// cloneTree makes a detached copy of the mount at p (and those below it,
// with AT_RECURSIVE), as a bind mount would.
func cloneTree(p string, flags uint) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|openTreeCloexec|flags)
	if err != nil {
		return -1, &os.PathError{Op: "open_tree", Path: p, Err: err}
	}
	return fd, nil
}

func setattr(dirfd int, p string, flags uint, attrs uint64, name string) error {
	if err := unix.MountSetattr(dirfd, p, flags, &unix.MountAttr{Attr_set: attrs}); err != nil {
		return fmt.Errorf("mount_setattr %s (%s): %w", name, AttrNames(attrs), err)
	}
	return nil
}

func msToAttrs(flags uintptr) uint64 {
	var a uint64
	for _, m := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if flags&m.ms != 0 {
			a |= m.attr
		}
	}
	return a
}

func splitData(data string) [][2]string {
	var opts [][2]string
	for _, o := range strings.Split(data, ",") {
		if k, v, ok := strings.Cut(o, "="); ok {
			opts = append(opts, [2]string{k, v})
		}
	}
	return opts
}
