package controllers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// Annotations the signer keeps on a CertificateRequest. All enrolment state
// lives there (and the password in a Secret owned by the request), so a
// restart or a new leader resumes where the last one stopped.
const (
	// AnnotationEndEntity is the EJBCA username chosen for the request.
	AnnotationEndEntity = "ejbca-issuer.certctl.io/end-entity"
	// AnnotationEnrolmentAttempted is set, before EJBCA is asked to issue,
	// to the time of the attempt. When it is present on a request that is not
	// issued, EJBCA may have issued without the answer arriving: the signer
	// looks for that certificate before enrolling again.
	AnnotationEnrolmentAttempted = "ejbca-issuer.certctl.io/enrolment-attempted-at"
	// AnnotationApprovalRequestID is EJBCA's approval request id.
	AnnotationApprovalRequestID = "ejbca-issuer.certctl.io/approval-request-id"
	// AnnotationApprovalRequestedAt is when the approval was requested.
	AnnotationApprovalRequestedAt = "ejbca-issuer.certctl.io/approval-requested-at"
	// AnnotationEnrolmentSecret names the Secret holding the end entity's
	// enrolment password.
	AnnotationEnrolmentSecret = "ejbca-issuer.certctl.io/enrolment-secret"

	// LabelEnrolmentSecret marks the Secrets the signer owns.
	LabelEnrolmentSecret = "ejbca-issuer.certctl.io/enrolment-secret"
	enrolmentPasswordKey = "password"

	// backdateAllowance covers EJBCA's default backdating of notBefore (10
	// minutes) and clock skew when recovering a certificate.
	backdateAllowance = 15 * time.Minute
)

// PermanentError is a request problem no retry can fix (a CSR the issuer
// cannot name, an approval rejected in EJBCA, a wait past maxWait).
type PermanentError struct{ Msg string }

func (e *PermanentError) Error() string { return e.Msg }

// Signer enrols CertificateRequests with EJBCA: one call when it can, the
// approval flow when EJBCA needs an administrator, and recovery of a
// certificate whose answer was lost, so nothing is issued twice.
type Signer struct {
	// Client writes the request's annotations and the enrolment Secret.
	Client client.Client
	// Reader reads the enrolment Secret (uncached: Secrets are only watched
	// as metadata).
	Reader client.Reader
	Now    func() time.Time
	// Jitter spreads approval polls; it returns a factor near 1.
	Jitter func() float64
}

// Sign asks EJBCA for the request's certificate.
func (s *Signer) Sign(ctx context.Context, cr *cmapi.CertificateRequest, iss v1alpha1.Issuer, cl *ejbca.Client) SignResult {
	spec := iss.GetSpec()
	csr, err := parseRequestCSR(cr.Spec.Request)
	if err != nil {
		return SignResult{Err: &PermanentError{err.Error()}}
	}
	username := cr.Annotations[AnnotationEndEntity]
	if username == "" {
		if username, err = endEntityName(spec, cr, csr); err != nil {
			return SignResult{Err: &PermanentError{err.Error()}}
		}
	}

	if at, ok := annotationTime(cr, AnnotationEnrolmentAttempted); ok {
		cert, err := cl.FindIssued(ctx, username, cr.Spec.Request, at.Add(-backdateAllowance))
		if err != nil {
			return SignResult{Err: err}
		}
		if cert != nil {
			logf.FromContext(ctx).Info("recovered a certificate EJBCA issued earlier instead of enrolling again",
				"endEntity", username, "serial", cert.SerialNumber)
			return SignResult{Certificate: cert}
		}
	}

	if idText := cr.Annotations[AnnotationApprovalRequestID]; idText != "" {
		return s.continueApproval(ctx, cr, spec, cl, username, idText)
	}
	if spec.AlwaysUseApprovalFlow() {
		return s.startApproval(ctx, cr, spec, cl, csr, username)
	}

	certProfile, eeProfile := profiles(spec, cr)
	req := ejbca.EnrollRequest{
		CSR: cr.Spec.Request, CAName: spec.CAName, Username: username,
		CertificateProfileName: certProfile, EndEntityProfileName: eeProfile,
	}
	if spec.UseRequestedDuration && cr.Spec.Duration != nil {
		req.NotAfter = s.Now().Add(cr.Spec.Duration.Duration)
	}
	if err := s.markAttempt(ctx, cr, username); err != nil {
		return SignResult{Err: err}
	}
	cert, err := cl.Enroll(ctx, req)
	switch {
	case err == nil:
		return SignResult{Certificate: cert}
	case ejbca.IsApprovalRequired(err):
		logf.FromContext(ctx).Info("EJBCA requires approval for this enrolment; switching to the approval flow", "endEntity", username)
		return s.startApproval(ctx, cr, spec, cl, csr, username)
	case answered(err) && !ejbca.IsPermanent(err):
		// EJBCA answered (403, 429) and did not issue: the retry needs no search.
		if perr := s.patchAnnotations(ctx, cr, map[string]*string{AnnotationEnrolmentAttempted: nil}); perr != nil {
			logf.FromContext(ctx).Error(perr, "clearing the enrolment marker")
		}
	}
	return SignResult{Err: err}
}

