package ejbca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// oidEmailAddress is the PKCS#9 emailAddress DN attribute (EJBCA's "E").
const oidEmailAddress = "1.2.840.113549.1.9.1"

// names is what a CSR asked for: its subject and its SANs, in a form that
// survives what EJBCA does to them on the way into a certificate.
type names struct {
	subject []string
	sans    map[string]bool
	// extra SANs a certificate may carry beyond the CSR's: the subject's CN
	// as a dNSName and its emailAddress as an rfc822Name, which an end entity
	// profile can copy into the SAN ("use entity CN/e-mail field").
	extra map[string]bool
}

func requestedNames(csr *x509.CertificateRequest) names {
	n := names{
		subject: subjectAttributes(csr.Subject),
		sans:    sanSet(csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses),
		extra:   map[string]bool{},
	}
	for _, atv := range csr.Subject.Names {
		switch atv.Type.String() {
		case "2.5.4.3": // CN
			n.extra[sanKey("dns", fmt.Sprint(atv.Value))] = true
		case oidEmailAddress:
			n.extra[sanKey("email", fmt.Sprint(atv.Value))] = true
		}
	}
	return n
}

// matches reports whether cert has the requested subject and SANs.
//
// Subjects are compared as multisets of (attribute type, value): EJBCA
// rebuilds the DN from its own string form, so it may reorder the RDNs (its
// default order, or LDAP order reversed), split or join multi-valued RDNs and
// trim and re-escape values; values compare as X.520 caseIgnoreMatch does
// (case and repeated spaces ignored). SANs compare as sets, DNS names and
// e-mail addresses without case, IP addresses by value; the certificate may
// add only the CN or e-mail copies a profile can make.
func (n names) matches(cert *x509.Certificate) bool {
	got := subjectAttributes(cert.Subject)
	if len(got) != len(n.subject) {
		return false
	}
	for i := range got {
		if got[i] != n.subject[i] {
			return false
		}
	}
	certSANs := sanSet(cert.DNSNames, cert.IPAddresses, cert.URIs, cert.EmailAddresses)
	for k := range n.sans {
		if !certSANs[k] {
			return false
		}
	}
	for k := range certSANs {
		if !n.sans[k] && !n.extra[k] {
			return false
		}
	}
	return true
}

// subjectAttributes lists a name's attributes as sorted "oid=value" strings
// with normalised values; empty values are left out (EJBCA drops them).
func subjectAttributes(name pkix.Name) []string {
	out := make([]string, 0, len(name.Names))
	for _, atv := range name.Names {
		v := normaliseValue(fmt.Sprint(atv.Value))
		if v == "" {
			continue
		}
		out = append(out, atv.Type.String()+"="+v)
	}
	sort.Strings(out)
	return out
}

// normaliseValue folds what caseIgnoreMatch ignores: case, leading and
// trailing spaces, and runs of inner spaces.
func normaliseValue(v string) string {
	return strings.ToLower(strings.Join(strings.Fields(v), " "))
}

func sanSet(dns []string, ips []net.IP, uris []*url.URL, emails []string) map[string]bool {
	set := map[string]bool{}
	for _, d := range dns {
		set[sanKey("dns", d)] = true
	}
	for _, ip := range ips {
		set["ip:"+ip.String()] = true
	}
	for _, u := range uris {
		set["uri:"+u.String()] = true
	}
	for _, e := range emails {
		set[sanKey("email", e)] = true
	}
	return set
}

// sanKey is a DNS name or e-mail address as compared: without case and
// without a DNS name's trailing dot.
func sanKey(kind, v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if kind == "dns" {
		v = strings.TrimSuffix(v, ".")
	}
	return kind + ":" + v
}
