package ejbcasim

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Names of the default CAs.
const (
	RootCAName       = "RootCA"
	IssuingCAName    = "IssuingCA"
	ManagementCAName = "ManagementCA"
)

// certificateAuthority is a CA the simulator hosts.
type certificateAuthority struct {
	id               int
	name             string
	dn               string // normalised subject DN
	kp               *keyPair
	parent           *certificateAuthority // nil for a root
	approvalRequired bool
	offline          bool // the CA's status is offline
	tokenOffline     bool // its crypto token is deactivated
	uniqueDN         bool // EJBCA's "enforce unique DN"
	uniqueKey        bool // EJBCA's "enforce unique public keys"
}

// chain is the CA's certificate chain: itself first, the root last.
func (ca *certificateAuthority) chain() []*x509.Certificate {
	var out []*x509.Certificate
	for c := ca; c != nil; c = c.parent {
		out = append(out, c.kp.cert)
	}
	return out
}

// issuerDN is the DN of the CA's direct issuer (its own for a root): what
// the CA list reports as issuer_dn on the EJBCA versions whose
// CaInfoRestResponse carries "external". Older versions reported the root's
// DN there; the client never relies on either.
func (ca *certificateAuthority) issuerDN() string {
	if ca.parent == nil {
		return ca.dn
	}
	return ca.parent.dn
}

// entityID is a stable positive id derived from a name, like EJBCA's ids
// derived from a DN's or profile name's hash.
func entityID(s string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum32()&0x7fffffff) | 0x1000000
}

// initContents creates the default CAs (RootCA -> IssuingCA, and
// ManagementCA), certificate profiles and end entity profile.
func (s *Sim) initContents() error {
	for _, c := range []struct{ name, dn, parent string }{
		{RootCAName, "CN=EJBCA Sim Root CA", ""},
		{IssuingCAName, "CN=IssuingCA,O=EJBCA Sim", RootCAName},
		{ManagementCAName, "CN=ManagementCA,O=EJBCA Sim", ""},
	} {
		if _, err := s.AddCA(c.name, c.dn, c.parent); err != nil {
			return err
		}
	}
	s.initProfiles()
	return nil
}

// AddCA creates a CA named name with subjectDN, signed by the CA named
// parent, or self-signed when parent is "". It returns the CA certificate.
func (s *Sim) AddCA(name, subjectDN, parent string) (*x509.Certificate, error) {
	dn, err := normaliseDN(subjectDN)
	if err != nil {
		return nil, fmt.Errorf("ejbcasim: CA subject DN: %w", err)
	}
	s.mu.Lock()
	var parentCA *certificateAuthority
	if parent != "" {
		parentCA = s.cas[parent]
	}
	_, exists := s.cas[name]
	s.mu.Unlock()
	switch {
	case exists:
		return nil, fmt.Errorf("ejbcasim: CA %q already exists", name)
	case parent != "" && parentCA == nil:
		return nil, fmt.Errorf("ejbcasim: parent CA %q does not exist", parent)
	}
	now := s.now()
	notBefore, notAfter := now.Add(-infraBackdate), now.Add(infraValidity)
	var signer *keyPair
	if parentCA != nil {
		signer = parentCA.kp
		notAfter = parentCA.kp.cert.NotAfter.Add(-24 * time.Hour)
	}
	kp, err := newCA(dn, signer, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	ca := &certificateAuthority{id: entityID(dn), name: name, dn: dn, kp: kp, parent: parentCA}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.cas[name]; exists {
		return nil, fmt.Errorf("ejbcasim: CA %q already exists", name)
	}
	s.cas[name] = ca
	s.caOrder = append(s.caOrder, ca)
	return kp.cert, nil
}

// RootCA is the default chain's self-signed root, "CN=EJBCA Sim Root CA".
func (s *Sim) RootCA() *x509.Certificate { return s.caCert(RootCAName) }

// IssuingCA is the default issuing CA "IssuingCA" ("CN=IssuingCA,O=EJBCA
// Sim"), signed by RootCA.
func (s *Sim) IssuingCA() *x509.Certificate { return s.caCert(IssuingCAName) }

// CACertificate is the certificate of the CA named name, or nil.
func (s *Sim) CACertificate(name string) *x509.Certificate { return s.caCert(name) }

func (s *Sim) caCert(name string) *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca := s.cas[name]; ca != nil {
		return ca.kp.cert
	}
	return nil
}

// CAID is the integer id EJBCA-style messages use for the CA named name
// (0 when it does not exist).
func (s *Sim) CAID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca := s.cas[name]; ca != nil {
		return ca.id
	}
	return 0
}

