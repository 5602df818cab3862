package ejbca_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// twoNodes is a simulator running as two nodes over one state, and a
// client whose nodes are [a, b].
func twoNodes(t *testing.T, timeout time.Duration) (*ejbcasim.Sim, *ejbcasim.Node, *ejbcasim.Node, *ejbca.Client) {
	t.Helper()
	sim := startSim(t, ejbcasim.Config{})
	a, err := sim.StartNode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.StartNode()
	if err != nil {
		t.Fatal(err)
	}
	o := options(t, sim, modeMTLS)
	o.URL, o.URLs = a.URL(), []string{b.URL()}
	if timeout > 0 {
		o.Timeout = timeout
	}
	return sim, a, b, newClient(t, o)
}

// TestNodeDownMovesTheCallToTheNext: an enrolment whose first node refuses
// the connection is sent to the second within the same call; the first is
// then set aside (later calls go straight to the second) and named as not
// usable; exactly one certificate was issued per enrolment.
func TestNodeDownMovesTheCallToTheNext(t *testing.T) {
	t.Parallel()
	sim, a, b, c := twoNodes(t, 0)
	ctx := ctxFor(t)
	a.SetDown(true)
	for i, name := range []string{"down-1", "down-2", "down-3"} {
		csr, key := simpleCSR(t, name+".example.com")
		cert, err := c.Enroll(ctx, enrolment(csr, name))
		if err != nil {
			t.Fatalf("enrolment %d with node A down: %v", i, err)
		}
		checkIssued(t, sim, cert, key)
	}
	if got := sim.Counters().Enrollments; got != 3 {
		t.Errorf("%d certificates issued for 3 enrolments", got)
	}
	if n := b.Calls("/pkcs10enroll"); n != 3 {
		t.Errorf("node B served %d enrolments, want 3", n)
	}
	st := c.Nodes()
	if len(st) != 2 || st[0].Usable || !st[1].Usable || st[0].URL != a.URL() || st[0].Reason == "" {
		t.Errorf("node states = %+v, want A not usable with a reason, B usable", st)
	}

	// A back: a read-only call probes it once its retry time has come
	// (DefaultNodeRetry of the real clock is a minute, so this client
	// keeps sending to B meanwhile).
	a.SetDown(false)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if n := a.Calls(""); n != 0 {
		t.Errorf("node A, set aside a moment ago, got %d calls, want none before its retry time", n)
	}
}

// TestNodeReturns: a node set aside is tried first again by a read-only
// call once its retry time has come, and takes the traffic back once it
// answers.
func TestNodeReturns(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	a, _ := sim.StartNode()
	b, _ := sim.StartNode()
	clock := testingclock.NewFakePassiveClock(time.Now())
	o := options(t, sim, modeMTLS)
	o.URL, o.URLs, o.Clock, o.NodeRetry = a.URL(), []string{b.URL()}, clock, time.Minute
	c := newClient(t, o)
	ctx := ctxFor(t)

	a.SetDown(true)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	a.SetDown(false)
	clock.SetTime(clock.Now().Add(time.Minute))
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Calls("/v1/ca") != 1 || !c.Nodes()[0].Usable {
		t.Fatalf("after the retry time: node A got %d CA list calls, state %+v; want the probe to find it back", a.Calls("/v1/ca"), c.Nodes()[0])
	}
	csr, _ := simpleCSR(t, "back.example.com")
	if _, err := c.Enroll(ctx, enrolment(csr, "back")); err != nil {
		t.Fatal(err)
	}
	if a.Calls("/pkcs10enroll") != 1 || b.Calls("/pkcs10enroll") != 0 {
		t.Errorf("enrolment after A's return: A %d, B %d; want it on A, the first node", a.Calls("/pkcs10enroll"), b.Calls("/pkcs10enroll"))
	}
}

