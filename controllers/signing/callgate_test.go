package signing

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestCallGate: a request woken before the time its last answer set waits
// the rest of it; a new request of the same name is not held; a requeue's
// spread only ever lengthens the wait.
func TestCallGate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	var g CallGate
	if w := g.Wait(key, "u1", clk.Now()); w != 0 {
		t.Fatalf("a request never held waits %s", w)
	}
	g.Hold(key, "u1", clk.Now().Add(7*time.Second)) // Retry-After: 7
	for _, tc := range []struct {
		at   time.Duration
		uid  types.UID
		want time.Duration
	}{
		{0, "u1", 7 * time.Second},
		{6800 * time.Millisecond, "u1", 200 * time.Millisecond}, // woken by its issuer: not yet
		{6800 * time.Millisecond, "u2", 0},                      // deleted and created again: its own
		{7 * time.Second, "u1", 0},
		{time.Minute, "u1", 0},
	} {
		if got := g.Wait(key, tc.uid, clk.Now().Add(tc.at)); got != tc.want {
			t.Errorf("at +%s (%s): wait %s, want %s", tc.at, tc.uid, got, tc.want)
		}
	}
	g.Forget(key)
	if w := g.Wait(key, "u1", clk.Now()); w != 0 {
		t.Errorf("a forgotten request waits %s", w)
	}
	var none *CallGate
	none.Hold(key, "u1", clk.Now().Add(time.Hour))
	if none.Wait(key, "u1", clk.Now()) != 0 {
		t.Error("no gate holds")
	}
	for _, j := range []float64{0.9, 0.95, 1, 1.05, 1.0999} {
		if got := RequeueNoSooner(7*time.Second, func() float64 { return j }); got < 7*time.Second || got > 8400*time.Millisecond {
			t.Errorf("jitter %v: requeue %s, want within [7s, 8.4s]", j, got)
		}
	}
}
