package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/testutil"
)

// Every command in the README's sh blocks runs as printed, from the
// repository's root, except the make targets (this test runs under one).
func TestREADMEExamples(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "make "):
			cmds = append(cmds, line)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("no examples found in README.md")
	}
	for _, c := range cmds {
		r := testutil.Run(t, nil, "sh", "-c", "cd "+root+" && "+c)
		if r.Code != 0 {
			t.Errorf("README example %q: status %d\nstdout: %s\nstderr: %s", c, r.Code, r.Stdout, r.Stderr)
		}
	}
}
