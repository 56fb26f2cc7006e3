// Package mount turns a directory into a container's root filesystem: the
// work of barco-mount.
//
// # Synopsis
//
//	barco-mount --rootfs DIR [--read-only] [-v SRC:DST[:ro]]... [--tmpfs DST[:OPTS]]...
//	            [--workdir DIR] [--no-proc] [--no-dev] [--no-sys] [--no-masks] [--force]
//	            [--console-socket FD|PATH] [--] PROGRAM [ARG...]
//
// # Description
//
// Enter makes every mount of the current mount namespace private, takes
// from the host what the container needs as detached mounts (a clone of
// DIR, the volume sources, a new procfs and sysfs, and in a user namespace
// the host's device nodes), attaches the clone of DIR on DIR and makes it
// the root with pivot_root(".", "."), detaching the old root at once. From
// then on no host path can be reached, and the rest is built from inside:
//
//   - /dev: tmpfs (nosuid, mode 755) with null, zero, full, random, urandom
//     and tty (mknod, or in a user namespace binds of the host's nodes),
//     devpts at /dev/pts (newinstance, ptmxmode=0666, mode=0620), /dev/ptmx,
//     /dev/shm (tmpfs 1777), /dev/mqueue (skipped when the IPC namespace is
//     not ours), and the links fd, stdin, stdout, stderr;
//   - /sys read-only: sysfs, or where it is not allowed (a user namespace
//     without its own network namespace) a read-only clone of the host's;
//   - /proc: proc, nosuid, nodev, noexec;
//   - the masked paths (a read-only empty tmpfs on a directory, /dev/null on
//     a file) and the read-only paths of the OCI runtime spec's defaults;
//   - the volumes, then the tmpfs mounts, in the order given;
//   - / read-only with --read-only; the working directory;
//   - with --console-socket, a terminal of the container's own
//     (console.Setup): /dev/pts/0 of its devpts, bound on /dev/console,
//     PROGRAM's stdio and controlling terminal, its master sent over the
//     socket, an inherited descriptor or a unix socket connected to before
//     pivot_root.
//
// /proc, /dev and /sys must be real directories of DIR (created when
// missing); user destinations may be symlinks but are resolved with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) relative to the new root,
// so neither a symlink nor a magic link can lead outside of it.
//
// Enter refuses the host's mount namespace (that of PID 1), Force or not:
// pivot_root there would move the root of every process of the machine.
// Force lets it run when it cannot tell whether this is the host's (PID
// 1's namespace cannot be read). On failure it leaves nothing on the host: the mounts live in this
// namespace only, and the entries it created in DIR are removed (Undo).
// barco-mount registers the same Undo with chain.Process.OnFailure, for a failure
// in a stage linked after it. A stage exec'd after it cannot undo, and may
// have lost the privilege to unmount: for that, barco-mount reports the
// entries to barco-ns (CreatedFDEnv), which removes those still empty once
// the container's pid namespace is gone, after a failed start or a run.
//
// # Linked
//
// barco-mount's Steps lets the process that starts the container's first
// process (barco's front, with barco-ns linked in) do this work itself, for
// a child in new namespaces with no user namespace among them: from a thread
// that joins the child's namespaces, with a procfs the child mounted for
// it, Enter builds the filesystem there and its pivot_root makes it the
// child's root (see planLinked). The binary's own work, when it is exec'd,
// is unchanged.
package mount
