package mount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// CreatedFDEnv names the variable by which a supervisor outside the
// container's mount namespace (barco-ns) hands barco-mount a pipe: barco-mount
// writes into it the rootfs and the entries it created there, and the
// supervisor removes them once the container has ended. Only it can: inside,
// the entries are mount points, and a stage after barco-mount may have lost
// the privilege to unmount them, or be a binary of its own that knows
// nothing of them.
// chain.Exec keeps it from the container's program.
const CreatedFDEnv = chain.CreatedFDEnv

// reportCreated writes the rootfs (an absolute path, and its device and
// inode) and the entries Enter created in it to
// the pipe named by CreatedFDEnv, if there is one, and closes it.
//
// id is RootfsID of the rootfs, taken on the host before pivot_root: the
// supervisor removes only inside this very directory, whatever has become
// of the path meanwhile.
func reportCreated(rootfs, id string, created []string) error {
	v := os.Getenv(CreatedFDEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(CreatedFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", CreatedFDEnv, v)
	}
	defer unix.Close(fd)
	msg := strings.Join(append([]string{rootfs, id}, created...), "\x00") + "\x00"
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		return fmt.Errorf("report created entries to fd %d: %w", fd, err)
	}
	return nil
}

// RemoveCreated reads what barco-mount reported on the pipe r (see
// CreatedFDEnv) and removes those entries of the rootfs that are still an
// empty directory or an empty file, deepest first. It runs on the host,
// after the container has ended; paths are resolved inside the rootfs, so
// that nothing the container did to them can lead the removal outside.
func RemoveCreated(r int, log *chain.Log) {
	var data []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(r, buf)
		if n > 0 {
			data = append(data, buf[:n]...)
		}
		if n <= 0 || err != nil {
			break
		}
	}
	parts := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if len(parts) < 3 {
		return
	}
	root, err := unix.Open(parts[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		log.Debugf("remove created entries: open %s: %v", parts[0], err)
		return
	}
	defer unix.Close(root)
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil || fmt.Sprintf("%d:%d", st.Dev, st.Ino) != parts[1] {
		// The path no longer names the rootfs barco-mount used.
		log.Debugf("remove created entries: %s is not the rootfs it was (%s)", parts[0], parts[1])
		return
	}
	created := parts[2:]
	for i := len(created) - 1; i >= 0; i-- {
		if err := removeEmpty(root, created[i]); err != nil {
			log.Debugf("remove %s from %s: %v", created[i], parts[0], err)
		}
	}
	log.Debugf("removed the %d entries barco-mount made in %s", len(created), parts[0])
}

func removeEmpty(root int, p string) error {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	dir, base := path.Split(p)
	parent, err := openIn(root, strings.TrimPrefix(dir, "/")+".", unix.O_PATH|unix.O_DIRECTORY, inRoot)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// Refused if the container left something in it: then it stays.
		return unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
	case unix.S_IFREG:
		if st.Size == 0 {
			return unix.Unlinkat(parent, base, 0)
		}
	}
	return nil
}

// RootfsID is the device and inode of dir, as reportCreated sends it.
func RootfsID(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}
