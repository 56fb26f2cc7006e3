package creds

import (
	"runtime"
	"testing"
)

// Setting the sets the thread holds is always allowed, and reads back the
// same.
func TestGetSetRoundTrip(t *testing.T) {
	runtime.LockOSThread()
	// The thread's credentials change: let it end with the test.
	s, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := Set(s); err != nil {
		t.Fatalf("set %+v: %v", s, err)
	}
	if again, err := Get(); err != nil || again != s {
		t.Errorf("read back %+v, %v; want %+v", again, err, s)
	}
}
