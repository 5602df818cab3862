package ejbcasim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// postTo sends a REST call to one node; err is a transport error.
func postTo(h *harness, node *ejbcasim.Node, path string, body any) (int, []byte, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, node.URL()+"/ejbca/ejbca-rest-api"+path, bytes.NewReader(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.admin.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), nil
}

// TestNodesShareOneState: two nodes of one simulator answer from the same
// state (a certificate issued through one is found through the other, an
// approval request made through one is seen through the other); a node
// taken down resets calls while the other serves; a frozen node holds a
// call and, thawed, drops it unhandled (nothing issued).
func TestNodesShareOneState(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	a, err := h.sim.StartNode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.sim.StartNode()
	if err != nil {
		t.Fatal(err)
	}
	if a.URL() == b.URL() || a.URL() == h.sim.URL() {
		t.Fatalf("nodes share a URL: %s %s %s", h.sim.URL(), a.URL(), b.URL())
	}

	csr, _ := newCSR(t, csrSpec{cn: "n1.example.com", dns: []string{"n1.example.com"}})
	st, body, err := postTo(h, a, "/v1/certificate/pkcs10enroll", enrollBody(csr, "n1", "ENDUSER"))
	if err != nil || st != http.StatusCreated {
		t.Fatalf("enrol through node A: %d %s %v", st, body, err)
	}
	search := map[string]any{"max_number_of_results": 10, "criteria": []map[string]string{{"property": "QUERY", "value": "n1", "operation": "EQUAL"}}}
	st, body, err = postTo(h, b, "/v1/certificate/search", search)
	if err != nil || st != http.StatusOK {
		t.Fatalf("search through node B: %d %s %v", st, body, err)
	}
	var found struct {
		Certificates []json.RawMessage `json:"certificates"`
	}
	_ = json.Unmarshal(body, &found)
	if len(found.Certificates) != 1 {
		t.Errorf("node B found %d certificates of n1, want the 1 issued through node A", len(found.Certificates))
	}
	if a.Calls("/pkcs10enroll") != 1 || b.Calls("/pkcs10enroll") != 0 || b.Calls("/search") != 1 {
		t.Errorf("per-node calls: A enrol %d, B enrol %d, B search %d; want 1, 0, 1", a.Calls("/pkcs10enroll"), b.Calls("/pkcs10enroll"), b.Calls("/search"))
	}

	a.SetDown(true)
	if _, _, err := postTo(h, a, "/v1/certificate/search", search); err == nil {
		t.Error("a call to a node that is down got an answer")
	}
	if st, _, err := postTo(h, b, "/v1/certificate/search", search); err != nil || st != http.StatusOK {
		t.Errorf("node B while A is down: %d %v", st, err)
	}
	a.SetDown(false)
	if st, _, err := postTo(h, a, "/v1/certificate/search", search); err != nil || st != http.StatusOK {
		t.Errorf("node A back: %d %v", st, err)
	}

	// A node refusing credentials refuses every call that needs them, the
	// approval status included, and still answers the status endpoint,
	// which needs none.
	a.SetRefuseCredentials(true)
	if st, _, err := postTo(h, a, "/v1/certificate/search", search); err != nil || st != http.StatusForbidden {
		t.Errorf("search through a refusing node: %d %v, want 403", st, err)
	}
	for path, want := range map[string]int{"/v1/approval/1/status": http.StatusForbidden, "/v1/certificate/status": http.StatusOK} {
		if st, err := getFrom(h, a, path); err != nil || st != want {
			t.Errorf("GET %s through a refusing node: %d %v, want %d", path, st, err, want)
		}
	}
	a.SetRefuseCredentials(false)

	before := h.sim.Counters().Enrollments
	b.SetFrozen(true)
	done := make(chan error, 1)
	csr2, _ := newCSR(t, csrSpec{cn: "n2.example.com", dns: []string{"n2.example.com"}})
	go func() {
		_, _, err := postTo(h, b, "/v1/certificate/pkcs10enroll", enrollBody(csr2, "n2", "ENDUSER"))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.Held() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.Held() != 1 {
		t.Fatalf("the frozen node holds %d calls, want 1", b.Held())
	}
	b.SetFrozen(false)
	if err := <-done; err == nil {
		t.Error("a call held by a frozen node got an answer when it thawed, want a reset")
	}
	if got := h.sim.Counters().Enrollments; got != before {
		t.Errorf("a frozen node issued %d certificates, want none", got-before)
	}
}

func getFrom(h *harness, node *ejbcasim.Node, path string) (int, error) {
	resp, err := h.admin.Get(node.URL() + "/ejbca/ejbca-rest-api" + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}
