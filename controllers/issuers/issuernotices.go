package issuers

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// NoticeInterval is the least time between two reports of one cause on one
// issuer: a profile that gives a year when cert-manager asks for 90 days
// makes one event an hour on the issuer, not one per certificate.
const NoticeInterval = time.Hour

// noticeReport is one event due on an issuer: Count requests since Since.
type noticeReport struct {
	signing.IssuerNotice
	Count int
	Since time.Time
}

// Note is the event's note: the count, and the latest request's example.
func (n noticeReport) Note() string {
	return fmt.Sprintf("%d certificate(s) issued through this issuer since %s: %s",
		n.Count, n.Since.UTC().Format(time.RFC3339), n.Message)
}

// issuerNotices tallies the notices of each issuer and cause between
// reports. Its memory is one entry per issuer and cause, dropped with the
// issuer.
type issuerNotices struct {
	mu sync.Mutex
	m  map[noticeKey]*noticeTally
}

type noticeKey struct {
	issuer types.NamespacedName
	reason string
}

type noticeTally struct {
	latest   signing.IssuerNotice
	pending  int
	since    time.Time // the first pending one
	reported time.Time // the last report; zero: never
}

// noticeDue is when a cause last reported at `reported` (zero: never) may be
// reported again.
func noticeDue(reported time.Time) time.Time {
	if reported.IsZero() {
		return reported
	}
	return reported.Add(NoticeInterval)
}

// add counts one request's notice. wake says the issuer controller should
// look at the issuer: the tally was empty, so no report or requeue for it is
// on its way yet.
func (n *issuerNotices) add(issuer types.NamespacedName, notice signing.IssuerNotice, now time.Time) (wake bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[noticeKey]*noticeTally{}
	}
	k := noticeKey{issuer, notice.Reason}
	t := n.m[k]
	if t == nil {
		t = &noticeTally{}
		n.m[k] = t
	}
	t.latest = notice
	if t.pending == 0 {
		t.since = now
	}
	t.pending++
	return t.pending == 1
}

// take returns the reports due on issuer at now (in reason order), and when
// the next pending one falls due (zero when none is pending).
func (n *issuerNotices) take(issuer types.NamespacedName, now time.Time) (due []noticeReport, next time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, t := range n.m {
		if k.issuer != issuer || t.pending == 0 {
			continue
		}
		if at := noticeDue(t.reported); now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		due = append(due, noticeReport{IssuerNotice: t.latest, Count: t.pending, Since: t.since})
		t.pending, t.reported = 0, now
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Reason < due[j].Reason })
	return due, next
}

// forget drops a deleted issuer's tallies.
func (n *issuerNotices) forget(issuer types.NamespacedName) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.m {
		if k.issuer == issuer {
			delete(n.m, k)
		}
	}
}
