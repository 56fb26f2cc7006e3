// Empty: it lets forkjoin.go declare the runtime's fork hooks without bodies.
