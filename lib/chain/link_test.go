package chain

import (
	"os"
	"slices"
	"testing"
)

func TestLinkedStageHonoursExecStages(t *testing.T) {
	p := NewProcess(Stdio{})
	p.Link(func() *Stage { return &Stage{Name: "barco-caps"} })
	t.Setenv(ExecStagesEnv, "")
	if !p.IsLinked("barco-caps") {
		t.Error("barco-caps is linked, but Exec would exec it")
	}
	if p.IsLinked("barco-seccomp") {
		t.Error("barco-seccomp is not linked, but Exec would run it in this process")
	}
	t.Setenv(ExecStagesEnv, "1")
	if p.IsLinked("barco-caps") {
		t.Errorf("with %s=1, Exec would still run barco-caps in this process", ExecStagesEnv)
	}
}

// The linked stage sees the environment Exec was given, as an exec'd one
// would: nothing of the old one, and the first of two values.
func TestSetEnvironReplacesTheEnvironment(t *testing.T) {
	saved := os.Environ()
	defer setEnviron(saved)
	os.Setenv("BARCO_TEST_OLD", "1")
	if err := setEnviron([]string{"A=1", "B=x=y", "A=2", "NOEQUALS", "=bad", "E="}); err != nil {
		t.Fatal(err)
	}
	got := os.Environ()
	slices.Sort(got)
	if want := []string{"A=1", "B=x=y", "E="}; !slices.Equal(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
}
