package ejbca

import (
	"context"
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

// admit reports how long a caller should wait before a call could go
// without waiting; 0 when one can go now. Nothing is consumed.
func (l *limiter) admit(now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	var d time.Duration
	if l.bucket != nil {
		r := l.bucket.ReserveN(now, 1)
		d = r.DelayFrom(now)
		r.CancelAt(now)
	}
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
	return c.limit.admit(c.clock.Now())
}
