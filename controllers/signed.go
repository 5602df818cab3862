package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// signed is the decision on a certificate EJBCA gave, for either request
// kind: refused (Failed, not stored) when it lacks what was asked and the
// issuer says unmetRequest: Fail, else stored with the Issued event and a
// Warning for each mismatch.
type signed struct {
	// FailedMessage, when set, fails the request instead of storing it.
	FailedMessage string
	Event         Event
	Warnings      []Event
}

// decideSigned takes what the certificate lacks of the request (lacks) and
// how its validity differs from the requested one (mismatch), both "" when
// nothing.
func decideSigned(cert *ejbca.Certificate, lacks, mismatch string, failUnmet bool) signed {
	if lacks != "" && failUnmet {
		return signed{FailedMessage: fmt.Sprintf("EJBCA issued serial %s, but %s; the issuer's unmetRequest is Fail, so it is not stored (revoke it in EJBCA if it is not wanted)",
			cert.SerialNumber, lacks)}
	}
	s := signed{Event: Event{corev1.EventTypeNormal, EventIssued,
		fmt.Sprintf("Certificate %q issued by EJBCA, serial %s", cert.Leaf.Subject.String(), cert.SerialNumber)}}
	if lacks != "" {
		s.Warnings = append(s.Warnings, Event{corev1.EventTypeWarning, EventUnmetRequest,
			fmt.Sprintf("The certificate (serial %s) does not carry what the request asked for: %s; the certificate profile decides", cert.SerialNumber, lacks)})
	}
	if mismatch != "" {
		s.Warnings = append(s.Warnings, Event{corev1.EventTypeWarning, EventDurationMismatch, mismatch})
	}
	return s
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
