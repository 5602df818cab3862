package ejbcasim

import (
	"crypto/x509"
	"net/http"
	"slices"
	"time"
)

// Default validities of issued certificates.
const (
	defaultValidity = 90 * 24 * time.Hour
	serverValidity  = 365 * 24 * time.Hour
)

// certificateProfile is an EJBCA certificate profile: what an issued
// certificate looks like and whether issuing needs an administrator's
// approval.
type certificateProfile struct {
	id                  int
	name                string
	validity            time.Duration
	extKeyUsage         []x509.ExtKeyUsage
	minRSABits          int
	approvalRequired    bool
	backdatedRevocation bool
	// cas limits the CAs the profile allows (the profile check lists them);
	// nil lists every CA by name, anyCA lists ANY_CA.
	cas   []string
	anyCA bool
}

// AnyCA is how the certificate profile check names a profile that allows
// any CA (RaCertificateProfileResponseV2, every version in EJBCA's source).
const AnyCA = "ANY_CA"

// endEntityProfile is an EJBCA end entity profile; the simulator only needs
// its existence and id.
type endEntityProfile struct {
	id   int
	name string
}

// initProfiles creates ENDUSER (id 1) and SERVER (id 9) with EJBCA's fixed
// ids, APPROVAL, and the EMPTY end entity profile (id 1).
func (s *Sim) initProfiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certProfiles["ENDUSER"] = newCertificateProfile(1, "ENDUSER")
	server := newCertificateProfile(9, "SERVER")
	server.validity = serverValidity
	server.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	s.certProfiles["SERVER"] = server
	s.certProfiles["APPROVAL"] = newCertificateProfile(entityID("APPROVAL"), "APPROVAL")
	s.eeProfiles["EMPTY"] = &endEntityProfile{id: 1, name: "EMPTY"}
}

// newCertificateProfile is an ENDUSER-like profile: client, server and
// e-mail protection usages, default validity, RSA keys of 2048 bits or more.
func newCertificateProfile(id int, name string) *certificateProfile {
	return &certificateProfile{
		id:          id,
		name:        name,
		validity:    defaultValidity,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageEmailProtection},
		minRSABits:  2048,
	}
}

// AddCertificateProfile creates an ENDUSER-like certificate profile (90 days,
// clientAuth+serverAuth+emailProtection) and returns its id; an existing
// profile is left as it is.
func (s *Sim) AddCertificateProfile(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certificateProfileLocked(name).id
}

func (s *Sim) certificateProfileLocked(name string) *certificateProfile {
	p := s.certProfiles[name]
	if p == nil {
		p = newCertificateProfile(entityID("certificate profile "+name), name)
		s.certProfiles[name] = p
	}
	return p
}

// AddEndEntityProfile creates an end entity profile and returns its id.
func (s *Sim) AddEndEntityProfile(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.eeProfiles[name]
	if p == nil {
		p = &endEntityProfile{id: entityID("end entity profile " + name), name: name}
		s.eeProfiles[name] = p
	}
	return p.id
}

// CertificateProfileID is the id of the named certificate profile (0 when
// it does not exist), as used in EJBCA's approval refusal message.
func (s *Sim) CertificateProfileID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.certProfiles[name]; p != nil {
		return p.id
	}
	return 0
}

// SetApprovalRequired attaches (or detaches) an approval profile to a
// certificate profile, creating the profile when it does not exist. With
// approval required, pkcs10enroll refuses (400) and /v1/endentity answers
// 202 with a request to approve.
func (s *Sim) SetApprovalRequired(certificateProfile string, required bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certificateProfileLocked(certificateProfile).approvalRequired = required
}

// SetBackdatedRevocationAllowed lets revocations of certificates of this
// profile carry a past date (EJBCA's "allow back dated revocation"); off by
// default, when such a revocation is refused with 422.
func (s *Sim) SetBackdatedRevocationAllowed(certificateProfile string, allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certificateProfileLocked(certificateProfile).backdatedRevocation = allowed
}

// SetValidity sets the default validity of certificates issued with a
// certificate profile (creating it when missing).
func (s *Sim) SetValidity(certificateProfile string, validity time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certificateProfileLocked(certificateProfile).validity = validity
}

// SetProfileCAs sets the CAs a certificate profile allows, as the profile
// check reports them: no names is "any CA" (listed as ANY_CA); names that
// are not CAs of the simulator are kept as given, for a profile limited to
// CAs the issuer's role cannot see. By default a profile lists every CA.
// Enrolment does not enforce the list (see the package doc).
func (s *Sim) SetProfileCAs(certificateProfile string, cas ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.certificateProfileLocked(certificateProfile)
	p.anyCA, p.cas = len(cas) == 0, slices.Clone(cas)
}

// certificateProfileInfo is CertificateProfileInfoRestResponseV2 in
// EJBCA's snake_case JSON (its "lenghts" spelling included).
type certificateProfileInfo struct {
	CertificateProfileID int      `json:"certificate_profile_id"`
	AvailableKeyAlgs     []string `json:"available_key_algs"`
	AvailableBitLengths  []int    `json:"available_bit_lenghts"`
	AvailableECDSACurves []string `json:"available_ecdsa_curves"`
	AvailableCAs         []string `json:"available_cas"`
}

// handleCertificateProfile serves GET /v2/certificate/profile/{name}: the
// profile's key algorithms and CAs, or, for a name EJBCA does not know, 400
// "Invalid search criteria, unknown certificate profile." as
// CertificateRestResourceV2.getCertificateProfileInfo answers.
func (s *Sim) handleCertificateProfile(w http.ResponseWriter, r *http.Request, _ Fault) {
	s.mu.Lock()
	cp := s.certProfiles[r.PathValue("name")]
	var cas []string
	switch {
	case cp == nil:
	case cp.anyCA:
		cas = []string{AnyCA}
	case cp.cas != nil:
		cas = slices.Clone(cp.cas)
	default:
		for _, ca := range s.caOrder {
			cas = append(cas, ca.name)
		}
	}
	s.mu.Unlock()
	if cp == nil {
		writeError(w, http.StatusBadRequest, "Invalid search criteria, unknown certificate profile.")
		return
	}
	bits := []int{}
	for _, b := range []int{1024, 2048, 3072, 4096} {
		if b >= cp.minRSABits {
			bits = append(bits, b)
		}
	}
	writeJSON(w, http.StatusOK, certificateProfileInfo{
		CertificateProfileID: cp.id, AvailableKeyAlgs: []string{"RSA", "ECDSA"}, AvailableBitLengths: bits,
		AvailableECDSACurves: []string{"prime256v1", "secp384r1", "secp521r1"}, AvailableCAs: cas,
	})
}
