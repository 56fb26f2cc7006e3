package chain

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"

	"barco/lib/creds"
	"golang.org/x/sys/unix"
)

// NSSetupEnv names the variable by which barco-ns hands the first process
// in its new namespaces the setup to do there before anything else:
// "fd=4,uid=0,gid=0,hostname=box,lo=1". Every stage does it at start (see
// Process.Run), so that barco-ns can exec the next stage straight into the
// namespaces instead of through a helper process of its own.
const NSSetupEnv = "BARCO_NS_SETUP"

// NSSetup is the work barco-ns leaves to the first process inside its
// namespaces.
type NSSetup struct {
	// SyncFD is the handshake pipe: one byte arrives once the uid and gid
	// maps are written; end of file means barco-ns died. It stays open in
	// barco-ns for its whole life.
	SyncFD   int
	UID, GID int // credentials to take; -1 leaves them
	Hostname string
	Loopback bool
	// Idmapped is the number of idmapped mounts that come with the
	// handshake byte, over SyncFD, then a unix socket (barco-ns --idmap).
	Idmapped int
	// Detached: barco-ns does not stay (barco-ns --detach), so the child
	// must not die with it.
	Detached bool
	// RuntimeHooks: barco-ns runs its hooks (the OCI prestart and
	// createRuntime) once barco-mount has built the container's
	// filesystem, as runc runs them once its mounts are made: SyncFD, a
	// socket pair then, stays open for RuntimeHooks.
	RuntimeHooks bool
}

// String encodes the setup for NSSetupEnv.
func (s NSSetup) String() string {
	parts := []string{"fd=" + strconv.Itoa(s.SyncFD), "uid=" + strconv.Itoa(s.UID), "gid=" + strconv.Itoa(s.GID)}
	if s.Hostname != "" {
		parts = append(parts, "hostname="+s.Hostname)
	}
	if s.Loopback {
		parts = append(parts, "lo=1")
	}
	if s.Idmapped > 0 {
		parts = append(parts, "idmap="+strconv.Itoa(s.Idmapped))
	}
	if s.Detached {
		parts = append(parts, "detached=1")
	}
	if s.RuntimeHooks {
		parts = append(parts, "hooks=1")
	}
	return strings.Join(parts, ",")
}

// ParseNSSetup decodes NSSetupEnv.
func ParseNSSetup(v string) (NSSetup, error) {
	s := NSSetup{SyncFD: -1, UID: -1, GID: -1}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "fd":
			s.SyncFD, err = strconv.Atoi(val)
		case "uid":
			s.UID, err = strconv.Atoi(val)
		case "gid":
			s.GID, err = strconv.Atoi(val)
		case "hostname":
			s.Hostname = val
		case "lo":
			s.Loopback = val == "1"
		case "idmap":
			s.Idmapped, err = strconv.Atoi(val)
		case "detached":
			s.Detached = val == "1"
		case "hooks":
			s.RuntimeHooks = val == "1"
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return s, fmt.Errorf("%s=%q: %v", NSSetupEnv, v, err)
		}
	}
	if s.SyncFD < 3 {
		return s, fmt.Errorf("%s=%q: no handshake descriptor", NSSetupEnv, v)
	}
	return s, nil
}

// nsSetup runs in the first process inside barco-ns's namespaces. It
// came in with every capability as ambient (in a new user namespace its
// uid is not mapped yet when it execs, which would otherwise cost it all
// of them); it waits for the maps, does the setup, takes its credentials,
// and gives up the ambient set, so that the next exec gets the capabilities
// of its uid as usual.
func (p *Process) nsSetup(v string) error {
	s, err := ParseNSSetup(v)
	if err != nil {
		return err
	}
	os.Unsetenv(NSSetupEnv)
	syscall.CloseOnExec(s.SyncFD)
	p.detached = s.Detached
	// The credentials below are set on this thread only, and the stage's
	// goroutine stays on it up to its exec (see setIDs).
	if err := creds.LockThread(); err != nil {
		return err
	}
	if err := p.armParentDeath(); err != nil {
		return err
	}
	// The handshake: block until barco-ns has written the maps.
	fds, err := receiveHandshake(s)
	if err != nil {
		return err
	}
	// Its end of file was barco-ns's death before the maps; nothing after,
	// but for the runtime's hooks.
	if s.RuntimeHooks {
		runtimeHooksFD = s.SyncFD
	} else {
		unix.Close(s.SyncFD)
	}
	if len(fds) > 0 {
		// Kept across the exec of the next stage, which takes them;
		// PROGRAM never gets them (see Exec).
		os.Setenv(IdmappedFDsEnv, FormatFDs(fds))
	}
	p.Log.Debugf("namespace handshake done: %s", s)
	var sysctls []string
	if v := os.Getenv(SysctlEnv); v != "" {
		os.Unsetenv(SysctlEnv)
		sysctls = strings.Split(v, "\n")
	}
	if err := SetUpNamespaces(s.Hostname, s.Loopback, sysctls); err != nil {
		return err
	}
	if s.UID >= 0 || s.GID >= 0 {
		if err := setIDs(s.UID, s.GID); err != nil {
			return err
		}
		// A change of credentials clears the parent-death signal.
		if err := p.armParentDeath(); err != nil {
			return err
		}
	}
	if err := creds.ClearAmbient(); err != nil {
		return err
	}
	return clearInheritable()
}

