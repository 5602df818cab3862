package revocation

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// Event reasons for a certificate EJBCA issued for a request that was gone
// when the answer arrived.
const (
	EventUnclaimedRevoked    = "UnclaimedCertificateRevoked"
	EventUnclaimedNotRevoked = "UnclaimedCertificateNotRevoked"
	EventUnclaimed           = "UnclaimedCertificate"
)

// Outcomes of ejbca_issuer_unclaimed_certificates_total.
const (
	unclaimedRevoked      = "revoked"
	unclaimedRevokeFailed = "revoke_failed"
	unclaimedKept         = "kept"
)

// Unclaimed handles a certificate EJBCA issued for a request (of either
// kind) deleted while its enrolment was in flight: the request's status
// can no longer store it, so no one holds it. Under an issuer that revokes
// deleted certificates (revocation.deleted) it is revoked, with the reason
// a deletion gets (CESSATION_OF_OPERATION), in the one call this process
// makes for it; otherwise it is left valid. Either way an event says so,
// on the Certificate that owned the request if it still exists (else on
// the request, found by name in its namespace's events), and the metric
// counts it, so an operator can find the serial.
func Unclaimed(ctx context.Context, s *signing.RequestSigning, req client.Object, issuer v1alpha1.Issuer, chainPEM []byte) {
	log := logf.FromContext(ctx)
	leaf := signing.LeafOf(chainPEM)
	if leaf == nil || issuer == nil {
		return
	}
	serial, issuerDN := signing.SerialOf(leaf), leaf.Issuer.String()
	kind, requestKind := v1alpha1.KindOf(issuer), signing.RequestKind(req)
	what := fmt.Sprintf("EJBCA issued certificate serial %s (issuer %s) for %s %s after the request was deleted: no one holds it",
		serial, issuerDN, requestKind, client.ObjectKeyFromObject(req))
	if !s.Lease.Holds() {
		// Deposed: the new leader cannot know of it either; the log is all
		// that is left.
		log.Info("a certificate was issued for a deleted request while this process lost its lease; it was neither revoked nor announced", "serial", serial)
		return
	}
	var regarding runtime.Object = req
	if cr, ok := req.(*cmapi.CertificateRequest); ok {
		if ref := signing.CertificateOwner(cr); ref != nil {
			crt := &cmapi.Certificate{}
			if err := s.Client.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: ref.Name}, crt); err == nil && crt.UID == ref.UID {
				regarding = crt
			}
		}
	}
	if !issuer.GetSpec().RevokesDeleted() {
		metrics.UnclaimedCertificates.WithLabelValues(kind, requestKind, unclaimedKept).Inc()
		eventrecord.Record(s.Recorder, regarding, nil, corev1.EventTypeWarning, EventUnclaimed, eventrecord.ActionSigning,
			what+"; the issuer does not revoke deleted certificates (spec.revocation.deleted), so it stays valid: revoke it in EJBCA if it must not")
		log.Info("certificate issued for a deleted request kept valid (the issuer does not revoke deleted certificates)", "serial", serial)
		return
	}
	reason := ejbca.ReasonCessationOfOperation
	cl, err := s.Clients.Client(ctx, issuer)
	var res revocationResult
	if err != nil {
		res = revocationResult{Retry: true, Outcome: revocationOutcomeFailed,
			Message: fmt.Sprintf("revoking serial %s: the issuer's credentials do not load: %v", serial, err)}
	} else {
		_, err = cl.Revoke(ctx, issuerDN, serial, reason, time.Time{})
		res = RevocationResultOf(reason, serial, err)
	}
	metrics.Revocations.WithLabelValues(kind, reason, res.Outcome).Inc()
	if res.Retry {
		metrics.UnclaimedCertificates.WithLabelValues(kind, requestKind, unclaimedRevokeFailed).Inc()
		eventrecord.Record(s.Recorder, regarding, nil, corev1.EventTypeWarning, EventUnclaimedNotRevoked, eventrecord.ActionRevoking,
			what+"; the issuer revokes deleted certificates, but "+res.Message+": revoke it in EJBCA")
		log.Info("could not revoke a certificate issued for a deleted request", "serial", serial, "error", res.Message)
		return
	}
	metrics.UnclaimedCertificates.WithLabelValues(kind, requestKind, unclaimedRevoked).Inc()
	eventrecord.Record(s.Recorder, regarding, nil, corev1.EventTypeNormal, EventUnclaimedRevoked, eventrecord.ActionRevoking,
		what+"; the issuer revokes deleted certificates: "+res.Message)
	log.Info("revoked a certificate issued for a deleted request", "serial", serial)
}
