package tests

import (
	"strings"
	"testing"

	"barco/lib/chain"
	"barco/lib/testutil"
)

// bothStageModes runs f twice: as the chain normally runs, with the stages
// built into the running binary continuing in its process (barco-caps and
// barco-seccomp in barco-mount's, barco-cgroup in barco's), and with
// BARCO_EXEC_STAGES=1, which makes every stage exec its own binary. A user
// must not be able to tell the two apart.
func bothStageModes(t *testing.T, f func(t *testing.T)) {
	t.Run("linked", f)
	t.Run("exec", func(t *testing.T) {
		t.Setenv(chain.ExecStagesEnv, "1")
		f(t)
	})
}

// The two ways of running the later stages are really taken: in one
// process, or each its own binary carried across pivot_root.
func TestChainStagesLinkedOrExecuted(t *testing.T) {
	bin := barcoBin(t)
	for _, mode := range []struct {
		env  []string
		want []string
	}{
		{nil, []string{"barco-mount[1]: debug: +", "continue as barco-caps", "continue as barco-seccomp"}},
		{[]string{chain.ExecStagesEnv + "=1"}, []string{"carry barco-caps as", "exec barco-caps (carried", "exec barco-seccomp (carried"}},
	} {
		r := testutil.Run(t, mode.env, bin, "run", "--debug", "--", "/bin/sh", "-c", "echo $BARCO_EXEC_STAGES; echo ran")
		if r.Code != 0 || r.Stdout != "\nran\n" {
			t.Errorf("%v: status %d, stdout %q; want 0 and \"ran\" only", mode.env, r.Code, r.Stdout)
		}
		for _, w := range mode.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%v: no %q in the debug log:\n%s", mode.env, w, r.Stderr)
			}
		}
	}
}