// TestEnrolmentWithoutAnswerIsNotSentToAnotherNode: node A takes an
// enrolment and hangs; the call ends with an error that sends the caller
// to the recovery search (MayHaveIssued), node B never sees the
// enrolment; the search goes through B (A set aside) and answers.
func TestEnrolmentWithoutAnswerIsNotSentToAnotherNode(t *testing.T) {
	t.Parallel()
	sim, a, b, c := twoNodes(t, 3*time.Second)
	ctx := ctxFor(t)
	a.SetFrozen(true)
	csr, _ := simpleCSR(t, "frozen.example.com")
	_, err := c.Enroll(ctx, enrolment(csr, "frozen"))
	if err == nil || !ejbca.MayHaveIssued(err) {
		t.Fatalf("enrolment on a frozen node = %v, want an error that may have issued", err)
	}
	if e := asError(t, err); e.Node != a.URL() {
		t.Errorf("the error names node %q, want %q", e.Node, a.URL())
	}
	if !c.OtherNodeUsable(err) {
		t.Error("OtherNodeUsable = false with node B untouched: the issuer's other requests would wait for nothing")
	}
	if n := b.Calls("/pkcs10enroll"); n != 0 {
		t.Fatalf("node B got the enrolment %d times after node A gave no answer, want never", n)
	}
	if found, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "frozen", CAName: issuingCA, CSR: csr}); found != nil || err != nil {
		t.Errorf("search through the other node = %v, %v; want nothing found", found, err)
	}
	if b.Calls("/search") == 0 {
		t.Error("the search did not go through node B")
	}
	a.SetFrozen(false)
	if got := sim.Counters().Enrollments; got != 0 {
		t.Errorf("%d certificates issued, want none (the hung node dropped the call)", got)
	}
}

// TestSearchMovesAfterNoAnswer: a read-only call that got no answer from
// node A is sent to node B within the same call.
func TestSearchMovesAfterNoAnswer(t *testing.T) {
	t.Parallel()
	_, a, b, c := twoNodes(t, 2*time.Second)
	ctx := ctxFor(t)
	a.SetFrozen(true)
	defer a.SetFrozen(false)
	cas, err := c.ListCAs(ctx)
	if err != nil || len(cas) == 0 {
		t.Fatalf("CA list with node A hung = %v, %v", cas, err)
	}
	if b.Calls("/v1/ca") != 1 {
		t.Errorf("node B got %d CA list calls, want 1", b.Calls("/v1/ca"))
	}
}

// TestApprovalIDPolledThroughAnotherNode: an approval request made through
// node A is polled and enrolled through node B (one database).
func TestApprovalIDPolledThroughAnotherNode(t *testing.T) {
	t.Parallel()
	sim, a, b, c := twoNodes(t, 0)
	ctx := ctxFor(t)
	add, err := c.AddEndEntity(ctx, approvalEndEntity("polled"))
	if err != nil || !add.WaitingForApproval || add.RequestID == 0 {
		t.Fatalf("AddEndEntity = %+v, %v", add, err)
	}
	if a.Calls("/v1/endentity") != 1 {
		t.Fatalf("the addition went to node A %d times, want 1", a.Calls("/v1/endentity"))
	}
	if err := sim.Approve(add.RequestID); err != nil {
		t.Fatal(err)
	}
	a.SetDown(true)
	state, err := c.ApprovalStatus(ctx, add.RequestID)
	if err != nil || !state.Approved() {
		t.Fatalf("ApprovalStatus through node B = %v, %v", state, err)
	}
	csr, key := simpleCSR(t, "polled.example.com")
	cert, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "polled"))
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, sim, cert, key)
	if b.Calls("/status") != 1 || b.Calls("/certificaterequest") != 1 {
		t.Errorf("node B: %d approval polls, %d enrolments; want 1 each", b.Calls("/status"), b.Calls("/certificaterequest"))
	}
}

