package seccomp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	if err := os.WriteFile(file, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(&Config{Profile: file})
	if err != nil {
		t.Fatal(err)
	}
	if p.Program == nil || len(p.Filter.Rules) != 1 || !p.NoNewPrivs || p.CapSet != Permitted {
		t.Errorf("prepared %+v", p)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\nmkdir errno EACCES\n") || strings.Contains(b.String(), "ENOSYS") {
		t.Errorf("--print text:\n%s", b.String())
	}

	p, err = Prepare(&Config{Profile: ProfileUnconfined})
	if err != nil || p.Program != nil {
		t.Errorf("unconfined: %+v, %v", p, err)
	}
	if err := p.Load(); err != nil {
		t.Errorf("unconfined Load: %v", err)
	}

	p, err = Prepare(&Config{Profile: ProfileDefault})
	if err != nil || p.Program == nil || len(p.Program.Instructions) > maxInstructions {
		t.Fatalf("default: %v", err)
	}

	for profile, want := range map[string]string{
		filepath.Join(dir, "missing.json"): "read profile: open " + dir + "/missing.json: no such file or directory",
		dir:                                "read profile: read " + dir + ": is a directory",
	} {
		if _, err := Prepare(&Config{Profile: profile}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Prepare(%s): %v, want %q", profile, err, want)
		}
	}

	// The JSON itself, as barco run passes a host file's profile.
	p, err = Prepare(&Config{Profile: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`})
	if err != nil || p.Program == nil || p.Profile != "(inline JSON)" {
		t.Errorf("inline JSON: %+v, %v", p, err)
	}
	if _, err := Prepare(&Config{Profile: `{"defaultAction":`}); err == nil || !strings.HasPrefix(err.Error(), "profile (inline JSON): ") {
		t.Errorf("broken inline JSON: %v", err)
	}
}
