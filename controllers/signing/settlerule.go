package signing

import (
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// A "no answer" from EJBCA does not mean "not issued", and "not found yet"
// does not mean "will never be issued": EJBCA may still be working on a call
// whose client gave up (a loaded HSM, a database lock). The rule: an empty
// recovery search proves that an attempt issued nothing only once the
// attempt is older than the settle time; an empty search before that leads
// to another search at the settle time, never to an enrolment. The cost is
// latency on the rare no-answer path only.

// SettleTime is how long after an attempt began EJBCA may still finish it:
// the client's own timeout, the same again for EJBCA's processing past it,
// and 10 s for clocks and queues.
func SettleTime(ejbcaTimeout time.Duration) time.Duration {
	return 2*ejbcaTimeout + 10*time.Second
}

// absenceProven reports whether an empty search at now proves that the
// attempt begun at attempted issued nothing; if not, lookAgain is when it
// will.
func absenceProven(attempted, now time.Time, settle time.Duration) (proven bool, lookAgain time.Time) {
	settled := attempted.Add(settle)
	if now.Before(settled) {
		return false, settled
	}
	return true, time.Time{}
}

// Inheritance is what a process that begins signing assumes of the
// requests that exist at that moment: whether its predecessor may have sent
// them, and at the latest when.
type Inheritance struct {
	// Search: a predecessor may have sent them and lost the answer; each is
	// searched for once before it is enrolled.
	Search bool
	// LastCall is the latest time the predecessor may have begun an
	// enrolment: an empty search proves nothing was issued once the settle
	// time has passed from it (absenceProven).
	LastCall time.Time
}

// InheritanceFrom is the settle rule for inherited requests, from what the
// leader election Lease told of the predecessor when this process took it
// at began. No predecessor (the Lease did not exist) or a clean handover
// (it drained its calls and said so): nothing may be in flight, so nothing
// is searched for and nothing waits. A predecessor lost mid-work (killed,
// frozen, stopped with calls unanswered): its calls began at the latest
// half its lease after its last renewal, since a leader calls EJBCA only
// while it trusts its lease, never later than this process began. Unknown
// (no leader election): any process may have sent any request until this
// one began.
func InheritanceFrom(p leadership.Predecessor, began time.Time) Inheritance {
	switch p.Kind {
	case leadership.PredecessorNone, leadership.PredecessorHandedOver:
		return Inheritance{}
	case leadership.PredecessorLost:
		last := p.LastCall()
		if p.Renewed.IsZero() || last.After(began) {
			last = began
		}
		return Inheritance{Search: true, LastCall: last}
	}
	return Inheritance{Search: true, LastCall: began}
}
