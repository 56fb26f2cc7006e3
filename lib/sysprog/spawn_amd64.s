#include "textflag.h"

// func rawCloneOnStack(trap, a1, a2, arg uintptr) (r1, errno uintptr)
//
// clone or clone3 (trap) with a1 and a2, for a child given a stack of its
// own by them: the child starts on that stack, here, and calls
// spawnChild(arg), which never returns.
TEXT ·rawCloneOnStack(SB),NOSPLIT|NOFRAME,$0-48
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	arg+24(FP), R13
	MOVQ	trap+0(FP), AX
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+32(FP)
	NEGQ	AX
	MOVQ	AX, errno+40(FP)
	RET
ok:
	MOVQ	AX, r1+32(FP)
	MOVQ	$0, errno+40(FP)
	RET
child:
	// The child, on its own stack: nothing of the parent's frames.
	SUBQ	$16, SP
	MOVQ	R13, 0(SP)
	CALL	·spawnChild(SB)
	MOVQ	$1, DI
	MOVQ	$231, AX // exit_group, should spawnChild return
	SYSCALL
	RET

// func signalExit()
//
// A signal handler, for a child of Spawn until its exec (see
// Builder.ExitOnSignal): the kernel calls it with the signal's number in
// DI, and it ends the process with status 128 plus that number. It never
// returns, and is its own restorer.
TEXT ·signalExit(SB),NOSPLIT|NOFRAME,$0-0
	ADDQ	$128, DI
loop:
	MOVQ	$231, AX // exit_group
	SYSCALL
	JMP	loop

// func signalExitPC() uintptr
TEXT ·signalExitPC(SB),NOSPLIT,$0-8
	LEAQ	·signalExit(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
