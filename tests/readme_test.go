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
		// The set-up line rebuilds bin/ (make demo), which the other
		// tests are running: it is CI's own first step anyway.
		case inBlock && strings.TrimSpace(line) != "" && !strings.Contains(line, "make "):
			cmds = append(cmds, line)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("no examples found in README.md")
	}
	for _, c := range cmds {
		r := testutil.Run(t, nil, "sh", "-c", "cd "+root+" && "+c)
		// Every example shows something: a command that printed nothing
		// has not done what the README says it does.
		// (One that writes a file, as its redirection says, excepted.)
		quiet := strings.Contains(c, " > ")
		if r.Code != 0 || (!quiet && strings.TrimSpace(r.Stdout) == "") {
			t.Errorf("README example %q: status %d\nstdout: %s\nstderr: %s", c, r.Code, r.Stdout, r.Stderr)
		}
	}
}
