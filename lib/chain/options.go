package chain

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Options is the option set of one stage. Options are declared once, with
// their help text, so that parsing and --help cannot drift apart.
//
// Parsing follows the chain grammar: GNU long options (--memory 64M or
// --memory=64M), short options (-U, -Upm, -v SRC:DST, -vSRC:DST), and it
// stops at the first non-option or at "--".
type Options struct {
	list []*option
}

type option struct {
	long  string
	short rune   // 0 when the option has no short form
	arg   string // name of the argument in help; "" for a switch
	help  string
	set   func(string) error
}

func (o *option) names() string {
	var b strings.Builder
	if o.short != 0 {
		fmt.Fprintf(&b, "-%c, ", o.short)
	} else {
		b.WriteString("    ")
	}
	b.WriteString("--" + o.long)
	if o.arg != "" {
		b.WriteString(" " + o.arg)
	}
	return b.String()
}

func (s *Options) add(o *option) {
	for _, old := range s.list {
		if old.long == o.long || (o.short != 0 && old.short == o.short) {
			panic("chain: option declared twice: --" + o.long)
		}
	}
	s.list = append(s.list, o)
}

// Bool declares a switch.
func (s *Options) Bool(p *bool, long string, short rune, help string) {
	s.add(&option{long: long, short: short, help: help, set: func(string) error {
		*p = true
		return nil
	}})
}

// String declares an option with one argument; the last one given wins.
func (s *Options) String(p *string, long string, short rune, arg, help string) {
	s.add(&option{long: long, short: short, arg: arg, help: help, set: func(v string) error {
		*p = v
		return nil
	}})
}

// Strings declares a repeatable option; each use appends its argument.
func (s *Options) Strings(p *[]string, long string, short rune, arg, help string) {
	s.add(&option{long: long, short: short, arg: arg, help: help, set: func(v string) error {
		*p = append(*p, v)
		return nil
	}})
}

// Int declares an option with an integer argument.
func (s *Options) Int(p *int, long string, short rune, arg, help string) {
	s.add(&option{long: long, short: short, arg: arg, help: help, set: func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p = n
		return nil
	}})
}

// Func declares an option whose argument is handed to fn, which validates
// and stores it. An empty arg declares a switch (fn receives "").
func (s *Options) Func(long string, short rune, arg, help string, fn func(string) error) {
	s.add(&option{long: long, short: short, arg: arg, help: help, set: fn})
}

// OptionError is a command-line mistake; it always means exit status 125.
type OptionError struct {
	Option string // as written by the user, "--memory" or "-m"
	Msg    string
}

func (e *OptionError) Error() string {
	if e.Option == "" {
		return e.Msg + " (see --help)"
	}
	return "option " + e.Option + ": " + e.Msg + " (see --help)"
}

func (s *Options) lookupLong(name string) *option {
	for _, o := range s.list {
		if o.long == name {
			return o
		}
	}
	return nil
}

func (s *Options) lookupShort(c rune) *option {
	for _, o := range s.list {
		if o.short == c {
			return o
		}
	}
	return nil
}

// Parse applies the options at the front of args and returns the rest: the
// program and its arguments.
func (s *Options) Parse(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[i+1:], nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o := s.lookupLong(name)
			if o == nil {
				return nil, &OptionError{Option: "--" + name, Msg: "unknown option"}
			}
			if o.arg == "" {
				if hasVal {
					return nil, &OptionError{Option: "--" + name, Msg: "takes no argument"}
				}
			} else if !hasVal {
				if i+1 >= len(args) {
					return nil, &OptionError{Option: "--" + name, Msg: "needs an argument " + o.arg}
				}
				i++
				val = args[i]
			}
			if err := o.set(val); err != nil {
				return nil, &OptionError{Option: "--" + name, Msg: err.Error()}
			}
		case len(a) > 1 && a[0] == '-':
			// A cluster of short options: -Upm, or -vSRC:DST, or -v SRC:DST.
			runes := []rune(a[1:])
			for j := 0; j < len(runes); j++ {
				o := s.lookupShort(runes[j])
				if o == nil {
					return nil, &OptionError{Option: "-" + string(runes[j]), Msg: "unknown option"}
				}
				if o.arg == "" {
					if err := o.set(""); err != nil {
						return nil, &OptionError{Option: "-" + string(runes[j]), Msg: err.Error()}
					}
					continue
				}
				val := string(runes[j+1:])
				if val == "" {
					if i+1 >= len(args) {
						return nil, &OptionError{Option: "-" + string(runes[j]), Msg: "needs an argument " + o.arg}
					}
					i++
					val = args[i]
				}
				if err := o.set(val); err != nil {
					return nil, &OptionError{Option: "-" + string(runes[j]), Msg: err.Error()}
				}
				break
			}
		default:
			return args[i:], nil
		}
	}
	return nil, nil
}

// WriteHelp prints one line per option, in declaration order.
func (s *Options) WriteHelp(w io.Writer) {
	width := 0
	for _, o := range s.list {
		if n := len(o.names()); n > width {
			width = n
		}
	}
	for _, o := range s.list {
		fmt.Fprintf(w, "  %-*s  %s\n", width, o.names(), o.help)
	}
}
