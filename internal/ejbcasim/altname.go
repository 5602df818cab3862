package ejbcasim

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// altNames are the subject alternative names of a certificate or end entity.
type altNames struct {
	dns    []string
	ips    []net.IP
	uris   []*url.URL
	emails []string
}

func (a altNames) empty() bool {
	return len(a.dns)+len(a.ips)+len(a.uris)+len(a.emails) == 0
}

func altNamesOf(csr *x509.CertificateRequest) altNames {
	return altNames{dns: csr.DNSNames, ips: csr.IPAddresses, uris: csr.URIs, emails: csr.EmailAddresses}
}

// String is EJBCA's subject_alt_name form, e.g.
// "dNSName=a.example.com, iPAddress=10.0.0.1, rfc822name=a@example.com,
// uniformResourceIdentifier=spiffe://example.com/a".
func (a altNames) String() string {
	var parts []string
	esc := func(v string) string { return strings.ReplaceAll(v, ",", `\,`) }
	for _, d := range a.dns {
		parts = append(parts, "dNSName="+esc(d))
	}
	for _, ip := range a.ips {
		parts = append(parts, "iPAddress="+ip.String())
	}
	for _, e := range a.emails {
		parts = append(parts, "rfc822name="+esc(e))
	}
	for _, u := range a.uris {
		parts = append(parts, "uniformResourceIdentifier="+esc(u.String()))
	}
	return strings.Join(parts, ", ")
}

// parseAltNames reads EJBCA's subject_alt_name form (names in any case;
// DNS, IP, EMAIL and URI are accepted as short forms).
func parseAltNames(s string) (altNames, error) {
	var a altNames
	for _, part := range splitUnescaped(s, ',') {
		if strings.TrimSpace(part) == "" {
			continue
		}
		eq := strings.IndexByte(part, '=')
		if eq < 0 {
			return altNames{}, fmt.Errorf("invalid subject alternative name %q", strings.TrimSpace(part))
		}
		value, err := unescapeDNValue(part[eq+1:])
		if err != nil {
			return altNames{}, err
		}
		switch strings.ToUpper(strings.TrimSpace(part[:eq])) {
		case "DNSNAME", "DNS":
			a.dns = append(a.dns, value)
		case "IPADDRESS", "IP":
			ip := net.ParseIP(value)
			if ip == nil {
				return altNames{}, fmt.Errorf("invalid IP address %q", value)
			}
			a.ips = append(a.ips, ip)
		case "RFC822NAME", "RFC822", "EMAIL":
			a.emails = append(a.emails, value)
		case "UNIFORMRESOURCEIDENTIFIER", "UNIFORMRESOURCEID", "URI":
			u, err := url.Parse(value)
			if err != nil || u.Scheme == "" {
				return altNames{}, fmt.Errorf("invalid URI %q", value)
			}
			a.uris = append(a.uris, u)
		default:
			return altNames{}, fmt.Errorf("unsupported subject alternative name type %q", strings.TrimSpace(part[:eq]))
		}
	}
	return a, nil
}

// splitUnescaped cuts s at every sep not preceded by a backslash.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start, escaped := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
