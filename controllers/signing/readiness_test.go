package signing

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestReadinessWaitsForTheInventory: a process that leads, from its start
// (no leader election) or once elected, is Ready only once its inventory is
// taken; a standby is Ready once its cache has synced. Without leader
// election, controller-runtime closes Elected only after every controller
// started: Ready before then let the bench's first request, created at
// Ready, be inherited and wait 70 s (the settle time) for its certificate.
func TestReadinessWaitsForTheInventory(t *testing.T) {
	open, closed := make(chan struct{}), make(chan struct{})
	close(closed)
	for _, tc := range []struct {
		name           string
		leaderElection bool
		elected        chan struct{}
		synced, taken  bool
		want           error
	}{
		{"cache not synced", false, closed, false, true, ErrCacheNotSynced},
		{"no leader election, controllers still starting, no inventory", false, open, true, false, ErrNoInventory},
		{"no leader election, no inventory", false, closed, true, false, ErrNoInventory},
		{"no leader election, inventory taken", false, open, true, true, nil},
		{"standby", true, open, true, false, nil},
		{"elected, no inventory", true, closed, true, false, ErrNoInventory},
		{"elected, inventory taken", true, closed, true, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAttempts(clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)), func(context.Context) ([]Existing, error) { return nil, nil })
			if tc.taken {
				if err := a.Begin(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			r := &Readiness{Elected: tc.elected, Attempts: a, LeaderElection: tc.leaderElection}
			r.synced.Store(tc.synced)
			if err := r.Check(nil); !errors.Is(err, tc.want) {
				t.Errorf("ready: %v, want %v", err, tc.want)
			}
		})
	}
}
