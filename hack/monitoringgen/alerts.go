package main

import "strings"

// ruleFile is Prometheus's rule file format (rulefmt), as `promtool check
// rules` reads it.
type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Severities: critical pages someone, warning goes to a queue.
const (
	critical = "critical"
	warning  = "warning"
)

// issuerName is how an annotation names the issuer of the series.
const issuerName = `{{ $labels.kind }} {{ if $labels.namespace }}{{ $labels.namespace }}/{{ end }}{{ $labels.name }}`

// readyReason looks up the issuer's current Ready reason, which is not a
// label of the alert (a change of reason would restart its for:).
const readyReason = `{{ with printf "ejbca_issuer_issuer_ready_reason{kind=%q,namespace=%q,name=%q}" $labels.kind $labels.namespace $labels.name | query }}` +
	`{{ range . }}{{ .Labels.reason }}{{ end }}{{ else }}unknown{{ end }}`

// anchor is the GitHub anchor of a heading of docs/troubleshooting.md named
// after the alert.
func anchor(alert string) string { return "#" + strings.ToLower(alert) }

func alert(name, severity, forDuration, expr, summary, description string) rule {
	return rule{
		Alert: name, Expr: expr, For: forDuration,
		Labels: map[string]string{"severity": severity},
		Annotations: map[string]string{
			"summary": summary, "description": description, "runbook_url": anchor(name),
		},
	}
}

// alerts are the chart's alerting rules. Each names what to do in
// docs/troubleshooting.md; hack/promtest/testdata/alerts_test.yaml tests each
// with Prometheus's rule engine. The gauges are exported by the leader only
// (a standby reconciles nothing), so they are aggregated with max.
func alerts() []rule {
	return []rule{
		alert("EJBCAIssuerNotReady", critical, "15m",
			`max by (kind, namespace, name) (ejbca_issuer_issuer_ready) == 0`,
			"An EJBCA issuer is not Ready: nothing can be signed through it.",
			issuerName+` is not Ready (reason: `+readyReason+`), and has not been at any point of the alert's for: duration. `+
				`kubectl describe it: its Ready condition says why.`),
		alert("EJBCAIssuerRequestsFailing", warning, "15m",
			`sum by (issuer_kind, request_kind, outcome) (increase(ejbca_issuer_certificaterequests_total{outcome=~"failed|denied"}[15m])) > 0`,
			"Certificate requests keep failing or being denied.",
			`{{ $value | humanize }} {{ $labels.request_kind }}s of {{ $labels.issuer_kind }}s ended {{ $labels.outcome }} in the last 15 minutes, and some did in every 15 minutes for the alert's for: duration. `+
				`Their Ready condition and events say why.`),
		alert("EJBCAIssuerEJBCAErrors", warning, "10m",
			`sum by (endpoint) (rate(ejbca_issuer_ejbca_requests_total{status=~"0|5.."}[5m]))`+
				` / sum by (endpoint) (rate(ejbca_issuer_ejbca_requests_total[5m])) > 0.05`,
			"EJBCA answers with server errors or not at all.",
			`{{ $value | humanizePercentage }} of the calls to EJBCA's {{ $labels.endpoint }} get a 5xx or no answer (timeout, connection or TLS failure).`),
		alert("EJBCAIssuerEJBCASlow", warning, "15m",
			`histogram_quantile(0.99, sum by (le, endpoint) (rate(ejbca_issuer_ejbca_request_duration_seconds_bucket[5m]))) > 5`,
			"EJBCA is slow to answer.",
			`The 99th percentile of EJBCA's {{ $labels.endpoint }} is {{ $value | humanizeDuration }} (threshold 5s).`),
		alert("EJBCAIssuerApprovalsWaiting", warning, "10m",
			`time() - min(ejbca_issuer_approval_oldest_pending_timestamp_seconds) > 86400`,
			"A request has waited more than a day for an EJBCA administrator's approval.",
			`The longest wait for approval in EJBCA is {{ $value | humanizeDuration }}; `+
				`{{ with query "max(ejbca_issuer_approvals_pending)" }}{{ . | first | value }}{{ end }} requests wait. `+
				`An EJBCA administrator approves or rejects them in EJBCA's RA web.`),
		alert("EJBCAIssuerRateLimited", warning, "15m",
			`sum by (kind, namespace, name) (rate(ejbca_issuer_ejbca_throttled_seconds_total[10m])) > 0.5`,
			"An issuer's rate limit holds requests back most of the time.",
			`On average {{ printf "%.2f" $value }} requests of `+issuerName+` were held back by its rate limit on EJBCA calls at any moment of the last 10 minutes: the limit, not EJBCA, sets the pace.`),
		alert("EJBCAIssuerRevocationsFailing", warning, "30m",
			`sum by (kind, reason) (increase(ejbca_issuer_revocations_total{outcome="failed"}[15m])) > 0`,
			"Revocations keep failing.",
			`{{ $value | humanize }} revocation attempts ({{ $labels.reason }}) through {{ $labels.kind }}s failed in the last 15 minutes, and some did in every 15 minutes for the alert's for: duration. They are retried; the certificates meant to be revoked are still valid.`),
		alert("EJBCAIssuerRevocationAbandoned", warning, "",
			`sum by (kind, reason) (increase(ejbca_issuer_revocations_total{outcome="abandoned"}[1h])) > 0`,
			"A revocation was given up: a certificate meant to be revoked is still valid.",
			`{{ $value | humanize }} revocations ({{ $labels.reason }}) through {{ $labels.kind }}s were abandoned in the last hour. The RevocationAbandoned events name each serial; revoke them in EJBCA.`),
		alert("EJBCAIssuerNoLeader", critical, "5m",
			`max(ejbca_issuer_leader) < 1 or absent(ejbca_issuer_leader)`,
			"No ejbca-issuer manager is the leader: no certificate is issued.",
			`No manager process holds the leader election lease (or none exports metrics), so no request or issuer is handled.`),
		alert("EJBCAIssuerCAExpiringSoon", warning, "1h",
			`min by (kind, namespace, name, ca, role) (ejbca_issuer_ca_expiry_timestamp_seconds) - time() < 30 * 86400`,
			"A CA certificate of an issuer's chain expires within 30 days.",
			`The {{ $labels.role }} CA {{ $labels.ca }} of `+issuerName+` expires in {{ $value | humanizeDuration }}.`),
		alert("EJBCAIssuerCAExpiryImminent", critical, "10m",
			`min by (kind, namespace, name, ca, role) (ejbca_issuer_ca_expiry_timestamp_seconds) - time() < 7 * 86400`,
			"A CA certificate of an issuer's chain expires within 7 days.",
			`The {{ $labels.role }} CA {{ $labels.ca }} of `+issuerName+` expires in {{ $value | humanizeDuration }}; after that EJBCA cannot issue through it.`),
	}
}
