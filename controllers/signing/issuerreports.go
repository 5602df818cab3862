// Package signing is the kind-neutral core that signs a request with EJBCA:
// the request seen apart from its kind, the signer and its exactly-once
// memory, the decisions, and the errors they return. It knows nothing of
// watches or controller wiring (controller-runtime's builder, handler and
// predicate packages), and it writes no issuer: what the request side learns
// about an issuer reaches the issuer controllers through Issuers.
package signing

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// What the request side tells the issuer controllers, and what it waits on.

// MinHealthCheckSpacing is the least time between two health checks of one
// issuer that the issuer's own state triggers (failures, backoff); only a
// change the user makes (spec, a referenced Secret) checks sooner.
const MinHealthCheckSpacing = time.Minute

// IssuerFault is an issuer's fault that a request found: EJBCA refused the
// issuer's credentials (Unauthorized) or its CA or profiles (ProfileNotFound).
type IssuerFault struct {
	Reason, Message string
}

// Reasons of the events on an issuer that report a difference its
// configuration makes for every request (see IssuerNotice).
const (
	// NoticeValidityFromProfile: certificates are valid longer than
	// requested, because the certificate profile decides the validity.
	NoticeValidityFromProfile = "ValidityFromProfile"
	// NoticeUsageNotForKey: certificates lack a requested key usage their
	// key type cannot have (key encipherment for EC keys).
	NoticeUsageNotForKey = "UsageNotForKey"
)

// IssuerNotice is a difference between what a request asked for and what it
// got that comes from the issuer's configuration and does not hurt the
// request. It is counted in the profile differences metric and reported on
// the issuer by the issuer controller, once per NoticeInterval per Reason.
type IssuerNotice struct {
	Type, Reason, Message string
}

// IssuerUnansweredError: a request got no answer from EJBCA through its
// issuer (Err), or did not call because another one just did (Err nil).
// It waits for the issuer's re-check instead of retrying on its own.
type IssuerUnansweredError struct {
	Issuer string
	Err    error
}

func (e *IssuerUnansweredError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("Waiting for %s to be re-checked: a request through it got no answer from EJBCA, so no call is made until the issuer's check or EJBCA's status probe finds EJBCA answering", e.Issuer)
	}
	return fmt.Sprintf("Waiting for %s to be re-checked: EJBCA gave no answer (%v); the request is tried again when the issuer's check or EJBCA's status probe finds EJBCA answering", e.Issuer, e.Err)
}

func (e *IssuerUnansweredError) Unwrap() error { return e.Err }

// Issuers is what the request side may say to the issuer controllers
// (controllers/issuers.IssuerWakes); it writes no issuer itself. Nil (a
// reconciler run alone in a test) suspects nothing and tells no one.
type Issuers interface {
	// Suspected: a request through the issuer got no answer from EJBCA
	// since the issuer's last check.
	Suspected(kind string, key types.NamespacedName) bool
	// Suspect: a request got no answer from EJBCA through the issuer;
	// requests through it wait for its re-check.
	Suspect(kind string, key types.NamespacedName)
	// Doubt: EJBCA refused a request through the issuer (403), or a node
	// was set aside; the issuer's check, at its usual spacing, tells.
	Doubt(kind string, key types.NamespacedName)
	// Report: a request found the issuer at fault.
	Report(kind string, key types.NamespacedName, fault IssuerFault)
	// Notice: a request's certificate differs from what it asked for
	// because of the issuer's configuration.
	Notice(kind string, key types.NamespacedName, n IssuerNotice)
}
