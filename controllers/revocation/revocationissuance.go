package revocation

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// HoldForRevocation adds v1alpha1.RevocationFinalizer to a request about to be
// issued by an issuer that revokes deleted or superseded certificates, so
// that its deletion waits for the revocation controller even if the
// manager is not running when it happens (a request already being deleted
// can take no new finalizer, and is not held). It runs before the status write
// that stores the certificate (a finalizer on a request that then fails to
// be issued is released by the revocation controller); the patch carries
// the request's resourceVersion and updates cr, so the status write that
// follows keeps its own precondition.
func HoldForRevocation(ctx context.Context, c client.Client, cr *cmapi.CertificateRequest, issuer v1alpha1.Issuer) error {
	if issuer == nil || cr.DeletionTimestamp != nil || controllerutil.ContainsFinalizer(cr, v1alpha1.RevocationFinalizer) {
		return nil
	}
	spec := issuer.GetSpec()
	if !spec.RevokesDeleted() && !spec.RevokesSuperseded() {
		return nil
	}
	orig := cr.DeepCopy()
	controllerutil.AddFinalizer(cr, v1alpha1.RevocationFinalizer)
	if err := c.Patch(ctx, cr, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding the revocation finalizer: %w", err)
	}
	return nil
}

// atIssuancePrefix starts v1alpha1.ConditionIssuedWithRevokeAnnotation's message,
// followed by the quoted value.
const atIssuancePrefix = v1alpha1.RevokeAnnotation + "="

// RevokeAnnotationAtIssuance is the condition recording, in the status write
// that stores the certificate, that the request already carried the revoke
// annotation (nil when it did not).
func RevokeAnnotationAtIssuance(cr *cmapi.CertificateRequest, at metav1.Time) *cmac.CertificateRequestConditionApplyConfiguration {
	v, ok := cr.Annotations[v1alpha1.RevokeAnnotation]
	if !ok {
		return nil
	}
	return cmac.CertificateRequestCondition().WithType(v1alpha1.ConditionIssuedWithRevokeAnnotation).WithStatus(cmmeta.ConditionTrue).
		WithReason("CopiedAtIssuance").WithLastTransitionTime(at).
		WithMessage(atIssuancePrefix + strconv.Quote(v) + " was on the request when it was issued (cert-manager copies a Certificate's annotations onto new requests): that value never revokes this request")
}

// atIssuanceValue reads the value back from the condition's message.
func atIssuanceValue(message string) string {
	rest, ok := strings.CutPrefix(message, atIssuancePrefix)
	if !ok {
		return ""
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return ""
	}
	v, _ := strconv.Unquote(q)
	return v
}
