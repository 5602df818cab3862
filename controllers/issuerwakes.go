package controllers

import (
	"k8s.io/apimachinery/pkg/types"
)

// IssuerWakes is the issuer controllers' inbox: the one way anything else
// speaks of an issuer. The request side says a request could not reach EJBCA
// through it (re-check it, within the usual spacing) or that EJBCA refused
// its credentials or configuration (mark it not Ready with that); the
// reachability probe says EJBCA answers again (re-check it now). Only the
// issuer controllers act on these, and only they write issuers.
type IssuerWakes struct {
	byKind map[string]*IssuerReconciler
}

// NewIssuerWakes is an inbox with no issuer controller yet; Setup registers
// one per kind before the manager starts.
func NewIssuerWakes() *IssuerWakes {
	return &IssuerWakes{byKind: map[string]*IssuerReconciler{}}
}

func (w *IssuerWakes) register(kind string, r *IssuerReconciler) { w.byKind[kind] = r }

// Suspect: a request could not reach EJBCA through the issuer, or EJBCA
// refused it (403): the check tells whether the issuer is at fault.
func (w *IssuerWakes) Suspect(kind string, key types.NamespacedName) {
	if r := w.byKind[kind]; r != nil {
		r.wakeUp(key, wakeSuspect)
	}
}

// Recheck: EJBCA answers again; check the issuer now.
func (w *IssuerWakes) Recheck(kind string, key types.NamespacedName) {
	if r := w.byKind[kind]; r != nil {
		r.wakeUp(key, wakeEJBCABack)
	}
}

// Report: a request found the issuer at fault.
func (w *IssuerWakes) Report(kind string, key types.NamespacedName, fault IssuerFault) {
	if r := w.byKind[kind]; r != nil {
		r.report(key, fault)
	}
}

// Notice: a request got a certificate that differs from what it asked for
// because of the issuer's configuration; the issuer controller reports it
// on the issuer once per NoticeInterval with a count.
func (w *IssuerWakes) Notice(kind string, key types.NamespacedName, n IssuerNotice) {
	if r := w.byKind[kind]; r != nil {
		r.notice(key, n)
	}
}
