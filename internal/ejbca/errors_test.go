package ejbca_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

const malformedJSON = "Malformed JSON request, check if format of the values of every parameter is correct and request structure is proper."

func TestPlainTextErrorBody(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 400, Body: malformedJSON})

	csr, _ := simpleCSR(t, "plain.example.com")
	_, err := c.Enroll(ctx, enrolment(csr, "plain"))
	if !ejbca.IsPermanent(err) || ejbca.KindOf(err) != ejbca.KindPermanent {
		t.Fatalf("Enroll = %v, want permanent", err)
	}
	msg := ejbca.Message(err)
	if !strings.Contains(msg, "non-JSON") || !strings.Contains(msg, "text/plain") || !strings.Contains(msg, malformedJSON) {
		t.Errorf("Message = %q, want it to say it was non-JSON text and carry the text", msg)
	}
	if s := err.Error(); !strings.Contains(s, "POST /v1/certificate/pkcs10enroll") || !strings.Contains(s, "400") {
		t.Errorf("error text %q does not name the endpoint and status", s)
	}
}

func TestDisabledProtocolHTML(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			ctx := ctxFor(t)
			c := clientFor(t, sim, mode)
			sim.SetProtocolEnabled(false)

			check := func(what string, err error) {
				t.Helper()
				if !ejbca.IsUnauthorized(err) {
					t.Errorf("%s with the protocol off = %v, want unauthorized (403)", what, err)
					return
				}
				msg := ejbca.Message(err)
				if !strings.Contains(msg, "non-JSON") || !strings.Contains(msg, "text/html") || !strings.Contains(msg, "This service has been disabled.") {
					t.Errorf("%s: Message = %q, want the page's text marked as non-JSON HTML", what, msg)
				}
				if strings.Contains(msg, "<") {
					t.Errorf("%s: Message %q still holds HTML tags", what, msg)
				}
			}
			_, err := c.Status(ctx)
			check("Status", err)
			_, err = c.ListCAs(ctx)
			check("ListCAs", err)
			csr, _ := simpleCSR(t, "off.example.com")
			_, err = c.Enroll(ctx, enrolment(csr, "off"))
			check("Enroll", err)

			sim.SetProtocolEnabled(true)
			if _, err := c.ListCAs(ctx); err != nil {
				t.Errorf("ListCAs with the protocol back on: %v", err)
			}
		})
	}
}

func TestServerErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, key := simpleCSR(t, "retry.example.com")

	for _, status := range []int{500, 502, 503, 504} {
		sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: status})
		_, err := c.Enroll(ctx, enrolment(csr, "retry"))
		if !ejbca.IsRetryable(err) || ejbca.IsPermanent(err) {
			t.Errorf("%d: Enroll = %v, want retryable", status, err)
			continue
		}
		if e := asError(t, err); e.StatusCode != status {
			t.Errorf("%d: StatusCode = %d", status, e.StatusCode)
		}
		if _, ok := ejbca.RetryAfter(err); ok {
			t.Errorf("%d: RetryAfter set without a header", status)
		}
	}
	// A 5xx with an HTML page from a proxy.
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"})
	_, err := c.Enroll(ctx, enrolment(csr, "retry"))
	if !ejbca.IsRetryable(err) || !strings.Contains(ejbca.Message(err), "502 Bad Gateway") {
		t.Errorf("Enroll via a failing proxy = %v", err)
	}
	// An offline CA or crypto token answers 400 with EJBCA's message, which
	// the client recognises.
	for _, set := range []func(bool) error{
		func(on bool) error { return sim.SetCAOffline(issuingCA, on) },
		func(on bool) error { return sim.SetCryptoTokenOffline(issuingCA, on) },
	} {
		if err := set(true); err != nil {
			t.Fatal(err)
		}
		_, err = c.Enroll(ctx, enrolment(csr, "retry"))
		if !ejbca.IsRetryable(err) || asError(t, err).StatusCode != 400 || !strings.Contains(ejbca.Message(err), issuingCADN) {
			t.Errorf("Enroll on an offline CA = %v", err)
		}
		if err := set(false); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := c.Enroll(ctx, enrolment(csr, "retry"))
	if err != nil {
		t.Fatalf("Enroll once the faults are spent: %v", err)
	}
	checkIssued(t, sim, cert, key)
	if got := sim.Counters(); got.Enrollments != 1 {
		t.Errorf("Enrollments = %d, want 1", got.Enrollments)
	}
}

