package chain

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 100000} {
		want := bytes.Repeat([]byte("x"), size)
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadFile of %d bytes: got %d bytes, %v", size, len(got), err)
		}
	}
	// A /proc file reports size 0 and must still be read whole.
	want, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile("/proc/self/mountinfo")
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("ReadFile /proc/self/mountinfo: %d bytes, %v; os.ReadFile: %d bytes", len(got), err, len(want))
	}
	_, err = ReadFile(filepath.Join(dir, "missing"))
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" {
		t.Errorf("ReadFile of a missing file: %v, want an open *PathError that is ErrNotExist", err)
	}
}

// ReadFileIn reads a container's account files from the host: what the
// container put there must not block, exhaust or outreach the reader.
func TestReadFileIn(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0::/:/bin/sh\n")
	if err := os.Symlink("/../../../etc/passwd", filepath.Join(etc, "link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"/etc/passwd", "/etc/link", "etc/passwd"} {
		if got, err := ReadFileIn(root, name); err != nil || string(got) != "root:x:0:0::/:/bin/sh\n" {
			t.Errorf("ReadFileIn %s: %q %v, want the root's passwd", name, got, err)
		}
	}
	if _, err := ReadFileIn(root, "/etc/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFileIn of a missing file: %v, want ErrNotExist", err)
	}

	// Each must fail at once with ErrNotPlainFile.
	if err := unix.Mkfifo(filepath.Join(etc, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(etc, "big"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(MaxFileIn + 1)
	big.Close()
	for _, c := range []struct{ root, name string }{
		{root, "/etc/fifo"}, // an open for reading waits for a writer
		{root, "/etc"},
		{root, "/etc/big"},
		{"/", "/proc/self/status"},
		{"/", "/sys/kernel/mm/transparent_hugepage/enabled"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := ReadFileIn(c.root, c.name)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotPlainFile) {
				t.Errorf("ReadFileIn %s: %v, want ErrNotPlainFile", c.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("ReadFileIn %s: blocked", c.name)
			// Let the open go on.
			if f, err := os.OpenFile(filepath.Join(c.root, c.name), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
	}
}
