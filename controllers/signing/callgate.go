package signing

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// CallGate remembers, per request, the earliest time it may call EJBCA
// again: the time EJBCA asked for (Retry-After), the backoff after a
// failure, the next approval poll, the search after the settle time, the
// rate limit's next slot. A request is woken by more than its own requeue
// (its issuer's readiness, a condition another controller writes, a
// resync); whatever wakes it before that time finds the gate shut and goes
// back to sleep until then, without calling EJBCA or writing. Against an
// overloaded EJBCA that is the difference between the spacing it asked for
// and a thundering herd. In memory: a new process starts with the gate
// open, as its first call after a restart is due anyway.
type CallGate struct {
	m sync.Map // types.NamespacedName -> gateEntry
}

type gateEntry struct {
	uid   types.UID
	until time.Time
}

// Hold shuts the gate of the request until until.
func (g *CallGate) Hold(key types.NamespacedName, uid types.UID, until time.Time) {
	if g == nil {
		return
	}
	g.m.Store(key, gateEntry{uid: uid, until: until})
}

// Wait is how long the request must still wait before calling EJBCA at now;
// zero when it may call.
func (g *CallGate) Wait(key types.NamespacedName, uid types.UID, now time.Time) time.Duration {
	if g == nil {
		return 0
	}
	v, ok := g.m.Load(key)
	if !ok {
		return 0
	}
	e := v.(gateEntry)
	if e.uid != uid {
		return 0 // another request of the same name
	}
	return gateWait(e.until, now)
}

// Forget drops the request's gate: it is final or gone.
func (g *CallGate) Forget(key types.NamespacedName) {
	if g == nil {
		return
	}
	g.m.Delete(key)
}

// gateWait is the time from now until the gate opens at until, zero once
// it is open.
func gateWait(until, now time.Time) time.Duration {
	if now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

// RequeueNoSooner spreads a requeue of d by jitter's factor (near 1, from
// 0.9 to 1.1), only ever later: a wait EJBCA asked for, or a backoff, is
// never cut short by the spread.
func RequeueNoSooner(d time.Duration, jitter func() float64) time.Duration {
	if jitter == nil || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * max(1, jitter()+0.1))
}
