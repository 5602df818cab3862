package issuers

import (
	"reflect"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

func TestCAChain(t *testing.T) {
	d := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	root := ejbca.CA{Name: "Root", SubjectDN: "CN=Root", IssuerDN: "CN=Root", ExpirationDate: "2040-01-01T00:00:00Z"}
	policy := ejbca.CA{Name: "Policy", SubjectDN: "CN=Policy", IssuerDN: "CN=Root", ExpirationDate: "2035-01-01T00:00:00Z"}
	issuing := ejbca.CA{Name: "Issuing", SubjectDN: "CN=Issuing", IssuerDN: "CN=Policy", ExpirationDate: "2030-01-01T00:00:00.123Z"}
	// Older EJBCA versions: issuer_dn is the root's DN.
	issuingOld := ejbca.CA{Name: "Issuing", SubjectDN: "CN=Issuing", IssuerDN: "CN=Root", ExpirationDate: "2030-01-01T00:00:00Z"}
	other := ejbca.CA{Name: "ManagementCA", SubjectDN: "CN=ManagementCA", IssuerDN: "CN=ManagementCA", ExpirationDate: "2029-01-01T00:00:00Z"}
	loopA := ejbca.CA{Name: "A", SubjectDN: "CN=A", IssuerDN: "CN=B", ExpirationDate: "2030-01-01T00:00:00Z"}
	loopB := ejbca.CA{Name: "B", SubjectDN: "CN=B", IssuerDN: "CN=A", ExpirationDate: "2031-01-01T00:00:00Z"}
	garbled := issuing
	garbled.ExpirationDate = "soon"

	for _, tc := range []struct {
		name    string
		cas     []ejbca.CA
		issuing ejbca.CA
		want    []metrics.CAValidity
	}{
		{"whole chain", []ejbca.CA{other, root, policy, issuing}, issuing, []metrics.CAValidity{
			{Name: "Issuing", Role: metrics.CARoleIssuing, NotAfter: d("2030-01-01T00:00:00.123Z")},
			{Name: "Policy", Role: metrics.CARoleIntermediate, NotAfter: d("2035-01-01T00:00:00Z")},
			{Name: "Root", Role: metrics.CARoleRoot, NotAfter: d("2040-01-01T00:00:00Z")},
		}},
		{"root's DN as issuer_dn", []ejbca.CA{root, policy, issuingOld}, issuingOld, []metrics.CAValidity{
			{Name: "Issuing", Role: metrics.CARoleIssuing, NotAfter: d("2030-01-01T00:00:00Z")},
			{Name: "Root", Role: metrics.CARoleRoot, NotAfter: d("2040-01-01T00:00:00Z")},
		}},
		{"issuer not visible", []ejbca.CA{issuing}, issuing, []metrics.CAValidity{
			{Name: "Issuing", Role: metrics.CARoleIssuing, NotAfter: d("2030-01-01T00:00:00.123Z")},
		}},
		{"self-signed issuing CA", []ejbca.CA{root}, root, []metrics.CAValidity{
			{Name: "Root", Role: metrics.CARoleIssuing, NotAfter: d("2040-01-01T00:00:00Z")},
		}},
		{"a loop ends", []ejbca.CA{loopA, loopB}, loopA, []metrics.CAValidity{
			{Name: "A", Role: metrics.CARoleIssuing, NotAfter: d("2030-01-01T00:00:00Z")},
			{Name: "B", Role: metrics.CARoleIntermediate, NotAfter: d("2031-01-01T00:00:00Z")},
		}},
		{"unparsable date skipped, walk goes on", []ejbca.CA{root, policy, garbled}, garbled, []metrics.CAValidity{
			{Name: "Policy", Role: metrics.CARoleIntermediate, NotAfter: d("2035-01-01T00:00:00Z")},
			{Name: "Root", Role: metrics.CARoleRoot, NotAfter: d("2040-01-01T00:00:00Z")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := caChain(tc.cas, tc.issuing)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("caChain = %+v\nwant %+v", got, tc.want)
			}
		})
	}

	var long []ejbca.CA
	for i := range 20 {
		long = append(long, ejbca.CA{Name: string(rune('a' + i)), SubjectDN: "CN=" + string(rune('a'+i)), IssuerDN: "CN=" + string(rune('a'+i+1)), ExpirationDate: "2030-01-01T00:00:00Z"})
	}
	if got := caChain(long, long[0]); len(got) != maxCAChain {
		t.Errorf("a 20-deep chain gives %d entries, want the bound %d", len(got), maxCAChain)
	}
	if got := earliestExpiry(caChain([]ejbca.CA{root, policy, issuing}, issuing)); !got.Equal(d("2030-01-01T00:00:00.123Z")) {
		t.Errorf("earliestExpiry = %v", got)
	}
}
