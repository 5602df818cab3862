package signing

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcaname"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// backdateAllowance covers EJBCA's default backdating of notBefore (10
// minutes) and clock skew when recovering a certificate.
const backdateAllowance = 15 * time.Minute

// Signer enrols CertificateRequests with EJBCA: one call when it can, the
// approval flow when EJBCA needs an administrator, and recovery of a
// certificate whose answer was lost, so nothing is issued twice. Everything
// it sends to EJBCA is derived from the issuer and the CSR; request
// annotations are honoured only where the issuer allows an override, and its
// own records on the request are clamped or sealed.
type Signer struct {
	// Client creates enrolment Secrets; the request's own records go through
	// its SigningRequest's EnrolmentState.
	Client client.Client
	// Reader reads enrolment Secrets (uncached: Secrets are only watched
	// as metadata).
	Reader client.Reader
	Clock  clock.PassiveClock
	// Jitter spreads approval polls; it returns a factor near 1.
	Jitter func() float64
	// Limits refuse oversized requests before EJBCA is called.
	Limits RequestLimits
	// Lease is asked before every EJBCA call that issues or adds; nil
	// without leader election.
	Lease *leadership.Lease
	// Settle is how long after an attempt EJBCA may still finish it; see
	// SettleTime.
	Settle time.Duration
	// Attempts remembers the enrolments whose answer may have been lost.
	Attempts *Attempts
	// Key seals the approval records and the enrolment Secrets: the
	// manager's key, which no tenant can read.
	Key IssuanceKey
}

// secrets are the enrolment Secrets of the approval flow.
func (s *Signer) secrets() enrolmentSecrets { return enrolmentSecrets{s.Client, s.Reader, s.Key} }

// issuersOwn are the CA and profile names the issuer itself sends for sr
// (a profile a request chose through an allowed override is not).
func issuersOwn(spec *v1alpha1.IssuerSpec, sr *SigningRequest) ownNames {
	own := ownNames{CA: spec.CAName}
	cp, eep := profiles(spec, sr)
	if cp == spec.EffectiveCertificateProfileName() {
		own.CertificateProfile = cp
	}
	if eep == spec.EffectiveEndEntityProfileName() {
		own.EndEntityProfile = eep
	}
	return own
}

// mayCall reports whether this process may start an EJBCA call that issues
// or adds: a deposed leader must not, even for a moment.
func (s *Signer) mayCall() bool { return s.Lease.Holds() }

// The signer is the one way to the exactly-once memory (Attempts): the
// request reconcilers only tell it that a request is final or gone.

// Forget drops the memory of a request found final (by its UID): nothing
// can be sent for it any more.
func (s *Signer) Forget(uid types.UID) { s.Attempts.Done(uid) }

// ForgetDeleted drops the memory of a request that no longer exists.
func (s *Signer) ForgetDeleted(namespace, name string) { s.Attempts.Deleted(namespace, name) }

// HoldsCertificate: EJBCA already issued the request's certificate and only
// its status write is missing; Sign returns it without a call.
func (s *Signer) HoldsCertificate(sr *SigningRequest) bool { return s.Attempts.Held(sr) != nil }

// Sign asks EJBCA for the request's certificate, unless EJBCA already gave
// it and only the status write failed.
func (s *Signer) Sign(ctx context.Context, sr *SigningRequest, iss v1alpha1.Issuer, cl *ejbca.Client) SignResult {
	if cert := s.Attempts.Held(sr); cert != nil {
		return SignResult{Certificate: cert}
	}
	res := s.sign(ctx, sr, iss, cl)
	if res.Certificate != nil {
		s.Attempts.Issued(sr, res.Certificate)
	}
	if res.Err != nil {
		// EJBCA's message goes to the requester's status and events: it
		// names no end entity but the request's own.
		ejbca.RedactEndEntities(res.Err, s.ownNames(iss.GetSpec(), sr)...)
	}
	if own := issuersOwn(iss.GetSpec(), sr); forbidden(res.Err) && (own.CertificateProfile == "" || own.EndEntityProfile == "") {
		// EJBCA refused a profile the request chose through an allowed
		// override: the issuer's role may not use it. That is the
		// request's fault, not the issuer's credentials', which other
		// tenants share.
		res.Err = &PermanentError{Msg: fmt.Sprintf("EJBCA refused the profile this request chose through an allowed override: %v", res.Err), Err: res.Err}
	}
	return res
}

