package caps

import (
	"bytes"
	"strings"
	"testing"

	"barco/lib/chain"
)

// barco-caps run in-process, as its binary would run it: --print writes
// the resolved sets on the stage's stdout and applies nothing.
func TestCommandPrintInProcess(t *testing.T) {
	var out, errOut bytes.Buffer
	p := chain.NewProcess(chain.Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	status := p.Run(Command(), []string{"--print", "--cap-drop", "all", "--cap-add", "net_bind_service"})
	if status != 0 || errOut.Len() != 0 {
		t.Fatalf("status %d, stderr %q", status, errOut.String())
	}
	if !strings.Contains(out.String(), "bounding     0000000000000400 cap_net_bind_service\n") {
		t.Errorf("--print:\n%s\nwant a bounding set of net_bind_service alone", out.String())
	}
}

func TestCommandUnknownCapabilityIsOneLine(t *testing.T) {
	var out, errOut bytes.Buffer
	p := chain.NewProcess(chain.Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if status := p.Run(Command(), []string{"--cap-add", "nosuch", "--", "true"}); status != chain.ExitFailed {
		t.Errorf("status %d, want %d", status, chain.ExitFailed)
	}
	if got := errOut.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "barco-caps: ") || !strings.Contains(got, "nosuch") {
		t.Errorf("stderr %q, want one line naming nosuch", got)
	}
}

func TestParseUmask(t *testing.T) {
	for in, want := range map[string]int{"022": 0o22, "0022": 0o22, "0o077": 0o77, "0": 0, "777": 0o777} {
		if got, err := ParseUmask(in); err != nil || got != want {
			t.Errorf("ParseUmask(%q) = %#o, %v; want %#o", in, got, err, want)
		}
	}
	for _, in := range []string{"", "8", "1000", "-1", "0x12", "u=rwx"} {
		if _, err := ParseUmask(in); err == nil {
			t.Errorf("ParseUmask(%q): no error", in)
		}
	}
}
