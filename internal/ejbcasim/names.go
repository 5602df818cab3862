package ejbcasim

import (
	"net"
	"net/url"
)

// DNAttribute is one attribute of a subject DN as the simulator reads it:
// the canonical short name (or dotted OID) and the unescaped value.
type DNAttribute struct {
	Name, Value string
}

// EndEntityNames is what the simulator reads from an end entity's
// subject_dn and subject_alt_name text, as EJBCA's DN and SAN parsing would.
// Tests use it to prove that a client's rendering of requester-chosen names
// comes back unchanged.
type EndEntityNames struct {
	SubjectDN      []DNAttribute
	DNSNames       []string
	IPAddresses    []net.IP
	URIs           []*url.URL
	EmailAddresses []string
}

// ParseEndEntityNames parses subject_dn and subject_alt_name the way the
// simulator's /v1/endentity does.
func ParseEndEntityNames(subjectDN, subjectAltName string) (EndEntityNames, error) {
	attrs, err := parseDN(subjectDN)
	if err != nil {
		return EndEntityNames{}, err
	}
	sans, err := parseAltNames(subjectAltName)
	if err != nil {
		return EndEntityNames{}, err
	}
	out := EndEntityNames{DNSNames: sans.dns, IPAddresses: sans.ips, URIs: sans.uris, EmailAddresses: sans.emails}
	for _, a := range attrs {
		out.SubjectDN = append(out.SubjectDN, DNAttribute{Name: a.name, Value: a.value})
	}
	return out, nil
}
