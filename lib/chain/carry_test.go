package chain

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

// Sealed gives, as root, the binary through a read-only overlayfs that is
// attached nowhere: its content is the file's, and neither a change of
// mode nor an open for writing through /proc/self/fd (as a container
// process would through /proc/PID/exe) gets to the host file.
func TestSealedOverlayRefusesWrites(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "stage")
	want := []byte("\x7fELF not really a binary\n")
	if err := os.WriteFile(bin, want, 0o755); err != nil {
		t.Fatal(err)
	}
	f, how, err := Sealed(bin, "stage")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.Contains(how, "overlayfs") || strings.Contains(how, "memfd") {
		t.Fatalf("sealed as %q; want the overlayfs as root", how)
	}
	if got, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); err != nil || !bytes.Equal(got, want) {
		t.Errorf("content through the overlay: %q, %v; want %q", got, err, want)
	}
	if err := unix.Fchmod(int(f.Fd()), 0o777); !errors.Is(err, unix.EROFS) {
		t.Errorf("fchmod: %v, want EROFS", err)
	}
	if w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
		if err == nil {
			w.Close()
		}
		t.Errorf("open for writing: %v, want EROFS", err)
	}
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the file: %v, %v; want it as it was", st, err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mountinfo), dir) {
		t.Errorf("an overlay of %s is attached somewhere:\n%s", dir, mountinfo)
	}
}
