package chain

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type testOpts struct {
	user, pid bool
	memory    string
	volumes   []string
	count     int
}

func newTestOptions(o *testOpts) *Options {
	s := &Options{}
	s.Bool(&o.user, "user", 'U', "new user namespace")
	s.Bool(&o.pid, "pid", 'p', "new pid namespace")
	s.String(&o.memory, "memory", 'm', "BYTES", "memory limit")
	s.Strings(&o.volumes, "volume", 'v', "SRC:DST", "bind mount")
	s.Int(&o.count, "count", 0, "N", "a number")
	return s
}

func TestParse(t *testing.T) {
	cases := []struct {
		args []string
		want testOpts
		rest []string
	}{
		{[]string{"-U", "-p", "sh"}, testOpts{user: true, pid: true}, []string{"sh"}},
		{[]string{"-Up", "--", "-sh"}, testOpts{user: true, pid: true}, []string{"-sh"}},
		{[]string{"--memory", "64M", "prog", "--user"}, testOpts{memory: "64M"}, []string{"prog", "--user"}},
		{[]string{"--memory=1G", "-m", "2G", "prog"}, testOpts{memory: "2G"}, []string{"prog"}},
		{[]string{"-Um32M", "prog"}, testOpts{user: true, memory: "32M"}, []string{"prog"}},
		{[]string{"-v", "a:b", "--volume=c:d", "-ve:f", "x"}, testOpts{volumes: []string{"a:b", "c:d", "e:f"}}, []string{"x"}},
		{[]string{"--count", "7", "x", "-U"}, testOpts{count: 7}, []string{"x", "-U"}},
		{[]string{"-"}, testOpts{}, []string{"-"}},
		{[]string{"--user"}, testOpts{user: true}, nil},
	}
	for _, c := range cases {
		var got testOpts
		rest, err := newTestOptions(&got).Parse(c.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(rest, c.rest) {
			t.Errorf("Parse(%q) = %+v, %q; want %+v, %q", c.args, got, rest, c.want, c.rest)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--nope", "x"}, "option --nope: unknown option"},
		{[]string{"-Ux", "x"}, "option -x: unknown option"},
		{[]string{"--memory"}, "option --memory: needs an argument BYTES"},
		{[]string{"-m"}, "option -m: needs an argument BYTES"},
		{[]string{"--user=yes", "x"}, "option --user: takes no argument"},
		{[]string{"--count", "many", "x"}, `option --count: not an integer: "many"`},
	}
	for _, c := range cases {
		var o testOpts
		_, err := newTestOptions(&o).Parse(c.args)
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Parse(%q) error = %v; want %q", c.args, err, c.want)
		}
		if ExitCode(err) != ExitFailed {
			t.Errorf("Parse(%q): exit code %d, want 125", c.args, ExitCode(err))
		}
	}
}

func TestHelpListsEveryOption(t *testing.T) {
	var o testOpts
	st := Stage{Name: "barco-test", Synopsis: "[OPTIONS] [--] PROGRAM", Summary: "Tests.", Example: "barco-test -U sh"}
	st.Options = *newTestOptions(&o)
	var b strings.Builder
	st.WriteHelp(&b)
	for _, want := range []string{"-U, --user", "-v, --volume SRC:DST", "--count N", "--help", "--version", "Example:", "barco-test -U sh", "125"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, b.String())
		}
	}
}
