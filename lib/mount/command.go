package mount

import (
	"os"
	"path/filepath"

	"barco/lib/chain"
)

// Command is the barco-mount stage.
func Command() *chain.Stage {
	var cfg Config
	st := &chain.Stage{
		Name:     "barco-mount",
		Synopsis: "--rootfs DIR [OPTIONS] [--] PROGRAM [ARG...]",
		Summary: `Make DIR the root of the current mount namespace, with /proc, /dev and
/sys as the OCI runtime spec's defaults, and exec PROGRAM inside it.
Run it in a new mount namespace (after barco-ns -m); it refuses the host's.
barco-caps and barco-seccomp after it run in this process (they are built
into barco-mount); other stage names run from files carried across
pivot_root that the container cannot write. PROGRAM starts with fds 0, 1
and 2 only.`,
		Notes: `Masked paths: /proc/{acpi,asound,kcore,keys,latency_stats,timer_list,
timer_stats,sched_debug,scsi,interrupts}, /sys/firmware,
/sys/devices/virtual/powercap. Read-only: /proc/{bus,fs,irq,sys,sysrq-trigger}.
Destinations are resolved inside DIR: symlinks cannot lead out of it, and
/proc, /dev and /sys must not be symlinks. With a user namespace, DIR must
be searchable by the container's root (uid 100000 on the host by default).`,
		Example: `barco-ns -U -m -p -u -i -- barco-mount --rootfs build/rootfs -- /bin/sh -c 'ls /; ps'`,
	}
	o := &st.Options
	o.String(&cfg.Rootfs, "rootfs", 0, "DIR", "the directory that becomes / (required)")
	o.Bool(&cfg.ReadOnly, "read-only", 0, "make / read-only (volumes and tmpfs keep their own mode)")
	o.Func("volume", 'v', "SRC:DST[:ro]", "bind the host's SRC on DST, created if missing (repeatable)", func(s string) error {
		v, err := ParseVolume(s)
		cfg.Volumes = append(cfg.Volumes, v)
		return err
	})
	o.Func("tmpfs", 0, "DST[:OPTS]", "mount a tmpfs on DST, noexec, nosuid, nodev; OPTS: size=N[k|m|g],mode=OCTAL,nr_inodes=N,ro,exec (repeatable)", func(s string) error {
		t, err := ParseTmpfs(s)
		cfg.Tmpfs = append(cfg.Tmpfs, t)
		return err
	})
	o.String(&cfg.Workdir, "workdir", 'w', "DIR", "the program's working directory (default /)")
	o.Bool(&cfg.NoProc, "no-proc", 0, "do not mount /proc")
	o.Bool(&cfg.NoDev, "no-dev", 0, "do not mount /dev (keep the rootfs's own)")
	o.Bool(&cfg.NoSys, "no-sys", 0, "do not mount /sys")
	o.Bool(&cfg.NoMasks, "no-masks", 0, "do not mask or make read-only the paths below")
	o.Bool(&cfg.Force, "force", 0, "run when it cannot be told whether this is the host's mount namespace (never in the host's)")
	st.Main = func(p *chain.Process, program []string) (int, error) {
		if cfg.Rootfs == "" {
			return 0, &chain.OptionError{Option: "--rootfs", Msg: "is required"}
		}
		cfg.Log = p.Log
		// For the report to the supervisor, which sees the host's paths.
		rootfs, err := filepath.Abs(cfg.Rootfs)
		if err != nil {
			return 0, err
		}
		// A symbolic link is followed here, on the host, as crun does:
		// the root is mounted on the directory itself (move_mount onto a
		// symlink fails).
		if resolved, err := filepath.EvalSymlinks(rootfs); err == nil {
			rootfs = resolved
			cfg.Rootfs = resolved
		}
		// Read before Enter, while the host's paths can be reached. A
		// rootfs that cannot be read is Enter's to report; with no id,
		// the supervisor removes nothing.
		var rootfsID string
		if os.Getenv(CreatedFDEnv) != "" {
			rootfsID, _ = RootfsID(rootfs)
		}
		root, err := Enter(&cfg, func() error { return p.CarryStages(program) })
		if err != nil {
			return 0, err
		}
		// Whatever fails from here on, in this stage or in one linked
		// after it, ends the process instead of an exec, and the rootfs is
		// undone.
		p.OnFailure(root.Undo)
		if err := reportCreated(rootfs, rootfsID, root.created); err != nil {
			return 0, err
		}
		return p.Exec(program, os.Environ())
	}
	return st
}
