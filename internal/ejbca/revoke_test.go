package ejbca_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// enrolled issues a certificate for username on the default CA.
func enrolled(t *testing.T, ctx context.Context, c *ejbca.Client, username string) *ejbca.Certificate {
	t.Helper()
	csr, _ := simpleCSR(t, username+".example.com")
	cert, err := c.Enroll(ctx, enrolment(csr, username))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return cert
}

func TestRevokeTwiceIsConflict(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)
	cert := enrolled(t, ctx, c, "twice")

	if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonCessationOfOperation, time.Time{}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonKeyCompromise, time.Time{})
	if !ejbca.IsConflict(err) {
		t.Fatalf("second Revoke = %v, want conflict", err)
	}
	if !ejbca.IsPermanent(err) || ejbca.IsRetryable(err) {
		t.Errorf("conflict %v: want permanent, not retryable", err)
	}
	e := asError(t, err)
	if e.StatusCode != 409 || e.Endpoint != "PUT /v1/certificate/{issuer_dn}/{serial}/revoke" || !strings.Contains(e.Message, "has previously been revoked") {
		t.Errorf("error = %+v", e)
	}
	// The first reason stays.
	rs, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
	if err != nil || rs.RevocationReason != ejbca.ReasonCessationOfOperation {
		t.Errorf("RevocationStatus = %+v, %v", rs, err)
	}
	if got := sim.Counters().Calls["revoke"]; got[200] != 1 || got[409] != 1 {
		t.Errorf("revoke calls = %v", got)
	}
}

func TestRevokeSerialForms(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	cert := enrolled(t, ctx, c, "serials")
	serial := cert.SerialNumber
	if serial != strings.ToUpper(serial) || strings.HasPrefix(serial, "0") {
		t.Fatalf("EJBCA's serial %q is not upper case without leading zeros", serial)
	}

	forms := []string{strings.ToLower(serial), "0x" + serial, "0X" + strings.ToLower(serial), "0000" + serial, "0x00" + strings.ToLower(serial)}
	for _, form := range forms {
		rs, err := c.RevocationStatus(ctx, issuingCADN, form)
		if err != nil || rs.Revoked {
			t.Errorf("RevocationStatus(%q) = %+v, %v; want active", form, rs, err)
		}
		if err == nil && rs.SerialNumber != form {
			t.Errorf("RevocationStatus(%q) echoed serial %q", form, rs.SerialNumber)
		}
	}
	rs, err := c.Revoke(ctx, issuingCADN, strings.ToLower(serial), ejbca.ReasonKeyCompromise, time.Time{})
	if err != nil || !rs.Revoked {
		t.Fatalf("Revoke by the lower-case serial = %+v, %v", rs, err)
	}
	for _, form := range append(forms, serial) {
		rs, err := c.RevocationStatus(ctx, issuingCADN, form)
		if err != nil || !rs.Revoked || rs.RevocationReason != ejbca.ReasonKeyCompromise {
			t.Errorf("RevocationStatus(%q) after revocation = %+v, %v", form, rs, err)
		}
		if _, err := c.Revoke(ctx, issuingCADN, form, ejbca.ReasonKeyCompromise, time.Time{}); !ejbca.IsConflict(err) {
			t.Errorf("Revoke(%q) of the revoked certificate = %v, want conflict", form, err)
		}
	}
	if issued := sim.Issued(); !issued[0].Revoked || issued[0].RevocationReason != ejbca.ReasonKeyCompromise {
		t.Errorf("simulator record = %+v", issued[0])
	}
}

func TestRevokeIssuerDNForms(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)

	dns := []string{
		issuingCADN,
		"O=EJBCA Sim,CN=IssuingCA",
		"CN=IssuingCA, O=EJBCA Sim",
		"  O=EJBCA Sim ,  CN=IssuingCA ",
		"cn=IssuingCA,o=EJBCA Sim",
	}
	certs := make([]*ejbca.Certificate, len(dns))
	for i := range dns {
		certs[i] = enrolled(t, ctx, c, "dn-form")
	}
	for i, dn := range dns {
		rs, err := c.RevocationStatus(ctx, dn, certs[i].SerialNumber)
		if err != nil || rs.Revoked {
			t.Errorf("RevocationStatus(%q) = %+v, %v", dn, rs, err)
			continue
		}
		rs, err = c.Revoke(ctx, dn, certs[i].SerialNumber, ejbca.ReasonAffiliationChanged, time.Time{})
		if err != nil || !rs.Revoked {
			t.Errorf("Revoke(%q) = %+v, %v", dn, rs, err)
			continue
		}
		if rs.IssuerDN != dn {
			t.Errorf("Revoke(%q) echoed issuer %q", dn, rs.IssuerDN)
		}
	}
	for i, cert := range certs {
		rs, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
		if err != nil || !rs.Revoked {
			t.Errorf("certificate %d is not revoked: %+v, %v", i, rs, err)
		}
	}
}

