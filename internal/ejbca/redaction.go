package ejbca

import (
	"errors"
	"regexp"
	"slices"
	"strings"
)

// otherEndEntity stands in, in a tenant's status and events, for an end
// entity EJBCA named that is not the request's own.
const otherEndEntity = "<another end entity>"

var (
	// uniqueDNUsers is the user list of EJBCA's unique-DN refusal
	// (intresources createcert.subjectdn_exists_for_another_user: "User '%s'
	// is not allowed to use same subject DN as the user(s) '%s' is/are using
	// while issuing a certificate."): every name in it is another's.
	uniqueDNUsers = regexp.MustCompile(`(as the user\(s\) )'[^']*'`)
	// quoted is a name EJBCA quotes in its messages.
	quoted = regexp.MustCompile(`'[^'\n]*'|"[^"\n]*"`)
)

// redactEndEntities removes from an EJBCA message the names of end entities
// that are not the request's own (own): EJBCA's refusals name other
// tenants' end entities (its unique-DN check lists them), and the message
// lands in the requester's status and events. A quoted value is taken for
// a name when it holds the namespace separator '/'; DNs (which hold '=')
// are left alone.
func redactEndEntities(msg string, own ...string) string {
	msg = uniqueDNUsers.ReplaceAllString(msg, "${1}'"+otherEndEntity+"'")
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		name := q[1 : len(q)-1]
		if !strings.Contains(name, "/") || strings.Contains(name, "=") || slices.Contains(own, name) || name == otherEndEntity {
			return q
		}
		return q[:1] + otherEndEntity + q[len(q)-1:]
	})
}

// RedactEndEntities redacts, in place, the message of the EJBCA answer err
// carries (see redactEndEntities), keeping every classification of the
// error: the message reaches a requester's status and events, and EJBCA's
// refusals name other tenants' end entities.
func RedactEndEntities(err error, own ...string) {
	var e *Error
	if errors.As(err, &e) {
		e.Message = redactEndEntities(e.Message, own...)
	}
}