// startApproval adds the end entity with a password kept in a Secret owned by
// the request, and records EJBCA's approval request id on the request.
func (s *Signer) startApproval(ctx context.Context, cr *cmapi.CertificateRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	csr *x509.CertificateRequest, username string) SignResult {
	secretName, password, err := s.enrolmentPassword(ctx, cr)
	if err != nil {
		return SignResult{Err: err}
	}
	username = approvalEndEntityName(spec, cr, username)
	certProfile, eeProfile := profiles(spec, cr)
	id, err := cl.AddEndEntity(ctx, ejbca.EndEntity{
		Username: username, Password: password,
		SubjectDN: subjectDN(csr, username), SubjectAltName: subjectAltName(csr),
		CAName: spec.CAName, CertificateProfileName: certProfile, EndEntityProfileName: eeProfile,
	})
	if ejbca.IsConflict(err) && username == cr.Namespace+"/"+cr.Name {
		// The request's own end entity exists: an earlier attempt added it
		// (with this Secret's password) and its approval was carried out.
		return s.enrolForEndEntity(ctx, cr, spec, cl, username, password)
	}
	if err != nil {
		return SignResult{Err: err}
	}
	now := s.Now()
	if id == 0 {
		// Added without approval: enrol for it now.
		return s.enrolForEndEntity(ctx, cr, spec, cl, username, password)
	}
	idText, since := strconv.Itoa(id), now.UTC().Format(time.RFC3339)
	if err := s.patchAnnotations(ctx, cr, map[string]*string{
		AnnotationApprovalRequestID: &idText, AnnotationApprovalRequestedAt: &since,
		AnnotationEndEntity: &username, AnnotationEnrolmentSecret: &secretName, AnnotationEnrolmentAttempted: nil,
	}); err != nil {
		return SignResult{Err: err}
	}
	logf.FromContext(ctx).Info("waiting for EJBCA approval", "approvalRequest", id, "endEntity", username)
	return SignResult{WaitingForApproval: &Approval{RequestID: id, Since: now, PollAfter: s.pollAfter(spec, 0)}}
}

func (s *Signer) continueApproval(ctx context.Context, cr *cmapi.CertificateRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	username, idText string) SignResult {
	id, err := strconv.Atoi(idText)
	if err != nil || id <= 0 {
		return SignResult{Err: &PermanentError{fmt.Sprintf("annotation %s is not an approval request id: %q", AnnotationApprovalRequestID, idText)}}
	}
	since, ok := annotationTime(cr, AnnotationApprovalRequestedAt)
	if !ok {
		since = cr.CreationTimestamp.Time
	}
	state, err := cl.ApprovalStatus(ctx, id)
	if err != nil {
		return SignResult{Err: err}
	}
	switch {
	case state.Approved():
		_, password, err := s.enrolmentPassword(ctx, cr)
		if err != nil {
			return SignResult{Err: err}
		}
		return s.enrolForEndEntity(ctx, cr, spec, cl, username, password)
	case state.Refused():
		return SignResult{Err: &PermanentError{fmt.Sprintf("EJBCA approval request %d ended %s: not issued", id, state)}}
	}
	waited := s.Now().Sub(since)
	if maxWait := spec.ApprovalMaxWait(); waited > maxWait {
		return SignResult{Err: &PermanentError{fmt.Sprintf(
			"EJBCA approval request %d was not approved within the issuer's approval.maxWait (%s)", id, maxWait)}}
	}
	return SignResult{WaitingForApproval: &Approval{RequestID: id, Since: since, PollAfter: s.pollAfter(spec, waited)}}
}

func (s *Signer) enrolForEndEntity(ctx context.Context, cr *cmapi.CertificateRequest, spec *v1alpha1.IssuerSpec, cl *ejbca.Client,
	username, password string) SignResult {
	if err := s.markAttempt(ctx, cr, username); err != nil {
		return SignResult{Err: err}
	}
	cert, err := cl.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{
		CSR: cr.Spec.Request, Username: username, Password: password, CAName: spec.CAName,
	})
	if err != nil {
		return SignResult{Err: err}
	}
	return SignResult{Certificate: cert}
}