// ownNames are the end entities the request may use, which its messages
// may name.
func (s *Signer) ownNames(spec *v1alpha1.IssuerSpec, sr *SigningRequest) []string {
	own := []string{ownEndEntityName(sr)}
	if csr, err := parseRequestCSR(sr.CSR); err == nil {
		if name, err := endEntityName(spec, sr, csr); err == nil {
			own = append(own, name, approvalEndEntityName(spec, sr, name))
		}
	}
	return own
}

func (s *Signer) sign(ctx context.Context, sr *SigningRequest, iss v1alpha1.Issuer, cl *ejbca.Client) SignResult {
	spec := iss.GetSpec()
	csr, err := parseRequestCSR(sr.CSR)
	if err != nil {
		return SignResult{Err: &PermanentError{Msg: err.Error(), Err: err}}
	}
	if err := s.Limits.check(sr.CSR, csr); err != nil {
		return SignResult{Err: err}
	}
	username, err := endEntityName(spec, sr, csr)
	if err != nil {
		return SignResult{Err: &PermanentError{Msg: err.Error(), Err: err}}
	}
	approvalUser := approvalEndEntityName(spec, sr, username)
	if wait := cl.Admit(); wait > 0 {
		// Not a worker blocked on the limit: the request comes back when
		// a call can go.
		return SignResult{Err: &ThrottledError{Wait: wait}}
	}

	var warnings []string
	if hasApprovalRecord(sr) {
		password, secretCreated, found, err := s.secrets().password(ctx, sr, false)
		if err != nil {
			return SignResult{Err: err}
		}
		if rec, ok := readApprovalRecord(s.Key, sr, approvalUser, password); found && ok {
			return s.continueApproval(ctx, sr, spec, cl, approvalUser, password, clampApprovalStart(rec, sr.Created, secretCreated, s.Settle))
		}
		warnings = append(warnings, "Ignored approval annotations that ejbca-issuer did not write for this request")
		logf.FromContext(ctx).Info("ignoring approval annotations that do not verify")
	}
	prev, unanswered, err := s.Attempts.Unanswered(ctx, sr)
	if err != nil {
		return SignResult{Err: err}
	}
	if unanswered {
		if res, done := s.recover(ctx, sr, spec, cl, prev, username, approvalUser); done {
			res.Warnings = append(warnings, res.Warnings...)
			return res
		}
		s.Attempts.Settled(sr)
	}
	res := s.enrol(ctx, sr, spec, cl, csr, username, approvalUser)
	res.Warnings = append(warnings, res.Warnings...)
	return res
}

func (s *Signer) enrol(ctx context.Context, sr *SigningRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	csr *x509.CertificateRequest, username, approvalUser string) SignResult {
	if spec.AlwaysUseApprovalFlow() {
		return s.startApproval(ctx, sr, spec, cl, csr, approvalUser)
	}
	certProfile, eeProfile := profiles(spec, sr)
	req := ejbca.EnrollRequest{
		CSR: sr.CSR, ParsedCSR: csr, CAName: spec.CAName, Username: username,
		CertificateProfileName: certProfile, EndEntityProfileName: eeProfile,
	}
	if spec.UseRequestedDuration && sr.Duration > 0 {
		req.NotAfter = s.Clock.Now().Add(sr.Duration)
	}
	if !s.mayCall() {
		return SignResult{Err: ErrNotLeader}
	}
	s.Attempts.Sent(sr, s.Clock.Now())
	cert, err := cl.Enroll(ctx, req)
	switch {
	case err == nil:
		return SignResult{Certificate: cert}
	case ejbca.IsApprovalRequired(err):
		logf.FromContext(ctx).Info("EJBCA requires approval for this enrolment; switching to the approval flow", "endEntity", approvalUser)
		// EJBCA refused: nothing to recover, even if the add that follows
		// loses its answer.
		s.Attempts.Settled(sr)
		return s.startApproval(ctx, sr, spec, cl, csr, approvalUser)
	case !ejbca.MayHaveIssued(err) && !ejbca.IsPermanent(err):
		// EJBCA certainly did not issue (it answered 403 or 429, or the call
		// never left): the retry needs no search.
		s.Attempts.Settled(sr)
	case ejbca.IsPermanent(err):
		// EJBCA answered and refused: nothing was issued.
		s.Attempts.Settled(sr)
		err = issuerRefusal(err, issuersOwn(spec, sr))
	}
	return SignResult{Err: err}
}

