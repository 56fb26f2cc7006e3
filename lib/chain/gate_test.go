package chain

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openGate waits for start's reader, whether it comes during the short
// probes or long after them, and the byte written on what it returns
// reaches that reader.
func TestOpenGateWaitsForTheReader(t *testing.T) {
	for _, after := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond} {
		fifo := filepath.Join(t.TempDir(), "exec.fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		opened := make(chan time.Time, 1)
		go func() {
			time.Sleep(after)
			r, err := os.OpenFile(fifo, os.O_RDONLY, 0)
			opened <- time.Now()
			if err != nil {
				got <- err.Error()
				return
			}
			defer r.Close()
			b := make([]byte, 2)
			n, _ := r.Read(b)
			got <- string(b[:n])
		}()
		w, err := openGate(fifo)
		if err != nil {
			t.Fatalf("reader after %v: %v", after, err)
		}
		back := time.Now()
		if _, err := unix.Write(w, []byte{'x'}); err != nil {
			t.Fatal(err)
		}
		unix.Close(w)
		if s := <-got; s != "x" {
			t.Errorf("reader after %v read %q, want %q", after, s, "x")
		}
		if o := <-opened; back.Before(o.Add(-time.Millisecond)) {
			t.Errorf("reader after %v: openGate returned %v before the reader came", after, o.Sub(back))
		}
	}
}

func TestOpenGateRefusesWhatIsNoGate(t *testing.T) {
	if _, err := openGate(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("openGate of a missing path: no error")
	}
}
