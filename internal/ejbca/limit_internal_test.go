package ejbca

import (
	"context"
	"testing"
	"time"
)

func TestLimiterAdmits(t *testing.T) {
	if newLimiter(nil, nil) != nil || newLimiter(&Limit{}, nil) != nil {
		t.Fatal("no limit should enforce nothing")
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var held time.Duration
	l := newLimiter(&Limit{QPS: 2, Burst: 2}, func(d time.Duration) { held += d })
	if d := l.admit(now); d != 0 {
		t.Fatalf("a full bucket holds back %s", d)
	}
	// Admitting consumes nothing: take the two tokens for real.
	for range 2 {
		if !l.bucket.AllowN(now, 1) {
			t.Fatal("burst of 2 not available")
		}
	}
	if d := l.admit(now); d != 500*time.Millisecond {
		t.Fatalf("an empty bucket at 2/s holds back %s, want 500ms", d)
	}
	if held != 500*time.Millisecond {
		t.Errorf("held back %s counted", held)
	}
	if d := l.admit(now.Add(500 * time.Millisecond)); d != 0 {
		t.Errorf("after the refill: held back %s", d)
	}

	c := newLimiter(&Limit{MaxConcurrent: 1}, nil)
	release, err := c.acquire(context.Background(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.admit(now); d == 0 {
		t.Error("a full set of slots admits")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.acquire(ctx, time.Now); err == nil {
		t.Error("a second call got a slot while the first held it")
	}
	release()
	if d := c.admit(now); d != 0 {
		t.Errorf("after the release: held back %s", d)
	}
}
