package mount

import (
	"fmt"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// finish does what comes after pivot_root: the masked and read-only
// paths and the read-only root (after the hooks, which may write into the
// rootfs and its /proc/sys, as runc's can), the root's propagation (a
// shared root cannot be pivot_root's new one), and the working directory,
// which pivot_root left at /.
func (r *Root) finish(cfg *Config, h *host) error {
	var b sysprog.Builder
	if !cfg.NoMasks && (!cfg.NoProc || !cfg.NoSys) {
		if cfg.NoDev {
			// Not our /dev: make sure /dev/null is what it says.
			emitNullCheck(&b)
		}
		// Their paths are plain ones, which a symlink of the rootfs may
		// lead anywhere in the container: here, not before pivot_root,
		// where the host's root was open (see Undo).
		if err := emitMasks(&b, cfg, !cfg.NoProc, !cfg.NoSys); err != nil {
			return err
		}
	}
	if cfg.Propagation != 0 {
		// In this mount namespace only: its mounts are apart from the
		// host's since Enter made them private.
		if _, err := emitMount(&b, "", "/", "", cfg.Propagation, ""); err != nil {
			return err
		}
	}
	if cfg.ReadOnly {
		if err := emitSetattr(&b, sysprog.Int(unix.AT_FDCWD), "/", 0, unix.MOUNT_ATTR_RDONLY, "/"); err != nil {
			return err
		}
		// For Undo, which clears it. Should the program fail before this
		// step, Undo clears a read-only the root may have had of its own
		// (a read-only source): in this mount namespace only, which the
		// failure ends.
		r.readOnly = true
	}
	// The child of planLinked changes to it itself: a working directory
	// is a thread's own.
	if cfg.Workdir != "" && cfg.Workdir != "/" && cfg.child == nil {
		if err := emitWorkdir(&b, sysprog.Int(h.root), cfg.Workdir); err != nil {
			return err
		}
	}
	_, err := runSteps(&b)
	return err
}

// runSteps runs the steps b holds, in this process (sysprog.Run), and
// returns their program, for their results, with the error of the step
// that failed; nil if the program could not be made.
func runSteps(b *sysprog.Builder) (*sysprog.Program, error) {
	p, err := b.Program(chain.ExitFailed)
	if err != nil {
		return nil, err
	}
	return p, sysprog.Run(p)
}

// emitNullCheck appends the steps that fail unless /dev/null is the null
// device, a character device 1:3.
func emitNullCheck(b *sysprog.Builder) {
	bad, ok := b.Label(), b.Label()
	stx := b.Bytes(int(unsafe.Sizeof(unix.Statx_t{})))
	b.Sys("statx /dev/null", unix.SYS_STATX, sysprog.Int(unix.AT_FDCWD), sysprog.FixedString("/dev/null"), sysprog.Int(0),
		sysprog.Int(unix.STATX_TYPE), sysprog.Ptr(stx))
	b.OnAny(bad)
	b.JumpUnlessMasked(sysprog.Load(stx, unsafe.Offsetof(unix.Statx_t{}.Mode)), unix.S_IFMT, sysprog.Imm(unix.S_IFCHR), bad)
	b.JumpUnless(sysprog.Load(stx, unsafe.Offsetof(unix.Statx_t{}.Rdev_major)), sysprog.Imm(1|3<<32), bad)
	b.Jump(ok)
	b.Mark(bad)
	b.Fail("check /dev/null", unix.ENODEV)
	b.Explain(func(syscall.Errno) error {
		return chain.Errorf("masking files needs it; or give --no-masks", "rootfs /dev/null is not the null device")
	})
	b.Mark(ok)
}

// emitSetattr appends mount_setattr(2) of path at dirfd ("" with
// AT_EMPTY_PATH: the mount dirfd is), with the error setattr makes, which
// names it name.
func emitSetattr(b *sysprog.Builder, dirfd sysprog.Arg, path string, flags uint, attrs uint64, name string) error {
	p, err := sysprog.CString(path)
	if err != nil {
		return fmt.Errorf("mount_setattr %q: %w", path, err)
	}
	attr := &unix.MountAttr{Attr_set: attrs}
	b.Sys("mount_setattr "+name, unix.SYS_MOUNT_SETATTR, dirfd, p, sysprog.Imm(uintptr(flags)),
		sysprog.Ptr(unsafe.Pointer(attr)), sysprog.Imm(unsafe.Sizeof(*attr)))
	b.Explain(func(errno syscall.Errno) error {
		return fmt.Errorf("mount_setattr %s (%s): %w", name, AttrNames(attrs), errno)
	})
	return nil
}

// workdirTries is how many times emitWorkdir's open is tried when a
// rename races with its lookup (EAGAIN), or a signal interrupts it: a
// program has no loop.
const workdirTries = 8

// emitWorkdir appends the steps that make the container path dir,
// resolved in root (a descriptor of the container's root) as the
// container would, the working directory.
func emitWorkdir(b *sysprog.Builder, root sysprog.Arg, dir string) error {
	rel, err := sysprog.CString(dir)
	if err != nil {
		return pathError("workdir", dir, err)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot}
	explain := func(errno syscall.Errno) error { return pathError("workdir", dir, errno) }
	done := b.Label()
	for try := 1; try <= workdirTries; try++ {
		again := b.Label()
		fd := b.Sys("open the working directory", unix.SYS_OPENAT2, root, rel,
			sysprog.Ptr(unsafe.Pointer(how)), sysprog.Imm(unsafe.Sizeof(*how)))
		b.Explain(explain)
		b.Blocking() // the path may lead into a FUSE or NFS volume
		if try < workdirTries {
			b.On(unix.EAGAIN, again)
			b.On(unix.EINTR, again)
		}
		b.Sys("change to the working directory", unix.SYS_FCHDIR, fd.Result())
		b.Explain(explain)
		b.Sys("close the working directory", unix.SYS_CLOSE, fd.Result())
		b.OnAny(sysprog.Next)
		b.Jump(done)
		b.Mark(again)
	}
	b.Mark(done)
	return nil
}

// emitMasks appends to b the steps that hide maskedPaths and make
// readonlyPaths read-only, as far as their filesystems were mounted here
// (proc, sys), or the config's lists anywhere. A masked path goes under
// an empty read-only tmpfs when it is a directory, else under /dev/null:
// what the list says first, the other on ENOTDIR or EISDIR. A read-only
// path is bound onto itself and made read-only. A path this kernel or
// the rootfs lacks (ENOENT) is skipped, as runc does.
func emitMasks(b *sysprog.Builder, cfg *Config, proc, sys bool) error {
	mounted := func(p string) bool {
		return (proc && len(p) > 6 && p[:6] == "/proc/") || (sys && len(p) > 5 && p[:5] == "/sys/")
	}
	masked, readonly := maskedPaths, readonlyPaths
	if cfg.Masked != nil || cfg.Readonly != nil {
		// The lists given replace the defaults, and apply anywhere in the
		// container; a path it lacks is skipped, as runc does.
		masked, readonly = nil, cfg.Readonly
		for _, p := range cfg.Masked {
			masked = append(masked, struct {
				path string
				dir  bool
			}{p, true})
		}
		mounted = func(string) bool { return true }
	}
	for _, m := range masked {
		if !mounted(m.path) {
			continue
		}
		done, other := b.Label(), b.Label()
		if err := emitMask(b, m.path, m.dir); err != nil {
			return err
		}
		b.On(unix.ENOTDIR, other)
		b.On(unix.EISDIR, other)
		b.On(unix.ENOENT, done)
		b.Jump(done)
		b.Mark(other)
		if err := emitMask(b, m.path, !m.dir); err != nil {
			return err
		}
		b.On(unix.ENOENT, done)
		b.Mark(done)
	}
	for _, p := range readonly {
		if !mounted(p) {
			continue
		}
		done := b.Label()
		if _, err := emitMount(b, p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		b.On(unix.ENOENT, done)
		if err := emitSetattr(b, sysprog.Int(unix.AT_FDCWD), p, unix.AT_RECURSIVE, unix.MOUNT_ATTR_RDONLY, p); err != nil {
			return err
		}
		b.Mark(done)
	}
	return nil
}

// emitMask appends the mount that hides p: an empty read-only tmpfs for a
// directory, /dev/null for a file.
func emitMask(b *sysprog.Builder, p string, dir bool) error {
	var err error
	if dir {
		_, err = emitMount(b, "tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	} else {
		_, err = emitMount(b, "/dev/null", p, "", unix.MS_BIND, "")
	}
	return err
}

// emitMount appends mount(2) as the function mount makes it, with the same
// error when it fails: an empty data is no data.
func emitMount(b *sysprog.Builder, source, target, fstype string, flags uintptr, data string) (sysprog.Ref, error) {
	mountErr := func(err error) error {
		return &MountError{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	args := []sysprog.Arg{}
	for _, s := range []string{source, target, fstype} {
		a, err := sysprog.CString(s)
		if err != nil {
			return sysprog.Ref{}, mountErr(err)
		}
		args = append(args, a)
	}
	args = append(args, sysprog.Imm(flags), sysprog.Imm(0))
	if data != "" {
		a, err := sysprog.CString(data)
		if err != nil {
			return sysprog.Ref{}, mountErr(err)
		}
		args[4] = a
	}
	ref := b.Sys("mount "+target, unix.SYS_MOUNT, args...)
	b.Explain(func(errno syscall.Errno) error { return mountErr(errno) })
	return ref, nil
}
