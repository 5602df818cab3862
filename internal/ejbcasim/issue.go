package ejbcasim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

// notBeforeBackdate is how far EJBCA backdates notBefore against clock skew.
const notBeforeBackdate = 10 * time.Minute

// IssuedCert is a certificate the simulator issued, for tests to compare
// with what the client received (or to find one whose answer was lost).
type IssuedCert struct {
	Serial             *big.Int // print with %X for EJBCA's form
	Username           string
	Cert               *x509.Certificate
	Endpoint           string // "pkcs10enroll" or "certificaterequest"
	CAName             string
	CertificateProfile string
	Revoked            bool
	RevocationReason   string    // "" when not revoked
	RevocationDate     time.Time // zero when not revoked; whole seconds, as EJBCA answers it
}

// issuedCertificate is the simulator's record of an issued certificate.
type issuedCertificate struct {
	cert             *x509.Certificate
	username         string
	endpoint         string
	ca               *certificateAuthority
	certProfile      *certificateProfile
	eeProfile        *endEntityProfile
	revoked          bool
	revocationReason string
	revocationDate   time.Time
	accountBindingID string
}

func issuedKey(caDN string, serial *big.Int) string {
	return caDN + "|" + serial.Text(16)
}

// Issued lists every certificate issued so far, oldest first.
func (s *Sim) Issued() []IssuedCert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]IssuedCert, len(s.issued))
	for i, rec := range s.issued {
		out[i] = IssuedCert{
			Serial:             new(big.Int).Set(rec.cert.SerialNumber),
			Username:           rec.username,
			Cert:               rec.cert,
			Endpoint:           rec.endpoint,
			CAName:             rec.ca.name,
			CertificateProfile: rec.certProfile.name,
			Revoked:            rec.revoked,
			RevocationReason:   rec.revocationReason,
			RevocationDate:     rec.revocationDate,
		}
	}
	return out
}

// issuance is everything needed to sign one end-entity certificate.
type issuance struct {
	ca        *certificateAuthority
	profile   *certificateProfile
	eeProfile *endEntityProfile
	username  string
	endpoint  string
	subject   []byte // DER name
	sans      altNames
	publicKey crypto.PublicKey
	notBefore time.Time
	notAfter  time.Time
	// accountBindingID is pkcs10enroll's account_binding_id, searchable
	// as EXTERNAL_ACCOUNT_BINDING_ID.
	accountBindingID string
}

// issue signs and records a certificate, counting the enrolment.
func (s *Sim) issue(in issuance) (*x509.Certificate, error) {
	ski, err := subjectKeyID(in.publicKey)
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := in.publicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		RawSubject:            in.subject,
		NotBefore:             in.notBefore,
		NotAfter:              in.notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
		ExtKeyUsage:           in.profile.extKeyUsage,
		SubjectKeyId:          ski,
		AuthorityKeyId:        in.ca.kp.cert.SubjectKeyId,
		DNSNames:              in.sans.dns,
		IPAddresses:           in.sans.ips,
		URIs:                  in.sans.uris,
		EmailAddresses:        in.sans.emails,
	}
	cert, err := signCertificate(tmpl, in.publicKey, in.ca.kp)
	if err != nil {
		return nil, err
	}
	rec := &issuedCertificate{
		cert:        cert,
		username:    in.username,
		endpoint:    in.endpoint,
		ca:          in.ca,
		certProfile: in.profile,
		eeProfile:   in.eeProfile,

		accountBindingID: in.accountBindingID,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued = append(s.issued, rec)
	s.issuedByKey[issuedKey(in.ca.dn, cert.SerialNumber)] = rec
	s.counters.Enrollments++
	return cert, nil
}

// validity is the certificate's notBefore and notAfter: the requested
// start_time/end_time ("2006-01-02 15:04:05" UTC, or RFC 3339) when given,
// else now (backdated) plus the profile's validity; never past the CA's
// own expiry. Callers read profileValidity under s.mu.
func (s *Sim) validity(profileValidity time.Duration, ca *certificateAuthority, startTime, endTime string) (time.Time, time.Time, *apiError) {
	now := s.now().UTC()
	notBefore := now.Add(-notBeforeBackdate)
	if startTime != "" {
		t, ok := parseRequestTime(startTime)
		if !ok {
			return time.Time{}, time.Time{}, errorf(http.StatusBadRequest, fmt.Sprintf("Invalid start_time %q, expected the format yyyy-MM-dd HH:mm:ss.", startTime))
		}
		notBefore = t
	}
	notAfter := notBefore.Add(profileValidity)
	if startTime == "" {
		notAfter = now.Add(profileValidity)
	}
	if endTime != "" {
		t, ok := parseRequestTime(endTime)
		if !ok {
			return time.Time{}, time.Time{}, errorf(http.StatusBadRequest, fmt.Sprintf("Invalid end_time %q, expected the format yyyy-MM-dd HH:mm:ss.", endTime))
		}
		notAfter = t
	}
	if !notAfter.After(notBefore) || !notAfter.After(now) {
		return time.Time{}, time.Time{}, errorf(http.StatusBadRequest, "The certificate's end time must be after its start time and in the future.")
	}
	if caEnd := ca.kp.cert.NotAfter; notAfter.After(caEnd) {
		notAfter = caEnd
	}
	return notBefore, notAfter, nil
}

func parseRequestTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// uniquenessConflict enforces the CA's "enforce unique DN" and "enforce
// unique public keys" settings against other end entities; callers hold s.mu.
func (s *Sim) uniquenessConflict(ca *certificateAuthority, username, subjectDN string, pub crypto.PublicKey) *apiError {
	if ca.uniqueDN && subjectDN != "" {
		var users []string
		for _, ee := range s.endEntities {
			if ee.username != username && ee.caName == ca.name && ee.subjectDN == subjectDN {
				users = append(users, ee.username)
			}
		}
		if len(users) > 0 {
			return errorf(http.StatusConflict, fmt.Sprintf("User '%s' is not allowed to use same subject DN as the user(s) '%s' is/are using while issuing a certificate.", username, joinSorted(users)))
		}
	}
	if ca.uniqueKey {
		ski, err := subjectKeyID(pub)
		if err != nil {
			return nil
		}
		for _, rec := range s.issued {
			if rec.ca == ca && rec.username != username && bytes.Equal(rec.cert.SubjectKeyId, ski) {
				return errorf(http.StatusConflict, fmt.Sprintf("User '%s' is not allowed to use same key as another user is using.", username))
			}
		}
	}
	return nil
}

func joinSorted(names []string) string {
	slices.Sort(names)
	return strings.Join(names, ", ")
}
