// capsprobe is a test helper for tests/caps_test.go, installed in a rootfs
// copy: "capsprobe ids" prints the real and effective uid (as a setuid
// binary it shows whether the bit took effect), "capsprobe bind ADDR"
// binds a TCP socket and prints "bound".
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: capsprobe ids | bind ADDR")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "ids":
		fmt.Printf("uid=%d euid=%d\n", os.Getuid(), os.Geteuid())
	case "bind":
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		l.Close()
		fmt.Println("bound")
	default:
		os.Exit(2)
	}
}
