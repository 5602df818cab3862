package main

// The Grafana dashboard, in the subset of Grafana's dashboard JSON model it
// needs: rows of panels laid out on Grafana's 24-column grid.

type dashboardJSON struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Tags          []string    `json:"tags"`
	SchemaVersion int         `json:"schemaVersion"`
	Editable      bool        `json:"editable"`
	Refresh       string      `json:"refresh"`
	Time          timeRange   `json:"time"`
	Templating    templating  `json:"templating"`
	Panels        []panelJSON `json:"panels"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type templating struct {
	List []variable `json:"list"`
}

type variable struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat,omitempty"`
	Instant      bool   `json:"instant,omitempty"`
	Format       string `json:"format,omitempty"`
}

type fieldConfig struct {
	Defaults  fieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

type fieldDefaults struct {
	Unit string `json:"unit,omitempty"`
	Min  *int   `json:"min,omitempty"`
}

type panelJSON struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     gridPos        `json:"gridPos"`
	Datasource  *datasourceRef `json:"datasource,omitempty"`
	Targets     []target       `json:"targets,omitempty"`
	FieldConfig *fieldConfig   `json:"fieldConfig,omitempty"`
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Panels      []panelJSON    `json:"panels,omitempty"`
}

// panel is a dashboard panel before layout: its width in grid columns.
type panel struct {
	kind, title, description, unit string
	width                          int
	queries                        []query
}

type query struct {
	expr, legend string
	// table: an instant query shown as a table.
	table bool
}

type row struct {
	title  string
	panels []panel
}

// panelHeight is every panel's height in grid units (30 px each).
const panelHeight = 8

func timeseries(title, unit, description string, width int, qs ...query) panel {
	return panel{kind: "timeseries", title: title, unit: unit, description: description, width: width, queries: qs}
}

func table(title, unit, description string, width int, qs ...query) panel {
	for i := range qs {
		qs[i].table = true
	}
	return panel{kind: "table", title: title, unit: unit, description: description, width: width, queries: qs}
}

func stat(title, unit, description string, width int, qs ...query) panel {
	return panel{kind: "stat", title: title, unit: unit, description: description, width: width, queries: qs}
}

