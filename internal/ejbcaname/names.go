// Package ejbcaname writes a CSR's subject and subject alternative names in
// the text forms EJBCA's end entity API parses (subject_dn and
// subject_alt_name). Those strings are built from names a requester chose,
// so every value is escaped: a comma in a URI or a quote in a common name
// must reach EJBCA as part of the value, never as a separator.
package ejbcaname

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// attributeNames are the DN attribute types EJBCA knows by a short name
// (EJBCA's DnComponents); any other type is written as its dotted OID.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "SN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "T",
	"2.5.4.4":                    "SURNAME",
	"2.5.4.42":                   "GIVENNAME",
	"2.5.4.43":                   "INITIALS",
	"1.2.840.113549.1.9.1":       "E",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
}

// SubjectDN is the CSR's subject as EJBCA's subject_dn, or, when the CSR
// has no subject, CN= its first SAN (EJBCA's end entities need a DN), or
// CN=fallback when it has none.
func SubjectDN(csr *x509.CertificateRequest, fallback string) string {
	if dn := formatRDNs(csr.Subject.Names); dn != "" {
		return dn
	}
	switch {
	case len(csr.DNSNames) > 0:
		return "CN=" + EscapeValue(csr.DNSNames[0])
	case len(csr.URIs) > 0:
		return "CN=" + EscapeValue(csr.URIs[0].String())
	case len(csr.IPAddresses) > 0:
		return "CN=" + EscapeValue(csr.IPAddresses[0].String())
	case len(csr.EmailAddresses) > 0:
		return "CN=" + EscapeValue(csr.EmailAddresses[0])
	}
	return "CN=" + EscapeValue(fallback)
}

// formatRDNs writes the subject's attributes, most specific first (CN
// before O before C) as EJBCA prints DNs; EJBCA re-orders them anyway.
func formatRDNs(names []pkix.AttributeTypeAndValue) string {
	parts := make([]string, 0, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		atv := names[i]
		name, ok := attributeNames[atv.Type.String()]
		if !ok {
			name = atv.Type.String()
		}
		parts = append(parts, name+"="+EscapeValue(valueString(atv.Value)))
	}
	return strings.Join(parts, ",")
}

func valueString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case asn1.RawValue:
		return string(v.Bytes)
	}
	return fmt.Sprint(v)
}

// SubjectAltName is the CSR's SANs as EJBCA's subject_alt_name, e.g.
// "dNSName=a.example.com, iPAddress=10.0.0.1,
// uniformResourceIdentifier=https://example.org/a\,b".
func SubjectAltName(csr *x509.CertificateRequest) string {
	var parts []string
	for _, d := range csr.DNSNames {
		parts = append(parts, "dNSName="+EscapeValue(d))
	}
	for _, ip := range csr.IPAddresses {
		parts = append(parts, "iPAddress="+ip.String())
	}
	for _, u := range csr.URIs {
		parts = append(parts, "uniformResourceIdentifier="+EscapeValue(u.String()))
	}
	for _, e := range csr.EmailAddresses {
		parts = append(parts, "rfc822name="+EscapeValue(e))
	}
	return strings.Join(parts, ", ")
}

// EscapeValue escapes a DN or SAN value as EJBCA's DN tokenizer reads it
// (RFC 4514): the separators and quoting characters with a backslash,
// leading '#' and spaces and trailing spaces likewise, and control
// characters as \XX hex pairs.
func EscapeValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`,+"\<>;=`, c) >= 0,
			i == 0 && (c == ' ' || c == '#'),
			i == len(v)-1 && c == ' ':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
