package signing

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Readiness is the manager's /readyz check: Ready means this process can
// sign now, or, as a standby, take over at once. It holds once the cache
// has synced and, when this process leads (elected closed; without leader
// election, always), once the inventory of requests its predecessor may
// have sent has been taken: until then the signer waits.
type Readiness struct {
	Cache    cache.Cache
	Elected  <-chan struct{}
	Attempts *Attempts
	// LeaderElection: this process may be a standby. Without it, it leads
	// from its start, though controller-runtime closes Elected only once
	// every controller has started: a standby's Ready before that let a
	// request created meanwhile be taken into the inventory (searched for,
	// and enrolled only after the settle time, 70 s by default).
	LeaderElection bool

	synced atomic.Bool
}

// Errors the readiness check reports.
var (
	ErrCacheNotSynced = errors.New("the cache has not synced yet")
	ErrNoInventory    = errors.New("leading, but the inventory of requests a predecessor may have sent is not taken yet")
)

// Start waits for the cache, as a runnable of the manager on every replica.
func (r *Readiness) Start(ctx context.Context) error {
	if r.Cache.WaitForCacheSync(ctx) {
		r.synced.Store(true)
	}
	<-ctx.Done()
	return nil
}

// NeedLeaderElection: a standby's cache syncs too.
func (r *Readiness) NeedLeaderElection() bool { return false }

// Check is the healthz.Checker.
func (r *Readiness) Check(*http.Request) error {
	if !r.synced.Load() {
		return ErrCacheNotSynced
	}
	leading := !r.LeaderElection
	select {
	case <-r.Elected:
		leading = true
	default:
	}
	if leading && !r.Attempts.Taken() {
		return ErrNoInventory
	}
	return nil
}

var _ healthz.Checker = (&Readiness{}).Check
