package ejbcasim

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// dnAttribute is one component of a distinguished name, e.g. CN=IssuingCA.
type dnAttribute struct {
	name  string // canonical short name, or the dotted OID when unknown
	value string
}

// dnComponent is an attribute type EJBCA knows by name, with its ASN.1
// string type. dnComponents is in EJBCA's DN order: a normalised DN lists
// its components in this order, whatever order they were given in.
type dnComponent struct {
	name string
	oid  asn1.ObjectIdentifier
	tag  int
}

var dnComponents = []dnComponent{
	{"E", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, asn1.TagIA5String},
	{"UID", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, asn1.TagUTF8String},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.TagUTF8String},
	{"SERIALNUMBER", asn1.ObjectIdentifier{2, 5, 4, 5}, asn1.TagPrintableString},
	{"GIVENNAME", asn1.ObjectIdentifier{2, 5, 4, 42}, asn1.TagUTF8String},
	{"INITIALS", asn1.ObjectIdentifier{2, 5, 4, 43}, asn1.TagUTF8String},
	{"SURNAME", asn1.ObjectIdentifier{2, 5, 4, 4}, asn1.TagUTF8String},
	{"T", asn1.ObjectIdentifier{2, 5, 4, 12}, asn1.TagUTF8String},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}, asn1.TagUTF8String},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.TagUTF8String},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}, asn1.TagUTF8String},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}, asn1.TagUTF8String},
	{"STREET", asn1.ObjectIdentifier{2, 5, 4, 9}, asn1.TagUTF8String},
	{"DC", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, asn1.TagIA5String},
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.TagPrintableString},
}

// dnAliases maps other spellings to the canonical short names (EJBCA's SN
// is the serial number attribute).
var dnAliases = map[string]string{
	"EMAILADDRESS": "E",
	"EMAIL":        "E",
	"SN":           "SERIALNUMBER",
	"S":            "ST",
}

func dnComponentNamed(name string) (dnComponent, int, bool) {
	for i, c := range dnComponents {
		if c.name == name {
			return c, i, true
		}
	}
	return dnComponent{}, len(dnComponents), false
}

// canonicalDNName maps an attribute type as written (any case, alias,
// OID.x.y or dotted OID) to the canonical name.
func canonicalDNName(raw string) (string, error) {
	name := strings.ToUpper(strings.TrimSpace(raw))
	name = strings.TrimPrefix(name, "OID.")
	if alias, ok := dnAliases[name]; ok {
		name = alias
	}
	if _, _, ok := dnComponentNamed(name); ok {
		return name, nil
	}
	if oid, ok := parseOID(name); ok {
		for _, c := range dnComponents {
			if c.oid.Equal(oid) {
				return c.name, nil
			}
		}
		return oid.String(), nil
	}
	return "", fmt.Errorf("unknown DN attribute %q", raw)
}

func parseOID(s string) (asn1.ObjectIdentifier, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	oid := make(asn1.ObjectIdentifier, 0, len(parts))
	for _, p := range parts {
		n := 0
		if p == "" || len(p) > 9 {
			return nil, false
		}
		for _, r := range p {
			if r < '0' || r > '9' {
				return nil, false
			}
			n = n*10 + int(r-'0')
		}
		oid = append(oid, n)
	}
	return oid, true
}

// parseDN reads a DN string (RFC 4514 style as EJBCA accepts it: commas or
// semicolons between components, '+' in multi-valued RDNs, backslash and hex
// escapes, quoted values, free spacing) into its attributes, in the order
// written.
func parseDN(s string) ([]dnAttribute, error) {
	var attrs []dnAttribute
	for _, part := range splitDN(s) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		eq := indexUnescaped(part, '=')
		if eq < 0 {
			return nil, fmt.Errorf("invalid DN component %q", strings.TrimSpace(part))
		}
		name, err := canonicalDNName(part[:eq])
		if err != nil {
			return nil, err
		}
		value, err := unescapeDNValue(part[eq+1:])
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, dnAttribute{name: name, value: value})
	}
	return attrs, nil
}

// splitDN cuts s at separators that are neither escaped nor quoted.
func splitDN(s string) []string {
	var parts []string
	start, escaped, quoted := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == ';' || c == '+'):
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func indexUnescaped(s string, b byte) int {
	escaped := false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == b:
			return i
		}
	}
	return -1
}