// recover looks for a certificate EJBCA issued for an attempt whose answer
// was lost. done is false when there is none and enrolment may go on.
func (s *Signer) recover(ctx context.Context, sr *SigningRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	prev UnansweredAttempt, names ...string) (SignResult, bool) {
	for i, name := range names {
		if i > 0 && name == names[i-1] {
			continue
		}
		cert, err := cl.FindIssued(ctx, ejbca.FindRequest{Username: name, CAName: spec.CAName, CSR: sr.CSR, IssuedAfter: prev.SearchFrom.Add(-backdateAllowance)})
		if err != nil {
			return SignResult{Err: err}, true
		}
		if cert != nil {
			logf.FromContext(ctx).Info("recovered a certificate EJBCA issued earlier instead of enrolling again",
				"endEntity", name, "serial", cert.SerialNumber)
			return SignResult{Certificate: cert}, true
		}
	}
	if proven, lookAgain := absenceProven(prev.At, s.Clock.Now(), s.Settle); !proven {
		return SignResult{Err: &StillIssuingError{Attempted: prev.At, LookAgain: lookAgain, Inherited: prev.Inherited}}, true
	}
	return SignResult{}, false
}

// startApproval adds the request's end entity with a password kept in a
// Secret owned by the request, and records EJBCA's approval request (id,
// time) on the request, sealed.
func (s *Signer) startApproval(ctx context.Context, sr *SigningRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	csr *x509.CertificateRequest, username string) SignResult {
	password, _, _, err := s.secrets().password(ctx, sr, true)
	if err != nil {
		return SignResult{Err: err}
	}
	certProfile, eeProfile := profiles(spec, sr)
	if !s.mayCall() {
		return SignResult{Err: ErrNotLeader}
	}
	add, err := cl.AddEndEntity(ctx, ejbca.EndEntity{
		Username: username, Password: password,
		SubjectDN: ejbcaname.SubjectDN(csr, username), SubjectAltName: ejbcaname.SubjectAltName(csr),
		CAName: spec.CAName, CertificateProfileName: certProfile, EndEntityProfileName: eeProfile,
	})
	now := s.Clock.Now()
	switch {
	case ejbca.IsConflict(err) && username == ownEndEntityName(sr):
		// The request's own end entity exists: an earlier attempt added it
		// (with this Secret's password) and its approval was carried out.
		return s.enrolForEndEntity(ctx, sr, spec, cl, username, password, sr.Created)
	case err != nil:
		return SignResult{Err: issuerRefusal(err, issuersOwn(spec, sr))}
	case !add.WaitingForApproval:
		// Added without approval: enrol for it now.
		return s.enrolForEndEntity(ctx, sr, spec, cl, username, password, now)
	}
	rec := approvalRecord{RequestID: add.RequestID, Since: now.UTC().Truncate(time.Second)}
	if err := sr.State.Set(ctx, rec.annotations(s.Key, sr, username, password)); err != nil {
		return SignResult{Err: err}
	}
	logf.FromContext(ctx).Info("waiting for EJBCA approval", "approvalRequest", add.RequestID, "endEntity", username)
	return SignResult{WaitingForApproval: &Approval{RequestID: rec.RequestID, EndEntity: username, Since: rec.Since, PollAfter: s.pollAfter(spec, 0)},
		ApprovalSince: rec.Since}
}

// continueApproval asks EJBCA how the approval stands: through the approval
// API where EJBCA has it and gave an id, otherwise by trying to enrol for
// the end entity, which fails until the addition was approved.
func (s *Signer) continueApproval(ctx context.Context, sr *SigningRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	username, password string, rec approvalRecord) SignResult {
	probe := rec.RequestID == 0
	if !probe {
		state, err := cl.ApprovalStatus(ctx, rec.RequestID)
		switch {
		case ejbca.IsUnsupported(err) || ejbca.IsNotFound(err):
			// No approval API on this EJBCA, or the request was purged.
			probe = true
		case err != nil:
			return SignResult{Err: err, ApprovalSince: rec.Since}
		case state.Refused():
			return SignResult{Err: &PermanentError{Msg: fmt.Sprintf("EJBCA approval request %d ended %s: not issued", rec.RequestID, state)}, ApprovalSince: rec.Since}
		case state.Approved():
			probe = true
		}
	}
	if probe {
		res := s.enrolForEndEntity(ctx, sr, spec, cl, username, password, rec.Since)
		if !ejbca.IsEndEntityNotFound(res.Err) {
			res.ApprovalSince = rec.Since
			return res
		}
	}
	waited := s.Clock.Now().Sub(rec.Since)
	if maxWait := spec.ApprovalMaxWait(); waited > maxWait {
		return SignResult{Err: &PermanentError{Msg: fmt.Sprintf(
			"%s was not approved within the issuer's approval.maxWait (%s)", approvalName(rec.RequestID, username), maxWait)}, ApprovalSince: rec.Since}
	}
	return SignResult{WaitingForApproval: &Approval{RequestID: rec.RequestID, EndEntity: username, Since: rec.Since, PollAfter: s.pollAfter(spec, waited)},
		ApprovalSince: rec.Since}
}

