package testkit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Object is what an event is found on: a namespaced or cluster-scoped
// object's identity.
type Object interface {
	GetNamespace() string
	GetName() string
}

// EventMatch says which event to wait for; an empty field matches any.
type EventMatch struct {
	// Type is Normal or Warning.
	Type string
	// Reason is the event's reason.
	Reason string
	// Message is a part of the event's message (its note).
	Message string
}

func (m EventMatch) matches(e corev1.Event) bool {
	return (m.Type == "" || e.Type == m.Type) && (m.Reason == "" || e.Reason == m.Reason) &&
		strings.Contains(e.Message, m.Message)
}

func (m EventMatch) String() string {
	var parts []string
	for _, p := range []string{m.Type, m.Reason} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, " ") + " event"
	if m.Message != "" {
		s += fmt.Sprintf(" containing %q", m.Message)
	}
	return s
}

// Events lists the events recorded on obj (through either events API: the
// core/v1 view serves both), oldest first as the API server lists them. A
// cluster-scoped object's events are looked for in every namespace.
func Events(ctx context.Context, c client.Reader, obj Object) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name != obj.GetName() {
			continue
		}
		if obj.GetNamespace() != "" && e.InvolvedObject.Namespace != obj.GetNamespace() {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// EventsOf is Events failing the test on a read error.
func EventsOf(t testing.TB, c client.Reader, obj Object) []corev1.Event {
	t.Helper()
	evs, err := Events(context.Background(), c, obj)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Reasons are the events' reasons, in order.
func Reasons(evs []corev1.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}

// WaitEvent waits up to timeout for an event on obj that matches m and
// returns it; the test fails with the events seen on obj if none comes.
// Events are recorded asynchronously, after the status they tell of.
func WaitEvent(t testing.TB, c client.Reader, obj Object, m EventMatch, timeout time.Duration) corev1.Event {
	t.Helper()
	var found corev1.Event
	Eventually(t, timeout, func() string {
		evs, err := Events(context.Background(), c, obj)
		if err != nil {
			return err.Error()
		}
		seen := make([]string, 0, len(evs))
		for _, e := range evs {
			if m.matches(e) {
				found = e
				return ""
			}
			seen = append(seen, e.Type+"/"+e.Reason+": "+e.Message)
		}
		return fmt.Sprintf("no %s on %s; seen: %s", m, describe(obj), strings.Join(seen, " | "))
	})
	return found
}

func describe(obj Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
