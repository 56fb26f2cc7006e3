package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/hook"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// linkedChild is the process planLinked builds the filesystem for.
type linkedChild struct {
	pid int
	// proc is the child's procfs mount, taken from it, until Enter takes
	// it in turn (-1 then).
	proc int
}

// planLinked plans barco-mount's work for a child that a stage of this
// process starts (barco-ns, see chain.Process.InlineSteps), without a
// barco-mount process: the child mounts a procfs of its pid namespace,
// which only a process in it can, and waits; this process, from a thread
// that has joined the child's namespaces (chain.FrontWork), builds the
// container's filesystem there with Enter, whose pivot_root makes it the
// child's root too (the kernel moves the root of every process whose root
// was the old one); then the child changes to the working directory, and
// the stages after barco-mount go on as its steps. It takes in.State.Root
// for theirs: the rootfs, whose /etc/passwd and /etc/group no mount of
// cfg covers.
//
// Enter runs in the child instead (chain.ErrNotInline) with a user
// namespace, whose mounts are to be owned by it; with hooks or a terminal,
// which are a process's; with --persist, whose upper layer may hold other
// account files; and where no thread can join the namespaces (a child
// that joins them itself, or no new mount namespace).
func planLinked(in *chain.Inline, cfg *Config) (func(*sysprog.Builder), error) {
	st := in.State
	if st.SyncFD < 0 || st.Namespaces&unix.CLONE_NEWNS == 0 || st.Namespaces&unix.CLONE_NEWUSER != 0 ||
		cfg.Proc != "" || cfg.Force || cfg.Persist != "" {
		return nil, chain.ErrNotInline
	}
	for _, k := range []string{hook.CreateEnv, hook.StartEnv, CreatedFDEnv} {
		if _, ok := os.LookupEnv(k); ok {
			return nil, chain.ErrNotInline
		}
	}
	for _, m := range cfg.order() {
		dest := ""
		if m.volume {
			dest = cfg.Volumes[m.index].Dest
		} else {
			dest = cfg.Tmpfs[m.index].Dest
		}
		if dest == "/etc" || dest == "/etc/passwd" || dest == "/etc/group" {
			return nil, chain.ErrNotInline
		}
	}
	rootfs, err := filepath.Abs(cfg.Rootfs)
	if err != nil {
		return nil, err
	}
	// As Main: a symbolic link is followed on the host.
	if resolved, err := filepath.EvalSymlinks(rootfs); err == nil {
		rootfs = resolved
	}
	c := *cfg
	c.Rootfs, c.Log = rootfs, in.Log
	st.Root = rootfs
	in.Front = func(pid int, fds []int) (func(failed bool), error) {
		child := &linkedChild{pid: pid, proc: -1}
		c.child = child
		switch {
		case !c.NoProc && len(fds) == 1:
			child.proc = fds[0]
			defer func() {
				if child.proc >= 0 {
					unix.Close(child.proc)
				}
			}()
		case len(fds) > 0 || !c.NoProc:
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("the child's procfs: %d descriptors came from child %d", len(fds), pid)
		}
		root, err := Enter(&c, func() error { return nil })
		if err != nil {
			return nil, err
		}
		return func(failed bool) {
			if failed && !c.Overlay {
				root.Undo()
			}
		}, nil
	}
	sync := st.SyncFD
	return func(b *sysprog.Builder) {
		mnt := sysprog.Ref{}
		if !c.NoProc {
			fs, m, err := emitNewMount(b, "proc", procAttrs, nil)
			if err != nil {
				b.Fail("mount proc", unix.EINVAL)
				b.Explain(func(syscall.Errno) error { return err })
				return
			}
			mnt = m
			b.Sys("close the procfs context", unix.SYS_CLOSE, fs.Result())
			emitRendezvous(b, sync, &mnt)
		} else {
			emitRendezvous(b, sync, nil)
		}
		if !c.NoProc {
			b.Sys("close the procfs", unix.SYS_CLOSE, mnt.Result())
		}
		if c.Workdir != "" && c.Workdir != "/" {
			root := b.Sys("open /", unix.SYS_OPENAT, sysprog.Int(unix.AT_FDCWD), sysprog.FixedString("/"),
				sysprog.Int(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC))
			b.Explain(func(errno syscall.Errno) error { return &os.PathError{Op: "open", Path: "/", Err: errno} })
			if err := emitWorkdir(b, root.Result(), c.Workdir); err != nil {
				b.Fail("workdir", unix.EINVAL)
				b.Explain(func(syscall.Errno) error { return err })
				return
			}
			b.Sys("close /", unix.SYS_CLOSE, root.Result())
		}
	}, nil
}

// emitRendezvous appends the child's side of chain.FrontWork's wait on
// the socket sync: a byte to say it waits, with the descriptor send
// returns if not nil (SCM_RIGHTS), and one to read, which the front
// writes once its work is done, and closes its end otherwise.
func emitRendezvous(b *sysprog.Builder, sync int, send *sysprog.Ref) {
	// One block for the message and what it points to, which the
	// collector does not scan: its steps keep it alive.
	msgSize, iovSize := unsafe.Sizeof(unix.Msghdr{}), unsafe.Sizeof(unix.Iovec{})
	space := uintptr(unix.CmsgSpace(4))
	block := b.Bytes(int(msgSize + iovSize + 8 + space))
	msg := (*unix.Msghdr)(block)
	iov := (*unix.Iovec)(unsafe.Add(block, msgSize))
	waiting := (*byte)(unsafe.Add(block, msgSize+iovSize))
	control := unsafe.Add(block, msgSize+iovSize+8)
	*waiting = 'w'
	iov.Base, iov.Len = waiting, 1
	msg.Iov, msg.Iovlen = iov, 1
	if send != nil {
		// One descriptor, whose number the child stores in the message's
		// control data (a word: the int and the padding after it).
		h := (*unix.Cmsghdr)(control)
		h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
		h.SetLen(unix.CmsgLen(4))
		msg.Control = (*byte)(control)
		msg.SetControllen(int(space))
		b.Store(unsafe.Add(control, unix.CmsgLen(0)), send.Result())
	}
	b.Sys("wait for the front", unix.SYS_SENDMSG, sysprog.Int(sync), sysprog.Ptr(unsafe.Pointer(msg)), sysprog.Int(0))
	buf := b.Bytes(1)
	n := b.Sys("wait for the front", unix.SYS_READ, sysprog.Int(sync), sysprog.Ptr(buf), sysprog.Int(1))
	b.Blocking()
	gone, done := b.Label(), b.Label()
	b.JumpUnless(n.Result(), sysprog.Int(1), gone)
	b.Jump(done)
	b.Mark(gone)
	b.Fail("wait for the front", unix.EPIPE)
	b.Explain(func(syscall.Errno) error { return chain.ErrReported })
	b.Mark(done)
	b.Sys("close the front's socket", unix.SYS_CLOSE, sysprog.Int(sync))
}
