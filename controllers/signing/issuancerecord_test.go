package signing

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The issuance record verifies only for the request, certificate and key it
// was sealed for: an approver can neither forge one, nor copy one from
// another request, nor point one at another serial.
func TestIssuanceRecordVerifiesOnlyWhatWasSealed(t *testing.T) {
	t.Parallel()
	key := IssuanceKey(strings.Repeat("k", 32))
	leaf := &x509.Certificate{SerialNumber: big.NewInt(0x1a2b), Issuer: pkix.Name{CommonName: `Issuing "CA"`, Organization: []string{"Org, Inc"}}}
	record := func(uid types.UID) cmapi.CertificateRequestCondition {
		c := key.IssuanceRecordCondition(uid, leaf, metav1.Now())
		return cmapi.CertificateRequestCondition{Type: *c.Type, Status: cmmeta.ConditionTrue, Reason: *c.Reason, Message: *c.Message}
	}
	request := func(uid types.UID, conds ...cmapi.CertificateRequestCondition) *cmapi.CertificateRequest {
		cr := &cmapi.CertificateRequest{}
		cr.UID, cr.Status.Conditions = uid, conds
		return cr
	}
	own := request("uid-a", record("uid-a"))
	if is, ok := key.verifiedIssuance(own); !ok || is.Serial != "1a2b" || is.IssuerDN != leaf.Issuer.String() {
		t.Fatalf("the request's own record: %+v %v", is, ok)
	}
	if msg := key.NotIssuedHere(own, "1a2b", leaf.Issuer.String()); msg != "" {
		t.Errorf("its own certificate: %s", msg)
	}
	if msg := key.NotIssuedHere(own, "ffff", leaf.Issuer.String()); !strings.Contains(msg, "issued serial 1a2b") {
		t.Errorf("another serial in status.certificate: %q", msg)
	}
	copied := request("uid-b", record("uid-a"))
	if _, ok := key.verifiedIssuance(copied); ok {
		t.Error("a record copied from another request verifies")
	}
	tampered := record("uid-a")
	tampered.Message = strings.Replace(tampered.Message, "serial=1a2b", "serial=ffff", 1)
	if _, ok := key.verifiedIssuance(request("uid-a", tampered)); ok {
		t.Error("a record pointed at another serial verifies")
	}
	if _, ok := IssuanceKey(strings.Repeat("x", 32)).verifiedIssuance(own); ok {
		t.Error("a record verifies under another key")
	}
	if msg := key.NotIssuedHere(request("uid-a"), "1a2b", "CN=x"); !strings.Contains(msg, "carries no") {
		t.Errorf("no record: %q", msg)
	}
}