// DNs with characters that must be percent-encoded in a path segment.
func TestRevokeEscapesIssuerDN(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	const oddDN = "CN=Team A/B 100% sure? #1,O=EJBCA Sim"
	if _, err := sim.AddCA("OddCA", oddDN, ejbcasim.RootCAName); err != nil {
		t.Fatal(err)
	}
	csr, key := simpleCSR(t, "odd.example.com")
	req := enrolment(csr, "odd")
	req.CAName = "OddCA"
	cert, err := c.Enroll(ctx, req)
	if err != nil {
		t.Fatalf("Enroll on OddCA: %v", err)
	}
	if !key.PublicKey.Equal(cert.Leaf.PublicKey) {
		t.Fatal("wrong key")
	}
	chain, err := c.CAChain(ctx, oddDN)
	if err != nil || len(chain) != 2 || !chain[0].Equal(sim.CACertificate("OddCA")) {
		t.Fatalf("CAChain(%q) = %d certificates, %v", oddDN, len(chain), err)
	}
	for _, dn := range []string{oddDN, "O=EJBCA Sim, CN=Team A/B 100% sure? #1", cert.Leaf.Issuer.String()} {
		rs, err := c.RevocationStatus(ctx, dn, cert.SerialNumber)
		if err != nil || rs.Revoked || rs.IssuerDN != dn {
			t.Errorf("RevocationStatus(%q) = %+v, %v", dn, rs, err)
		}
	}
	rs, err := c.Revoke(ctx, oddDN, cert.SerialNumber, ejbca.ReasonPrivilegesWithdrawn, time.Time{})
	if err != nil || !rs.Revoked || rs.IssuerDN != oddDN {
		t.Fatalf("Revoke = %+v, %v", rs, err)
	}
	// The same serial under another CA is another certificate.
	if _, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber); !ejbca.IsNotFound(err) {
		t.Errorf("RevocationStatus under the wrong CA = %v, want not found", err)
	}
}

func TestRevokeRejections(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	cert := enrolled(t, ctx, c, "rejections")

	_, err := c.Revoke(ctx, issuingCADN, "DEADBEEF", ejbca.ReasonKeyCompromise, time.Time{})
	if !ejbca.IsNotFound(err) || !strings.Contains(ejbca.Message(err), "DEADBEEF") {
		t.Errorf("Revoke(unknown serial) = %v, want not found", err)
	}
	_, err = c.RevocationStatus(ctx, issuingCADN, "DEADBEEF")
	if !ejbca.IsNotFound(err) {
		t.Errorf("RevocationStatus(unknown serial) = %v, want not found", err)
	}
	_, err = c.Revoke(ctx, "CN=No Such CA", cert.SerialNumber, ejbca.ReasonKeyCompromise, time.Time{})
	if !ejbca.IsNotFound(err) || !strings.Contains(ejbca.Message(err), "CN=No Such CA") {
		t.Errorf("Revoke(unknown CA) = %v, want not found", err)
	}

	_, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, "BECAUSE", time.Time{})
	if !ejbca.IsPermanent(err) || ejbca.KindOf(err) != ejbca.KindPermanent || ejbca.Message(err) != "Invalid revocation reason." {
		t.Errorf("Revoke(bad reason) = %v, want permanent %q", err, "Invalid revocation reason.")
	}
	if e := asError(t, err); e.StatusCode != 400 {
		t.Errorf("error = %+v", e)
	}
	_, err = c.Revoke(ctx, issuingCADN, "not-hex", ejbca.ReasonKeyCompromise, time.Time{})
	if !ejbca.IsPermanent(err) || !strings.Contains(ejbca.Message(err), "Invalid serial number format") {
		t.Errorf("Revoke(bad serial) = %v, want permanent", err)
	}

	// Back-dating is refused unless the profile allows it.
	past := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	_, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonKeyCompromise, past)
	if !ejbca.IsPermanent(err) || asError(t, err).StatusCode != 422 || !strings.Contains(ejbca.Message(err), "Back dated revocation not allowed") {
		t.Errorf("back-dated Revoke = %v, want a permanent 422", err)
	}
	sim.SetBackdatedRevocationAllowed(certProfile, true)
	rs, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonKeyCompromise, past)
	if err != nil || !rs.Revoked {
		t.Fatalf("back-dated Revoke allowed by the profile = %+v, %v", rs, err)
	}
	if got, err := time.Parse("2006-01-02T15:04:05Z", rs.RevocationDate); err != nil || !got.Equal(past.UTC()) {
		t.Errorf("revocation_date = %q (%v), want %v", rs.RevocationDate, err, past.UTC())
	}
	if got := sim.Counters().Calls["revoke"]; got[404] != 2 || got[400] != 2 || got[422] != 1 || got[200] != 1 {
		t.Errorf("revoke calls = %v", got)
	}
}

