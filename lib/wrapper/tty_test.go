package wrapper

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestWithConsoleSocket(t *testing.T) {
	s := Spec{Rootfs: t.TempDir(), Program: []string{"sh"}}
	stages, err := s.Stages()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/bin", "BARCO_CHAIN_FDS=3"}
	got, gotEnv := withConsoleSocket(stages, env, 7)
	for _, st := range got {
		has := strings.Contains(strings.Join(st, " "), "--console-socket 7")
		if has != (st[0] == "barco-mount") {
			t.Errorf("stage %q: --console-socket 7 given: %v; want it on barco-mount only", st, has)
		}
	}
	if want := []string{"PATH=/bin", "BARCO_CHAIN_FDS=7"}; !slices.Equal(gotEnv, want) {
		t.Errorf("environment %q, want %q", gotEnv, want)
	}
	if env[1] != "BARCO_CHAIN_FDS=3" || strings.Contains(strings.Join(Argv(stages), " "), "--console-socket") {
		t.Errorf("withConsoleSocket changed its arguments")
	}
}

// Input ends the relay as a hangup only when barco's own input ended.
func TestCopyInput(t *testing.T) {
	in, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, master, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.WriteString("typed")
	w.Close()
	if !copyInput(master, in) {
		t.Errorf("the end of input is a hangup")
	}
	master.Close()
	buf := make([]byte, 16)
	if n, _ := r.Read(buf); string(buf[:n]) != "typed" {
		t.Errorf("relayed %q, want typed", buf[:n])
	}

	in2, w2, _ := os.Pipe()
	defer in2.Close()
	defer w2.Close()
	closed, _ := os.Open(os.DevNull)
	closed.Close()
	w2.WriteString("x")
	if copyInput(closed, in2) {
		t.Errorf("a failed write to the master is no hangup")
	}
}
