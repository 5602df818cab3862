package testkit

import (
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often Eventually and Poll ask again.
const pollEvery = 100 * time.Millisecond

// Eventually polls cond until it returns "" or timeout passes, then fails
// the test with cond's last message.
func Eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// Poll polls cond until it returns "" (nil) or timeout passes (an error
// with cond's last message): Eventually for code that must not stop the
// test itself (a goroutine, a helper that reports problems as a list).
func Poll(timeout time.Duration, cond func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %s", timeout, msg)
		}
		time.Sleep(pollEvery)
	}
}
