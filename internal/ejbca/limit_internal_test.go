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
	if d := l.admit(Enrolment, now); d != 0 {
		t.Fatalf("a full bucket holds back %s", d)
	}
	// Admitting consumes nothing: take the two tokens for real.
	for range 2 {
		if !l.bucket.AllowN(now, 1) {
			t.Fatal("burst of 2 not available")
		}
	}
	if d := l.admit(Enrolment, now); d != 500*time.Millisecond {
		t.Fatalf("an empty bucket at 2/s holds back %s, want 500ms", d)
	}
	if held != 500*time.Millisecond {
		t.Errorf("held back %s counted", held)
	}
	if d := l.admit(Enrolment, now.Add(500*time.Millisecond)); d != 0 {
		t.Errorf("after the refill: held back %s", d)
	}

	c := newLimiter(&Limit{MaxConcurrent: 1}, nil)
	release, err := c.acquire(context.Background(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.admit(Enrolment, now); d == 0 {
		t.Error("a full set of slots admits")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.acquire(ctx, time.Now); err == nil {
		t.Error("a second call got a slot while the first held it")
	}
	release()
	if d := c.admit(Enrolment, now); d != 0 {
		t.Errorf("after the release: held back %s", d)
	}
}

// caller is a simulated worker of one kind of work: it asks for admission at
// next, takes a token when admitted (as acquire does) and comes back after
// the delay it was given, times jitter, when not.
type caller struct {
	work     Work
	next     time.Time
	left     int
	jitter   float64
	admitted []time.Time
}

// runCallers plays the callers against l on a fake clock until all are done
// or until end, always moving the earliest caller next.
func runCallers(t *testing.T, l *limiter, end time.Time, callers ...*caller) {
	t.Helper()
	for {
		var c *caller
		for _, k := range callers {
			if k.left > 0 && (c == nil || k.next.Before(c.next)) {
				c = k
			}
		}
		if c == nil || c.next.After(end) {
			return
		}
		d := l.admit(c.work, c.next)
		if d == 0 {
			if r := l.bucket.ReserveN(c.next, 1); r.DelayFrom(c.next) != 0 {
				t.Fatalf("admitted at %s without a free token", c.next)
			}
			c.admitted = append(c.admitted, c.next)
			c.left--
			c.next = c.next.Add(10 * time.Millisecond) // the next reconcile
			continue
		}
		// As the request controllers requeue: never sooner than 10ms.
		c.next = c.next.Add(max(time.Duration(float64(d)*c.jitter), 10*time.Millisecond))
	}
}

// A tenant revoking 20 certificates through one issuer at 2 calls/s does
// not hold a bystander's request back for the whole queue (it waited 10 s
// while revocations reserved every future token): the bystander's first
// call goes within a token or two of its arrival, and the revocations still
// all go.
func TestRevocationsShareTokensWithEnrolments(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, jitter := range []float64{0.9, 1.0, 1.1} {
		l := newLimiter(&Limit{QPS: 2, Burst: 1}, nil)
		revoker := &caller{work: Revocation, next: t0, left: 20, jitter: 1}
		arrival := t0.Add(1200 * time.Millisecond)
		bystander := &caller{work: Enrolment, next: arrival, left: 1, jitter: jitter}
		runCallers(t, l, t0.Add(time.Minute), revoker, bystander)
		if len(bystander.admitted) != 1 {
			t.Fatalf("jitter %.1f: the bystander was never admitted", jitter)
		}
		waited := bystander.admitted[0].Sub(arrival)
		t.Logf("jitter %.1f: bystander admitted %s after its arrival, while 20 revocations ran at 2/s", jitter, waited)
		if waited > time.Second {
			t.Errorf("jitter %.1f: the bystander waited %s for its first call, want at most two tokens (1s)", jitter, waited)
		}
		if n := len(revoker.admitted); n != 20 {
			t.Fatalf("jitter %.1f: %d of 20 revocations admitted", jitter, n)
		}
		if last := revoker.admitted[19].Sub(t0); last > 11*time.Second {
			t.Errorf("jitter %.1f: the revocations took %s, want about 20 tokens at 2/s (10.5s)", jitter, last)
		}
	}
}

// Neither kind starves the other: with both asking all the time, tokens
// alternate, and a kind alone gets every token.
func TestEnrolmentsAndRevocationsTakeTurns(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := newLimiter(&Limit{QPS: 10, Burst: 1}, nil)
	enrolments := []*caller{}
	for range 8 {
		enrolments = append(enrolments, &caller{work: Enrolment, next: t0, left: 1000, jitter: 1})
	}
	revoker := &caller{work: Revocation, next: t0, left: 1000, jitter: 1}
	runCallers(t, l, t0.Add(10*time.Second), append(enrolments, revoker)...)
	enrolled := 0
	for _, c := range enrolments {
		enrolled += len(c.admitted)
	}
	revoked := len(revoker.admitted)
	t.Logf("in 10s at 10/s: %d enrolments, %d revocations", enrolled, revoked)
	if revoked < 45 || enrolled < 45 {
		t.Errorf("%d enrolments and %d revocations in 10s at 10/s: want each about half of ~100", enrolled, revoked)
	}
	if enrolled+revoked < 95 {
		t.Errorf("only %d tokens of ~100 used: the turns waste tokens", enrolled+revoked)
	}

	alone := newLimiter(&Limit{QPS: 10, Burst: 1}, nil)
	solo := &caller{work: Revocation, next: t0, left: 1000, jitter: 1}
	runCallers(t, alone, t0.Add(10*time.Second), solo)
	if n := len(solo.admitted); n < 99 {
		t.Errorf("revocations alone got %d tokens of ~100", n)
	}
}
