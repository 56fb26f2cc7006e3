package chain

import (
	"os"
	"path/filepath"
	"testing"

	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// runExecSteps runs planExec's steps in a child, and returns the child's
// exit status once it has exec'd, or the error of the exec that failed.
func runExecSteps(t *testing.T, argv, env []string, detached bool, parent int) (int, error) {
	t.Helper()
	tail, _, err := planExec(argv, env, "barco-ns")
	if err != nil {
		return 0, err
	}
	var b sysprog.Builder
	if !detached {
		emitParentDeath(&b, argv[0], parent, true)
	}
	tail(&b)
	p, err := b.Program(ExitFailed)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := sysprog.Start(p)
	if err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return ws.ExitStatus(), nil
}

// The exec as steps finds PROGRAM as LookPath and Exec do, and fails with
// their messages and statuses.
func TestExecStepsLookup(t *testing.T) {
	if !sysprog.SharedMemory {
		t.Skip("the child of sysprog.Start does not share memory on this architecture")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	d := func(name string) string { return filepath.Join(dir, name) }
	for _, sub := range []string{"isdir", "plain", "nointerp", "good", "isdir/prog", "loop"} {
		if err := os.Mkdir(d(sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("prog", d("loop/prog")); err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"plain/prog":    {"#!/bin/sh\n", 0o644},
		"nointerp/prog": {"#!/nonexistent/sh\n", 0o755},
		"good/prog":     {"#!/bin/sh\necho \"$0 $1 $FOO $BARCO_PRESERVE_FDS\" > " + out + "\nexit 3\n", 0o755},
	}
	for name, f := range files {
		if err := os.WriteFile(d(name), []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, path string
		code       int
		want       string // the error, or "" when prog runs
	}{
		{"prog", d("isdir") + ":" + d("good"), 3, ""},
		{"prog", "/nonexistent:" + d("plain") + ":" + d("good"), 3, ""},
		{"prog", d("isdir") + ":" + d("plain"), 126, "exec " + d("isdir/prog") + ": is a directory"},
		{"prog", d("plain") + ":" + d("isdir"), 126, "exec " + d("plain/prog") + ": permission denied"},
		{"prog", d("nointerp") + ":" + d("good"), 127, "exec " + d("nointerp/prog") + ": no such file or directory"},
		{"prog", "/nonexistent", 127, "exec prog: not found in PATH"},
		{"prog", d("loop") + ":" + d("good"), 3, ""},
		{"prog", d("loop"), 126, "exec " + d("loop/prog") + ": too many levels of symbolic links"},
		{d("good/prog"), "/nonexistent", 3, ""},
		{d("isdir/prog"), d("good"), 126, "exec " + d("isdir/prog") + ": is a directory"},
		{d("plain/prog"), d("good"), 126, "exec " + d("plain/prog") + ": permission denied"},
		{d("missing"), d("good"), 127, "exec " + d("missing") + ": no such file or directory"},
	} {
		os.Remove(out)
		env := []string{"PATH=" + tc.path, "FOO=bar", PreserveFDsEnv + "=0"}
		status, err := runExecSteps(t, []string{tc.name, "arg"}, env, true, 0)
		switch {
		case tc.want == "" && (err != nil || status != tc.code):
			t.Errorf("%s in %s: status %d, %v; want %d", tc.name, tc.path, status, err, tc.code)
		case tc.want == "":
			// PROGRAM's environment lacks the chain's variables.
			if data, _ := os.ReadFile(out); string(data) != d("good/prog")+" arg bar \n" {
				t.Errorf("%s in %s: the program wrote %q", tc.name, tc.path, data)
			}
		case err == nil || err.Error() != tc.want || ExitCode(err) != tc.code:
			t.Errorf("%s in %s: %v (status %d), want %q and %d", tc.name, tc.path, err, ExitCode(err), tc.want, tc.code)
		}
		// LookPath and Exec say the same.
		if tc.want != "" {
			p, lerr := LookPath(tc.name, tc.path)
			if lerr == nil {
				lerr = execError(p, unix.Exec(p, []string{p}, nil))
			}
			if lerr.Error() != tc.want || ExitCode(lerr) != tc.code {
				t.Errorf("%s in %s: LookPath and Exec: %v (%d), the steps: %q (%d)", tc.name, tc.path, lerr, ExitCode(lerr), tc.want, tc.code)
			}
		}
	}
}

// A child whose parent is not the one planned fails before the exec:
// its parent died before the parent-death signal was set again.
func TestExecStepsParentGone(t *testing.T) {
	if !sysprog.SharedMemory {
		t.Skip("the child of sysprog.Start does not share memory on this architecture")
	}
	argv, env := []string{"/bin/true"}, []string{"PATH=/bin"}
	if status, err := runExecSteps(t, argv, env, false, os.Getpid()); err != nil || status != 0 {
		t.Errorf("with this process as the parent: %d, %v", status, err)
	}
	_, err := runExecSteps(t, argv, env, false, 1)
	if err == nil || err.Error() != "the parent ended before the exec of /bin/true" {
		t.Errorf("with another parent: %v", err)
	}
}
