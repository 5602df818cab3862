package signing

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SigningRequest is what the signing core needs of a request, whatever its
// kind: a cert-manager CertificateRequest today, a Kubernetes
// CertificateSigningRequest through a thin adapter of its own. Everything a
// requester could write is marked so: the signer derives from it only what
// the issuer allows.
type SigningRequest struct {
	// Object is the request itself: the owner of its enrolment Secret.
	Object client.Object
	// Namespace and Name name the request; end entity names and the
	// enrolment Secret are derived from them.
	Namespace, Name string
	UID             types.UID
	// Created bounds the timestamps the request carries.
	Created time.Time
	// CSR is the PEM PKCS#10 request (requester-written).
	CSR []byte
	// Duration is the requested validity, 0 when none (requester-written).
	Duration time.Duration
	// CertificateName is cert-manager's certificate-name annotation, the
	// default end entity source (requester-written).
	CertificateName string
	// Annotations are the request's annotations (requester-written): allowed
	// overrides, and the signer's own records, which it clamps or verifies.
	Annotations map[string]string
	// State is where the signer's records are written.
	State EnrolmentState
	// EndEntityScope qualifies the end entity names derived from the
	// request's name; empty means Namespace. A cluster-scoped request needs
	// one no namespace can spell.
	EndEntityScope string
	// EnrolmentSecret names the approval flow's Secret; empty means
	// EnrolmentSecretName(Name) in Namespace.
	EnrolmentSecret types.NamespacedName
}

// EnrolmentState keeps the signer's records on the request, where a restart
// or a new leader finds them: the sealed approval record. (What one-call
// enrolments need is kept in memory: see Attempts.)
type EnrolmentState interface {
	// Set writes the given annotations (nil removes one), conditional on the
	// request being unchanged since it was read, and mirrors them in the
	// SigningRequest's Annotations.
	Set(ctx context.Context, set map[string]*string) error
}

// CertificateRequestSigning adapts a cert-manager CertificateRequest.
func CertificateRequestSigning(c client.Client, cr *cmapi.CertificateRequest) *SigningRequest {
	sr := &SigningRequest{
		Object: cr, Namespace: cr.Namespace, Name: cr.Name, UID: cr.UID, Created: cr.CreationTimestamp.Time,
		CSR: cr.Spec.Request, CertificateName: cr.Annotations[cmapi.CertificateNameKey], Annotations: cr.Annotations,
	}
	if cr.Spec.Duration != nil {
		sr.Duration = cr.Spec.Duration.Duration
	}
	sr.State = &requestAnnotations{client: c, cr: cr, sr: sr}
	return sr
}

// requestAnnotations keeps the records as the CertificateRequest's
// annotations.
type requestAnnotations struct {
	client client.Client
	cr     *cmapi.CertificateRequest
	sr     *SigningRequest
}

// Set merge-patches only the given annotations. The patch carries the
// request's UID and resourceVersion as preconditions: it never lands on
// another request of the same name, and a decision made from a stale copy of
// the request fails with a conflict (and is made again from a fresh one)
// instead of acting.
func (a *requestAnnotations) Set(ctx context.Context, set map[string]*string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": a.cr.UID, "resourceVersion": a.cr.ResourceVersion, "annotations": set}})
	if err != nil {
		return err
	}
	patched := a.cr.DeepCopy()
	if err := a.client.Patch(ctx, patched, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("recording enrolment state on the CertificateRequest: %w", err)
	}
	a.cr.ResourceVersion = patched.ResourceVersion
	if a.cr.Annotations == nil {
		a.cr.Annotations = map[string]string{}
	}
	for k, v := range set {
		if v == nil {
			delete(a.cr.Annotations, k)
		} else {
			a.cr.Annotations[k] = *v
		}
	}
	a.sr.Annotations = a.cr.Annotations
	return nil
}