// SetUpNamespaces makes, in the namespaces of the calling thread, what the
// first process in barco-ns's new ones sets up: the hostname if not "",
// loopback up with ping allowed (loopback), and the sysctls
// ("key=value").
func SetUpNamespaces(hostname string, loopback bool, sysctls []string) error {
	if hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", hostname, err)
		}
	}
	if loopback {
		if err := loopbackUp(); err != nil {
			return err
		}
		if err := allowPing(); err != nil {
			return err
		}
	}
	if len(sysctls) > 0 {
		return applySysctls(sysctls)
	}
	return nil
}

// runtimeHooksFD is the handshake's socket, kept for RuntimeHooks, or -1.
var runtimeHooksFD = -1

// Runtime hook messages on the handshake socket: the child's, once its
// filesystem is built; barco-ns's answer, once its hooks have run, or
// that they failed.
const (
	hooksBuilt  = 'b'
	hooksRan    = 'r'
	hooksFailed = 'f'
)

// ErrReported is the error of a stage whose failure another stage has
// reported already: it ends the stage with ExitFailed and prints nothing.
var ErrReported = errors.New("failed; reported by another stage")

// RuntimeHooks, in the stage that builds the container's filesystem
// (barco-mount, before pivot_root), asks barco-ns to run its hooks, if
// it holds some for this moment (NSSetup.RuntimeHooks), and waits until
// they have run. When they fail, barco-ns reports it, and RuntimeHooks
// returns ErrReported.
func RuntimeHooks() error {
	fd := runtimeHooksFD
	if fd < 0 {
		return nil
	}
	runtimeHooksFD = -1
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte{hooksBuilt}); err != nil {
		return fmt.Errorf("runtime hooks: write fd %d: %w", fd, err)
	}
	b, err := readMessage(fd)
	if err != nil {
		return err
	}
	if b != hooksRan {
		// Their failure, or barco-ns gone.
		return ErrReported
	}
	return nil
}

// WaitBuilt is barco-ns's side of RuntimeHooks: it waits on its end of
// the handshake socket until the child has built its filesystem, and
// reports false if the child ended first (it reported why, if it could).
func WaitBuilt(fd int) (bool, error) {
	b, err := readMessage(fd)
	return b == hooksBuilt, err
}

// readMessage reads one runtime hook message from fd: 0 at end of file.
func readMessage(fd int) (byte, error) {
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("runtime hooks: read fd %d: %w", fd, err)
		}
		if n != 1 {
			return 0, nil
		}
		return b[0], nil
	}
}

// HooksDone is barco-ns's answer to RuntimeHooks: whether its hooks ran.
func HooksDone(fd int, ran bool) error {
	b := byte(hooksFailed)
	if ran {
		b = hooksRan
	}
	if _, err := unix.Write(fd, []byte{b}); err != nil && ran {
		if errors.Is(err, unix.EPIPE) {
			return errors.New("the container's first process ended while the hooks ran")
		}
		return fmt.Errorf("runtime hooks: write fd %d: %w", fd, err)
	}
	return nil
}

// IdmappedFDsEnv names the descriptors of the idmapped mounts barco-ns
// made for the chain (barco-ns --idmap), comma-separated, for barco-mount
// to take; a descriptor's mount is matched by the directory it clones.
const IdmappedFDsEnv = "BARCO_IDMAPPED_FDS"

