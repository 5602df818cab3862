package signing

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

func TestAttempts(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	request := func(uid string, created time.Time) *SigningRequest {
		return &SigningRequest{UID: types.UID(uid), Namespace: "ns", Name: uid, Created: created}
	}
	// "old" and "old-*" existed when this process began; the inventory
	// says so, whatever their creation times claim.
	inventory := func(context.Context) ([]Existing, error) {
		var out []Existing
		for _, uid := range []string{"old", "old-sent", "old-settled", "old-late-clock", "old-deleted"} {
			out = append(out, Existing{UID: types.UID(uid), Namespace: "ns", Name: uid})
		}
		return out, nil
	}
	type want struct {
		ok             bool
		at, searchFrom time.Time
	}
	for _, tc := range []struct {
		name string
		// steps run on a memory begun at start, with the clock at start+1m.
		steps func(a *Attempts, sr *SigningRequest)
		sr    *SigningRequest
		want  want
	}{
		{"a request that did not exist when this process began: nothing sent, nothing to search",
			nil, request("new", start.Add(-time.Minute)), want{}},
		{"a request that existed: its predecessor may have sent it up to the start; search from its creation",
			nil, request("old", start.Add(-time.Hour)), want{true, start, start.Add(-time.Hour)}},
		{"an existing request whose creation time is after the start (API server clock ahead): still inherited",
			nil, request("old-late-clock", start.Add(3*time.Second)), want{true, start, start.Add(3 * time.Second)}},
		{"sent by this process and unanswered: search from the sending",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)) },
			request("sent", start.Add(10*time.Second)), want{true, start.Add(30 * time.Second), start.Add(30 * time.Second)}},
		{"an inherited request, sent again by this process: the later sending counts",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(40*time.Second)) },
			request("old-sent", start.Add(-time.Hour)), want{true, start.Add(40 * time.Second), start.Add(40 * time.Second)}},
		{"settled (EJBCA answered it did not issue): no search",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)); a.Settled(sr) },
			request("answered", start.Add(10*time.Second)), want{}},
		{"an inherited request settled by an empty search after the settle time: no second search",
			func(a *Attempts, sr *SigningRequest) { a.Settled(sr) },
			request("old-settled", start.Add(-time.Hour)), want{}},
		{"done: forgotten",
			func(a *Attempts, sr *SigningRequest) { a.Sent(sr, start.Add(30*time.Second)); a.Done(sr.UID) },
			request("done", start.Add(10*time.Second)), want{}},
		{"an inherited request deleted, then a new one of the same name",
			func(a *Attempts, sr *SigningRequest) {
				a.Deleted("ns", "old-deleted")
				if a.Len() != 4 {
					t.Errorf("%d entries after deleting one of 5 inherited", a.Len())
				}
			},
			&SigningRequest{UID: "new-uid", Namespace: "ns", Name: "old-deleted", Created: start.Add(50 * time.Second)}, want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(start)
			a := NewAttempts(clk, inventory)
			if err := a.Begin(context.Background()); err != nil {
				t.Fatal(err)
			}
			clk.SetTime(start.Add(time.Minute))
			if tc.steps != nil {
				tc.steps(a, tc.sr)
			}
			u, ok, err := a.Unanswered(context.Background(), tc.sr)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{ok, u.At, u.SearchFrom}); got != tc.want {
				t.Errorf("Unanswered = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAttemptsWaitForTheInventory: until the inventory is taken, the signer
// waits (a failed inventory keeps it waiting, never guessing), and a second
// Begin changes nothing.
func TestAttemptsWaitForTheInventory(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	fail := true
	a := NewAttempts(clk, func(context.Context) ([]Existing, error) {
		if fail {
			return nil, errors.New("forbidden")
		}
		return []Existing{{UID: "old"}}, nil
	})
	sr := &SigningRequest{UID: "old", Created: start.Add(-time.Minute)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := a.Unanswered(ctx, sr); err == nil {
		t.Fatal("answered before the inventory was taken")
	}
	if err := a.Begin(context.Background()); err == nil {
		t.Fatal("a failed inventory began the memory")
	}
	if _, _, err := a.Unanswered(ctx, sr); err == nil {
		t.Fatal("answered after a failed inventory")
	}
	fail = false
	if err := a.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u, ok, err := a.Unanswered(context.Background(), sr); err != nil || !ok || !u.At.Equal(start) {
		t.Fatalf("after the inventory: at %v ok %v err %v, want %v true", u.At, ok, err, start)
	}
	a.Settled(sr)
	clk.SetTime(start.Add(time.Hour))
	if err := a.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Unanswered(context.Background(), sr); ok {
		t.Error("a second Begin made a settled request unanswered again")
	}
}

// TestAttemptsHoldTheIssuedCertificate: a certificate EJBCA gave is kept
// until the request is done, so a failed status write is retried without
// asking EJBCA (neither enrolling nor searching) again.
func TestAttemptsHoldTheIssuedCertificate(t *testing.T) {
	a := NewAttempts(clocktesting.NewFakeClock(time.Now()), func(context.Context) ([]Existing, error) { return nil, nil })
	if err := a.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	sr := &SigningRequest{UID: "u", Namespace: "ns", Name: "n"}
	a.Sent(sr, time.Now())
	cert := &ejbca.Certificate{}
	a.Issued(sr, cert)
	if got := a.Held(sr); got != cert {
		t.Fatalf("Held = %v, want the issued certificate", got)
	}
	if _, ok, _ := a.Unanswered(context.Background(), sr); ok {
		t.Error("an answered enrolment counts as unanswered")
	}
	a.Done(sr.UID)
	if a.Held(sr) != nil || a.Len() != 0 {
		t.Error("the certificate is kept after the request is done")
	}
}

// TestAttemptsForgetRequestsFoundFinalBeforeTheInventory: a request the
// reconciler found final before the inventory was taken (its last
// reconcile) is not added back by the inventory, which lists final ones
// too; the others are, until found final.
func TestAttemptsForgetRequestsFoundFinalBeforeTheInventory(t *testing.T) {
	a := NewAttempts(clocktesting.NewFakeClock(time.Now()), func(context.Context) ([]Existing, error) {
		return []Existing{{UID: "final", Namespace: "ns", Name: "final"}, {UID: "pending", Namespace: "ns", Name: "pending"}}, nil
	})
	a.Done("final") // reconciled (final) while the inventory was being taken
	if a.Taken() {
		t.Fatal("Taken before Begin")
	}
	if err := a.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !a.Taken() {
		t.Fatal("not Taken after Begin")
	}
	if got := a.Len(); got != 1 {
		t.Fatalf("the memory holds %d requests after the inventory, want 1 (only the unfinished one)", got)
	}
	a.Done("pending")
	if got := a.Len(); got != 0 {
		t.Fatalf("the memory holds %d requests after both were found final, want 0", got)
	}
	a.Done("later") // after the inventory, Done keeps nothing
	if a.doneEarly != nil {
		t.Error("requests found final are still remembered after the inventory")
	}
}
