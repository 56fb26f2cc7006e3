package mount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Device is one --device: a node the container's /dev gets besides the
// default ones, as an OCI config's linux.devices lists them.
type Device struct {
	Path         string // under /dev
	Type         byte   // 'c', 'b' or 'p' (a FIFO)
	Major, Minor uint32
	Mode         uint32 // permission bits
	UID, GID     int
}

// ParseDevice parses PATH:TYPE:MAJOR:MINOR[:MODE[:UID:GID]], TYPE c, b, u
// (c) or p, MODE octal (default 0666), the owner root by default.
func ParseDevice(s string) (Device, error) {
	f := strings.Split(s, ":")
	if len(f) != 4 && len(f) != 5 && len(f) != 7 {
		return Device{}, fmt.Errorf("%q: want PATH:TYPE:MAJOR:MINOR[:MODE[:UID:GID]]", s)
	}
	d := Device{Path: path.Clean(f[0]), Mode: 0o666}
	if !strings.HasPrefix(d.Path, "/dev/") {
		return Device{}, fmt.Errorf("%q: the path is not under /dev", s)
	}
	for _, sub := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue"} {
		if d.Path == sub || strings.HasPrefix(d.Path, sub+"/") {
			return Device{}, fmt.Errorf("%q: %s is a filesystem of its own", s, sub)
		}
	}
	switch f[1] {
	case "c", "u":
		d.Type = 'c'
	case "b", "p":
		d.Type = f[1][0]
	default:
		return Device{}, fmt.Errorf("%q: type %q: want c, b, u or p", s, f[1])
	}
	nums := []struct {
		text string
		base int
		bits int
		out  *uint32
	}{{f[2], 10, 32, &d.Major}, {f[3], 10, 32, &d.Minor}}
	if len(f) > 4 {
		nums = append(nums, struct {
			text string
			base int
			bits int
			out  *uint32
		}{f[4], 8, 12, &d.Mode})
	}
	for _, n := range nums {
		v, err := strconv.ParseUint(n.text, n.base, n.bits)
		if err != nil {
			return Device{}, fmt.Errorf("%q: %q: not a number", s, n.text)
		}
		*n.out = uint32(v)
	}
	if d.Mode&^0o7777 != 0 {
		return Device{}, fmt.Errorf("%q: mode %o: permission bits only", s, d.Mode)
	}
	if len(f) == 7 {
		for i, out := range []*int{&d.UID, &d.GID} {
			v, err := strconv.ParseUint(f[5+i], 10, 32)
			if err != nil {
				return Device{}, fmt.Errorf("%q: %q: not an id", s, f[5+i])
			}
			*out = int(v)
		}
	}
	return d, nil
}

func (d Device) String() string {
	if d.Type == 'p' {
		return d.Path + " (a FIFO)"
	}
	return fmt.Sprintf("%s (%c %d:%d)", d.Path, d.Type, d.Major, d.Minor)
}

func (d Device) typeBits() uint32 {
	switch d.Type {
	case 'b':
		return unix.S_IFBLK
	case 'p':
		return unix.S_IFIFO
	}
	return unix.S_IFCHR
}

// takeDeviceNodes clones the host's node of each device that cannot be
// made where barco-mount runs (in a user namespace only FIFOs can): the
// host's node at the same path, if it is that device.
func (h *host) takeDeviceNodes(devs []Device, uns userNS) error {
	h.devNodes = make([]int, len(devs))
	for i, d := range devs {
		h.devNodes[i] = -1
		if !uns.nested || d.Type == 'p' {
			continue
		}
		var st unix.Stat_t
		err := unix.Stat(d.Path, &st)
		if err == nil && (st.Mode&unix.S_IFMT != d.typeBits() || unix.Major(st.Rdev) != d.Major || unix.Minor(st.Rdev) != d.Minor) {
			err = errors.New("the host's node there is another device")
		}
		if err != nil {
			return fmt.Errorf("device %s: in a user namespace a device can only be the host's, bound: %w", d, err)
		}
		if h.devNodes[i], err = cloneTree(d.Path, 0); err != nil {
			return fmt.Errorf("device %s: %w", d, err)
		}
	}
	return nil
}

// makeDeviceNodes makes each device in the container's /dev; makeDev
// leaves out a default node at the same path. The umask is 0 here.
func (h *host) makeDeviceNodes(devs []Device) error {
	for i, d := range devs {
		if err := os.MkdirAll(path.Dir(d.Path), 0o755); err != nil {
			return fmt.Errorf("device %s: %w", d, err)
		}
		if fd := h.devNodes[i]; fd >= 0 {
			f, err := unix.Open(d.Path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
			if err != nil {
				return &os.PathError{Op: "create", Path: d.Path, Err: err}
			}
			unix.Close(f)
			if err := unix.MoveMount(fd, "", unix.AT_FDCWD, d.Path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return &os.PathError{Op: "bind host device onto", Path: d.Path, Err: err}
			}
			continue
		}
		if err := unix.Mknod(d.Path, d.typeBits()|d.Mode, int(unix.Mkdev(d.Major, d.Minor))); err != nil {
			return fmt.Errorf("device %s: mknod: %w", d, err)
		}
		if err := unix.Lchown(d.Path, d.UID, d.GID); err != nil {
			return fmt.Errorf("device %s: chown %d:%d: %w", d, d.UID, d.GID, err)
		}
	}
	return nil
}
