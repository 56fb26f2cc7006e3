package mount

import (
	"runtime"
	"testing"

	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// The child's side of the rendezvous sends one byte, with the descriptor
// a step opened as the message's one SCM_RIGHTS descriptor when it has
// one, and reads the front's byte. Run here: the front's byte is already
// there, so the read does not wait.
func TestEmitRendezvous(t *testing.T) {
	var null unix.Stat_t
	if err := unix.Stat("/dev/null", &null); err != nil {
		t.Fatal(err)
	}
	for _, send := range []bool{true, false} {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b sysprog.Builder
		var ref *sysprog.Ref
		if send {
			fd := b.Sys("open /dev/null", unix.SYS_OPENAT, sysprog.Int(unix.AT_FDCWD), sysprog.FixedString("/dev/null"),
				sysprog.Int(unix.O_RDONLY|unix.O_CLOEXEC))
			ref = &fd
		}
		emitRendezvous(&b, sp[1], ref)
		p, err := b.Program(1)
		if err != nil {
			t.Fatal(err)
		}
		// The message lives in memory the collector does not scan: its
		// steps keep it.
		runtime.GC()
		runtime.GC()
		if _, err := unix.Write(sp[0], []byte{1}); err != nil {
			t.Fatal(err)
		}
		if err := sysprog.Run(p); err != nil {
			t.Fatalf("send %v: %v", send, err)
		}
		if send {
			unix.Close(int(p.Value(*ref)))
		}
		buf, oob := make([]byte, 2), make([]byte, unix.CmsgSpace(4*4))
		n, oobn, flags, _, err := unix.Recvmsg(sp[0], buf, oob, unix.MSG_CMSG_CLOEXEC)
		unix.Close(sp[0])
		if err != nil || n != 1 || buf[0] != 'w' || flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
			t.Fatalf("send %v: recvmsg: %q, flags %#x, %v; want \"w\"", send, buf[:n], flags, err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		var fds []int
		for _, m := range msgs {
			rights, err := unix.ParseUnixRights(&m)
			if err != nil {
				t.Fatalf("send %v: a control message that is not SCM_RIGHTS: %v", send, err)
			}
			fds = append(fds, rights...)
		}
		if !send {
			if len(fds) != 0 {
				t.Errorf("no descriptor to send, and %d came", len(fds))
			}
			continue
		}
		if len(fds) != 1 {
			t.Fatalf("%d descriptors came, want 1", len(fds))
		}
		var st unix.Stat_t
		err = unix.Fstat(fds[0], &st)
		unix.Close(fds[0])
		if err != nil || st.Rdev != null.Rdev || st.Ino != null.Ino {
			t.Errorf("the descriptor received is not /dev/null's (rdev %#x, ino %d, %v)", st.Rdev, st.Ino, err)
		}
	}
}
