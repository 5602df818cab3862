package controllers

import (
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
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

// recordEvent records an event through the events.k8s.io API, its note cut
// to what the API takes. regarding is the object the event is about,
// related another one it concerns (or nil).
func recordEvent(rec events.EventRecorder, regarding, related runtime.Object, eventType, reason, action, note string) {
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
