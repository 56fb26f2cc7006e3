package ns

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// IDMap is one line of a uid_map or gid_map: Size ids from Container up
// inside the namespace are Host up outside it.
type IDMap struct {
	Container, Host, Size uint32
}

func (m IDMap) String() string { return fmt.Sprintf("%d:%d:%d", m.Container, m.Host, m.Size) }

// maxMapLines is the kernel's limit on the lines of one map (Linux 4.15).
const maxMapLines = 340

// ParseIDMap parses "CONTAINER:HOST:SIZE", as --uid-map and --gid-map take.
func ParseIDMap(s string) (IDMap, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return IDMap{}, fmt.Errorf("id map %q: want CONTAINER:HOST:SIZE", s)
	}
	var n [3]uint32
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return IDMap{}, fmt.Errorf("id map %q: %q is not an id", s, p)
		}
		n[i] = uint32(v)
	}
	m := IDMap{Container: n[0], Host: n[1], Size: n[2]}
	if m.Size == 0 {
		return IDMap{}, fmt.Errorf("id map %q: size 0", s)
	}
	if uint64(m.Container)+uint64(m.Size) > 1<<32-1 || uint64(m.Host)+uint64(m.Size) > 1<<32-1 {
		return IDMap{}, fmt.Errorf("id map %q: range passes the last id 4294967294", s)
	}
	return m, nil
}

// ValidateIDMaps checks what the kernel would refuse with a bare EINVAL:
// ranges that overlap inside or outside, and too many lines.
func ValidateIDMaps(kind string, maps []IDMap) error {
	if len(maps) == 0 {
		return fmt.Errorf("%s map: empty", kind)
	}
	if len(maps) > maxMapLines {
		return fmt.Errorf("%s map: %d lines, the kernel takes at most %d", kind, len(maps), maxMapLines)
	}
	for _, side := range []struct {
		name  string
		start func(IDMap) uint32
	}{
		{"container", func(m IDMap) uint32 { return m.Container }},
		{"host", func(m IDMap) uint32 { return m.Host }},
	} {
		sorted := append([]IDMap(nil), maps...)
		sort.Slice(sorted, func(i, j int) bool { return side.start(sorted[i]) < side.start(sorted[j]) })
		for i := 1; i < len(sorted); i++ {
			prev, cur := sorted[i-1], sorted[i]
			if uint64(side.start(prev))+uint64(prev.Size) > uint64(side.start(cur)) {
				return fmt.Errorf("%s map: %s and %s overlap on the %s side", kind, prev, cur, side.name)
			}
		}
	}
	return nil
}

// Maps reports whether id, as seen inside the namespace, is mapped.
func Maps(maps []IDMap, id uint32) bool {
	for _, m := range maps {
		if id >= m.Container && uint64(id) < uint64(m.Container)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// FallbackRange is the map used when the caller has no subordinate ids:
// container root is host uid 100000, as Docker's and Podman's defaults.
var FallbackRange = IDMap{Container: 0, Host: 100000, Size: 65536}

// SubordinateMaps maps the caller's subordinate id ranges, read from an
// /etc/subuid or /etc/subgid style file, to consecutive ids from 0 inside.
// A caller with no line (or no file) gets FallbackRange.
func SubordinateMaps(path, user string, id uint32) ([]IDMap, error) {
	data, err := chain.ReadFile(path)
	if os.IsNotExist(err) {
		return []IDMap{FallbackRange}, nil
	}
	if err != nil {
		return nil, err
	}
	maps, err := parseSubordinate(bytes.NewReader(data), user, id)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(maps) == 0 {
		return []IDMap{FallbackRange}, nil
	}
	return maps, nil
}

func parseSubordinate(r io.Reader, user string, id uint32) ([]IDMap, error) {
	var maps []IDMap
	var next uint32
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != user && f[0] != strconv.FormatUint(uint64(id), 10)) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		maps = append(maps, IDMap{Container: next, Host: uint32(start), Size: uint32(count)})
		next += uint32(count)
	}
	return maps, sc.Err()
}

// UserName finds the name of uid in an /etc/passwd style file; "" if none.
func UserName(passwdPath string, uid uint32) string {
	data, err := chain.ReadFile(passwdPath)
	if err != nil {
		return ""
	}
	want := strconv.FormatUint(uint64(uid), 10)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == want {
			return f[0]
		}
	}
	return ""
}

// MapWriter writes the id maps of a child that waits in a new user
// namespace. Root writes them itself (DirectMapWriter); an unprivileged
// caller goes through the set-user-ID helpers newuidmap and newgidmap
// (HelperMapWriter), with the same handshake.
type MapWriter interface {
	WriteMaps(pid int, uids, gids []IDMap) error
}

// DirectMapWriter writes /proc/PID/{uid_map,setgroups,gid_map} itself,
// which needs CAP_SETUID and CAP_SETGID over the ranges (root).
type DirectMapWriter struct {
	// Proc is where procfs is mounted; "/proc" when empty.
	Proc string
	// DenySetgroups writes "deny" to setgroups, as the kernel requires for
	// a caller without CAP_SETGID.
	DenySetgroups bool
}

// WriteMaps writes uid_map, setgroups and gid_map of pid, in that order.
func (w DirectMapWriter) WriteMaps(pid int, uids, gids []IDMap) error {
	proc := w.Proc
	if proc == "" {
		proc = "/proc"
	}
	dir := fmt.Sprintf("%s/%d", proc, pid)
	if err := writeProcFile(dir+"/uid_map", FormatIDMaps(uids)); err != nil {
		return err
	}
	if w.DenySetgroups {
		if err := writeProcFile(dir+"/setgroups", "deny"); err != nil {
			return err
		}
	}
	return writeProcFile(dir+"/gid_map", FormatIDMaps(gids))
}

// FormatIDMaps gives the text the kernel reads from uid_map and gid_map.
func FormatIDMaps(maps []IDMap) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.Container, m.Host, m.Size)
	}
	return b.String()
}

// writeProcFile writes all of data in one write(2), as map files require.
func writeProcFile(path, data string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(data)); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}
