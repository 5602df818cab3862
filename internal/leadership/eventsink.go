package leadership

import (
	"context"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
)

// holderSink sends events only while the lease holds. Events are recorded
// into a queue and sent by the broadcaster's goroutine later: a check when
// an event is recorded leaves a leader frozen with events still queued to
// send them when it wakes, after a standby took over and may be telling
// the same story otherwise. This check runs right before each write.
type holderSink struct {
	events.EventSink
	lease *Lease
}

// HolderOnly wraps sink so that nothing is sent while lease does not hold
// (nil lease: always sent). A withheld event is dropped, not retried: by
// the time this process leads again its state has been re-read and what it
// still has to say is said anew.
func HolderOnly(sink events.EventSink, lease *Lease) events.EventSink {
	if lease == nil {
		return sink
	}
	return holderSink{EventSink: sink, lease: lease}
}

func (s holderSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	if !s.lease.Holds() {
		return withheld(ctx, e), nil
	}
	return s.EventSink.Create(ctx, e)
}

func (s holderSink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	if !s.lease.Holds() {
		return withheld(ctx, e), nil
	}
	return s.EventSink.Update(ctx, e)
}

func (s holderSink) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	if !s.lease.Holds() {
		return withheld(ctx, e), nil
	}
	return s.EventSink.Patch(ctx, e, data)
}

// withheld answers the broadcaster as if the event was sent, so that it
// neither retries nor logs an error, and notes the drop at debug level.
func withheld(ctx context.Context, e *eventsv1.Event) *eventsv1.Event {
	klog.FromContext(ctx).V(1).Info("event not sent: this process no longer holds its lease", "reason", e.Reason, "regarding", e.Regarding.Name)
	return e
}
