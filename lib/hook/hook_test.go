package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParse(t *testing.T) {
	h, err := Parse(`{"path":"/bin/sh","args":["sh","-c","true"],"timeout":3}`)
	if err != nil || h.Path != "/bin/sh" || len(h.Args) != 3 || h.Timeout == nil || *h.Timeout != 3 {
		t.Errorf("Parse: %+v, %v", h, err)
	}
	for _, bad := range []string{`{"path":"sh"}`, `{"path":"/bin/sh","timeout":0}`, `{"path":`, `{"path":"/bin/sh","args":"x"}`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%s): no error", bad)
		}
	}
	if st, err := ParseState(`{"ociVersion":"1.2.1","id":"c","status":"creating","bundle":"/b"}`); err != nil || st.ID != "c" || st.Status != specs.StateCreating {
		t.Errorf("ParseState: %+v, %v", st, err)
	}
}

// A hook gets the state on its stdin and the environment it is given, or
// this process's without barco's variables; a failure carries its
// stderr, a timeout says so.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	st := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b"}
	sh := func(script string) specs.Hook { return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}} }

	if err := Run([]specs.Hook{sh("cat > " + out + "; echo >> " + out + "; echo \"$A\" >> " + out)}, st, []string{"A=given"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	state, env, _ := strings.Cut(string(data), "\n")
	var got specs.State
	if err := json.Unmarshal([]byte(state), &got); err != nil || got.ID != "c1" || got.Pid != 42 || got.Status != specs.StateCreated {
		t.Errorf("stdin %q (%v), want the state", state, err)
	}
	if env != "given\n" {
		t.Errorf("environment variable A: %q, want the one given", env)
	}

	t.Setenv("BARCO_REPORT_FD", "7")
	t.Setenv("HOOK_TEST_OWN", "kept")
	if err := Run([]specs.Hook{sh("env > " + out)}, st, nil); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(out)
	if !strings.Contains(string(data), "HOOK_TEST_OWN=kept") || strings.Contains(string(data), "BARCO_") {
		t.Errorf("environment without one given:\n%s\nwant this process's, less BARCO_ variables", data)
	}
	// Its own environment wins over the one given.
	own := sh(`echo "$A" > ` + out)
	own.Env = []string{"A=own"}
	if err := Run([]specs.Hook{own}, st, []string{"A=given"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(out); string(data) != "own\n" {
		t.Errorf("A=%q, want the hook's own", data)
	}

	err := Run([]specs.Hook{sh("exit 0"), sh("echo broken >&2; exit 3"), sh("touch " + out + ".never")}, st, nil)
	if err == nil || !strings.Contains(err.Error(), "hook /bin/sh: exit status 3: broken") {
		t.Errorf("failing hook: %v", err)
	}
	if _, err := os.Stat(out + ".never"); err == nil {
		t.Error("a hook after the failing one ran")
	}
	// A hook that exits 0 and leaves a child holding its stderr is done.
	if err := Run([]specs.Hook{sh("sleep 3 & exit 0")}, st, nil); err != nil {
		t.Errorf("a hook that exited 0, its child still running: %v", err)
	}
	one := 1
	slow := sh("sleep 5; echo late")
	slow.Timeout = &one
	if err := Run([]specs.Hook{slow}, st, nil); err == nil || !strings.Contains(err.Error(), "timed out after 1 s") {
		t.Errorf("slow hook: %v", err)
	}
}

func TestHostPID(t *testing.T) {
	if pid, err := HostPID("/proc"); err != nil || pid != os.Getpid() {
		t.Errorf("HostPID: %d, %v; want %d", pid, err, os.Getpid())
	}
}
