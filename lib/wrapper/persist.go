package wrapper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"barco/lib/ns"
	"golang.org/x/sys/unix"
)

// preparePersist makes the --persist directory if it is missing, owned by
// the container's root as the host sees it, mode 0700: barco-mount, as
// that root, makes its upper and work directories in it, and no other
// user of the host reads what the container kept. A directory that exists
// is the user's and stays as it is.
func (s *Spec) preparePersist() error {
	dir, err := filepath.Abs(s.Persist)
	if err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("--persist %s: not a directory", s.Persist)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--persist %s: %w", s.Persist, errors.Unwrap(err))
	}
	uid, gid, err := s.rootOnHost()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("--persist %s: %w", s.Persist, err)
	}
	if err := unix.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("--persist %s: mkdir: %w", s.Persist, err)
	}
	if err := unix.Chown(dir, int(uid), int(gid)); err != nil {
		os.Remove(dir)
		return fmt.Errorf("--persist %s: chown %d:%d: %w", s.Persist, uid, gid, err)
	}
	return nil
}

// rootOnHost is the host uid and gid of the container's root.
func (s *Spec) rootOnHost() (uid, gid uint32, err error) {
	if s.NoUserNS {
		return 0, 0, nil
	}
	c := ns.Config{Flags: unix.CLONE_NEWUSER}
	for _, v := range s.UserNS {
		m, err := ns.ParseIDMap(v)
		if err != nil {
			return 0, 0, fmt.Errorf("--userns %s: %w", v, err)
		}
		c.UIDMaps = append(c.UIDMaps, m)
	}
	if err := c.DefaultMaps(false, "/etc/subuid", "/etc/subgid", "/etc/passwd"); err != nil {
		return 0, 0, err
	}
	return hostOf(c.UIDMaps, 0), hostOf(c.GIDMaps, 0), nil
}

// hostOf is the host id that id inside maps to; the overflow id 65534 if
// none does.
func hostOf(maps []ns.IDMap, id uint32) uint32 {
	for _, m := range maps {
		if id >= m.Container && uint64(id) < uint64(m.Container)+uint64(m.Size) {
			return m.Host + id - m.Container
		}
	}
	return 65534
}
