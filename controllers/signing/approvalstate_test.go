package signing

import (
	"testing"
	"time"
)

// A verified approval start is held between the request's creation and one
// EJBCA call after its enrolment Secret's creation: a start in the future
// cannot keep a request waiting past maxWait.
func TestClampApprovalStart(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secret := created.Add(2 * time.Second)
	settle := 70 * time.Second
	for _, tc := range []struct {
		name        string
		since, want time.Time
	}{
		{"as recorded", secret.Add(time.Second), secret.Add(time.Second)},
		{"before the request: its creation", created.Add(-time.Hour), created},
		{"after the Secret's creation plus one call: clamped", secret.Add(time.Hour), secret.Add(settle)},
		{"right at the bound", secret.Add(settle), secret.Add(settle)},
	} {
		got := clampApprovalStart(approvalRecord{RequestID: 7, Since: tc.since}, created, secret, settle)
		if !got.Since.Equal(tc.want) || got.RequestID != 7 {
			t.Errorf("%s: %s, want %s", tc.name, got.Since, tc.want)
		}
	}
}
