package signing

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// A certificate as EJBCA's profile gives it: validity, key, usages.
func issuedFor(t *testing.T, pub any, validity time.Duration, ku x509.KeyUsage, eku ...x509.ExtKeyUsage) *ejbca.Certificate {
	t.Helper()
	return &ejbca.Certificate{
		Leaf: &x509.Certificate{SerialNumber: big.NewInt(0xABC), Subject: pkix.Name{CommonName: "web.example.com"},
			NotBefore: t0.Add(-10 * time.Minute), NotAfter: t0.Add(validity), PublicKey: pub, KeyUsage: ku, ExtKeyUsage: eku},
		SerialNumber: "ABC", ChainPEM: []byte("LEAF"), CAPEM: []byte("ROOT"),
	}
}

// What a request sees of a certificate that differs from what it asked for:
// a difference the issuer's configuration makes for every request (a
// profile's longer validity, key encipherment an EC key cannot have) is a
// notice for the issuer and no Warning on the request; one that can hurt the
// request (a shorter validity, a usage it could use and did not get) is a
// Warning, and fails it under unmetRequest: Fail.
func TestSignedWarnsOnlyWhatHurtsTheRequest(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const year = 365 * 24 * time.Hour
	sig, enc := x509.KeyUsageDigitalSignature, x509.KeyUsageKeyEncipherment
	server := x509.ExtKeyUsageServerAuth
	// cert-manager's request for a Certificate with duration 2h and its
	// default usages plus server auth.
	certManager := func(cr *cmapi.CertificateRequest) {
		cr.Spec.Duration = &metav1.Duration{Duration: 2 * time.Hour}
		cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}
	}
	for _, tc := range []struct {
		name       string
		cr         *cmapi.CertificateRequest
		cert       *ejbca.Certificate
		issuer     IssuerState
		failed     string   // substring of the failure, "" when stored
		warnings   []string // reasons
		notices    []string // reasons
		noticeType string   // of the first notice
		issuedMsg  string   // substring of the Issued event
	}{
		{name: "cert-manager's EC request on a one-year profile without key encipherment for EC",
			cr: request(approved, certManager), cert: issuedFor(t, &ec.PublicKey, year, sig, server), issuer: readyIssuer,
			notices: []string{NoticeValidityFromProfile, NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal,
			issuedMsg: "valid for 8760h10m0s, not the requested 2h0m0s (the issuer's configuration decides: see its ValidityFromProfile events)"},
		{name: "the same under unmetRequest: Fail is still stored",
			cr: request(approved, certManager), cert: issuedFor(t, &ec.PublicKey, year, sig, server), issuer: IssuerState{Found: true, Ready: true, FailUnmet: true},
			notices: []string{NoticeValidityFromProfile, NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal},
		{name: "the issuer asks for the requested end time and EJBCA gives its own: a Warning on the issuer",
			cr: request(approved, certManager), cert: issuedFor(t, &ec.PublicKey, year, sig, server), issuer: IssuerState{Found: true, Ready: true, UseRequestedDuration: true},
			notices: []string{NoticeValidityFromProfile, NoticeUsageNotForKey}, noticeType: corev1.EventTypeWarning},
		{name: "cert-manager's RSA request, everything given",
			cr: request(approved, certManager), cert: issuedFor(t, &rsaKey.PublicKey, 2*time.Hour, sig|enc, server), issuer: readyIssuer},
		{name: "RSA without key encipherment: it needs it",
			cr: request(approved, certManager), cert: issuedFor(t, &rsaKey.PublicKey, 2*time.Hour, sig, server), issuer: readyIssuer,
			warnings: []string{EventUnmetRequest}},
		{name: "RSA without key encipherment under Fail fails",
			cr: request(approved, certManager), cert: issuedFor(t, &rsaKey.PublicKey, 2*time.Hour, sig, server), issuer: IssuerState{Found: true, Ready: true, FailUnmet: true},
			failed: "it lacks usage key encipherment"},
		{name: "key agreement for RSA is the key's, not the request's",
			cr:   request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageKeyAgreement} }),
			cert: issuedFor(t, &rsaKey.PublicKey, 90*24*time.Hour, sig), issuer: readyIssuer, notices: []string{NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal},
		{name: "Ed25519 without key encipherment",
			cr: request(approved, certManager), cert: issuedFor(t, edPub, 2*time.Hour, sig, server), issuer: readyIssuer,
			notices: []string{NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal},
		{name: "EC without server auth: it needs it",
			cr: request(approved, certManager), cert: issuedFor(t, &ec.PublicKey, 2*time.Hour, sig, x509.ExtKeyUsageClientAuth), issuer: readyIssuer,
			warnings: []string{EventUnmetRequest}, notices: []string{NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal},
		{name: "EC without digital signature: it needs it",
			cr: request(approved, certManager), cert: issuedFor(t, &ec.PublicKey, 2*time.Hour, 0, server), issuer: readyIssuer,
			warnings: []string{EventUnmetRequest}, notices: []string{NoticeUsageNotForKey}, noticeType: corev1.EventTypeNormal},
		{name: "isCA not given",
			cr: request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.IsCA = true }), cert: issuedFor(t, &ec.PublicKey, 90*24*time.Hour, sig), issuer: readyIssuer,
			warnings: []string{EventUnmetRequest}},
		{name: "a validity shorter than requested hurts the request",
			cr:   request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: 2 * year} }),
			cert: issuedFor(t, &ec.PublicKey, year, sig), issuer: readyIssuer, warnings: []string{EventDurationMismatch}},
		{name: "within EJBCA's rounding", cr: request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: 2 * time.Hour} }),
			cert: issuedFor(t, &ec.PublicKey, 2*time.Hour+30*time.Minute, sig), issuer: readyIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(Input{Request: tc.cr, Issuer: tc.issuer, Now: t0, Result: &SignResult{Certificate: tc.cert}})
			if tc.failed != "" {
				if !d.Failed || !strings.Contains(d.Message, tc.failed) {
					t.Fatalf("failed %v %q, want failed with %q", d.Failed, d.Message, tc.failed)
				}
				return
			}
			if d.Failed || d.Status != "True" || d.Event == nil || d.Event.Type != corev1.EventTypeNormal || d.Event.Reason != EventIssued {
				t.Fatalf("decision %+v, want Issued with a Normal Issued event", d)
			}
			if !strings.Contains(d.Event.Message, tc.issuedMsg) {
				t.Errorf("Issued event %q, want it to contain %q", d.Event.Message, tc.issuedMsg)
			}
			var warnings, notices []string
			for _, w := range d.Warnings {
				warnings = append(warnings, w.Reason)
			}
			for _, n := range d.Notices {
				notices = append(notices, n.Reason)
			}
			if strings.Join(warnings, ",") != strings.Join(tc.warnings, ",") {
				t.Errorf("warnings %v, want %v: %+v", warnings, tc.warnings, d.Warnings)
			}
			if strings.Join(notices, ",") != strings.Join(tc.notices, ",") {
				t.Errorf("notices %v, want %v: %+v", notices, tc.notices, d.Notices)
			}
			if len(d.Notices) > 0 && d.Notices[0].Type != tc.noticeType {
				t.Errorf("notice type %s, want %s", d.Notices[0].Type, tc.noticeType)
			}
		})
	}
}
