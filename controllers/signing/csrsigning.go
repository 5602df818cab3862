package signing

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// signerRecordKeys are the signer's own records: on a CSR they are read only
// from v1alpha1.CSRConditionEnrolment, never from its annotations.
var signerRecordKeys = []string{v1alpha1.AnnotationApprovalRequestID, v1alpha1.AnnotationApprovalRequestedAt, v1alpha1.AnnotationApprovalSeal}

// SignerIssuer names the issuer a signer name of ours refers to; ok is false
// for any other signer name (or a malformed one of ours).
func SignerIssuer(signerName string) (kind, namespace, name string, ok bool) {
	if n, found := strings.CutPrefix(signerName, v1alpha1.ClusterIssuerSignerPrefix); found {
		return v1alpha1.ClusterIssuerKind, "", n, n != "" && !strings.Contains(n, "/")
	}
	if rest, found := strings.CutPrefix(signerName, v1alpha1.IssuerSignerPrefix); found {
		// A namespace is a DNS label (no dot); the issuer's name may have dots.
		ns, n, cut := strings.Cut(rest, ".")
		return v1alpha1.IssuerKind, ns, n, cut && ns != "" && n != "" && !strings.Contains(rest, "/")
	}
	return "", "", "", false
}

// IsOurSigner is the watch's cheap filter: a prefix test, nothing decoded.
func IsOurSigner(signerName string) bool {
	return strings.HasPrefix(signerName, v1alpha1.ClusterIssuerSignerPrefix) || strings.HasPrefix(signerName, v1alpha1.IssuerSignerPrefix)
}

// csrSigning adapts a Kubernetes CertificateSigningRequest. It is
// cluster-scoped: its end entities are scoped by v1alpha1.CSREndEntityScope and its
// enrolment Secret lives in the cluster resource namespace, named after
// its UID and owned by it, so garbage collection removes it with the CSR.
// The requested duration is spec.expirationSeconds and nothing else
// (cert-manager's request-duration annotation is not read).
func CSRSigning(c client.Client, csr *certificatesv1.CertificateSigningRequest, clusterResourceNamespace string, clk clock.PassiveClock) *SigningRequest {
	sr := &SigningRequest{
		Object: csr, Name: csr.Name, UID: csr.UID, Created: csr.CreationTimestamp.Time, CSR: csr.Spec.Request,
		EndEntityScope:  v1alpha1.CSREndEntityScope,
		EnrolmentSecret: client.ObjectKey{Namespace: clusterResourceNamespace, Name: "csr-" + string(csr.UID) + "-ejbca-enrolment"},
	}
	if s := csr.Spec.ExpirationSeconds; s != nil && *s > 0 {
		sr.Duration = time.Duration(*s) * time.Second
	}
	st := &csrStatusRecords{client: c, clock: clk, csr: csr, sr: sr}
	sr.Annotations = st.annotations()
	sr.State = st
	return sr
}

// csrStatusRecords keeps the signer's records in the CSR's
// v1alpha1.CSRConditionEnrolment condition.
type csrStatusRecords struct {
	client client.Client
	clock  clock.PassiveClock
	csr    *certificatesv1.CertificateSigningRequest
	sr     *SigningRequest
}

// records are the signer's records on the CSR; a message that does not
// parse counts as none.
func (s *csrStatusRecords) records() map[string]string {
	recs := map[string]string{}
	if c := csrCondition(s.csr, v1alpha1.CSRConditionEnrolment); c != nil {
		_ = json.Unmarshal([]byte(c.Message), &recs)
	}
	return recs
}

// annotations are what the signer sees: the CSR's annotations (for the
// overrides the issuer allows) without anything that looks like a record,
// and the records from the status.
func (s *csrStatusRecords) annotations() map[string]string {
	out := maps.Clone(s.csr.Annotations)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range signerRecordKeys {
		delete(out, k)
	}
	for k, v := range s.records() {
		if slices.Contains(signerRecordKeys, k) {
			out[k] = v
		}
	}
	return out
}

// Set rewrites the records condition through the status subresource. The
// update carries the CSR's resourceVersion: a decision made from a stale
// copy fails with a conflict and is made again from a fresh one.
func (s *csrStatusRecords) Set(ctx context.Context, set map[string]*string) error {
	recs := s.records()
	for k, v := range set {
		if v == nil {
			delete(recs, k)
		} else {
			recs[k] = *v
		}
	}
	msg, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	updated := s.csr.DeepCopy()
	SetCSRCondition(updated, certificatesv1.CertificateSigningRequestCondition{
		Type: v1alpha1.CSRConditionEnrolment, Status: corev1.ConditionTrue, Reason: "Recorded", Message: string(msg),
	}, metav1.NewTime(s.clock.Now()))
	if err := s.client.Status().Update(ctx, updated); err != nil {
		return fmt.Errorf("recording enrolment state on the CertificateSigningRequest: %w", err)
	}
	*s.csr = *updated
	s.sr.Annotations = s.annotations()
	return nil
}

func csrCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if csr.Status.Conditions[i].Type == t {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

// SetCSRCondition adds or replaces the condition of c's type, keeping its
// transition time when its status is unchanged.
func SetCSRCondition(csr *certificatesv1.CertificateSigningRequest, c certificatesv1.CertificateSigningRequestCondition, now metav1.Time) {
	c.LastUpdateTime = now
	c.LastTransitionTime = now
	if old := csrCondition(csr, c.Type); old != nil {
		if old.Status == c.Status && !old.LastTransitionTime.IsZero() {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return
	}
	csr.Status.Conditions = append(csr.Status.Conditions, c)
}
