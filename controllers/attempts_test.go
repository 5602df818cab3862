package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestAttempts(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	request := func(uid string, created time.Time) *SigningRequest {
		return &SigningRequest{UID: types.UID(uid), Namespace: "ns", Name: uid, Created: created}
	}
	type want struct {
		ok             bool
		at, searchFrom time.Time
	}
	for _, tc := range []struct {
		name string
		// steps run on a memory begun at start, with the clock at start+1m.
		steps func(a *Attempts, sr *SigningRequest)
		sr    *SigningRequest
		want  want
	}{
		{"a request created after this process began: nothing sent, nothing to search",
			nil, request("new", start.Add(time.Minute)), want{}},
		{"a request created before this process began: its predecessor may have sent it",
			nil, request("old", start.Add(-time.Hour)), want{true, start, start.Add(-time.Hour)}},
		{"created within the clock skew allowance of the start counts as before",
			nil, request("edge", start.Add(startSkewAllowance-time.Millisecond)), want{true, start, start.Add(startSkewAllowance - time.Millisecond)}},
		{"created just past the allowance does not",
			nil, request("past-edge", start.Add(startSkewAllowance)), want{}},
		{"sent by this process and unanswered: search from the sending",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)) },
			request("sent", start.Add(10*time.Second)), want{true, start.Add(30 * time.Second), start.Add(30 * time.Second)}},
		{"an inherited request, sent again by this process: the later sending counts",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(40*time.Second)) },
			request("old-sent", start.Add(-time.Hour)), want{true, start.Add(40 * time.Second), start.Add(40 * time.Second)}},
		{"settled (EJBCA answered it did not issue): no search",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)); a.Settled(sr) },
			request("answered", start.Add(10*time.Second)), want{}},
		{"an inherited request settled by an empty search after the settle time: no second search",
			func(a *Attempts, sr *SigningRequest) { a.Settled(sr) },
			request("old-settled", start.Add(-time.Hour)), want{}},
		{"done, then seen again (a stale cache): back to what its creation says",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)); a.Done(sr.UID) },
			request("done", start.Add(10*time.Second)), want{}},
		{"deleted, then a new request of the same name",
			func(a *Attempts, sr *SigningRequest) {
				a.Sent(&SigningRequest{UID: "gone", Namespace: "ns", Name: sr.Name}, start.Add(30*time.Second))
				a.Deleted("ns", sr.Name)
				if a.Len() != 0 {
					t.Errorf("deleted request kept: %d entries", a.Len())
				}
			},
			request("again", start.Add(50*time.Second)), want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(start)
			a := NewAttempts(clk)
			a.Begin()
			clk.SetTime(start.Add(time.Minute))
			if tc.steps != nil {
				tc.steps(a, tc.sr)
			}
			at, from, ok := a.Unanswered(tc.sr)
			if got := (want{ok, at, from}); got != tc.want {
				t.Errorf("Unanswered = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAttemptsBeginLate: until the manager's runnable begins the memory, the
// first question begins it; a later Begin only moves it forward (searching
// more, never less).
func TestAttemptsBeginLate(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(start)
	a := NewAttempts(clk)
	sr := &SigningRequest{UID: "u", Created: start.Add(-time.Minute)}
	if at, _, ok := a.Unanswered(sr); !ok || !at.Equal(start) {
		t.Fatalf("first question: at %v ok %v, want %v true", at, ok, start)
	}
	clk.SetTime(start.Add(time.Minute))
	a.Begin()
	if at, _, ok := a.Unanswered(sr); !ok || !at.Equal(start.Add(time.Minute)) {
		t.Errorf("after Begin: at %v ok %v, want %v true", at, ok, start.Add(time.Minute))
	}
	clk.SetTime(start)
	a.Begin()
	if at, _, _ := a.Unanswered(sr); !at.Equal(start.Add(time.Minute)) {
		t.Errorf("Begin moved the start back to %v", at)
	}
}
