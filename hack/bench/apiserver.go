package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The API server's apiserver_request_total has no label for the client, so
// each measured process (the manager, the null issuer) authenticates as its
// own user, and FlowSchemas that match only that user, one per verb class,
// route its requests. The API server counts every request it dispatches per
// FlowSchema (apiserver_flowcontrol_dispatched_requests_total, exempt
// requests included), so the difference of two scrapes is exactly that
// client's requests by verb class, read from the API server. The
// FlowSchemas use the built-in exempt priority level, as the envtest admin
// (system:masters) that the bench used before does: nothing is queued or
// throttled on the server's side.
var verbClasses = []struct {
	name  string
	verbs []string
	write bool
}{
	{"create", []string{"create"}, true},
	{"update", []string{"update"}, true},
	{"patch", []string{"patch"}, true}, // merge, JSON and server-side apply patches
	{"delete", []string{"delete", "deletecollection"}, true},
	{"read", []string{"*"}, false}, // get, list, watch and non-resource URLs: everything else
}

// clientUser returns a kubeconfig for a user of that name with cluster-admin
// rights and its own FlowSchemas, creating them once per bench run.
func (b *bench) clientUser(ctx context.Context, name string) (string, error) {
	path := filepath.Join(b.work, name+".kubeconfig")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	u, err := b.stack.Env.AddUser(envtest.User{Name: name}, &rest.Config{})
	if err != nil {
		return "", fmt.Errorf("adding API server user %s: %w", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	c := b.stack.Client
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bench-" + name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}}}
	if err := c.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	for i, vc := range verbClasses {
		rule := flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: name}}},
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: vc.verbs, APIGroups: []string{"*"}, Resources: []string{"*"},
				ClusterScope: true, Namespaces: []string{flowcontrolv1.NamespaceEvery}}},
		}
		if !vc.write {
			rule.NonResourceRules = []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}
		}
		fs := &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{Name: flowSchemaName(name, vc.name)},
			Spec: flowcontrolv1.FlowSchemaSpec{
				PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: flowcontrolv1.PriorityLevelConfigurationNameExempt},
				MatchingPrecedence:         int32(10 + i), // before every built-in schema but exempt (system:masters)
				Rules:                      []flowcontrolv1.PolicyRulesWithSubjects{rule},
			}}
		if err := c.Create(ctx, fs); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", err
		}
	}
	// The API server's flow control picks up new FlowSchemas from its own
	// informer; a request as the user that lands in our read schema shows
	// they are in effect.
	uc, err := rest.HTTPClientFor(u.Config())
	if err != nil {
		return "", err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		before, err := b.apiMetrics(ctx)
		if err != nil {
			return "", err
		}
		if res, err := uc.Get(u.Config().Host + "/version"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		after, err := b.apiMetrics(ctx)
		if err != nil {
			return "", err
		}
		if clientRequests(after, name, "read")-clientRequests(before, name, "read") > 0 {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the API server did not route user %s's requests to its FlowSchemas within 30s", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return path, os.WriteFile(path, kc, 0o600)
}

func flowSchemaName(user, class string) string { return "bench-" + user + "-" + class }

// apiMetrics scrapes the API server's /metrics (as the envtest admin).
func (b *bench) apiMetrics(ctx context.Context) (map[string]float64, error) {
	hc, err := rest.HTTPClientFor(b.stack.RESTConfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(b.stack.RESTConfig.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics of the API server: %s", res.Status)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body), nil
}

// clientRequests is how many requests of user in a verb class ("" for all)
// the API server has dispatched.
func clientRequests(m map[string]float64, user, class string) float64 {
	var n float64
	for _, vc := range verbClasses {
		if class == "" || class == vc.name || (class == "write" && vc.write) {
			n += sumMetric(m, "apiserver_flowcontrol_dispatched_requests_total", `flow_schema="`+flowSchemaName(user, vc.name)+`"`)
		}
	}
	return n
}

// apiUsage is one client's API traffic during a run, from the API server.
type apiUsage struct {
	RequestsPerCert float64            `json:"api_requests_per_cert"`
	WritesPerCert   float64            `json:"api_writes_per_cert"`
	PerCertByVerb   map[string]float64 `json:"api_requests_per_cert_by_verb"`
	// AllClientsWritesPerCert is every client's writes (the load generator's
	// creates and approvals, cert-manager's, the measured process's) per
	// certificate by verb and resource, from apiserver_request_total.
	AllClientsWritesPerCert map[string]float64 `json:"apiserver_writes_per_cert_all_clients"`
}

func usage(before, after map[string]float64, user string, certs int) apiUsage {
	u := apiUsage{PerCertByVerb: map[string]float64{}, AllClientsWritesPerCert: map[string]float64{}}
	if certs <= 0 || before == nil || after == nil {
		return u
	}
	n := float64(certs)
	for _, vc := range verbClasses {
		d := clientRequests(after, user, vc.name) - clientRequests(before, user, vc.name)
		u.RequestsPerCert += d / n
		if vc.write {
			u.WritesPerCert += d / n
		}
		if d > 0 {
			u.PerCertByVerb[vc.name] = d / n
		}
	}
	for series, v := range after {
		if !strings.HasPrefix(series, "apiserver_request_total{") {
			continue
		}
		verb, resource, sub := label(series, "verb"), label(series, "resource"), label(series, "subresource")
		switch verb {
		case "POST", "CREATE", "PUT", "UPDATE", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION":
		default:
			continue
		}
		if d := v - before[series]; d > 0 {
			key := verb + " " + resource
			if sub != "" {
				key += "/" + sub
			}
			u.AllClientsWritesPerCert[key] += d / n
		}
	}
	return u
}

// label returns the value of a label in a series name.
func label(series, name string) string {
	i := strings.Index(series, `{`+name+`="`)
	if i < 0 {
		i = strings.Index(series, `,`+name+`="`)
	}
	if i < 0 {
		return ""
	}
	rest := series[i+len(name)+3:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func formatPerCert(m map[string]float64) string {
	var out []string
	for k, v := range m {
		if v >= 0.005 {
			out = append(out, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
