package signing

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// signed is the decision on a certificate EJBCA gave, for either request
// kind: refused (Failed, not stored) when it lacks what the request needs
// and the issuer says unmetRequest: Fail, else stored with the Issued event.
// A difference that can hurt the request is a Warning on it; one that comes
// from the issuer's configuration, the same for every request, is an
// IssuerNotice, reported on the issuer once an hour with a count.
type signed struct {
	// FailedMessage, when set, fails the request instead of storing it.
	FailedMessage string
	Event         Event
	Warnings      []Event
	Notices       []IssuerNotice
}

// decideSigned takes what the certificate lacks of the request (u) and how
// its validity differs from the requested one (v).
func decideSigned(cert *ejbca.Certificate, u usages, v validity, useRequested, failUnmet bool) signed {
	lacks := lacking(u.Needed)
	if lacks != "" && failUnmet {
		return signed{FailedMessage: fmt.Sprintf("EJBCA issued serial %s, but %s; the issuer's unmetRequest is Fail, so it is not stored (revoke it in EJBCA if it is not wanted)",
			cert.SerialNumber, lacks)}
	}
	msg := fmt.Sprintf("Certificate %q issued by EJBCA, serial %s", cert.Leaf.Subject.String(), cert.SerialNumber)
	var s signed
	if lacks != "" {
		s.Warnings = append(s.Warnings, Event{corev1.EventTypeWarning, EventUnmetRequest,
			fmt.Sprintf("The certificate (serial %s) does not carry what the request asked for: %s; the certificate profile decides", cert.SerialNumber, lacks)})
	}
	if v.Shorter != "" {
		s.Warnings = append(s.Warnings, Event{corev1.EventTypeWarning, EventDurationMismatch, v.Shorter})
	}
	if v.Longer != "" {
		typ := corev1.EventTypeNormal
		if useRequested {
			// The issuer asks EJBCA for the requested end time, and
			// EJBCA does not apply it: not what the operator configured.
			typ = corev1.EventTypeWarning
		}
		s.Notices = append(s.Notices, IssuerNotice{Type: typ, Reason: NoticeValidityFromProfile, Message: v.Longer})
		msg += fmt.Sprintf("; valid for %s, not the requested %s (the issuer's configuration decides: see its %s events)",
			v.Issued.Round(time.Minute), v.Requested, NoticeValidityFromProfile)
	}
	if len(u.NotForKey) > 0 {
		alg := keyAlgorithm(cert.Leaf.PublicKey)
		s.Notices = append(s.Notices, IssuerNotice{Type: corev1.EventTypeNormal, Reason: NoticeUsageNotForKey,
			Message: fmt.Sprintf("certificates for %s keys lack %s, which such keys cannot have (cert-manager asks for key encipherment by default, whatever the key); the certificate profile rightly leaves it out",
				alg, strings.Join(u.NotForKey, ", "))})
	}
	s.Event = Event{corev1.EventTypeNormal, EventIssued, msg}
	return s
}

// keyAlgorithm names a public key's algorithm for messages.
func keyAlgorithm(pub any) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return "RSA"
	}
	return "such"
}

// ignoredAnnotations are the Warning events for annotations the signer
// ignored (approval records it did not write).
func ignoredAnnotations(r *SignResult) []Event {
	var out []Event
	for _, w := range r.Warnings {
		out = append(out, Event{corev1.EventTypeWarning, EventIgnoredAnnotations, w})
	}
	return out
}
