package seccomp

import (
	"strings"
	"testing"
)

// farProgram is: if nr == 5 return 2, else return 1 after n loads, so
// that the jump to "return 2" is n+1 instructions long.
func farProgram(n int) (*assembler, int) {
	a := newAssembler()
	far, near := a.label(), a.label()
	a.ld(0)
	a.jump(opJeqK, 5, far, near)
	a.bind(near)
	for range n {
		a.ld(0)
	}
	a.ret(1)
	a.bind(far)
	a.ret(2)
	return a, far
}

func asVM(prog []Instruction) []bpfInsn {
	out := make([]bpfInsn, len(prog))
	for i, in := range prog {
		out[i] = bpfInsn{in.Code, in.Jt, in.Jf, in.K}
	}
	return out
}

// A conditional jump farther than 255 instructions goes through a
// trampoline, and the program means the same.
func TestAssemblerTrampolines(t *testing.T) {
	for _, n := range []int{10, 254, 255, 300, 3000} {
		a, _ := farProgram(n)
		prog, err := a.finish()
		if err != nil {
			t.Fatalf("%d loads: %v", n, err)
		}
		for nr, want := range map[int32]uint32{5: 2, 6: 1} {
			d := seccompData{nr: nr}
			if got, err := runBPF(asVM(prog), d.bytes()); err != nil || got != want {
				t.Errorf("%d loads, nr %d: %d, %v; want %d", n, nr, got, err, want)
			}
		}
		// The far target is a return: the trampoline is a copy of it.
		if n >= 255 && (prog[2].Code != opRetK || prog[2].K != 2) {
			t.Errorf("%d loads: instruction 2 is %+v, want the return copied", n, prog[2])
		}
	}
	// A trampoline to code that is not a return is a ja.
	a := newAssembler()
	far, near := a.label(), a.label()
	a.ld(0)
	a.jump(opJeqK, 5, far, near)
	a.bind(near)
	for range 300 {
		a.ld(0)
	}
	a.ret(1)
	a.bind(far)
	a.ld(4)
	a.ret(2)
	prog, err := a.finish()
	if err != nil {
		t.Fatal(err)
	}
	if prog[2].Code != opJa {
		t.Errorf("instruction 2 is %+v, want a ja", prog[2])
	}
	d := seccompData{nr: 5}
	if got, err := runBPF(asVM(prog), d.bytes()); err != nil || got != 2 {
		t.Errorf("nr 5: %d, %v; want 2", got, err)
	}
}

// Offsets classic BPF cannot hold are refused, never truncated.
func TestAssemblerRefusesFarJumps(t *testing.T) {
	a, _ := farProgram(300)
	if _, err := a.encode(); err == nil || !strings.Contains(err.Error(), "conditional jump of 301/0") {
		t.Errorf("jump of 301 without trampoline: error %v", err)
	}
	a = newAssembler()
	l := a.label()
	a.bind(l)
	a.ld(0)
	a.ja(l)
	if _, err := a.finish(); err == nil || !strings.Contains(err.Error(), "backward jump") {
		t.Errorf("backward jump: error %v", err)
	}
	a = newAssembler()
	a.ja(a.label())
	if _, err := a.finish(); err == nil || !strings.Contains(err.Error(), "not an instruction") {
		t.Errorf("unbound label: error %v", err)
	}
}