// receiveHandshake reads the handshake byte and, with s.Idmapped, the
// descriptors that come with it.
func receiveHandshake(s NSSetup) ([]int, error) {
	var b [1]byte
	var oob []byte
	if s.Idmapped > 0 {
		oob = make([]byte, unix.CmsgSpace(4*s.Idmapped))
	}
	for {
		var n, oobn int
		var err error
		if oob == nil {
			n, err = unix.Read(s.SyncFD, b[:])
		} else {
			n, oobn, _, _, err = unix.Recvmsg(s.SyncFD, b[:], oob, 0)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("namespace handshake: read fd %d: %w", s.SyncFD, err)
		}
		if n != 1 {
			// barco-ns is gone; the parent-death signal may have been
			// armed too late to fire.
			return nil, fmt.Errorf("namespace handshake: fd %d closed before the uid/gid maps were written (barco-ns exited)", s.SyncFD)
		}
		if oob == nil {
			return nil, nil
		}
		return parseRights(oob[:oobn], s.Idmapped)
	}
}

func parseRights(oob []byte, want int) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("namespace handshake: idmapped mounts: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return nil, fmt.Errorf("namespace handshake: idmapped mounts: %w", err)
		}
		fds = append(fds, got...)
	}
	if len(fds) != want {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("namespace handshake: %d idmapped mounts came, %d were announced", len(fds), want)
	}
	return fds, nil
}

// FormatFDs and ParseFDs are the form of IdmappedFDsEnv.
func FormatFDs(fds []int) string {
	s := make([]string, len(fds))
	for i, fd := range fds {
		s[i] = strconv.Itoa(fd)
	}
	return strings.Join(s, ",")
}

// ParseFDs reads a comma-separated list of descriptors; what is not one
// is left out.
func ParseFDs(v string) []int {
	var fds []int
	for _, f := range strings.Split(v, ",") {
		if fd, err := strconv.Atoi(f); err == nil && fd > 2 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// armParentDeath ties this process to barco-ns: when barco-ns dies, so does
// it. A detached child (barco-ns --detach) outlives barco-ns by design, and
// learns of its death before the handshake by the end of file.
func (p *Process) armParentDeath() error {
	if p.detached {
		return nil
	}
	p.parentDeathSignal = int(unix.SIGKILL)
	return creds.ParentDeathSignal(p.parentDeathSignal)
}

// setIDs drops the supplementary groups and takes gid, then uid: after the
// uid the process could no longer change its groups. It changes the
// calling thread only, which the caller has locked, and the stage goes on,
// and execs, on this thread (see package creds).
func setIDs(uid, gid int) error {
	// EPERM: setgroups is denied in this user namespace (an unprivileged
	// caller's); there are no groups to drop then.
	if err := creds.SetGroups(nil); err != nil && err != unix.EPERM {
		return fmt.Errorf("setgroups []: %w", err)
	}
	if gid >= 0 {
		if err := creds.SetGID(gid); err != nil {
			return fmt.Errorf("setresgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := creds.SetUID(uid); err != nil {
			return fmt.Errorf("setresuid %d: %w", uid, err)
		}
	}
	return nil
}

// clearInheritable empties the inheritable set, which the kernel required
// for raising the ambient set.
func clearInheritable() error {
	s, err := creds.Get()
	if err != nil {
		return err
	}
	s.Inheritable = 0
	if err := creds.Set(s); err != nil {
		return fmt.Errorf("capset: clear the inheritable set: %w", err)
	}
	return nil
}

// allowPing lets every group of the new network namespace open ICMP echo
// sockets (net.ipv4.ping_group_range), as podman does: ping then works
// without CAP_NET_RAW, which barco run does not give. The kernel takes only
// gids mapped in the writer's user namespace as the bounds: the range is 0
// to the highest one mapped (in the initial namespace, the sysctl's top).
func allowPing() error {
	high := uint64(math.MaxInt32)
	if b, err := ReadFile("/proc/self/gid_map"); err == nil {
		if top, ok := highestMapped(string(b)); ok && top < high {
			high = top
		}
	}
	const path = "/proc/sys/net/ipv4/ping_group_range"
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("0 "+strconv.FormatUint(high, 10))); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// highestMapped is the highest id inside a /proc/PID/[ug]id_map.
func highestMapped(idMap string) (uint64, bool) {
	var top uint64
	found := false
	for _, line := range strings.Split(idMap, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		if last := inside + count - 1; !found || last > top {
			top, found = last, true
		}
	}
	return top, found
}

// loopbackUp sets IFF_UP on lo, as `ip link set lo up`.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo up: %w", err)
	}
	return nil
}
