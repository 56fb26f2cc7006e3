package creds

import (
	"errors"
	"runtime"
	"testing"
)

// Setting the sets the thread holds is allowed on the locked thread, and
// reads back the same; on any other thread it is refused.
func TestGetSetRoundTrip(t *testing.T) {
	// The thread's credentials change: let it end with the test.
	if err := LockThread(); err != nil {
		t.Fatal(err)
	}
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

	errs := make(chan [2]error)
	go func() {
		// A goroutine locked to a thread of its own, so surely another.
		runtime.LockOSThread()
		errs <- [2]error{Set(s), LockThread()}
	}()
	got := <-errs
	if !errors.Is(got[0], ErrNotLockedThread) {
		t.Errorf("Set on another thread: %v, want %v", got[0], ErrNotLockedThread)
	}
	if got[1] == nil {
		t.Error("LockThread on a second thread succeeded")
	}
}
