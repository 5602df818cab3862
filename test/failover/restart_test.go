package failover

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRollingRestartHandsOver: a leader stopped as a rolling update stops
// it (SIGTERM) while requests it never sent are pending hands its lease
// over, saying on the Lease that nothing was in flight; the next leader
// inherits nothing, so it enrols them at once: no recovery search, no wait
// for the settle time, no message claiming an enrolment may be in flight.
func TestRollingRestartHandsOver(t *testing.T) {
	t.Parallel()
	// A clean handover needs a leader with nothing in flight: TestSlowEJBCA's
	// requests (EJBCA B, slower than the managers' timeout) must be done
	// too, not only EJBCA A's (waitLeader's quiet). Waited for before the
	// turn, so the failover rounds go on meanwhile, and again with it (the
	// slow test may create its requests only once it holds the turn).
	settled := func() error {
		return testkit.Poll(2*settleTime+120*time.Second, func() string { return pendingFor(issuerB) })
	}
	if err := settled(); err != nil {
		t.Fatal(err)
	}
	turn.Lock()
	defer turn.Unlock()
	if err := settled(); err != nil {
		t.Fatal(err)
	}
	old, err := waitLeader(true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var approved time.Time
	var next *proc
	crs := newRequests(t, issuerA, "rr", n, func() {
		// Pending (not yet approved) as the leader stops: it sent nothing
		// for them.
		if err := old.signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-old.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop within 30s of SIGTERM", old)
		}
		if err := testkit.Poll(30*time.Second, func() string {
			pid, at := suite.api.leader()
			if pid == 0 || pid == old.pid || time.Since(at) > 2*retryPeriod {
				return "no new leader renewing"
			}
			next = suite.pool.byPID(pid)
			return ""
		}); err != nil {
			t.Fatal(err)
		}
		approved = time.Now()
	})
	if err := waitIssued(crs, 2*settleTime+60*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(approved)
	for _, p := range checkOnce(suite.simA, crs) {
		t.Error(p)
	}
	if !logged(old, "handed the lease over with no EJBCA call in flight") {
		t.Errorf("%s did not hand the lease over", old)
	}
	if !logged(next, "nothing to search for") || logged(next, "may have left enrolments in flight") {
		t.Errorf("%s did not begin as after a clean handover", next)
	}
	if lines := grep(next, "recovered a certificate", "rr-"); len(lines) > 0 {
		t.Errorf("the new leader searched for requests nobody had sent: %v", lines)
	}
	if notes := stillIssuingEvents("rr-"); len(notes) > 0 {
		t.Errorf("events claim an enrolment may be in flight: %v", notes)
	}
	t.Logf("%d requests pending across a rolling restart issued %s after approval (settle time %s)", n, took.Round(time.Millisecond), settleTime)
}

func logged(p *proc, msg string) bool { return len(grep(p, msg, "")) > 0 }

// grep lists p's log lines that hold every non-empty needle.
func grep(p *proc, needles ...string) []string {
	var out []string
	for _, l := range p.logFrom(0) {
		ok := true
		for _, nd := range needles {
			if nd != "" && !strings.Contains(l, nd) {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// stillIssuingEvents lists the events on requests named prefix* that say an
// enrolment may still be in flight.
func stillIssuingEvents(prefix string) []string {
	var list eventsv1.EventList
	if err := suite.k8s.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range list.Items {
		if strings.HasPrefix(e.Regarding.Name, prefix) && (strings.Contains(e.Note, "may still be issuing") || strings.Contains(e.Note, "previous manager")) {
			out = append(out, fmt.Sprintf("%s: %s", e.Regarding.Name, e.Note))
		}
	}
	return out
}