func TestTooManyRequestsRetryAfter(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)

	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 429, RetryAfter: "7"})
	csr, _ := simpleCSR(t, "busy.example.com")
	_, err := c.Enroll(ctx, enrolment(csr, "busy"))
	if !ejbca.IsRetryable(err) {
		t.Fatalf("Enroll = %v, want retryable", err)
	}
	if d, ok := ejbca.RetryAfter(err); !ok || d != 7*time.Second {
		t.Errorf("RetryAfter = %v, %v; want 7s", d, ok)
	}
	if !strings.Contains(err.Error(), "retry after 7s") {
		t.Errorf("error text %q does not mention the delay", err)
	}

	// An HTTP date works too, on a 503.
	when := time.Now().Add(90 * time.Second).UTC().Format(httpTimeFormat)
	sim.InjectFault("ca", ejbcasim.Fault{Count: 1, Status: 503, RetryAfter: when})
	_, err = c.ListCAs(ctx)
	if d, ok := ejbca.RetryAfter(err); !ejbca.IsRetryable(err) || !ok || d < 80*time.Second || d > 91*time.Second {
		t.Errorf("ListCAs = %v, RetryAfter %v %v; want about 90s", err, d, ok)
	}
	// Garbage is ignored.
	sim.InjectFault("ca", ejbcasim.Fault{Count: 1, Status: 429, RetryAfter: "soon"})
	_, err = c.ListCAs(ctx)
	if _, ok := ejbca.RetryAfter(err); !ejbca.IsRetryable(err) || ok {
		t.Errorf("ListCAs with a bad Retry-After = %v", err)
	}
}

const httpTimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestConnectionResetIsRetryable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, key := simpleCSR(t, "reset.example.com")

	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetBeforeHandling: true})
	_, err := c.Enroll(ctx, enrolment(csr, "reset"))
	if !ejbca.IsRetryable(err) {
		t.Fatalf("Enroll over a reset connection = %v, want retryable", err)
	}
	if e := asError(t, err); e.StatusCode != 0 || e.Err == nil || !strings.Contains(err.Error(), "POST /v1/certificate/pkcs10enroll") {
		t.Errorf("error = %+v", e)
	}
	got := sim.Counters()
	if got.Enrollments != 0 || got.Calls["pkcs10enroll"][0] != 1 {
		t.Errorf("counters %+v", got)
	}
	cert, err := c.Enroll(ctx, enrolment(csr, "reset"))
	if err != nil {
		t.Fatalf("Enroll after the reset: %v", err)
	}
	checkIssued(t, sim, cert, key)
}

func TestTruncatedBodyIsRetryable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)
	csr, _ := simpleCSR(t, "cut.example.com")

	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Truncate: true})
	cert, err := c.Enroll(ctx, enrolment(csr, "cut"))
	if err == nil {
		t.Fatalf("Enroll accepted a truncated body (serial %s)", cert.SerialNumber)
	}
	if !ejbca.IsRetryable(err) {
		t.Errorf("Enroll with a truncated body = %v, want retryable", err)
	}
	if e := asError(t, err); e.StatusCode != 201 {
		t.Errorf("error = %+v", e)
	}
	sim.InjectFault("ca", ejbcasim.Fault{Count: 1, Truncate: true})
	if _, err := c.ListCAs(ctx); !ejbca.IsRetryable(err) {
		t.Errorf("ListCAs with a truncated body = %v, want retryable", err)
	}
	// The certificate was issued: FindIssued gets it.
	if got := sim.Counters().Enrollments; got != 1 {
		t.Errorf("Enrollments = %d", got)
	}
}

