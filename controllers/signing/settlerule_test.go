package signing

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// TestInheritedSettleRule: which requests a process that begins signing
// searches for, and from when an empty search proves nothing was issued,
// from what the Lease told of its predecessor. A first start and a clean
// handover search for nothing and wait for nothing; after a crash the wait
// counts from the predecessor's last possible call (its last renewal plus
// the half lease it trusts), not from this process's start.
func TestInheritedSettleRule(t *testing.T) {
	began := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	settle := SettleTime(30 * time.Second) // 70s
	lost := func(renewedBefore, lease time.Duration) leadership.Predecessor {
		return leadership.Predecessor{Kind: leadership.PredecessorLost, Holder: "old", Renewed: began.Add(-renewedBefore), Duration: lease}
	}
	for _, tc := range []struct {
		name string
		p    leadership.Predecessor
		// after is when, after began, an empty search is run.
		after      time.Duration
		wantSearch bool
		wantProven bool
		wantAgain  time.Time
	}{
		{"first start: the Lease did not exist", leadership.Predecessor{Kind: leadership.PredecessorNone}, 0, false, true, time.Time{}},
		{"clean handover: nothing in flight", leadership.Predecessor{Kind: leadership.PredecessorHandedOver, Holder: "old"}, 0, false, true, time.Time{}},
		{"crash 15s ago with a 15s lease: wait from its last renewal plus 7.5s",
			lost(15*time.Second, 15*time.Second), time.Second, true, false, began.Add(-15*time.Second + 7500*time.Millisecond + settle)},
		{"crash: searched after the predecessor's calls settled, absence proven",
			lost(15*time.Second, 15*time.Second), settle - 7*time.Second, true, true, time.Time{}},
		{"crash long ago (the Lease stayed unheld an hour): one search, no wait",
			lost(time.Hour, 15*time.Second), 0, true, true, time.Time{}},
		{"a renewal stamped after this process began (skewed clock): never later than began",
			lost(-time.Minute, 15*time.Second), time.Second, true, false, began.Add(settle)},
		{"released without a handover record (no lease duration): from the release",
			leadership.Predecessor{Kind: leadership.PredecessorLost, Renewed: began.Add(-2 * time.Second)}, time.Second, true, false, began.Add(-2*time.Second + settle)},
		{"a previous holder with no renewal time on the Lease: from this start",
			leadership.Predecessor{Kind: leadership.PredecessorLost, Holder: "old", Duration: 15 * time.Second}, time.Second, true, false, began.Add(settle)},
		{"no leader election: any process may have sent until this one began",
			leadership.Predecessor{}, time.Second, true, false, began.Add(settle)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(began)
			inh := InheritanceFrom(tc.p, clk.Now())
			if inh.Search != tc.wantSearch {
				t.Fatalf("Search = %v, want %v", inh.Search, tc.wantSearch)
			}
			if !inh.Search {
				return
			}
			clk.Step(tc.after)
			proven, again := absenceProven(inh.LastCall, clk.Now(), settle)
			if proven != tc.wantProven || !again.Equal(tc.wantAgain) {
				t.Errorf("absenceProven(%s) at began+%s = %v, %s; want %v, %s", inh.LastCall, tc.after, proven, again, tc.wantProven, tc.wantAgain)
			}
		})
	}
}

// TestStillIssuingSaysWhatIsKnown: an inherited request's message says a
// previous manager may have sent it at the latest at a time, never that an
// enrolment was sent.
func TestStillIssuingSaysWhatIsKnown(t *testing.T) {
	at, again := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 12, 1, 10, 0, time.UTC)
	inherited := (&StillIssuingError{Attempted: at, LookAgain: again, Inherited: true}).Error()
	if want := "a previous manager may have sent an enrolment for this request at the latest at 2026-12-07T12:00:00Z"; !strings.Contains(inherited, want) || strings.Contains(inherited, "enrolment sent at") {
		t.Errorf("inherited: %q, want it to say %q and not that one was sent", inherited, want)
	}
	own := (&StillIssuingError{Attempted: at, LookAgain: again}).Error()
	if !strings.Contains(own, "the enrolment sent at 2026-12-07T12:00:00Z") {
		t.Errorf("own attempt: %q", own)
	}
}
