// ttyprobe is a test helper for tests/session_test.go and tests/tty_test.go,
// installed in a rootfs copy. Each argument is one probe, run in order:
//
//	session   print "session: pid=P sid=S pgid=G" as the container sees them
//	tiocsti   push "echo INJECTED" and a newline into the input of fd 0
//	          (TIOCSTI) and print "tiocsti: ok" or the error
//	kill      send SIGCONT and SIGUSR1 to its process group (kill 0) and to
//	          every process it may signal (kill -1); print "kill: done"
//	sigint    print "ready", then "INT N" for the Nth SIGINT, until it
//	          reads a line "quit" (or end of file) on stdin
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unsafe"
)

func main() {
	for _, probe := range os.Args[1:] {
		switch probe {
		case "session":
			sid, _ := getsid()
			fmt.Printf("session: pid=%d sid=%d pgid=%d\n", os.Getpid(), sid, syscall.Getpgrp())
		case "tiocsti":
			fmt.Printf("tiocsti: %s\n", tiocsti("echo INJECTED\n"))
		case "kill":
			// Its own copies must not end it: a Go program dies of an
			// unhandled SIGUSR1.
			signal.Ignore(syscall.SIGUSR1)
			for _, sig := range []syscall.Signal{syscall.SIGCONT, syscall.SIGUSR1} {
				fmt.Printf("kill 0 %v: %v\n", sig, errText(syscall.Kill(0, sig)))
				fmt.Printf("kill -1 %v: %v\n", sig, errText(syscall.Kill(-1, sig)))
			}
			fmt.Println("kill: done")
		case "sigint":
			sigint()
		default:
			fmt.Fprintf(os.Stderr, "ttyprobe: unknown probe %q\n", probe)
			os.Exit(2)
		}
	}
}

func getsid() (int, error) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

func tiocsti(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCSTI, uintptr(unsafe.Pointer(&c))); errno != 0 {
			return errno.Error()
		}
	}
	return "ok"
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func sigint() {
	ints := make(chan os.Signal, 64)
	signal.Notify(ints, syscall.SIGINT)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	fmt.Println("ready")
	n := 0
	for {
		select {
		case <-ints:
			n++
			fmt.Printf("INT %d\n", n)
		case l, ok := <-lines:
			if !ok || l == "quit" {
				return
			}
		}
	}
}
