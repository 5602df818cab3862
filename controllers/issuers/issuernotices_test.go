package issuers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// The issuer's notices are reported at once the first time, then at most
// once per NoticeInterval per cause with the count since the last report;
// an issuer's tally is its own, and a deleted issuer's is dropped.
func TestIssuerNoticesReportOncePerHourWithACount(t *testing.T) {
	a := types.NamespacedName{Namespace: "team-a", Name: "ejbca"}
	b := types.NamespacedName{Namespace: "team-b", Name: "ejbca"}
	validity := signing.IssuerNotice{Type: "Normal", Reason: signing.NoticeValidityFromProfile, Message: "one year"}
	usage := signing.IssuerNotice{Type: "Normal", Reason: signing.NoticeUsageNotForKey, Message: "no key encipherment"}
	var n issuerNotices
	type step struct {
		at      time.Duration // after t0
		add     []signing.IssuerNotice
		issuer  types.NamespacedName
		wake    []bool // of each add
		reports []string
		counts  []int
		next    time.Duration // -1: none pending
	}
	for i, s := range []step{
		{at: 0, add: []signing.IssuerNotice{validity, usage}, issuer: a, wake: []bool{true, true},
			reports: []string{signing.NoticeUsageNotForKey, signing.NoticeValidityFromProfile}, counts: []int{1, 1}, next: -1},
		{at: time.Second, add: []signing.IssuerNotice{validity, validity, validity}, issuer: a, wake: []bool{true, false, false}, next: NoticeInterval},
		{at: 30 * time.Minute, add: []signing.IssuerNotice{validity}, issuer: a, wake: []bool{false}, next: NoticeInterval},
		{at: 30 * time.Minute, add: []signing.IssuerNotice{validity}, issuer: b, wake: []bool{true}, reports: []string{signing.NoticeValidityFromProfile}, counts: []int{1}, next: -1},
		{at: NoticeInterval - time.Nanosecond, issuer: a, next: NoticeInterval},
		{at: NoticeInterval, issuer: a, reports: []string{signing.NoticeValidityFromProfile}, counts: []int{4}, next: -1},
		{at: NoticeInterval + time.Minute, issuer: a, next: -1},
		{at: 3 * NoticeInterval, add: []signing.IssuerNotice{usage}, issuer: a, wake: []bool{true}, reports: []string{signing.NoticeUsageNotForKey}, counts: []int{1}, next: -1},
	} {
		now := t0.Add(s.at)
		for j, x := range s.add {
			if got := n.add(s.issuer, x, now); got != s.wake[j] {
				t.Errorf("step %d: add %d woke %v, want %v", i, j, got, s.wake[j])
			}
		}
		due, next := n.take(s.issuer, now)
		var reasons []string
		for j, r := range due {
			reasons = append(reasons, r.Reason)
			if r.Count != s.counts[j] {
				t.Errorf("step %d: %s count %d, want %d", i, r.Reason, r.Count, s.counts[j])
			}
		}
		if len(reasons) != len(s.reports) || (len(reasons) > 0 && reasons[0] != s.reports[0]) || (len(reasons) > 1 && reasons[1] != s.reports[1]) {
			t.Errorf("step %d: reports %v, want %v", i, reasons, s.reports)
		}
		wantNext := time.Time{}
		if s.next >= 0 {
			wantNext = t0.Add(s.next)
		}
		if !next.Equal(wantNext) {
			t.Errorf("step %d: next %s, want %s", i, next, wantNext)
		}
	}
	n.forget(a)
	if !n.add(a, validity, t0.Add(4*NoticeInterval)) {
		t.Error("a forgotten issuer's first notice did not wake")
	}
	if due, _ := n.take(a, t0.Add(4*NoticeInterval)); len(due) != 1 || due[0].Count != 1 {
		t.Errorf("after forget: %+v, want one report of one", due)
	}
}

func TestNoticeNoteSaysTheCountAndSince(t *testing.T) {
	r := noticeReport{IssuerNotice: signing.IssuerNotice{Message: "certificates are valid for 8760h0m0s"}, Count: 42, Since: t0}
	if got, want := r.Note(), "42 certificate(s) issued through this issuer since 2026-11-27T12:00:00Z: certificates are valid for 8760h0m0s"; got != want {
		t.Errorf("note %q, want %q", got, want)
	}
}
