package chain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StageFDsEnv names the variable that lists the carried stage binaries,
// "barco-caps=5,barco-seccomp=6". It passes down the chain with them and is
// removed before the container's program starts.
const StageFDsEnv = "BARCO_STAGE_FDS"

func parseStageFDs(v string) map[string]int {
	m := map[string]int{}
	for _, item := range strings.Split(v, ",") {
		name, fdText, ok := strings.Cut(item, "=")
		fd, err := strconv.Atoi(fdText)
		if !ok || err != nil || !IsStage(name) || fd < 3 {
			continue
		}
		// Only trust a descriptor that really is open.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			m[name] = fd
		}
	}
	return m
}

func formatStageFDs(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(m[n])
	}
	return strings.Join(parts, ",")
}

// Carried reports whether this stage runs from a carried copy, that is
// inside a container after barco-mount.
func (p *Process) Carried() bool { return len(p.carried) > 0 }

// CarryStages prepares the stages named in argv for the crossing of
// pivot_root: each bare stage name found in argv is opened, the binary of
// that name next to the running one, and Exec runs it from that descriptor
// from then on. Stages linked into the running binary need no carrying.
//
// Nothing inside the container may be able to write a host binary while it
// runs (CVE-2019-5736). In a user namespace where the binary's owner is not
// mapped and nobody else may write it, the kernel itself refuses every
// process in the container, whatever its capabilities, and the open file
// is carried as it is. Otherwise (no user namespace, say) the stage is
// carried sealed (see Sealed). Only the stages named are carried, because
// a memfd copy, where Sealed must make one, is most of the cost of
// crossing.
func (p *Process) CarryStages(argv []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir := filepath.Dir(self)
	minFD := 3
	if n, err := strconv.Atoi(os.Getenv(PreserveFDsEnv)); err == nil && n > 0 {
		minFD += n
	}
	for _, name := range argv {
		if !IsStage(name) || p.linkedStage(name) != nil {
			continue
		}
		if _, done := p.carried[name]; done {
			continue
		}
		fd, how, err := carry(filepath.Join(dir, name), name, minFD)
		if err != nil {
			return err
		}
		p.carried[name] = fd
		p.Log.Debugf("carry %s as %s, fd %d", name, how, fd)
	}
	if len(p.carried) == 0 {
		return nil
	}
	return os.Setenv(StageFDsEnv, formatStageFDs(p.carried))
}

func carry(path, name string, minFD int) (int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, "", fmt.Errorf("carry stage %s: %w", name, err)
	}
	how := "the host file, which nothing in this user namespace may write"
	if !unwritableHere(f) {
		f.Close()
		if f, how, err = Sealed(path, name); err != nil {
			return -1, "", err
		}
	}
	kept, err := keep(f, name, minFD)
	return kept, how, err
}

// keep is a fresh descriptor of f without close-on-exec, above those the
// program keeps, so that it passes from stage to stage; f is closed.
func keep(f *os.File, name string, minFD int) (int, error) {
	defer f.Close()
	kept, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD, minFD)
	if err != nil {
		return -1, fmt.Errorf("dup carried %s: %w", name, err)
	}
	return kept, nil
}

// CarrySelf carries this process's own executable as the stage name, for
// a helper of that stage that runs inside the container (barco-ns
// re-executed in a joined mount namespace, where it finds PROGRAM),
// sealed (see Sealed), as any carried stage that the container's processes
// could otherwise write. It returns the path to execute it by.
func (p *Process) CarrySelf(name string) (string, error) {
	f, how, err := Sealed("/proc/self/exe", name)
	if err != nil {
		return "", err
	}
	minFD := 3 + PreservedFDs()
	fd, err := keep(f, name, minFD)
	if err != nil {
		return "", err
	}
	p.carried[name] = fd
	p.Log.Debugf("carry %s (this executable) as %s, fd %d", name, how, fd)
	return "/proc/self/fd/" + strconv.Itoa(fd), os.Setenv(StageFDsEnv, formatStageFDs(p.carried))
}

// unwritableHere reports whether no process of the current user namespace
// can write f or change its mode, whatever its capabilities: the namespace
// is not the initial one, only the owner may write f, and neither the
// owner nor the group is mapped here, so that no process inside can become
// the owner and CAP_DAC_OVERRIDE and CAP_FOWNER do not apply to f.
//
// Inside the namespace an unmapped id reads as the overflow id (65534), as
// does an id mapped to 65534 itself; the last check tells the two apart by
// asking the kernel whether fsuid 65534 is the owner.
func unwritableHere(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&0o022 != 0 {
		return false
	}
	if !InChildUserNS() {
		return false
	}
	overflowUID, overflowGID := readID("/proc/sys/kernel/overflowuid"), readID("/proc/sys/kernel/overflowgid")
	if st.Uid != overflowUID || st.Gid != overflowGID {
		return false
	}
	// faccessat2 with AT_EACCESS checks the effective ids and capabilities.
	if err := unix.Faccessat2(int(f.Fd()), "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS); err == nil {
		return false
	}
	return !ownedByFSUID(f, int(overflowUID))
}

