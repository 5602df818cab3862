// Package eventrecord records the controllers' events through the
// events.k8s.io API: notes cut to what the API takes, and a recorder that
// stays silent while this process does not lead.
package eventrecord

import (
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// The actions of our events (events.k8s.io requires one): what the
// manager was doing when the event happened.
const (
	ActionSigning        = "Sign"
	ActionCheckingIssuer = "CheckIssuer"
	ActionRevoking       = "Revoke"
)

// noteLimit is the events.k8s.io API's limit on an event's note; a longer
// one is refused, and the event lost.
const noteLimit = 1024

// Record records an event through the events.k8s.io API, its note cut
// to what the API takes. regarding is the object the event is about,
// related another one it concerns (or nil).
func Record(rec events.EventRecorder, regarding, related runtime.Object, eventType, reason, action, note string) {
	if rec == nil {
		return
	}
	rec.Eventf(regarding, related, eventType, reason, action, "%s", cutNote(note))
}

// cutNote shortens note to noteLimit bytes at a rune boundary, ending in
// "…" when it was cut.
func cutNote(note string) string {
	if len(note) <= noteLimit {
		return note
	}
	const ellipsis = "…"
	n := noteLimit - len(ellipsis)
	for n > 0 && !utf8.RuneStart(note[n]) {
		n--
	}
	return note[:n] + ellipsis
}

// leaderOnly is an event recorder that drops every event while this process
// does not hold its lease, checked as each event is recorded: a leader
// frozen past its lease and woken with an answer in hand must not tell a
// story the new leader is already telling otherwise.
type leaderOnly struct {
	events.EventRecorder
	lease *leadership.Lease
}

// LeaderOnly wraps rec so that it records only while lease holds (always,
// without leader election).
func LeaderOnly(rec events.EventRecorder, lease *leadership.Lease) events.EventRecorder {
	if lease == nil || rec == nil {
		return rec
	}
	return leaderOnly{EventRecorder: rec, lease: lease}
}

func (l leaderOnly) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
	if !l.lease.Holds() {
		return
	}
	l.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}
