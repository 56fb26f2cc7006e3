package wrapper

import (
	"os"
	"path/filepath"
	"strings"
)

// ShellChain prints the chain as a shell command, one stage per line, that
// runs the same container when pasted into a shell: the environment is set
// with env -i, the first stage is named by its absolute path and finds the
// others next to it.
func ShellChain(stages [][]string, env []string) string {
	var b strings.Builder
	b.WriteString("env -i")
	for _, kv := range env {
		b.WriteString(" " + ShellQuote(kv))
	}
	b.WriteString(" \\\n")
	for i, st := range stages {
		argv := append([]string(nil), st...)
		if i == 0 {
			if self, err := os.Executable(); err == nil {
				argv[0] = filepath.Join(filepath.Dir(self), argv[0])
			}
		}
		b.WriteString("  ")
		for j, a := range argv {
			if j > 0 {
				b.WriteString(" ")
			}
			b.WriteString(ShellQuote(a))
		}
		if i < len(stages)-1 {
			b.WriteString(" -- \\")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ShellQuote quotes s for a POSIX shell, leaving plain words alone.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	plain := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_@%+=:,./-", c)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