// TestCredentialsRefusedByOneNodeOnly: node A refuses the credentials node
// B accepts: the call is served by B, A is set aside for it (not the
// credentials); when both refuse, the call fails as unauthorized.
func TestCredentialsRefusedByOneNodeOnly(t *testing.T) {
	t.Parallel()
	sim, a, b, c := twoNodes(t, 0)
	ctx := ctxFor(t)
	a.SetRefuseCredentials(true)
	csr, key := simpleCSR(t, "refused.example.com")
	cert, err := c.Enroll(ctx, enrolment(csr, "refused"))
	if err != nil {
		t.Fatalf("enrolment with node A refusing the credentials: %v", err)
	}
	checkIssued(t, sim, cert, key)
	st := c.Nodes()
	if st[0].Usable || !strings.Contains(st[0].Reason, "refused the issuer's credentials, which "+b.URL()+" accepts") {
		t.Errorf("node A state = %+v, want set aside for refusing what B accepts", st[0])
	}
	if sim.Counters().Enrollments != 1 {
		t.Errorf("%d certificates issued, want 1", sim.Counters().Enrollments)
	}

	b.SetRefuseCredentials(true)
	_, err = c.ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) {
		t.Fatalf("every node refusing = %v, want unauthorized", err)
	}
	var e *ejbca.Error
	if errors.As(err, &e); e.OtherNodes == "" {
		t.Errorf("the refusal does not say what the other node answered: %v", err)
	}
}

// TestEveryNodeDown: with no node reachable the call fails as with one
// node (retryable, nothing sent, so nothing may have issued), naming what
// each node did.
func TestEveryNodeDown(t *testing.T) {
	t.Parallel()
	sim, a, b, c := twoNodes(t, 0)
	ctx := ctxFor(t)
	a.SetDown(true)
	b.SetDown(true)
	csr, _ := simpleCSR(t, "none.example.com")
	_, err := c.Enroll(ctx, enrolment(csr, "none"))
	if !ejbca.IsRetryable(err) || ejbca.MayHaveIssued(err) {
		t.Fatalf("every node down = %v, want retryable and not issued", err)
	}
	if !strings.Contains(err.Error(), a.URL()) || !strings.Contains(err.Error(), b.URL()) {
		t.Errorf("the error does not name both nodes: %v", err)
	}
	if c.OtherNodeUsable(err) {
		t.Error("OtherNodeUsable = true with every node down")
	}
	for i, s := range c.Nodes() {
		if s.Usable {
			t.Errorf("node %d usable with every node down", i)
		}
	}
	if sim.Counters().Enrollments != 0 {
		t.Error("a certificate was issued")
	}
}

// TestNodeLossReportedOnce: a call that sets a usable node aside reports
// the loss once (TakeNodeLoss), for the issuer's check to look again;
// further calls failing on the node already set aside, and the health
// check's own question to each node (ListCAsOn), report nothing; the node
// found back and lost again is reported again.
func TestNodeLossReportedOnce(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	a, _ := sim.StartNode()
	b, _ := sim.StartNode()
	clock := testingclock.NewFakePassiveClock(time.Now())
	o := options(t, sim, modeMTLS)
	o.URL, o.URLs, o.Clock, o.NodeRetry = a.URL(), []string{b.URL()}, clock, time.Minute
	c := newClient(t, o)
	ctx := ctxFor(t)

	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if c.TakeNodeLoss() {
		t.Fatal("a loss reported with every node answering")
	}
	a.SetDown(true)
	if _, err := c.ListCAsOn(ctx, 0); err == nil {
		t.Fatal("node A answered while down")
	}
	if c.TakeNodeLoss() {
		t.Error("the health check's own question to a node reported a loss")
	}
	// The check set A aside; back to usable for the request-side case.
	a.SetDown(false)
	if _, err := c.ListCAsOn(ctx, 0); err != nil {
		t.Fatal(err)
	}
	a.SetDown(true)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.TakeNodeLoss() {
		t.Fatal("the call that set node A aside reported no loss")
	}
	if c.TakeNodeLoss() {
		t.Error("one loss reported twice")
	}
	// A's retry time: the probe finds it still down; no new loss.
	clock.SetTime(clock.Now().Add(time.Minute))
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Calls("/v1/ca") == 0 {
		t.Fatal("node A was not probed at its retry time")
	}
	if c.TakeNodeLoss() {
		t.Error("a node already set aside, failing its probe, reported as a new loss")
	}
	// Back, found back by the next probe, lost again: reported again.
	a.SetDown(false)
	clock.SetTime(clock.Now().Add(time.Minute))
	if _, err := c.ListCAs(ctx); err != nil || !c.Nodes()[0].Usable {
		t.Fatalf("node A not found back: %v %+v", err, c.Nodes()[0])
	}
	a.SetDown(true)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.TakeNodeLoss() {
		t.Error("node A lost a second time was not reported")
	}
}