// ownedByFSUID reports whether uid, as the file-system uid of this thread,
// may write f, which with no group or other write bit means it owns f. A
// uid that is not mapped here cannot be taken, and owns nothing.
func ownedByFSUID(f *os.File, uid int) bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, _ := unix.SetfsuidRetUid(uid)
	defer unix.SetfsuidRetUid(prev)
	if now, _ := unix.SetfsuidRetUid(uid); now != uid {
		return false
	}
	return unix.Faccessat2(int(f.Fd()), "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS) == nil
}

func readID(path string) uint32 {
	data, err := ReadFile(path)
	if err != nil {
		return 65534
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(n)
}

// InChildUserNS reports whether this process is in a user namespace other
// than the initial one (see InitialUserNS).
func InChildUserNS() bool {
	initial, err := InitialUserNS("/proc")
	return err == nil && !initial
}

// HostRoot reports whether this process is root over the host: effective
// uid 0 in the initial user namespace. Root of a user namespace of a user's
// own (rootless podman runs its OCI runtime so) is no more privileged over
// the host's cgroups, devices and /run than that user.
func HostRoot() bool {
	return os.Geteuid() == 0 && !InChildUserNS()
}

// initUserNSInode is the inode number of the initial user namespace, fixed
// by the kernel (PROC_USER_INIT_INO, include/linux/proc_ns.h).
const initUserNSInode = 0xEFFFFFFD

// InitialUserNS reports whether this process is in the initial user
// namespace, by the inode of proc/self/ns/user, which the kernel fixes for
// that one. Its uid_map, the identity over all ids, does not tell: a
// child namespace may have the same (--userns 0:0:4294967295).
func InitialUserNS(proc string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(proc+"/self/ns/user", &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: proc + "/self/ns/user", Err: err}
	}
	return st.Ino == initUserNSInode, nil
}

// Sealed opens the executable at path as a file that nothing can write,
// and says how: through a read-only overlayfs of its directory that is
// attached nowhere, as runc 1.2 does, and where that cannot be made (no
// overlayfs, no privilege to mount it), as a sealed memfd copy. A write
// through /proc/PID/exe of a process running it fails either way
// (CVE-2019-5736). The overlay costs a few system calls; the copy reads and
// writes the whole binary, a few milliseconds for a barco stage, and keeps
// it in memory while the file is open. The file is close-on-exec.
func Sealed(path, name string) (*os.File, string, error) {
	f, err := sealedOverlay(path)
	if err == nil {
		return f, "a read-only overlayfs of its directory", nil
	}
	f, cerr := SealedCopy(path, name)
	if cerr != nil {
		return nil, "", cerr
	}
	return f, fmt.Sprintf("a sealed memfd copy (overlayfs: %v)", err), nil
}

// sealedOverlay opens path through an overlayfs whose layers are path's
// directory and an empty tmpfs: with no upper layer, the overlay refuses
// every write (and needs two layers for that), and its mount, read-only
// too, is attached nowhere, so that nothing can remount it writable. The
// directory is the upper of the two lower layers, so that nothing in the
// tmpfs could hide the binary.
func sealedOverlay(path string) (*os.File, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(real)
	empty, err := detachedMount("tmpfs", nil)
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	escape := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	lower := escape.Replace(filepath.Clean(dir)) + ":/proc/self/fd/" + strconv.Itoa(empty)
	overlay, err := detachedMount("overlay", [][2]string{{"lowerdir", lower}, {"xino", "off"}})
	if err != nil {
		return nil, err
	}
	defer unix.Close(overlay)
	fd, err := unix.Openat(overlay, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open through overlayfs", Path: real, Err: err}
	}
	return os.NewFile(uintptr(fd), real), nil
}

// detachedMount makes a new read-only, nosuid, nodev mount of fstype with
// opts, attached nowhere, and returns its descriptor.
func detachedMount(fstype string, opts [][2]string) (int, error) {
	ctx, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("fsopen "+fstype, err)
	}
	defer unix.Close(ctx)
	for _, o := range opts {
		if err := unix.FsconfigSetString(ctx, o[0], o[1]); err != nil {
			return -1, fmt.Errorf("fsconfig %s %s=%s: %w", fstype, o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(ctx); err != nil {
		return -1, fmt.Errorf("fsconfig %s create: %w", fstype, err)
	}
	fd, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, os.NewSyscallError("fsmount "+fstype, err)
	}
	return fd, nil
}

// SealedCopy copies the executable at path into a memfd named name and
// seals it against any change; the file is close-on-exec.
func SealedCopy(path, name string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("carry stage %s: %w", name, err)
	}
	defer src.Close()
	// MFD_EXEC states the intent where vm.memfd_noexec asks for it (Linux
	// 6.3); older kernels do not know the flag.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	mem := os.NewFile(uintptr(fd), name)
	if _, err := io.Copy(mem, src); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy %s to memfd: %w", path, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal memfd copy of %s: %w", name, err)
	}
	return mem, nil
}
