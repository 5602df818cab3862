package signing

import (
	"testing"
	"time"
)

// TestApprovalPollAfter: about 5s, 15s, 45s, 2m, then every 5m, capped by
// pollInterval, jittered.
func TestApprovalPollAfter(t *testing.T) {
	for _, tc := range []struct {
		waited, pollInterval time.Duration
		jitter               float64
		want                 time.Duration
	}{
		{0, 5 * time.Minute, 1, 5 * time.Second},
		{5 * time.Second, 5 * time.Minute, 1, 10 * time.Second},
		{15 * time.Second, 5 * time.Minute, 1, 30 * time.Second},
		{time.Minute, 5 * time.Minute, 1, 2 * time.Minute},
		{time.Hour, 5 * time.Minute, 1, 5 * time.Minute},
		{time.Hour, time.Hour, 1, 5 * time.Minute},
		{time.Minute, 30 * time.Second, 1, 30 * time.Second},
		{0, time.Second, 1, time.Second},
		{time.Hour, 5 * time.Minute, 1.1, 330 * time.Second},
	} {
		if got := ApprovalPollAfter(tc.waited, tc.pollInterval, tc.jitter); got != tc.want {
			t.Errorf("waited %s, pollInterval %s, jitter %v: %s, want %s", tc.waited, tc.pollInterval, tc.jitter, got, tc.want)
		}
	}
}
