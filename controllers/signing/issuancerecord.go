package signing

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ConditionIssuanceRecord is written with the certificate, in the same
// status write, and names the certificate this manager issued for the
// request: its serial and issuer DN, sealed with the manager's issuance key
// over the request's UID. Approvers may write a request's status (cert-
// manager grants them certificaterequests/status), so status.certificate
// proves nothing; only a certificate whose record verifies is revoked.
const ConditionIssuanceRecord cmapi.CertificateRequestConditionType = "ejbca-issuer.certctl.io/IssuanceRecord"

// IssuanceKeySecret is the Secret, in the cluster resource namespace, that
// holds the key sealing issuance records. The manager creates it once;
// deleting it makes every earlier record unverifiable (treated as none).
const IssuanceKeySecret = "ejbca-issuer-issuance-key"

const issuanceKeyField = "key"

// IssuanceKey seals and verifies issuance records. Only the manager (and
// whoever may read Secrets in the cluster resource namespace) knows it.
type IssuanceKey []byte

// LoadIssuanceKey reads the issuance key, creating it when absent. Replicas
// starting together race to create it: the loser reads the winner's.
func LoadIssuanceKey(ctx context.Context, reader client.Reader, writer client.Client, namespace string) (IssuanceKey, error) {
	key := types.NamespacedName{Namespace: namespace, Name: IssuanceKeySecret}
	for range 3 {
		var s corev1.Secret
		err := reader.Get(ctx, key, &s)
		if err == nil {
			k := s.Data[issuanceKeyField]
			if len(k) < 32 {
				return nil, fmt.Errorf("the issuance key Secret %s holds no key of at least 32 bytes under %q; delete it and restart to make a new one", key, issuanceKeyField)
			}
			return IssuanceKey(k), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the issuance key Secret %s: %w", key, err)
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: IssuanceKeySecret,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "ejbca-issuer"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{issuanceKeyField: raw},
		}
		if err := writer.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the issuance key Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("the issuance key Secret %s could not be read after creating it", key)
}

// issuance is what a request's record says this manager issued for it.
type issuance struct {
	Serial, IssuerDN string
}

func (k IssuanceKey) seal(uid types.UID, is issuance) string {
	m := hmac.New(sha256.New, k)
	for _, part := range []string{"ejbca-issuer issuance v1", string(uid), is.Serial, is.IssuerDN} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

const issuanceRecordReason = "IssuedByEJBCAIssuer"

// IssuanceRecordCondition is the record of leaf's issuance for the request.
func (k IssuanceKey) IssuanceRecordCondition(uid types.UID, leaf *x509.Certificate, at metav1.Time) *cmac.CertificateRequestConditionApplyConfiguration {
	is := issuance{Serial: SerialOf(leaf), IssuerDN: leaf.Issuer.String()}
	return cmac.CertificateRequestCondition().WithType(ConditionIssuanceRecord).WithStatus(cmmeta.ConditionTrue).
		WithReason(issuanceRecordReason).WithLastTransitionTime(at).
		WithMessage(is.message(k.seal(uid, is)))
}

// message is the record's condition message, with its seal.
func (is issuance) message(seal string) string {
	return fmt.Sprintf("serial=%s issuerDN=%s seal=%s", is.Serial, strconv.Quote(is.IssuerDN), seal)
}

// verifiedIssuance is the one reading of a request's issuance record: what
// this manager issued for the request, and false when the request carries
// no record that verifies with the key (none, forged, copied from another
// request, or sealed with a key since replaced).
func (k IssuanceKey) verifiedIssuance(cr *cmapi.CertificateRequest) (issuance, bool) {
	c := ConditionOf(cr, ConditionIssuanceRecord)
	if c == nil || len(k) == 0 {
		return issuance{}, false
	}
	rest, ok := strings.CutPrefix(c.Message, "serial=")
	if !ok {
		return issuance{}, false
	}
	serial, rest, ok := strings.Cut(rest, " issuerDN=")
	if !ok {
		return issuance{}, false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return issuance{}, false
	}
	dn, _ := strconv.Unquote(q)
	seal, ok := strings.CutPrefix(rest[len(q):], " seal=")
	if !ok {
		return issuance{}, false
	}
	is := issuance{Serial: serial, IssuerDN: dn}
	if !hmac.Equal([]byte(k.seal(cr.UID, is)), []byte(seal)) {
		return issuance{}, false
	}
	return is, true
}

// NotIssuedHere says why the certificate (serial, issuerDN from the
// request's status.certificate) is not one this manager issued for the
// request; "" when the request's record verifies and names it.
func (k IssuanceKey) NotIssuedHere(cr *cmapi.CertificateRequest, serial, issuerDN string) string {
	is, ok := k.verifiedIssuance(cr)
	switch {
	case !ok && ConditionOf(cr, ConditionIssuanceRecord) != nil:
		return fmt.Sprintf("the request's %s condition does not verify (not written by this ejbca-issuer for this request): certificate serial %s (issuer %q) is not revoked",
			ConditionIssuanceRecord, serial, issuerDN)
	case !ok:
		return fmt.Sprintf("the request carries no %s condition (issued before ejbca-issuer recorded issuance, or not issued by it): certificate serial %s (issuer %q) is not revoked; revoke it in EJBCA if it must be",
			ConditionIssuanceRecord, serial, issuerDN)
	case is.Serial != serial || is.IssuerDN != issuerDN:
		return fmt.Sprintf("status.certificate holds serial %s (issuer %q), but ejbca-issuer issued serial %s (issuer %q) for this request: status.certificate was rewritten, nothing is revoked",
			serial, issuerDN, is.Serial, is.IssuerDN)
	}
	return ""
}
