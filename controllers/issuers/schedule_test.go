package issuers

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// t0 is the tests' fake clock start.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestIssuerCheckDue walks an issuer's checks on a fake clock: a Ready
// issuer every interval; a failing one after 1m, 2m, 4m... up to the
// interval, never sooner than a minute whatever the jitter; an Unreachable
// one is left to the probe.
func TestIssuerCheckDue(t *testing.T) {
	const interval = 5 * time.Minute
	for _, tc := range []struct {
		name     string
		ready    bool
		reason   string
		failures int
		probed   bool
		jitter   float64
		want     time.Duration
	}{
		{"ready", true, v1alpha1.ReasonChecked, 0, true, 1, interval},
		{"ready, jittered", true, v1alpha1.ReasonChecked, 0, true, 0.9, 270 * time.Second},
		{"first failure", false, v1alpha1.ReasonUnauthorized, 1, true, 1, time.Minute},
		{"first failure never under a minute", false, v1alpha1.ReasonUnauthorized, 1, true, 0.9, time.Minute},
		{"second failure", false, v1alpha1.ReasonCANotFound, 2, true, 1, 2 * time.Minute},
		{"third failure", false, v1alpha1.ReasonSecretNotFound, 3, true, 1, 4 * time.Minute},
		{"capped at the interval", false, v1alpha1.ReasonSecretNotFound, 9, true, 1, interval},
		{"unreachable and probed: at the interval", false, v1alpha1.ReasonUnreachable, 4, true, 1, interval},
		{"unreachable without the probe: backoff", false, v1alpha1.ReasonUnreachable, 2, false, 1, 2 * time.Minute},
	} {
		clock := clocktesting.NewFakePassiveClock(t0)
		due := IssuerCheckDue(clock.Now(), tc.ready, tc.reason, tc.failures, interval, tc.probed, tc.jitter)
		if got := due.Sub(clock.Now()); got != tc.want {
			t.Errorf("%s: next check after %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestProbeSpacing: one status probe per EJBCA URL, every minute shared
// among the issuers waiting on it, never more often than every 15s.
func TestProbeSpacing(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Minute, 1: time.Minute, 2: 30 * time.Second, 4: 15 * time.Second, 40: 15 * time.Second} {
		if got := spacing(n); got != want {
			t.Errorf("spacing(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestProbeSpacingFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ timeout, want time.Duration }{
		{0, minProbeSpacing},
		{30 * time.Second, minProbeSpacing}, // the default timeout: 15 s
		{5 * time.Second, 10 * time.Second},
		{time.Second, 2 * time.Second},
		{100 * time.Millisecond, 2 * time.Second},
	} {
		if got := ProbeSpacingFor(tc.timeout); got != tc.want {
			t.Errorf("ProbeSpacingFor(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}
