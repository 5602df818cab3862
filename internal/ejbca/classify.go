package ejbca

import (
	"errors"
	"net/http"
	"regexp"
)

// The predicates here answer the questions the controllers ask of a failed
// call, so that only this package reads an Error's status, kind or
// message: how EJBCA words an answer is EJBCA's detail, kept next to the
// client that receives it.

// IsPending reports an operation EJBCA holds for an administrator's
// approval: a 202, or the 400 "approval already exists" (see
// IsApprovalAlreadyExists).
func IsPending(err error) bool { return err != nil && KindOf(err) == KindPending }

// IsApprovalAlreadyExists reports EJBCA's 400 "approval already exists"
// (ApprovalSessionBean.addApprovalRequest): an identical request already
// waits for approval, made by an earlier call whose answer was lost. It is
// pending (IsPending), but this call made no new approval request.
func IsApprovalAlreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindPending && e.StatusCode != http.StatusAccepted
}

// IsForbidden reports a 403: these credentials may not do this (EJBCA
// answers 403 for every authorization failure, including a profile or CA
// the role may not use).
func IsForbidden(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusForbidden
}

// IsDefinitive reports a 4xx: EJBCA (or what stands before it) answered the
// call and refused it, so an issuing call certainly did not issue. Without
// an answer, or with a 5xx, it may have (see MayHaveIssued).
func IsDefinitive(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500
}

// HasAnswer reports whether a call got an HTTP answer of any status: what
// it reached is up, even if it refused.
func HasAnswer(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode != 0
}

// TokenFailure is what went wrong at an OAuth2 token endpoint, beyond its
// OAuth2 error code (OAuthErrorCode).
type TokenFailure int

const (
	// TokenNoAnswer: the token endpoint did not answer (or the error is not
	// the token endpoint's).
	TokenNoAnswer TokenFailure = iota
	// TokenNotAnEndpoint: a 404 or 405, so the URL is not a token endpoint.
	TokenNotAnEndpoint
	// TokenServerFailed: a 5xx; the identity provider failed.
	TokenServerFailed
	// TokenRefused: any other status.
	TokenRefused
)

// TokenFailureOf classifies a token endpoint's failure by its answer.
func TokenFailureOf(err error) TokenFailure {
	var e *Error
	if !errors.As(err, &e) || e.Endpoint != tokenEndpoint {
		return TokenNoAnswer
	}
	switch s := e.StatusCode; {
	case s == 0:
		return TokenNoAnswer
	case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
		return TokenNotAnEndpoint
	case s >= 500:
		return TokenServerFailed
	}
	return TokenRefused
}

// NameKind is the kind of name an enrolment sends that EJBCA may not know.
type NameKind int

const (
	// NameCA is the CA's name.
	NameCA NameKind = iota + 1
	// NameCertificateProfile is the certificate profile's name.
	NameCertificateProfile
	// NameEndEntityProfile is the end entity profile's name.
	NameEndEntityProfile
)

func (k NameKind) String() string {
	switch k {
	case NameCA:
		return "CA"
	case NameCertificateProfile:
		return "certificate profile"
	case NameEndEntityProfile:
		return "end entity profile"
	}
	return "unknown"
}

// UnknownName is EJBCA's refusal of a name it does not know.
type UnknownName struct {
	Kind NameKind
	// Named: EJBCA said which name it refused, Name (the end entity
	// API's refusals do not).
	Named bool
	Name  string
}

// EJBCA's 400 refusals that name an unknown CA or profile: pkcs10enroll's
// (EjbcaRestHelperSessionBean, with the name) and /v1/endentity's
// (EndEntityRestResource, without).
var (
	unknownNamed = []struct {
		re   *regexp.Regexp
		kind NameKind
	}{
		{regexp.MustCompile(`^CA with name "?(.*?)"? doesn't exist`), NameCA},
		{regexp.MustCompile(`^Certificate profile with name "(.*)" doesn't exist`), NameCertificateProfile},
		{regexp.MustCompile(`^End Entity Profile of name "(.*)" was not found`), NameEndEntityProfile},
	}
	unknownUnnamed = regexp.MustCompile(`^Invalid request, unknown (end entity profile|certificate profile|CA)\.`)
	unnamedKinds   = map[string]NameKind{"CA": NameCA, "certificate profile": NameCertificateProfile, "end entity profile": NameEndEntityProfile}
)

// UnknownNameOf reports whether err is EJBCA's 400 refusal of a CA or
// profile name it does not know, and which. Whose name it is (the issuer's
// or one a request chose) is the caller's question.
func UnknownNameOf(err error) (UnknownName, bool) {
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest {
		return UnknownName{}, false
	}
	for _, u := range unknownNamed {
		if m := u.re.FindStringSubmatch(e.Message); m != nil {
			return UnknownName{Kind: u.kind, Named: true, Name: m[1]}, true
		}
	}
	if m := unknownUnnamed.FindStringSubmatch(e.Message); m != nil {
		return UnknownName{Kind: unnamedKinds[m[1]]}, true
	}
	return UnknownName{}, false
}
