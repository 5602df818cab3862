package ejbca

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

func testNodes(t *testing.T, n int) *nodeSet {
	t.Helper()
	var raw []string
	for i := range n {
		raw = append(raw, fmt.Sprintf("https://ejbca-%d.example.com", i+1))
	}
	s, err := newNodeSet(raw, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNodePlan: calls prefer the usable nodes in list order, then the
// suspect ones; a read-only call probes one suspect node first once its
// retry time has come, and only one call per retry period does; an
// enrolment never probes.
func TestNodePlan(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := testNodes(t, 3)
	if got := s.plan(t0, false); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("healthy plan = %v, want list order", got)
	}
	s.failed(0, t0, "connection refused")
	for _, ro := range []bool{false, true} {
		if got := s.plan(t0.Add(59*time.Second), ro); !slices.Equal(got, []int{1, 2, 0}) {
			t.Errorf("readOnly=%v with node 0 suspect: plan = %v, want [1 2 0]", ro, got)
		}
	}
	if got := s.plan(t0.Add(time.Minute), false); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("an enrolment probed the suspect node: plan = %v", got)
	}
	if got := s.plan(t0.Add(time.Minute), true); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("the first read-only call after the retry time: plan = %v, want node 0 probed first", got)
	}
	if got := s.plan(t0.Add(time.Minute+time.Second), true); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("a second read-only call in the same period probed again: plan = %v", got)
	}
	if got := s.plan(t0.Add(2*time.Minute), true); got[0] != 0 {
		t.Errorf("the next period's read-only call did not probe: plan = %v", got)
	}
	st := s.states()
	if st[0].Usable || st[0].Reason != "connection refused" || !st[0].Since.Equal(t0) || !st[1].Usable {
		t.Errorf("states = %+v", st)
	}
	s.failed(0, t0.Add(3*time.Minute), "timeout")
	if st := s.states(); !st[0].Since.Equal(t0) || st[0].Reason != "timeout" {
		t.Errorf("a suspect node failing again: %+v, want since kept and the last reason", st[0])
	}
	s.succeeded(0)
	if got := s.plan(t0.Add(3*time.Minute), false); !slices.Equal(got, []int{0, 1, 2}) || !s.states()[0].Usable {
		t.Errorf("after a success: plan = %v, states %+v", got, s.states())
	}
	s.failed(0, t0, "x")
	s.failed(1, t0, "y")
	s.failed(2, t0, "z")
	if got := s.plan(t0, false); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("every node suspect: plan = %v, want every node in list order", got)
	}
}

func jsonResp(status int) *response {
	return &response{status: status, header: http.Header{"Content-Type": {"application/json"}},
		body: []byte(`{"error_code":` + fmt.Sprint(status) + `,"error_message":"x"}`)}
}

func htmlResp(status int) *response {
	return &response{status: status, header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html>bad gateway</html>")}
}

// TestJudge: which node outcomes move a call to the next node. An issuing
// call moves only when this node certainly did nothing.
func TestJudge(t *testing.T) {
	refused := &Error{Kind: KindRetryable, NotSent: true, Err: errors.New("connection refused")}
	timeout := &Error{Kind: KindRetryable, Err: errors.New("context deadline exceeded")}
	cutOff := &Error{Kind: KindRetryable, StatusCode: 200, UnreadableSuccess: true, Err: errors.New("unexpected EOF")}
	for _, tc := range []struct {
		name       string
		idempotent bool
		resp       *response
		err        error
		want       verdict
	}{
		{"enrolment: connection refused", false, nil, refused, verdict{nodeFailed: true, moveOn: true}},
		{"enrolment: sent, no answer", false, nil, timeout, verdict{nodeFailed: true}},
		{"search: sent, no answer", true, nil, timeout, verdict{nodeFailed: true, moveOn: true}},
		{"enrolment: 2xx cut off", false, nil, cutOff, verdict{nodeFailed: true}},
		{"search: 2xx cut off", true, nil, cutOff, verdict{nodeFailed: true, moveOn: true}},
		{"enrolment: EJBCA's JSON 500", false, jsonResp(500), nil, verdict{nodeFailed: true, moveOn: true}},
		{"enrolment: a proxy's 502 page", false, htmlResp(502), nil, verdict{nodeFailed: true}},
		{"GET: a proxy's 502 page", true, htmlResp(502), nil, verdict{nodeFailed: true, moveOn: true}},
		{"GET: a proxy's 404 page", true, htmlResp(404), nil, verdict{nodeFailed: true, moveOn: true}},
		{"enrolment: 403", false, jsonResp(403), nil, verdict{refused: true, moveOn: true}},
		{"GET: 401", true, jsonResp(401), nil, verdict{refused: true, moveOn: true}},
		{"enrolment: 201", false, &response{status: 201}, nil, verdict{}},
		{"enrolment: EJBCA's 400", false, jsonResp(400), nil, verdict{}},
		{"enrolment: 429", false, jsonResp(429), nil, verdict{}},
		{"GET: EJBCA's 404", true, jsonResp(404), nil, verdict{}},
		{"rate limit held it back", true, nil, &Error{Kind: KindRetryable, NotSent: true, heldBack: true}, verdict{}},
		{"token endpoint failed", true, nil, &Error{Kind: KindUnauthorized, NotSent: true, TokenURL: "https://idp"}, verdict{}},
		{"the caller's context", true, nil, errors.New("context canceled"), verdict{}},
	} {
		if got := judge(tc.idempotent, tc.resp, tc.err); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestOtherNodeUsable: a node's failure leaves the issuer's other requests
// free to call only when the client has several nodes and still believes
// one usable; a client of one node, every node set aside, and failures no
// node caused (the rate limit, the token endpoint, no error) never do.
func TestOtherNodeUsable(t *testing.T) {
	noAnswer := &Error{Kind: KindRetryable, Err: errors.New("connection reset by peer")}
	for _, tc := range []struct {
		name    string
		nodes   int
		suspect []int
		err     error
		want    bool
	}{
		{"two nodes, the first set aside", 2, []int{0}, noAnswer, true},
		{"two nodes, the second set aside", 2, []int{1}, noAnswer, true},
		{"three nodes, two set aside", 3, []int{0, 1}, noAnswer, true},
		{"two nodes, both set aside", 2, []int{0, 1}, noAnswer, false},
		{"one node, set aside", 1, []int{0}, noAnswer, false},
		{"one node, still usable", 1, nil, noAnswer, false},
		{"two nodes, the rate limit held the call back", 2, nil, &Error{Kind: KindRetryable, NotSent: true, heldBack: true}, false},
		{"two nodes, the token endpoint failed", 2, nil, &Error{Kind: KindRetryable, TokenURL: "https://idp"}, false},
		{"two nodes, EJBCA answered 400", 2, nil, &Error{Kind: KindPermanent, StatusCode: 400}, false},
		{"two nodes, no error", 2, nil, nil, false},
	} {
		c := &Client{nodes: testNodes(t, tc.nodes)}
		for _, i := range tc.suspect {
			c.nodes.failed(i, time.Now(), "connection reset by peer")
		}
		if got := c.OtherNodeUsable(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