// pollAfter follows about 5s, 15s, 45s, 2m, then every 5m: twice the time
// already waited, capped by the issuer's pollInterval, with jitter.
func (s *Signer) pollAfter(spec *v1alpha1.IssuerSpec, waited time.Duration) time.Duration {
	d := 2 * waited
	if d < 5*time.Second {
		d = 5 * time.Second
	}
	if limit := min(5*time.Minute, spec.ApprovalPollInterval()); d > limit {
		d = limit
	}
	if s.Jitter != nil {
		d = time.Duration(float64(d) * s.Jitter())
	}
	return d
}

// markAttempt records, before EJBCA is asked to issue, that it was asked.
func (s *Signer) markAttempt(ctx context.Context, cr *cmapi.CertificateRequest, username string) error {
	at := s.Now().UTC().Format(time.RFC3339Nano)
	return s.patchAnnotations(ctx, cr, map[string]*string{AnnotationEnrolmentAttempted: &at, AnnotationEndEntity: &username})
}

// patchAnnotations merge-patches only the given annotations (nil removes
// one) and mirrors them on cr.
func (s *Signer) patchAnnotations(ctx context.Context, cr *cmapi.CertificateRequest, set map[string]*string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": set}})
	if err != nil {
		return err
	}
	if err := s.Client.Patch(ctx, cr.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("recording enrolment state on the CertificateRequest: %w", err)
	}
	if cr.Annotations == nil {
		cr.Annotations = map[string]string{}
	}
	for k, v := range set {
		if v == nil {
			delete(cr.Annotations, k)
		} else {
			cr.Annotations[k] = *v
		}
	}
	return nil
}

// enrolmentPassword returns the end entity's password from the Secret owned
// by the request, creating both on first use.
func (s *Signer) enrolmentPassword(ctx context.Context, cr *cmapi.CertificateRequest) (string, string, error) {
	name := cr.Annotations[AnnotationEnrolmentSecret]
	if name == "" {
		name = EnrolmentSecretName(cr.Name)
	}
	var secret corev1.Secret
	err := s.Reader.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: name}, &secret)
	if err == nil {
		if p := string(secret.Data[enrolmentPasswordKey]); p != "" && metav1.IsControlledBy(&secret, cr) {
			return name, p, nil
		}
		return "", "", &PermanentError{fmt.Sprintf("Secret %s/%s exists but is not this request's enrolment Secret", cr.Namespace, name)}
	}
	if !apierrors.IsNotFound(err) {
		return "", "", fmt.Errorf("reading the enrolment Secret: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace, Name: name, Labels: map[string]string{LabelEnrolmentSecret: "true"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{enrolmentPasswordKey: []byte(password)},
	}
	if err := controllerutil.SetControllerReference(cr, &secret, s.Client.Scheme()); err != nil {
		return "", "", err
	}
	if err := s.Client.Create(ctx, &secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", "", fmt.Errorf("the enrolment Secret %s/%s appeared concurrently; retrying", cr.Namespace, name)
		}
		return "", "", fmt.Errorf("creating the enrolment Secret: %w", err)
	}
	return name, password, nil
}

// DeleteEnrolmentSecret removes a final request's enrolment Secret: its
// password is single-use and no longer needed.
func (s *Signer) DeleteEnrolmentSecret(ctx context.Context, cr *cmapi.CertificateRequest) error {
	name := cr.Annotations[AnnotationEnrolmentSecret]
	if name == "" {
		return nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace, Name: name}}
	err := s.Client.Delete(ctx, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// EnrolmentSecretName derives the Secret name from the request's name,
// shortened with a hash when it would exceed a Secret name's length.
func EnrolmentSecretName(requestName string) string {
	const suffix = "-ejbca-enrolment"
	if len(requestName)+len(suffix) <= 253 {
		return requestName + suffix
	}
	sum := sha256.Sum256([]byte(requestName))
	return requestName[:253-len(suffix)-9] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

func annotationTime(cr *cmapi.CertificateRequest, key string) (time.Time, bool) {
	v := cr.Annotations[key]
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// answered reports whether EJBCA gave a definitive answer (a 4xx), so it
// certainly did not issue; without a response, or with a 5xx, it may have.
func answered(err error) bool {
	var e *ejbca.Error
	return errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500
}

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