func TestUnreadableSuccessBody(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, _ := simpleCSR(t, "junk.example.com")

	cases := []struct {
		endpoint string
		body     string
		call     func() error
	}{
		{"ca", "<html>not json</html>", func() error { _, err := c.ListCAs(ctx); return err }},
		{"pkcs10enroll", `{"certificate":"!!!not base64","serial_number":"01"}`, func() error { _, err := c.Enroll(ctx, enrolment(csr, "junk")); return err }},
		{"pkcs10enroll", `{"certificate":"AAAA","serial_number":"01"}`, func() error { _, err := c.Enroll(ctx, enrolment(csr, "junk")); return err }},
		{"pkcs10enroll", `not json`, func() error { _, err := c.Enroll(ctx, enrolment(csr, "junk")); return err }},
		{"ca-download", "no PEM here", func() error { _, err := c.CAChain(ctx, issuingCADN); return err }},
		{"approval-status", `{"request_id":1}`, func() error { _, err := c.ApprovalStatus(ctx, 1); return err }},
		{"search-v2", `{"certificates":[{"base64Cert":"@@@","username":"junk"}]}`, func() error {
			_, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "junk", CAName: issuingCA, CSR: csr})
			return err
		}},
		{"search-v2", `not json`, func() error {
			_, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "junk", CAName: issuingCA, CSR: csr})
			return err
		}},
	}
	for _, tc := range cases {
		status := 200
		if tc.endpoint == "pkcs10enroll" {
			status = 201
		}
		sim.InjectFault(tc.endpoint, ejbcasim.Fault{Count: 1, Status: status, Body: tc.body})
		err := tc.call()
		if tc.endpoint == "pkcs10enroll" {
			// A 201 means EJBCA issued: an unreadable one is retried
			// through recovery, never failed and never enrolled blindly.
			if !ejbca.IsRetryable(err) || !ejbca.MayHaveIssued(err) || !strings.Contains(err.Error(), "probably issued") {
				t.Errorf("%s answering %q: %v (kind %v), want retryable and possibly issued", tc.endpoint, tc.body, err, ejbca.KindOf(err))
			}
			continue
		}
		if ejbca.KindOf(err) != ejbca.KindInvalidResponse || !ejbca.IsPermanent(err) {
			t.Errorf("%s answering %q: %v (kind %v), want an invalid response", tc.endpoint, tc.body, err, ejbca.KindOf(err))
		}
	}
	// An empty object is no certificate either.
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 201, Body: `{}`})
	if _, err := c.Enroll(ctx, enrolment(csr, "junk")); !ejbca.IsRetryable(err) || !ejbca.MayHaveIssued(err) {
		t.Errorf("Enroll answered 201 {} = %v, want retryable and possibly issued", err)
	}
	// A chain that does not belong to the certificate is refused.
	other := startSim(t, ejbcasim.Config{})
	otherCert := enrolledOn(t, ctx, clientFor(t, other, modeMTLS), "other", csr)
	body := fmt.Sprintf(`{"certificate":%q,"serial_number":"01","certificate_chain":[%q]}`,
		b64(otherCert.Leaf.Raw), b64(sim.IssuingCA().Raw))
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 201, Body: body})
	if _, err := c.Enroll(ctx, enrolment(csr, "junk")); !ejbca.MayHaveIssued(err) || !ejbca.IsRetryable(err) {
		t.Errorf("Enroll with a foreign chain = %v, want retryable through recovery", err)
	}
}

