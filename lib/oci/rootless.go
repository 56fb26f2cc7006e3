package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// defaultRoot is where containers' state lives unless --root says:
// DefaultRoot for root; for another user, as runc and crun keep it,
// $XDG_RUNTIME_DIR/barco, else /tmp/barco-UID, a directory of the user's
// own that nobody else may write (one that is not, made by another user
// first, is refused rather than used). Root in a user namespace of a
// user's own, as rootless podman runs its runtime, is that user: its
// $XDG_RUNTIME_DIR/barco, as runc decides (unless $USER says root).
func defaultRoot() (string, error) {
	uid := os.Geteuid()
	xdg := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(xdg) {
		xdg = ""
	}
	if uid == 0 && (xdg == "" || !chain.InChildUserNS() || os.Getenv("USER") == "root") {
		return DefaultRoot, nil
	}
	if xdg != "" {
		return filepath.Join(xdg, "barco"), nil
	}
	dir := "/tmp/barco-" + strconv.Itoa(uid)
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("state root %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("state root %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != uid || st.Mode&0o022 != 0 {
		return "", fmt.Errorf("state root %s: not a directory of uid %d's that only it may write; give --root DIR", dir, uid)
	}
	return dir, nil
}
