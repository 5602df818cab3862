package leadership

import (
	"context"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// countingSink counts the writes that reach it.
type countingSink struct{ creates, updates, patches int }

func (c *countingSink) Create(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	c.creates++
	return e, nil
}
func (c *countingSink) Update(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	c.updates++
	return e, nil
}
func (c *countingSink) Patch(_ context.Context, e *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	c.patches++
	return e, nil
}

// An event queued while the lease held and sent after it lapsed (a leader
// frozen between the two) never reaches the API server.
func TestHolderOnlySinkWithholdsAfterTheLeaseLapsed(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	l := New(clock, 5*time.Second)
	w := l.Watch(&fakeLock{})
	if err := w.Create(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
		t.Fatal(err)
	}
	inner := &countingSink{}
	sink := HolderOnly(inner, l)
	ctx, e := context.Background(), &eventsv1.Event{Reason: "Issued"}
	if _, err := sink.Create(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Patch(ctx, e, nil); err != nil {
		t.Fatal(err)
	}
	if inner.creates != 1 || inner.patches != 1 {
		t.Fatalf("while held: %d creates, %d patches reached the API server, want 1 and 1", inner.creates, inner.patches)
	}
	clock.SetTime(clock.Now().Add(6 * time.Second)) // frozen past the trust
	for _, send := range []func() (*eventsv1.Event, error){
		func() (*eventsv1.Event, error) { return sink.Create(ctx, e) },
		func() (*eventsv1.Event, error) { return sink.Update(ctx, e) },
		func() (*eventsv1.Event, error) { return sink.Patch(ctx, e, nil) },
	} {
		got, err := send()
		if err != nil || got != e {
			t.Fatalf("a withheld event must look sent to the broadcaster (no retry, no error log): got %v, %v", got, err)
		}
	}
	if inner.creates != 1 || inner.updates != 0 || inner.patches != 1 {
		t.Fatalf("after the lease lapsed: %d creates, %d updates, %d patches reached the API server, want 1, 0, 1", inner.creates, inner.updates, inner.patches)
	}
	if HolderOnly(inner, nil) != inner {
		t.Fatal("without leader election the sink must be used as it is")
	}
}