func TestResponseLargerThanMaxResponseBytes(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	o := options(t, sim, modeMTLS)
	o.MaxResponseBytes = 256
	c := newClient(t, o)

	_, err := c.ListCAs(ctx) // three CAs: well over 256 bytes
	if err == nil {
		t.Fatal("ListCAs read a body larger than MaxResponseBytes")
	}
	if ejbca.IsRetryable(err) || !strings.Contains(err.Error(), "larger than 256 bytes") {
		t.Errorf("ListCAs = %v (kind %v)", err, ejbca.KindOf(err))
	}
	sim.InjectFault("status", ejbcasim.Fault{Count: 1, Status: 500, Body: strings.Repeat("x", 1000)})
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Status with a large error body = %v", err)
	}
	// Small answers still work.
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("Status: %v", err)
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatal(err)
	}
	sim.SetDown(true)
	_, err := c.ListCAs(ctx)
	if !ejbca.IsRetryable(err) {
		t.Fatalf("ListCAs with EJBCA down = %v, want retryable", err)
	}
	sim.SetDown(false)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Errorf("ListCAs once EJBCA is back: %v", err)
	}
}

func TestErrorAPI(t *testing.T) {
	t.Parallel()
	if ejbca.IsRetryable(nil) || ejbca.IsPermanent(nil) || ejbca.IsUnauthorized(nil) || ejbca.IsNotFound(nil) ||
		ejbca.IsConflict(nil) || ejbca.IsApprovalRequired(nil) || ejbca.IsUnsupported(nil) || ejbca.IsEndEntityNotFound(nil) {
		t.Error("a nil error has a kind")
	}
	if ejbca.Message(nil) != "" {
		t.Error("Message(nil) is not empty")
	}
	foreign := errors.New("boom")
	if !ejbca.IsRetryable(foreign) || ejbca.Message(foreign) != "boom" {
		t.Error("a foreign error is not retryable or loses its text")
	}
	if !ejbca.IsRetryable(context.Canceled) {
		t.Error("context.Canceled is not retryable")
	}

	e := &ejbca.Error{Endpoint: "GET /v1/ca", StatusCode: 503, Message: "busy", Kind: ejbca.KindRetryable, RetryAfter: 2 * time.Second}
	if got, want := e.Error(), "EJBCA GET /v1/ca answered 503: busy (retry after 2s)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("revoking: %w", &ejbca.Error{Endpoint: "PUT /v1/certificate/{issuer_dn}/{serial}/revoke", StatusCode: 202, Kind: ejbca.KindPending, RequestID: 9, Message: "waiting"})
	if ejbca.KindOf(wrapped) != ejbca.KindPending || ejbca.Message(wrapped) != "waiting" || asError(t, wrapped).RequestID != 9 {
		t.Errorf("wrapped pending error %v", wrapped)
	}
	notYet := fmt.Errorf("probing: %w", &ejbca.Error{Endpoint: "POST /v1/certificate/certificaterequest", StatusCode: 400, Kind: ejbca.KindNotFound, Message: "Wrong username or password"})
	if !ejbca.IsEndEntityNotFound(notYet) || !ejbca.IsNotFound(notYet) {
		t.Errorf("wrapped end entity not found %v", notYet)
	}
	if ejbca.IsEndEntityNotFound(&ejbca.Error{Endpoint: "GET /v1/ca", StatusCode: 404, Kind: ejbca.KindNotFound}) {
		t.Error("a 404 of another endpoint is an end entity not found")
	}
	cause := errors.New("connection reset by peer")
	transport := &ejbca.Error{Endpoint: "GET /v1/ca", Kind: ejbca.KindRetryable, Err: cause}
	if !errors.Is(transport, cause) || transport.Error() != "EJBCA GET /v1/ca: connection reset by peer" {
		t.Errorf("transport error %q does not wrap its cause", transport)
	}
	both := &ejbca.Error{Endpoint: "GET /v1/ca", StatusCode: 200, Kind: ejbca.KindInvalidResponse, Message: "unreadable", Err: cause}
	if got := both.Error(); got != "EJBCA GET /v1/ca answered 200: unreadable: connection reset by peer" {
		t.Errorf("Error() = %q", got)
	}
	kinds := map[ejbca.Kind]string{
		ejbca.KindPermanent: "permanent", ejbca.KindRetryable: "retryable", ejbca.KindUnauthorized: "unauthorized",
		ejbca.KindApprovalRequired: "approval required", ejbca.KindPending: "pending approval", ejbca.KindNotFound: "not found",
		ejbca.KindConflict: "conflict", ejbca.KindInvalidResponse: "invalid response", ejbca.KindUnsupported: "unsupported",
	}
	for k, want := range kinds {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), want)
		}
	}
	// Each kind answers exactly its own predicate (IsPermanent also covers
	// the kinds that retrying cannot fix).
	for k := range kinds {
		err := &ejbca.Error{Kind: k}
		checks := map[string]bool{
			"retryable":         ejbca.IsRetryable(err),
			"unauthorized":      ejbca.IsUnauthorized(err),
			"approval required": ejbca.IsApprovalRequired(err),
			"not found":         ejbca.IsNotFound(err),
			"conflict":          ejbca.IsConflict(err),
			"unsupported":       ejbca.IsUnsupported(err),
		}
		for name, got := range checks {
			if got != (name == k.String()) {
				t.Errorf("kind %s: Is %s = %v", k, name, got)
			}
		}
		wantPermanent := k == ejbca.KindPermanent || k == ejbca.KindInvalidResponse || k == ejbca.KindNotFound || k == ejbca.KindConflict || k == ejbca.KindUnsupported
		if ejbca.IsPermanent(err) != wantPermanent {
			t.Errorf("kind %s: IsPermanent = %v", k, !wantPermanent)
		}
	}
}