// clampApprovalStart bounds a verified record's start by what the API
// server saw, so that it holds even if the key leaked: the approval began
// after the request's creation, and within one EJBCA call (settle) of the
// enrolment Secret's creation, which came just before it. A later start
// would keep a request waiting past approval.maxWait.
func clampApprovalStart(rec approvalRecord, requestCreated, secretCreated time.Time, settle time.Duration) approvalRecord {
	if created := requestCreated.Truncate(time.Second); rec.Since.Before(created) {
		rec.Since = created
	}
	if latest := secretCreated.Add(settle).Truncate(time.Second); !secretCreated.IsZero() && rec.Since.After(latest) {
		rec.Since = latest
	}
	return rec
}

func approvalName(id int, endEntity string) string {
	if id == 0 {
		return fmt.Sprintf("EJBCA's addition of end entity %q (EJBCA gave no approval request id)", endEntity)
	}
	return fmt.Sprintf("EJBCA approval request %d", id)
}

// enrolForEndEntity enrols the CSR for the request's added end entity. When
// EJBCA refuses because the end entity was already used, an earlier call
// issued and its answer was lost: the certificate is recovered by search.
func (s *Signer) enrolForEndEntity(ctx context.Context, sr *SigningRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	username, password string, since time.Time) SignResult {
	if !s.mayCall() {
		return SignResult{Err: ErrNotLeader}
	}
	cert, err := cl.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{
		CSR: sr.CSR, Username: username, Password: password, CAName: spec.CAName,
	})
	switch {
	case err == nil:
		return SignResult{Certificate: cert}
	case ejbca.IsPermanent(err) && answered(err) && !ejbca.IsEndEntityNotFound(err):
		if res, done := s.recover(ctx, sr, spec, cl, UnansweredAttempt{At: since, SearchFrom: since}, username); done {
			return res
		}
	}
	return SignResult{Err: err}
}

// pollAfter is ApprovalPollAfter with the signer's jitter.
func (s *Signer) pollAfter(spec *v1alpha1.IssuerSpec, waited time.Duration) time.Duration {
	j := 1.0
	if s.Jitter != nil {
		j = s.Jitter()
	}
	return ApprovalPollAfter(waited, spec.ApprovalPollInterval(), j)
}

// ApprovalPollAfter is how long a request that has waited for approval for
// waited sleeps before asking EJBCA again: about 5s, 15s, 45s, 2m, then
// every 5m (twice the time already waited, at least 5s), capped by the
// issuer's pollInterval and 5m, times jitter.
func ApprovalPollAfter(waited, pollInterval time.Duration, jitter float64) time.Duration {
	d := max(2*waited, 5*time.Second)
	if limit := min(5*time.Minute, pollInterval); d > limit {
		d = limit
	}
	return time.Duration(float64(d) * jitter)
}

// forbidden reports EJBCA's 403: these credentials may not do this.
func forbidden(err error) bool { return ejbca.IsForbidden(err) }

// requestForbidden reports EJBCA's own 403 to a request's call: not the
// identity provider's (the issuer's credentials), which stays an issuer
// fault.
func requestForbidden(err error) bool {
	return forbidden(err) && !ejbca.IsTokenEndpoint(err)
}

// answered reports whether EJBCA gave a definitive answer (a 4xx), so it
// certainly did not issue; without a response, or with a 5xx, it may have.
func answered(err error) bool { return ejbca.IsDefinitive(err) }

func parseRequestCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("spec.request is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("spec.request does not parse: %v", err)
	}
	// The signature is checked by the EJBCA client before anything is sent.
	return csr, nil
}
