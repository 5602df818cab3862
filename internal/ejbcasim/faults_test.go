package ejbcasim_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestFaultStatusRetryAfterAndCount(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.InjectFault("ca", ejbcasim.Fault{Count: 1, Status: 429, RetryAfter: "2"})
	r := h.call(h.admin, "GET", "/v1/ca", nil)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("first call: %d %v", r.status, r.header)
	}
	r.expectError(t, 429, "Too Many Requests")
	if r := h.call(h.admin, "GET", "/v1/ca", nil); r.status != 200 {
		t.Fatalf("second call: %d", r.status)
	}
	if c := h.sim.Counters(); c.Calls["ca"][429] != 1 || c.Calls["ca"][200] != 1 || c.Get("ca") != 2 {
		t.Fatalf("counters %v", c.Calls)
	}
}

func TestFaultPersistentNonJSONBodyUntilCleared(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.InjectFault("status", ejbcasim.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>"})
	for range 3 {
		r := h.call(h.anon, "GET", "/v1/certificate/status", nil)
		if r.status != 502 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
		}
	}
	h.sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Status: 400, Body: "plain text refusal"})
	csr, _ := newCSR(t, csrSpec{cn: "x"})
	if r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "x", "ENDUSER")); r.status != 400 ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || string(r.body) != "plain text refusal" {
		t.Fatalf("plain-text 400: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	h.sim.ClearFaults()
	if r := h.call(h.anon, "GET", "/v1/certificate/status", nil); r.status != 200 {
		t.Fatalf("after ClearFaults: %d", r.status)
	}
}

func TestFaultResets(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	csr, _ := newCSR(t, csrSpec{cn: "reset"})

	h.sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetBeforeHandling: true})
	if _, err := h.try(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "reset", "ENDUSER")); err == nil {
		t.Fatal("reset before handling: no error")
	}
	if c := h.sim.Counters(); c.Enrollments != 0 || c.Calls["pkcs10enroll"][0] != 1 {
		t.Fatalf("after reset before handling: %+v", c)
	}

	h.sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
	if _, err := h.try(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "reset", "ENDUSER")); err == nil {
		t.Fatal("reset after issuing: no error")
	}
	if c := h.sim.Counters(); c.Enrollments != 1 || len(h.sim.Issued()) != 1 || c.Calls["pkcs10enroll"][0] != 2 {
		t.Fatalf("after reset after issuing: %+v", c)
	}

	// The client retries on a fresh connection and succeeds.
	if r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "reset", "ENDUSER")); r.status != 201 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
}

func TestFaultTruncatedBody(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.InjectFault("ca", ejbcasim.Fault{Count: 1, Truncate: true})
	req, _ := http.NewRequest("GET", h.sim.BaseURL()+"/v1/ca", nil)
	resp, err := h.admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != 200 || int64(len(body)) >= resp.ContentLength {
		t.Fatalf("truncated body: status %d, %d of %d bytes, err %v", resp.StatusCode, len(body), resp.ContentLength, err)
	}
}

func TestFaultMismatchedKey(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, MismatchedKey: true})
	csr, key := newCSR(t, csrSpec{cn: "mismatch"})
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "mismatch", "ENDUSER"))
	var e enrolled
	r.decode(t, &e)
	if e.cert(t).PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatal("certificate matches the CSR key despite MismatchedKey")
	}
}

func TestLatencyHonoursContextAndClose(t *testing.T) {
	h := start(t, ejbcasim.Config{Latency: 20 * time.Millisecond})
	begin := time.Now()
	if r := h.call(h.anon, "GET", "/v1/certificate/status", nil); r.status != 200 || time.Since(begin) < 20*time.Millisecond {
		t.Fatalf("configured latency not applied: %v", time.Since(begin))
	}

	h.sim.InjectFault("status", ejbcasim.Fault{Latency: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.sim.BaseURL()+"/v1/certificate/status", nil)
	begin = time.Now()
	if _, err := h.anon.Do(req); err == nil {
		t.Fatal("call under a 30s fault latency returned before the client's deadline")
	}
	if d := time.Since(begin); d > 15*time.Second {
		t.Errorf("the client's 100ms deadline ended the call only after %v: the fault's latency ignored the context", d)
	}

	// A call sleeping in a fault must not hold Close up.
	done := make(chan error, 1)
	go func() {
		_, err := h.try(h.anon, "GET", "/v1/certificate/status", nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	begin = time.Now()
	if err := h.sim.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("sleeping call got an answer after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleeping call still blocked after Close")
	}
}

// TestFaultProcessingOutlivesTheClient: EJBCA carries on with a call whose
// client gave up: the certificate exists only once the processing time is
// over, and then it does, answer or not.
func TestFaultProcessingOutlivesTheClient(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	csr, _ := newCSR(t, csrSpec{cn: "slow"})
	h.sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Processing: 2 * time.Second})
	impatient := h.client(h.sim.ClientCertPEM(), h.sim.ClientKeyPEM())
	impatient.Timeout = 100 * time.Millisecond
	if _, err := h.try(impatient, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "slow", "ENDUSER")); err == nil {
		t.Fatal("the impatient client got an answer")
	}
	if n := len(h.sim.Issued()); n != 0 {
		t.Fatalf("%d certificates issued while EJBCA was still processing", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.sim.Issued()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call was never carried out after its client gave up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := h.sim.Counters(); c.Enrollments != 1 {
		t.Fatalf("%d enrolments, want 1", c.Enrollments)
	}
}
