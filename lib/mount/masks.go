package mount

import (
	"fmt"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// maskPaths hides maskedPaths and makes readonlyPaths read-only, as far as
// their filesystems were mounted here. A path this kernel lacks is skipped.
func maskPaths(cfg *Config, proc, sys, checkNull bool) error {
	if checkNull {
		// Not our /dev: make sure /dev/null is what it says.
		var st unix.Stat_t
		if err := unix.Stat("/dev/null", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
			return chain.Errorf("masking files needs it; or give --no-masks", "rootfs /dev/null is not the null device")
		}
	}
	var b sysprog.Builder
	if err := emitMasks(&b, cfg, proc, sys); err != nil {
		return err
	}
	p, err := b.Program(chain.ExitFailed)
	if err != nil {
		return err
	}
	return sysprog.Run(p)
}

// emitMasks appends to b the steps of maskPaths after its check of
// /dev/null: each masked path under an empty read-only tmpfs when it is a
// directory, else under /dev/null, trying first what the list says and
// the other on ENOTDIR or EISDIR, skipped on ENOENT; each read-only path
// bound onto itself and made read-only, skipped on ENOENT.
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
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	for _, p := range readonly {
		if !mounted(p) {
			continue
		}
		path, err := sysprog.CString(p)
		if err != nil {
			return fmt.Errorf("read-only path %q: %w", p, err)
		}
		done := b.Label()
		if err := emitMount(b, p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		b.On(unix.ENOENT, done)
		b.Sys("mount_setattr "+p, unix.SYS_MOUNT_SETATTR, sysprog.Int(unix.AT_FDCWD), path, sysprog.Int(unix.AT_RECURSIVE),
			sysprog.Ptr(unsafe.Pointer(attr)), sysprog.Imm(unsafe.Sizeof(*attr)))
		b.Explain(func(errno syscall.Errno) error {
			return fmt.Errorf("mount_setattr %s (%s): %w", p, AttrNames(attr.Attr_set), errno)
		})
		b.Mark(done)
	}
	return nil
}

// emitMask appends the mount that hides p: an empty read-only tmpfs for a
// directory, /dev/null for a file.
func emitMask(b *sysprog.Builder, p string, dir bool) error {
	if dir {
		return emitMount(b, "tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	}
	return emitMount(b, "/dev/null", p, "", unix.MS_BIND, "")
}

// emitMount appends mount(2) as the function mount makes it, with the same
// error when it fails: an empty data is no data.
func emitMount(b *sysprog.Builder, source, target, fstype string, flags uintptr, data string) error {
	args := []sysprog.Arg{}
	for _, s := range []string{source, target, fstype} {
		a, err := sysprog.CString(s)
		if err != nil {
			return &MountError{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
		}
		args = append(args, a)
	}
	args = append(args, sysprog.Imm(flags), sysprog.Imm(0))
	if data != "" {
		a, err := sysprog.CString(data)
		if err != nil {
			return &MountError{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
		}
		args[4] = a
	}
	b.Sys("mount "+target, unix.SYS_MOUNT, args...)
	b.Explain(func(errno syscall.Errno) error {
		return &MountError{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: errno}
	})
	return nil
}
