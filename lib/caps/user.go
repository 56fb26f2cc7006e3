package caps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"barco/lib/chain"
)

// Identity is the user and groups PROGRAM runs as.
type Identity struct {
	UID, GID  int
	Groups    []int  // supplementary groups
	UserName  string // "" when the uid has no entry in the passwd file
	GroupName string
}

// Accounts are the passwd and group files names are resolved in: those of
// the current root, which inside the chain is the container's.
type Accounts struct {
	Passwd string // "/etc/passwd"
	Group  string // "/etc/group"
	// Root, if set, is the directory the paths are resolved in, as in
	// their own root (chain.ReadFileIn): another process's root,
	// /proc/PID/root.
	Root string
}

// HostAccounts are the files of the current root.
var HostAccounts = Accounts{Passwd: "/etc/passwd", Group: "/etc/group"}

// entry is one line of a passwd or group file, split at the colons.
type entry []string

// readEntries reads a colon-separated account file. A missing file is
// empty: a minimal rootfs may have none, and numeric ids need none.
func (a Accounts) readEntries(path string, fields int) ([]entry, error) {
	read := chain.ReadFile
	if a.Root != "" {
		read = func(p string) ([]byte, error) {
			data, err := chain.ReadFileIn(a.Root, p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				// A file ReadFileIn leaves alone (a FIFO, a device, a
				// magic link), or one it cannot read: barco-caps reads it
				// in the container, as the container's root, as ever.
				return nil, fmt.Errorf("%w: %w", chain.ErrNotInline, err)
			}
			return data, err
		}
	}
	data, err := read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue // NIS compat lines name no local account
		}
		e := strings.Split(line, ":")
		if len(e) < fields {
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// parseID reads a uid or gid; ok is false for anything but a decimal
// number a kernel id can hold (the last, 4294967295, means "no change").
func parseID(s string) (int, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return int(n), true
}

// LookupUser resolves "UID|NAME[:GID|GROUP]" as docker run --user does:
// a name must be in the passwd file; a number need not be, and then its
// group is 0 unless one is given. The supplementary groups are the
// primary group and every group that lists the user as a member, as
// initgroups(3) and login do.
func (a Accounts) LookupUser(spec string) (Identity, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return Identity{}, fmt.Errorf("user %q: want UID|NAME[:GID|GROUP]", spec)
	}
	users, err := a.readEntries(a.Passwd, 4)
	if err != nil {
		return Identity{}, fmt.Errorf("user %s: %w", userPart, err)
	}
	var id Identity
	uid, numeric := parseID(userPart)
	found := false
	for _, e := range users {
		if (numeric && e[2] == userPart) || (!numeric && e[0] == userPart) {
			u, okU := parseID(e[2])
			g, okG := parseID(e[3])
			if !okU || !okG {
				return Identity{}, fmt.Errorf("user %s: bad entry in %s", userPart, a.Passwd)
			}
			id = Identity{UID: u, GID: g, UserName: e[0]}
			found = true
			break
		}
	}
	switch {
	case !found && !numeric:
		return Identity{}, fmt.Errorf("user %s: not found in %s", userPart, a.Passwd)
	case !found:
		id = Identity{UID: uid}
	}
	groups, err := a.readEntries(a.Group, 4)
	if err != nil {
		return Identity{}, fmt.Errorf("groups of user %s: %w", userPart, err)
	}
	if hasGroup {
		g, name, err := lookupGroup(groups, groupPart, a.Group)
		if err != nil {
			return Identity{}, err
		}
		id.GID, id.GroupName = g, name
	} else {
		id.GroupName = groupName(groups, id.GID)
	}
	id.Groups = []int{id.GID}
	if id.UserName != "" {
		for _, e := range groups {
			for _, member := range strings.Split(e[3], ",") {
				if member == id.UserName {
					if g, ok := parseID(e[2]); ok {
						id.Groups = appendNew(id.Groups, g)
					}
				}
			}
		}
	}
	return id, nil
}

// LookupGroups resolves a list of group names or numbers.
func (a Accounts) LookupGroups(names []string) ([]int, error) {
	groups, err := a.readEntries(a.Group, 4)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	var gids []int
	for _, n := range names {
		g, _, err := lookupGroup(groups, n, a.Group)
		if err != nil {
			return nil, err
		}
		gids = appendNew(gids, g)
	}
	return gids, nil
}

// GroupName is the name of gid in the group file, or "".
func (a Accounts) GroupName(gid int) string {
	groups, _ := a.readEntries(a.Group, 4)
	return groupName(groups, gid)
}

// UserName is the name of uid in the passwd file, or "".
func (a Accounts) UserName(uid int) string {
	users, _ := a.readEntries(a.Passwd, 4)
	for _, e := range users {
		if u, ok := parseID(e[2]); ok && u == uid {
			return e[0]
		}
	}
	return ""
}

func lookupGroup(groups []entry, spec, path string) (int, string, error) {
	if g, ok := parseID(spec); ok {
		return g, groupName(groups, g), nil
	}
	for _, e := range groups {
		if e[0] == spec {
			if g, ok := parseID(e[2]); ok {
				return g, spec, nil
			}
			return 0, "", fmt.Errorf("group %s: bad entry in %s", spec, path)
		}
	}
	return 0, "", fmt.Errorf("group %s: not found in %s", spec, path)
}

func groupName(groups []entry, gid int) string {
	for _, e := range groups {
		if g, ok := parseID(e[2]); ok && g == gid {
			return e[0]
		}
	}
	return ""
}

func appendNew(list []int, n int) []int {
	for _, m := range list {
		if m == n {
			return list
		}
	}
	return append(list, n)
}