// SetCAApprovalRequired attaches (or detaches) an approval profile to the CA
// itself, so every enrolment and revocation through it needs approval.
func (s *Sim) SetCAApprovalRequired(caName string, required bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.cas[caName]
	if ca == nil {
		return fmt.Errorf("ejbcasim: CA %q does not exist", caName)
	}
	ca.approvalRequired = required
	return nil
}

// SetCAOffline sets the CA's status to offline (or back to active): it then
// refuses to issue. pkcs10enroll answers 400 with a message naming
// CAOfflineException and the CA; certificaterequest and finalize 503.
func (s *Sim) SetCAOffline(caName string, offline bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.cas[caName]
	if ca == nil {
		return fmt.Errorf("ejbcasim: CA %q does not exist", caName)
	}
	ca.offline = offline
	return nil
}

// SetCryptoTokenOffline deactivates (or reactivates) the CA's crypto token:
// the CA stays active but cannot sign. pkcs10enroll answers 400 with a
// message naming CryptoTokenOfflineException and the CA; certificaterequest
// and finalize 503 "Device was unavailable.".
func (s *Sim) SetCryptoTokenOffline(caName string, offline bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.cas[caName]
	if ca == nil {
		return fmt.Errorf("ejbcasim: CA %q does not exist", caName)
	}
	ca.tokenOffline = offline
	return nil
}

// SetEnforceUniqueDN turns on EJBCA's "enforce unique DN" for the CA: an
// end entity may not be issued a certificate with the subject DN of another
// end entity of the CA (409). Off by default.
func (s *Sim) SetEnforceUniqueDN(caName string, enforce bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.cas[caName]
	if ca == nil {
		return fmt.Errorf("ejbcasim: CA %q does not exist", caName)
	}
	ca.uniqueDN = enforce
	return nil
}

// SetEnforceUniqueKey turns on EJBCA's "enforce unique public keys" for the
// CA: a key certified for one end entity may not be certified for another
// (409). Off by default.
func (s *Sim) SetEnforceUniqueKey(caName string, enforce bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca := s.cas[caName]
	if ca == nil {
		return fmt.Errorf("ejbcasim: CA %q does not exist", caName)
	}
	ca.uniqueKey = enforce
	return nil
}

// caByDN finds a CA by subject DN, in any component order or spacing;
// callers hold s.mu.
func (s *Sim) caByDN(subjectDN string) *certificateAuthority {
	dn, err := normaliseDN(subjectDN)
	if err != nil {
		return nil
	}
	for _, ca := range s.caOrder {
		if ca.dn == dn {
			return ca
		}
	}
	return nil
}

// needsApproval reports whether an action through the CA with the profile
// waits for an administrator: only where this EJBCA has approvals at all.
func (s *Sim) needsApproval(ca *certificateAuthority, cp *certificateProfile) bool {
	return s.behaviour.Approvals && (ca.approvalRequired || cp.approvalRequired)
}

// restTime is EJBCA's date format in REST responses.
func restTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

type caInfo struct {
	ID             int    `json:"id"`
	Name           string `json:"name"`
	SubjectDN      string `json:"subject_dn"`
	IssuerDN       string `json:"issuer_dn"`
	ExpirationDate string `json:"expiration_date"`
	External       bool   `json:"external"`
}

// handleCAList serves GET /v1/ca (CaRestResource, CaInfoRestResponse):
// issuer_dn is each CA's direct issuer, as the versions that report
// "external" give it.
func (s *Sim) handleCAList(w http.ResponseWriter, _ *http.Request, _ Fault) {
	s.mu.Lock()
	list := make([]caInfo, 0, len(s.caOrder))
	for _, ca := range s.caOrder {
		list = append(list, caInfo{
			ID:             ca.id,
			Name:           ca.name,
			SubjectDN:      ca.dn,
			IssuerDN:       ca.issuerDN(),
			ExpirationDate: restTime(ca.kp.cert.NotAfter),
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		CertificateAuthorities []caInfo `json:"certificate_authorities"`
	}{list})
}

var unsafeFilename = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// handleCADownload serves GET /v1/ca/{subject_dn}/certificate/download: the
// CA's chain (the CA first) as PEM text with EJBCA's Subject/Issuer lines,
// as an attachment.
func (s *Sim) handleCADownload(w http.ResponseWriter, r *http.Request, _ Fault) {
	subjectDN := r.PathValue("subject_dn")
	s.mu.Lock()
	ca := s.caByDN(subjectDN)
	s.mu.Unlock()
	if ca == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("CA with DN: %s does not exist.", subjectDN))
		return
	}
	var b strings.Builder
	for _, c := range ca.chain() {
		fmt.Fprintf(&b, "Subject: %s\nIssuer: %s\n", mustDN(c.RawSubject), mustDN(c.RawIssuer))
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.pem"`, unsafeFilename.ReplaceAllString(ca.name, "_")))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}