// enrolledOn enrols csr for username and returns the certificate.
func enrolledOn(t *testing.T, ctx context.Context, c *ejbca.Client, username string, csr []byte) *ejbca.Certificate {
	t.Helper()
	cert, err := c.Enroll(ctx, enrolment(csr, username))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return cert
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// TestMayHaveIssued: after a failed issuing call the caller must know
// whether EJBCA may have issued (search before enrolling again) or certainly
// did not (enrol again at once).
func TestMayHaveIssued(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, _ := simpleCSR(t, "maybe.example.com")
	for _, tc := range []struct {
		name  string
		fault ejbcasim.Fault
		want  bool
	}{
		{"reset after issuing", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true}, true},
		{"reset after the request was sent", ejbcasim.Fault{Count: 1, ResetBeforeHandling: true}, true},
		{"truncated 201", ejbcasim.Fault{Count: 1, Truncate: true}, true},
		{"EJBCA's 503", ejbcasim.Fault{Count: 1, Status: 503}, false},
		{"a proxy's 504 page", ejbcasim.Fault{Count: 1, Status: 504, Body: "<html><body>Gateway Timeout</body></html>"}, true},
		{"garbled 201", ejbcasim.Fault{Count: 1, Status: 201, Body: "<html>"}, true},
		{"proxy 404 page", ejbcasim.Fault{Count: 1, Status: 404, Body: "<html><body>Not Found</body></html>"}, true},
		{"EJBCA's 400", ejbcasim.Fault{Count: 1, Status: 400}, false},
	} {
		sim.InjectFault("pkcs10enroll", tc.fault)
		_, err := c.Enroll(ctx, enrolment(csr, "maybe"))
		if err == nil || ejbca.MayHaveIssued(err) != tc.want {
			t.Errorf("%s: MayHaveIssued(%v) = %v, want %v", tc.name, err, ejbca.MayHaveIssued(err), tc.want)
		}
	}
	// Nothing listens: the request never left.
	o := options(t, sim, modeMTLS)
	o.URL = "https://127.0.0.1:1"
	_, err := newClient(t, o).Enroll(ctx, enrolment(csr, "maybe"))
	if err == nil || ejbca.MayHaveIssued(err) || !ejbca.IsRetryable(err) {
		t.Errorf("connection refused: %v (may have issued %v), want retryable and certainly not issued", err, ejbca.MayHaveIssued(err))
	}
}
