package ejbcasim

import (
	"fmt"
	"slices"
	"strings"
)

// Behaviour holds one switch per behaviour that differs between EJBCA
// editions and versions. A preset is a named set of these switches; a test
// can start from a preset and flip any switch on its own (Config.Behaviour).
type Behaviour struct {
	// Approvals lets CAs and certificate profiles carry an approval profile
	// (EJBCA Enterprise). Off, no enrolment, addition or revocation ever
	// waits for an administrator, whatever Config.ApprovalCertificateProfiles,
	// SetApprovalRequired or SetCAApprovalRequired say.
	Approvals bool
	// EndEntityAPI serves POST /v1/endentity (EndEntityRestResource,
	// Enterprise only). Off, the path answers RESTEasy's 404 for an unknown
	// resource.
	EndEntityAPI bool
	// ApprovalAPI serves GET /v1/approval/{id}/status and POST
	// /v1/approval/{id}/process (ApprovalRestResource, recent Enterprise
	// versions). Off, both answer RESTEasy's 404 for an unknown resource.
	ApprovalAPI bool
	// PendingWithoutID makes /v1/endentity answer an addition that waits for
	// approval with the error shape {"error_code":202,"error_message":...}
	// and no request id anywhere, as the versions of EndEntityRestResource
	// that turn WaitingForApprovalException into a RestException do. Off,
	// the 202 is ExceptionHandler's info body with a link and request_id.
	// It also drops request_id from finalize's 202 (older
	// ExceptionInfoRestResponse has no such field).
	PendingWithoutID bool
	// CertificateRequestTypeRequired makes certificaterequest without
	// certificate_request_type fail with 500 "General failure.": the
	// CertificateRequestRestRequest converter of some 9.x builds switches on
	// the null type (NullPointerException). Off, a missing type means PKCS10
	// and an unknown one is refused with 400.
	CertificateRequestTypeRequired bool
	// OAuth accepts OAuth2 bearer tokens. Off, a bearer token counts as no
	// credential at all (403).
	OAuth bool
	// EndTime makes pkcs10enroll honour start_time and end_time (EJBCA
	// 9.3.3+, when the certificate profile allows validity override). Off,
	// both fields are ignored like any unknown field.
	EndTime bool
	// SearchV2 serves POST /v2/certificate/search (CertificateRestResourceV2,
	// paged). Off, it answers RESTEasy's 404.
	SearchV2 bool
	// CertificateProfileAPI serves GET /v2/certificate/profile/{name}
	// (CertificateRestResourceV2.getCertificateProfileInfo). Off, it
	// answers RESTEasy's 404.
	CertificateProfileAPI bool
}

// Preset names.
const (
	PresetCommunity9  = "community-9"
	PresetEnterprise8 = "enterprise-8"
	PresetEnterprise9 = "enterprise-9"
	// DefaultPreset is used when Config.Preset is empty.
	DefaultPreset = PresetEnterprise9
)

// preset is a named set of switches and the version the status endpoints
// report for it.
type preset struct {
	behaviour Behaviour
	revision  string
}

var presets = map[string]preset{
	// EJBCA Community 9.3+: no approvals, no end entity or approval REST
	// API (EndEntityRestResource and ApprovalRestResource are Enterprise
	// modules), OAuth since 9.3, validity override since 9.3.3.
	PresetCommunity9: {
		behaviour: Behaviour{OAuth: true, EndTime: true, SearchV2: true, CertificateProfileAPI: true},
		revision:  "EJBCA 9.3.3 Community (ejbcasim community-9)",
	},
	// An older Enterprise: approvals and /v1/endentity, whose pending
	// answer is the error shape without an id; no approval REST API; no
	// validity override.
	PresetEnterprise8: {
		behaviour: Behaviour{Approvals: true, EndEntityAPI: true, PendingWithoutID: true, OAuth: true, SearchV2: true},
		revision:  "EJBCA 8.3.2 Enterprise (ejbcasim enterprise-8)",
	},
	// A recent Enterprise: approval API, 202 info body with link and
	// request_id, and the 9.x certificaterequest that needs
	// certificate_request_type.
	PresetEnterprise9: {
		behaviour: Behaviour{Approvals: true, EndEntityAPI: true, ApprovalAPI: true, CertificateRequestTypeRequired: true, OAuth: true, EndTime: true, SearchV2: true,
			CertificateProfileAPI: true},
		revision: "EJBCA 9.3.3 Enterprise (ejbcasim enterprise-9)",
	},
}

// customRevision is reported when Config.Behaviour overrides the preset.
const customRevision = "EJBCA 9.3.3 (ejbcasim custom behaviour)"

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// PresetBehaviour is the set of switches of the named preset ("" is
// DefaultPreset).
func PresetBehaviour(name string) (Behaviour, error) {
	if name == "" {
		name = DefaultPreset
	}
	p, ok := presets[name]
	if !ok {
		return Behaviour{}, fmt.Errorf("ejbcasim: unknown preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return p.behaviour, nil
}

// resolveBehaviour picks the switches and reported revision for cfg.
func resolveBehaviour(cfg Config) (string, Behaviour, string, error) {
	name := cfg.Preset
	if name == "" {
		name = DefaultPreset
	}
	p, ok := presets[name]
	if !ok {
		_, err := PresetBehaviour(name)
		return "", Behaviour{}, "", err
	}
	if cfg.Behaviour != nil {
		return name, *cfg.Behaviour, customRevision, nil
	}
	return name, p.behaviour, p.revision, nil
}

// Behaviour is the set of switches the simulator runs with.
func (s *Sim) Behaviour() Behaviour { return s.behaviour }

// Preset is the name of the preset the simulator was started with (its
// switches may have been overridden by Config.Behaviour).
func (s *Sim) Preset() string { return s.preset }