// unescapeDNValue resolves quotes and escapes and trims unescaped spaces.
func unescapeDNValue(raw string) (string, error) {
	raw = strings.TrimLeft(raw, " \t")
	if strings.HasPrefix(raw, "#") {
		return "", fmt.Errorf("hex-encoded DN values are not supported: %q", raw)
	}
	var out []byte
	lastLiteral := 0 // length of out up to the last escaped or quoted byte
	quoted := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '"':
			quoted = !quoted
			lastLiteral = len(out)
		case c == '\\':
			if i+1 >= len(raw) {
				return "", fmt.Errorf("dangling escape in DN value %q", raw)
			}
			if i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
				b, _ := hex.DecodeString(raw[i+1 : i+3])
				out = append(out, b[0])
				i += 2
			} else {
				out = append(out, raw[i+1])
				i++
			}
			lastLiteral = len(out)
		default:
			out = append(out, c)
			if quoted {
				lastLiteral = len(out)
			}
		}
	}
	end := len(out)
	for end > lastLiteral && (out[end-1] == ' ' || out[end-1] == '\t') {
		end--
	}
	if !utf8.Valid(out[:end]) {
		return "", fmt.Errorf("DN value %q is not UTF-8", raw)
	}
	return string(out[:end]), nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// sortDN orders attributes as EJBCA does: known components in dnComponents
// order, unknown OIDs after them; equal types keep their written order.
func sortDN(attrs []dnAttribute) {
	slices.SortStableFunc(attrs, func(a, b dnAttribute) int {
		_, ia, _ := dnComponentNamed(a.name)
		_, ib, _ := dnComponentNamed(b.name)
		if ia != ib {
			return ia - ib
		}
		if ia == len(dnComponents) {
			return strings.Compare(a.name, b.name)
		}
		return 0
	})
}

// formatDN writes attributes as a DN string, escaping what RFC 4514 needs.
func formatDN(attrs []dnAttribute) string {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		parts[i] = a.name + "=" + escapeDNValue(a.value)
	}
	return strings.Join(parts, ",")
}

func escapeDNValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`,+"\<>;=`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case (i == 0 && (c == ' ' || c == '#')) || (i == len(v)-1 && c == ' '):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// normaliseDN is EJBCA's canonical form of a DN: components in EJBCA's
// order, canonical names, no extra spaces. Two DNs naming the same entity
// ("O=EJBCA Sim, CN=IssuingCA" and "CN=IssuingCA,O=EJBCA Sim") normalise to
// the same string.
func normaliseDN(s string) (string, error) {
	attrs, err := parseDN(s)
	if err != nil {
		return "", err
	}
	sortDN(attrs)
	return formatDN(attrs), nil
}

// encodeDN is the DER X.509 Name for a DN string: normalised, then encoded
// with the most significant component (C) first, as EJBCA does.
func encodeDN(s string) ([]byte, error) {
	attrs, err := parseDN(s)
	if err != nil {
		return nil, err
	}
	sortDN(attrs)
	seq := make(pkix.RDNSequence, 0, len(attrs))
	for i := len(attrs) - 1; i >= 0; i-- {
		a := attrs[i]
		var oid asn1.ObjectIdentifier
		tag := asn1.TagUTF8String
		if c, _, ok := dnComponentNamed(a.name); ok {
			oid, tag = c.oid, c.tag
		} else if o, ok := parseOID(a.name); ok {
			oid = o
		} else {
			return nil, fmt.Errorf("unknown DN attribute %q", a.name)
		}
		if tag != asn1.TagUTF8String && !isASCIIPrintable(a.value) {
			tag = asn1.TagUTF8String
		}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{
			Type:  oid,
			Value: asn1.RawValue{Tag: tag, Bytes: []byte(a.value)},
		}})
	}
	return asn1.Marshal(seq)
}

func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// dnOfRaw is the normalised DN string of a DER X.509 Name.
func dnOfRaw(raw []byte) (string, error) {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return "", fmt.Errorf("parse X.509 name: %w", err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("parse X.509 name: trailing data")
	}
	var attrs []dnAttribute
	for i := len(seq) - 1; i >= 0; i-- {
		for _, atv := range seq[i] {
			name := atv.Type.String()
			for _, c := range dnComponents {
				if c.oid.Equal(atv.Type) {
					name = c.name
					break
				}
			}
			value, ok := atv.Value.(string)
			if !ok {
				value = fmt.Sprint(atv.Value)
			}
			attrs = append(attrs, dnAttribute{name: name, value: value})
		}
	}
	sortDN(attrs)
	return formatDN(attrs), nil
}

// mustDN is dnOfRaw for names the simulator or Go's x509 parser produced.
func mustDN(raw []byte) string {
	dn, err := dnOfRaw(raw)
	if err != nil {
		return fmt.Sprintf("<unparseable name: %v>", err)
	}
	return dn
}