// rows are the dashboard's content. Rates use Grafana's $__rate_interval;
// the gauges come from the leader only, so they are aggregated with max.
func rows() []row {
	q := func(expr, legend string) query { return query{expr: expr, legend: legend} }
	quantiles := func(metric, by string) []query {
		var out []query
		for _, p := range []string{"0.5", "0.9", "0.99"} {
			out = append(out, q(`histogram_quantile(`+p+`, sum by (le, `+by+`) (rate(`+metric+`_bucket[$__rate_interval])))`, "p"+p[2:]+" {{"+by+"}}"))
		}
		return out
	}
	return []row{
		{"Issuers", []panel{
			table("Issuers and their readiness", "", "1: Ready. The reason is the Ready condition's.", 12,
				q(`max by (kind, namespace, name, reason) (ejbca_issuer_issuer_ready_reason) * on (kind, namespace, name) group_left max by (kind, namespace, name) (ejbca_issuer_issuer_ready)`, "")),
			table("CA certificates: days to expiry", "d", "Each issuer's CA and the CAs above it in EJBCA's CA list.", 12,
				q(`min by (kind, namespace, name, ca, role) (ejbca_issuer_ca_expiry_timestamp_seconds - time()) / 86400`, "")),
			stat("Issuers not Ready", "none", "", 6, q(`count(max by (kind, namespace, name) (ejbca_issuer_issuer_ready) == 0) or vector(0)`, "")),
			stat("Leader", "none", "1: a manager process leads.", 6, q(`max(ejbca_issuer_leader)`, "")),
			timeseries("Health checks by reason", "ops", "", 12,
				q(`sum by (kind, reason) (rate(ejbca_issuer_health_checks_total[$__rate_interval]))`, "{{kind}} {{reason}}")),
		}},
		{"Issuance", []panel{
			timeseries("Requests by outcome", "ops", "CertificateRequests and CertificateSigningRequests.", 12,
				q(`sum by (issuer_kind, request_kind, outcome) (rate(ejbca_issuer_certificaterequests_total[$__rate_interval]))`, "{{request_kind}} {{issuer_kind}} {{outcome}}")),
			timeseries("Time to a certificate", "s", "From the request's creation, approval waits included.", 12,
				quantiles("ejbca_issuer_issuance_duration_seconds", "issuer_kind, request_kind")...),
		}},
		{"EJBCA", []panel{
			timeseries("Calls by endpoint and status", "ops", "Status 0: no answer (timeout, connection or TLS failure).", 12,
				q(`sum by (endpoint, status) (rate(ejbca_issuer_ejbca_requests_total[$__rate_interval]))`, "{{endpoint}} {{status}}")),
			timeseries("Call latency", "s", "", 12, quantiles("ejbca_issuer_ejbca_request_duration_seconds", "endpoint")...),
			timeseries("Errors and no answers", "percentunit", "Share of calls with a 5xx or no answer.", 12,
				q(`sum by (endpoint) (rate(ejbca_issuer_ejbca_requests_total{status=~"0|5.."}[$__rate_interval])) / sum by (endpoint) (rate(ejbca_issuer_ejbca_requests_total[$__rate_interval]))`, "{{endpoint}}")),
			timeseries("Held back by the rate limit", "s", "Seconds per second requests of each issuer waited for its rate limit.", 12,
				q(`sum by (kind, namespace, name) (rate(ejbca_issuer_ejbca_throttled_seconds_total[$__rate_interval]))`, "{{kind}} {{namespace}}/{{name}}")),
		}},
		{"Approvals and revocations", []panel{
			timeseries("Approvals pending", "none", "Requests waiting for an EJBCA administrator.", 8, q(`max(ejbca_issuer_approvals_pending)`, "pending")),
			stat("Longest approval wait", "s", "How long the request that has waited longest for an EJBCA administrator has waited.", 4,
				q(`time() - min(ejbca_issuer_approval_oldest_pending_timestamp_seconds)`, "")),
			timeseries("Revocations by outcome", "ops", "", 12,
				q(`sum by (kind, reason, outcome) (rate(ejbca_issuer_revocations_total[$__rate_interval]))`, "{{kind}} {{reason}} {{outcome}}")),
		}},
		{"Manager", []panel{
			timeseries("Kubernetes API latency", "s", "The usual limit on throughput once EJBCA is fast.", 12,
				quantiles("ejbca_issuer_kubernetes_request_duration_seconds", "method")...),
			timeseries("Reconcile errors", "ops", "", 12,
				q(`sum by (controller) (rate(controller_runtime_reconcile_errors_total{controller=~"certificaterequest|certificatesigningrequest|ejbcaissuer|ejbcaclusterissuer|revocation"}[$__rate_interval]))`, "{{controller}}")),
		}},
	}
}

// dashboard lays the rows out on the grid: each row is a header one unit
// high, then its panels left to right, wrapping at 24 columns.
func dashboard() dashboardJSON {
	ds := &datasourceRef{Type: "prometheus", UID: "${datasource}"}
	d := dashboardJSON{
		UID: "ejbca-issuer", Title: "ejbca-issuer",
		Description:   "cert-manager's EJBCA issuer: issuers, issuance, EJBCA, approvals, revocations. Generated by hack/monitoringgen.",
		Tags:          []string{"ejbca-issuer", "cert-manager", "pki"},
		SchemaVersion: 39, Editable: true, Refresh: "1m",
		Time:       timeRange{From: "now-6h", To: "now"},
		Templating: templating{List: []variable{{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus"}}},
	}
	id, y := 1, 0
	for _, r := range rows() {
		collapsed := false
		d.Panels = append(d.Panels, panelJSON{ID: id, Type: "row", Title: r.title, GridPos: gridPos{H: 1, W: 24, X: 0, Y: y}, Collapsed: &collapsed})
		id++
		y++
		x := 0
		for _, p := range r.panels {
			if x+p.width > 24 {
				x, y = 0, y+panelHeight
			}
			pj := panelJSON{ID: id, Type: p.kind, Title: p.title, Description: p.description, Datasource: ds,
				GridPos: gridPos{H: panelHeight, W: p.width, X: x, Y: y}, FieldConfig: &fieldConfig{Defaults: fieldDefaults{Unit: p.unit}, Overrides: []any{}}}
			for i, qu := range p.queries {
				t := target{RefID: string(rune('A' + i)), Expr: qu.expr, LegendFormat: qu.legend}
				if qu.table {
					t.Instant, t.Format = true, "table"
				}
				pj.Targets = append(pj.Targets, t)
			}
			d.Panels = append(d.Panels, pj)
			id++
			x += p.width
		}
		y += panelHeight
	}
	return d
}