func TestRevokeHoldAndRelease(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)
	cert := enrolled(t, ctx, c, "hold")

	rs, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonCertificateHold, time.Time{})
	if err != nil || !rs.Revoked || rs.RevocationReason != ejbca.ReasonCertificateHold {
		t.Fatalf("hold = %+v, %v", rs, err)
	}
	rs, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonNotRevoked, time.Time{})
	if err != nil || rs.Revoked || rs.Message != "Successfully revoked" || rs.RevocationDate != "" {
		t.Fatalf("release = %+v, %v", rs, err)
	}
	// revokeCert's AlreadyRevokedException: releasing a certificate that is
	// not on hold is a 409.
	if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonNotRevoked, time.Time{}); !ejbca.IsConflict(err) {
		t.Errorf("releasing an active certificate = %v, want conflict", err)
	}
	st, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
	if err != nil || st.Revoked || st.RevocationDate != "" || st.Message != "" {
		t.Errorf("RevocationStatus of a released certificate = %+v, %v", st, err)
	}
	if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonCertificateHold, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A hold becomes a permanent revocation.
	rs, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonKeyCompromise, time.Time{})
	if err != nil || rs.RevocationReason != ejbca.ReasonKeyCompromise {
		t.Fatalf("hold to key compromise = %+v, %v", rs, err)
	}
	if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonCertificateHold, time.Time{}); !ejbca.IsConflict(err) {
		t.Errorf("hold of a revoked certificate = %v, want conflict", err)
	}
}

// On an approval profile: the same revocation asked again while the first
// waits (its 202 lost) is EJBCA's 400 "approval already exists", which the
// client reads as pending, not as a refusal; a certificate already revoked
// is a 409 before any approval is asked for.
func TestRevokeAskedAgainWhileWaitingIsPending(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			if !sim.Behaviour().Approvals {
				t.Skip("no approvals on this preset")
			}
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			cert := enrolled(t, ctx, c, "waiting")
			done := enrolled(t, ctx, c, "done")
			if _, err := c.Revoke(ctx, issuingCADN, done.SerialNumber, ejbca.ReasonSuperseded, time.Time{}); err != nil {
				t.Fatal(err)
			}
			sim.SetApprovalRequired(certProfile, true)

			sim.InjectFault("revoke", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true}) // handled, the 202 lost
			if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonSuperseded, time.Time{}); !ejbca.NoAnswer(err) {
				t.Fatalf("Revoke with the 202 lost = %v, want no answer", err)
			}
			_, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonSuperseded, time.Time{})
			if ejbca.KindOf(err) != ejbca.KindPending || ejbca.IsPermanent(err) {
				t.Fatalf("Revoke asked again = %v, want pending", err)
			}
			if !ejbca.IsPending(err) || !ejbca.IsApprovalAlreadyExists(err) {
				t.Errorf("Revoke asked again: pending %v, approval already exists %v, want both", ejbca.IsPending(err), ejbca.IsApprovalAlreadyExists(err))
			}
			if e := asError(t, err); e.StatusCode != 400 || e.RequestID != 0 || !strings.Contains(e.Message, "already exists") {
				t.Errorf("error = %+v", e)
			}
			if got := sim.PendingApprovals(); len(got) != 1 {
				t.Errorf("pending approvals %v, want the one request", got)
			}
			if _, err := c.Revoke(ctx, issuingCADN, done.SerialNumber, ejbca.ReasonSuperseded, time.Time{}); !ejbca.IsConflict(err) {
				t.Errorf("Revoke of a revoked certificate on an approval profile = %v, want conflict", err)
			}
			if got := sim.PendingApprovals(); len(got) != 1 {
				t.Errorf("pending approvals %v after the 409, want the one request", got)
			}
		})
	}
}
