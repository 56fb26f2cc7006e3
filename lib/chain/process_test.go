package chain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// testProcess is a Process with its own stdio, as a test runs a stage.
func testProcess() (*Process, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return NewProcess(Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}), &out, &errOut
}

// keepEnviron undoes what a linked stage's Exec does to the test's
// process: the environment and os.Args.
func keepEnviron(t *testing.T) {
	env, args := os.Environ(), os.Args
	t.Cleanup(func() {
		_ = setEnviron(env)
		os.Args = args
	})
}

func TestRunHelpAndVersionGoToStdout(t *testing.T) {
	st := &Stage{Name: "barco-x", Synopsis: "[--] PROGRAM", Summary: "Does x.",
		Main: func(*Process, []string) (int, error) { t.Error("Main ran"); return 0, nil }}
	for _, arg := range []string{"--help", "--version"} {
		p, out, errOut := testProcess()
		if status := p.Run(st, []string{arg}); status != 0 {
			t.Errorf("%s: status %d, want 0", arg, status)
		}
		if !strings.Contains(out.String(), "barco-x") || errOut.Len() != 0 {
			t.Errorf("%s: stdout %q, stderr %q", arg, out, errOut)
		}
	}
}

func TestRunBadOptionIsOneLineAnd125(t *testing.T) {
	var flag bool
	st := &Stage{Name: "barco-x", Main: func(*Process, []string) (int, error) { return 0, nil }}
	st.Options.Bool(&flag, "flag", 0, "a flag")
	p, out, errOut := testProcess()
	if status := p.Run(st, []string{"--nosuch", "true"}); status != ExitFailed {
		t.Errorf("status %d, want %d", status, ExitFailed)
	}
	if got := errOut.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "barco-x: ") || !strings.Contains(got, "--nosuch") {
		t.Errorf("stderr %q, want one line naming barco-x and --nosuch", got)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out)
	}
}

// Main's status and error are the stage's: the error's own code, else 125.
func TestRunReturnsMainsStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		err    error
		want   int
	}{
		{3, nil, 3},
		{0, errors.New("boom"), ExitFailed},
		{0, &Error{Code: ExitNotFound, Err: errors.New("exec x: not found")}, ExitNotFound},
	} {
		st := &Stage{Name: "barco-x", Main: func(*Process, []string) (int, error) { return tc.status, tc.err }}
		p, _, errOut := testProcess()
		if got := p.Run(st, []string{"true"}); got != tc.want {
			t.Errorf("Main (%d, %v): status %d, want %d", tc.status, tc.err, got, tc.want)
		}
		if (tc.err != nil) != (errOut.Len() > 0) {
			t.Errorf("Main (%d, %v): stderr %q", tc.status, tc.err, errOut)
		}
	}
}

// A stage linked after another runs in the same process; when it fails,
// both stages' undo work runs, the later stage's first, and the failure is
// the later stage's one line.
func TestLinkedStageFailureUndoesEveryStage(t *testing.T) {
	keepEnviron(t)
	var undone []string
	second := func() *Stage {
		return &Stage{Name: "barco-second", Main: func(p *Process, program []string) (int, error) {
			p.OnFailure(func() { undone = append(undone, "second") })
			return 0, errors.New("second: no luck")
		}}
	}
	first := &Stage{Name: "barco-first", Main: func(p *Process, program []string) (int, error) {
		p.OnFailure(func() { undone = append(undone, "first") })
		status, err := p.Exec(program, os.Environ())
		if len(undone) != 1 {
			t.Errorf("back in the first stage, undone %q, want the second's only", undone)
		}
		return status, err
	}}
	p, _, errOut := testProcess()
	p.Link(second)
	status := p.Run(first, []string{"barco-second", "true"})
	if status != ExitFailed {
		t.Errorf("status %d, want %d", status, ExitFailed)
	}
	if want := []string{"second", "first"}; !slices.Equal(undone, want) {
		t.Errorf("undone %q, want %q", undone, want)
	}
	if got := errOut.String(); got != "barco-second: second: no luck\n" {
		t.Errorf("stderr %q, want the second stage's one line", got)
	}
}

// An exec that fails is one more way out: the undo work runs.
func TestFailedExecUndoes(t *testing.T) {
	undone := false
	st := &Stage{Name: "barco-x", Main: func(p *Process, program []string) (int, error) {
		p.OnFailure(func() { undone = true })
		return p.Exec(program, os.Environ())
	}}
	p, _, errOut := testProcess()
	if status := p.Run(st, []string{"/nonexistent/program"}); status != ExitNotFound {
		t.Errorf("status %d, want %d", status, ExitNotFound)
	}
	if !undone {
		t.Error("the undo work did not run after the failed exec")
	}
	if !strings.Contains(errOut.String(), "/nonexistent/program") {
		t.Errorf("stderr %q, want the program named", errOut)
	}
}

// DropOnFailure forgets the undo work: after it nothing runs.
func TestDropOnFailure(t *testing.T) {
	undone := false
	st := &Stage{Name: "barco-x", Main: func(p *Process, program []string) (int, error) {
		p.OnFailure(func() { undone = true })
		p.DropOnFailure()
		return 0, errors.New("later failure")
	}}
	p, _, _ := testProcess()
	p.Run(st, []string{"true"})
	if undone {
		t.Error("undo work ran after DropOnFailure")
	}
}

// With a placer set (barco-cgroup handing over to barco-ns), Exec refuses
// to exec: the earlier stage's work at the end would be lost.
func TestExecRefusedWhileChildrenArePlaced(t *testing.T) {
	p, _, _ := testProcess()
	p.PlaceChildren(nopPlacer{})
	_, err := p.Exec([]string{"/bin/true"}, nil)
	if err == nil || !strings.Contains(err.Error(), "PlaceChildren") {
		t.Errorf("Exec with a placer set: %v, want a refusal", err)
	}
}

// A panic in a stage is its one line and 125, and its undo work runs.
func TestPanicIsOneLine(t *testing.T) {
	undone := false
	st := &Stage{Name: "barco-x", Main: func(p *Process, program []string) (int, error) {
		p.OnFailure(func() { undone = true })
		panic(fmt.Sprintf("boom with %d arguments", len(program)))
	}}
	p, _, errOut := testProcess()
	if status := p.Run(st, []string{"true"}); status != ExitFailed {
		t.Errorf("status %d, want %d", status, ExitFailed)
	}
	if got := errOut.String(); !strings.HasPrefix(got, "barco-x: internal error: boom with 1 arguments (a bug in barco") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr %q, want one line", got)
	}
	if !undone {
		t.Error("the undo work did not run after the panic")
	}
}

type nopPlacer struct{}

func (nopPlacer) ForkExec(string, []string, *syscall.ProcAttr) (int, error) { return 0, nil }
func (nopPlacer) Spawn(func(int) (int, error)) (int, error)                 { return 0, nil }
