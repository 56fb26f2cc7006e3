package chain

import (
	"fmt"
	"strings"
)

// Flag names one bit of a flag word, such as MS_BIND of mount(2)'s flags.
type Flag[T ~uint64 | ~uintptr] struct {
	Bit  T
	Name string
}

// FlagNames spells flags by name for an error message, as runc does:
// "MS_BIND|MS_REC". Bits without a name are printed in hex; no bit at all
// as "0".
func FlagNames[T ~uint64 | ~uintptr](flags T, names []Flag[T]) string {
	var out []string
	for _, f := range names {
		if flags&f.Bit != 0 {
			out = append(out, f.Name)
			flags &^= f.Bit
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", uint64(flags)))
	}
	if len(out) == 0 {
		return "0"
	}
	return strings.Join(out, "|")
}
