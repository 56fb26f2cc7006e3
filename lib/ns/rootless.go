package ns

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The set-user-ID helpers of the uidmap package (shadow), by absolute
// path: they are run with arguments barco checked, never found on PATH.
const (
	NewUIDMapPath = "/usr/bin/newuidmap"
	NewGIDMapPath = "/usr/bin/newgidmap"
)

// Caller is an unprivileged caller of barco-ns and the host ids it owns:
// its own uid and gid, and the subordinate ranges /etc/subuid and
// /etc/subgid give it (as IDMaps whose Container side counts from 0).
type Caller struct {
	UID, GID         uint32
	Name             string
	SubUIDs, SubGIDs []IDMap
	// SubUIDFile and SubGIDFile are where the ranges were read, for the
	// messages.
	SubUIDFile, SubGIDFile string
}

// ReadCaller reads the subordinate ranges of the caller uid (named in the
// /etc/passwd style file passwd) from subuid and subgid. A missing file
// gives no range; a malformed line of the caller's is an error.
func ReadCaller(uid, gid uint32, subuid, subgid, passwd string) (*Caller, error) {
	c := &Caller{UID: uid, GID: gid, Name: UserName(passwd, uid), SubUIDFile: subuid, SubGIDFile: subgid}
	var err error
	if c.SubUIDs, err = subordinateRanges(subuid, c.Name, uid); err != nil {
		return nil, err
	}
	if c.SubGIDs, err = subordinateRanges(subgid, c.Name, uid); err != nil {
		return nil, err
	}
	return c, nil
}

func subordinateRanges(path, user string, id uint32) ([]IDMap, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	maps, err := parseSubordinate(bytes.NewReader(data), user, id)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return maps, nil
}

// Maps are the caller's default maps, as rootless podman makes them:
// container root is the caller itself, and ids from 1 up are its
// subordinate ranges, in the order of the files. Without a range the
// container has its root alone.
func (c *Caller) Maps() (uids, gids []IDMap) {
	return rootlessMaps(c.UID, c.SubUIDs), rootlessMaps(c.GID, c.SubGIDs)
}

func rootlessMaps(own uint32, subs []IDMap) []IDMap {
	maps := []IDMap{{Container: 0, Host: own, Size: 1}}
	for _, s := range subs {
		if uint64(s.Container)+1+uint64(s.Size) > 1<<32-1 {
			break
		}
		maps = append(maps, IDMap{Container: s.Container + 1, Host: s.Host, Size: s.Size})
	}
	return maps
}

// HasRanges reports whether the caller has a subordinate uid range: the
// container then has ids other than its root.
func (c *Caller) HasRanges() bool { return len(c.SubUIDs) > 0 }

// CheckOwned checks that every line of the uid and gid maps maps host ids
// the caller owns: its own id alone, or ids within one of its subordinate
// ranges. newuidmap and newgidmap check the same, but they are
// set-user-ID root: they get only maps barco checked.
func (c *Caller) CheckOwned(uids, gids []IDMap) error {
	if err := checkOwned("uid", uids, c.UID, c.SubUIDs, c.SubUIDFile); err != nil {
		return err
	}
	return checkOwned("gid", gids, c.GID, c.SubGIDs, c.SubGIDFile)
}

func checkOwned(kind string, maps []IDMap, own uint32, subs []IDMap, file string) error {
	for _, m := range maps {
		if m.Size == 1 && m.Host == own {
			continue
		}
		ok := false
		for _, s := range subs {
			if m.Host >= s.Host && uint64(m.Host)+uint64(m.Size) <= uint64(s.Host)+uint64(s.Size) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%s map %s: host %ss %d-%d are neither yours (%d) nor within your ranges in %s (%s)",
				kind, m, kind, m.Host, uint64(m.Host)+uint64(m.Size)-1, own, file, formatRanges(subs))
		}
	}
	return nil
}

func formatRanges(subs []IDMap) string {
	if len(subs) == 0 {
		return "none"
	}
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = fmt.Sprintf("%d-%d", s.Host, uint64(s.Host)+uint64(s.Size)-1)
	}
	return strings.Join(parts, ", ")
}

// ownOnly reports whether maps is the one line that maps one id to the
// caller's own: all an unprivileged process may write itself.
func ownOnly(maps []IDMap, own uint32) bool {
	return len(maps) == 1 && maps[0].Size == 1 && maps[0].Host == own
}

// mapWriter is the MapWriter for c: Maps if set; root writes any map
// itself; an unprivileged caller writes maps of its own ids alone itself
// (denying setgroups, as the kernel requires of it), and any other through
// newuidmap and newgidmap.
func (c *Config) mapWriter() MapWriter {
	switch {
	case c.Maps != nil:
		return c.Maps
	case c.Caller == nil:
		return DirectMapWriter{}
	case ownOnly(c.UIDMaps, c.Caller.UID) && ownOnly(c.GIDMaps, c.Caller.GID):
		return DirectMapWriter{DenySetgroups: true}
	}
	return HelperMapWriter{NewUIDMap: NewUIDMapPath, NewGIDMap: NewGIDMapPath}
}

// HelperMapWriter writes the maps through newuidmap and newgidmap, which
// let an unprivileged user map the ranges /etc/subuid and /etc/subgid give
// it. newgidmap decides setgroups: allowed when a subordinate range is
// mapped, as shadow does it.
type HelperMapWriter struct {
	NewUIDMap, NewGIDMap string // absolute paths
}

// WriteMaps runs NewUIDMap and NewGIDMap for pid, side by side: each
// writes its own files (newgidmap setgroups, then gid_map), and each is a
// set-user-ID program's whole start, a few milliseconds.
func (w HelperMapWriter) WriteMaps(pid int, uids, gids []IDMap) error {
	uidHelper, err := startMapHelper(w.NewUIDMap, pid, uids)
	if err != nil {
		return err
	}
	gidHelper, gerr := startMapHelper(w.NewGIDMap, pid, gids)
	err = uidHelper.wait()
	if gerr == nil {
		gerr = gidHelper.wait()
	}
	if err != nil {
		return err
	}
	return gerr
}

// mapHelper is a started newuidmap or newgidmap.
type mapHelper struct {
	cmd    *exec.Cmd
	what   string
	stderr bytes.Buffer
}

// startMapHelper starts helper PID C H N ... with an empty environment
// and no input.
func startMapHelper(helper string, pid int, maps []IDMap) (*mapHelper, error) {
	if !filepath.IsAbs(helper) {
		return nil, fmt.Errorf("%s: not an absolute path", helper)
	}
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args, strconv.FormatUint(uint64(m.Container), 10),
			strconv.FormatUint(uint64(m.Host), 10), strconv.FormatUint(uint64(m.Size), 10))
	}
	h := &mapHelper{cmd: exec.Command(helper, args...), what: filepath.Base(helper) + " " + strings.Join(args, " ")}
	h.cmd.Env = []string{}
	h.cmd.Stderr = &h.stderr
	if err := h.cmd.Start(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s is missing (Debian's uidmap package has it)", h.what, helper)
		}
		return nil, fmt.Errorf("%s: %w", h.what, err)
	}
	return h, nil
}

// wait waits for the helper; its complaint, one line, becomes the error.
func (h *mapHelper) wait() error {
	err := h.cmd.Wait()
	if err == nil {
		return nil
	}
	if msg := firstLine(h.stderr.String()); msg != "" {
		return fmt.Errorf("%s: %s", h.what, msg)
	}
	return fmt.Errorf("%s: %w", h.what, err)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
