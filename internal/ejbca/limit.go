package ejbca

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit bounds one client's calls to EJBCA: a token bucket (QPS, Burst) and
// a bound on calls in flight (MaxConcurrent, 0 for none). The client is
// shared by every caller of one issuer, so the limit is the issuer's.
type Limit struct {
	QPS           float64
	Burst         int
	MaxConcurrent int
}

// limiter enforces a Limit; nil enforces none.
type limiter struct {
	bucket *rate.Limiter
	slots  chan struct{}
	// onWait is told how long a call was held back.
	onWait func(time.Duration)

	mu sync.Mutex
	// turns shares the tokens between enrolments and revocations.
	turns turns
}

// Work is what an admitted call starts: the two kinds that share an
// issuer's tokens fairly.
type Work int

const (
	// Enrolment: a request's first call (enrol, add an end entity, poll).
	Enrolment Work = iota
	// Revocation: a revoke call.
	Revocation
	works
)

// turns is the fairness between the kinds of work: when a token is free
// and the kind that had the last one is asked again while the other kind
// was held back and is due to come back, the other kind's turn comes first.
// Neither kind starves: a kind yields at most the one token after each of
// its admissions, and only to a caller due back by then.
type turns struct {
	last     Work
	admitted bool
	// dueBack is, per kind, when the callers it held back last come back.
	dueBack [works]time.Time
}

// decide says whether work may take the free token at now, recording it.
func (t *turns) decide(work Work, now time.Time) bool {
	other := (work + 1) % works
	if t.admitted && t.last == work && !now.After(t.dueBack[other]) {
		return false
	}
	t.last, t.admitted = work, true
	return true
}

// heldBack records a caller of work told to come back after d.
func (t *turns) heldBack(work Work, now time.Time, d time.Duration) {
	// Callers come back after d, give or take their jitter (10%) and a
	// worker's pickup.
	due := now.Add(d + d/5 + 50*time.Millisecond)
	if due.After(t.dueBack[work]) {
		t.dueBack[work] = due
	}
}

func newLimiter(l *Limit, onWait func(time.Duration)) *limiter {
	if l == nil || (l.QPS <= 0 && l.MaxConcurrent <= 0) {
		return nil
	}
	lim := &limiter{onWait: onWait}
	if l.QPS > 0 {
		burst := l.Burst
		if burst <= 0 {
			burst = max(int(l.QPS), 1)
		}
		lim.bucket = rate.NewLimiter(rate.Limit(l.QPS), burst)
	}
	if l.MaxConcurrent > 0 {
		lim.slots = make(chan struct{}, l.MaxConcurrent)
	}
	return lim
}

// admit reports how long a caller starting work should wait before a call
// could go without waiting; 0 when one can go now. Nothing is consumed: the
// call takes its token in acquire. Enrolments and revocations take turns
// (see turns).
func (l *limiter) admit(work Work, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	var d time.Duration
	l.mu.Lock()
	if l.bucket != nil {
		r := l.bucket.ReserveN(now, 1)
		d = r.DelayFrom(now)
		r.CancelAt(now)
		if d == 0 && !l.turns.decide(work, now) {
			// The other kind's turn: come back after it took its token.
			d = max(time.Duration(float64(time.Second)/float64(l.bucket.Limit())), 10*time.Millisecond)
		}
		if d > 0 {
			l.turns.heldBack(work, now, d)
		}
	}
	l.mu.Unlock()
	if d == 0 && l.slots != nil && len(l.slots) == cap(l.slots) {
		d = 100 * time.Millisecond
	}
	if d > 0 && l.onWait != nil {
		l.onWait(d)
	}
	return d
}

// acquire waits for a token and a slot (or the context's end) and returns
// the release of the slot.
func (l *limiter) acquire(ctx context.Context, now func() time.Time) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	start := now()
	if l.bucket != nil {
		if err := l.bucket.Wait(ctx); err != nil {
			return nil, err
		}
	}
	release := func() {}
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
			release = func() { <-l.slots }
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if waited := now().Sub(start); waited > time.Millisecond && l.onWait != nil {
		l.onWait(waited)
	}
	return release, nil
}

// Admit reports how long to hold a request back before its first call to
// EJBCA, under the issuer's rate limit; 0 when a call can go now. A caller
// that gets more than 0 should come back later instead of blocking.
func (c *Client) Admit() time.Duration {
	return c.limit.admit(Enrolment, c.clock.Now())
}

// AdmitRevocation is Admit for a revoke call. Revocations are held back
// like enrolments instead of waiting in the bucket, where they would take
// every future token ahead of other tenants' requests.
func (c *Client) AdmitRevocation() time.Duration {
	return c.limit.admit(Revocation, c.clock.Now())
}
