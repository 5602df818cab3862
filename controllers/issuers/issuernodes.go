package issuers

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// checkNodes checks an issuer of several EJBCA nodes: each node is asked
// for the CA list on its own. The issuer is Ready while at least one node
// is usable and the CA and profile check passes through it; the message
// says how many nodes are usable and names the others and why. With no
// usable node the issuer is not Ready exactly as with one URL: Unauthorized
// when a node refused the credentials (none accepted them), the token
// endpoint's failure, else Unreachable.
func (r *IssuerReconciler) checkNodes(ctx context.Context, iss v1alpha1.Issuer, cl *ejbca.Client) (metav1.ConditionStatus, string, string, bool, []metrics.CAValidity) {
	spec := iss.GetSpec()
	nodes := cl.Nodes()
	type result struct {
		cas []ejbca.CA
		err error
	}
	results := make([]result, len(nodes))
	first := -1
	for i := range nodes {
		cas, err := cl.ListCAsOn(ctx, i)
		results[i] = result{cas, err}
		if err == nil && first < 0 {
			first = i
		}
	}
	var problems []string
	var refusal, tokenFailure error
	usable := 0
	for i, res := range results {
		switch {
		case res.err == nil:
			usable++
			continue
		case ejbca.IsTokenEndpoint(res.err):
			tokenFailure = res.err
		case ejbca.IsUnauthorized(res.err):
			if first >= 0 {
				cl.RefusedCredentials(i, nodes[first].URL)
				problems = append(problems, fmt.Sprintf("%s: refused the issuer's credentials, which %s accepts (%s)", nodes[i].URL, nodes[first].URL, ejbca.Message(res.err)))
				continue
			}
			refusal = res.err
		}
		problems = append(problems, nodes[i].URL+": "+ejbca.Cause(res.err))
	}
	if first < 0 {
		switch {
		case tokenFailure != nil:
			return withNodes(tokenEndpointFailure(spec, r.Clients.SecretNamespace(iss), tokenFailure))
		case refusal != nil:
			return metav1.ConditionFalse, v1alpha1.ReasonUnauthorized,
				fmt.Sprintf("EJBCA refused the issuer's credentials on every node that answered: %s", strings.Join(problems, "; ")), false, nil
		}
		return metav1.ConditionFalse, v1alpha1.ReasonUnreachable,
			fmt.Sprintf("none of the %d EJBCA nodes could be used: %s", len(nodes), strings.Join(problems, "; ")), false, nil
	}
	status, reason, message, chain := checkCAs(ctx, cl, spec, results[first].cas, nodes[first].URL)
	summary := fmt.Sprintf("%d of %d EJBCA nodes usable", usable, len(nodes))
	if len(problems) > 0 {
		summary += "; " + strings.Join(problems, "; ")
	}
	return status, reason, summary + ". " + message, status == metav1.ConditionTrue && usable < len(nodes), chain
}

// setNodeMetrics publishes what the client believes of each node.
func setNodeMetrics(kind string, iss v1alpha1.Issuer, cl *ejbca.Client) {
	states := cl.Nodes()
	urls := make([]string, len(states))
	usable := make([]bool, len(states))
	for i, s := range states {
		urls[i], usable[i] = s.URL, s.Usable
	}
	metrics.SetNodeStates(kind, iss.GetNamespace(), iss.GetName(), urls, usable)
}

func withNodes(status metav1.ConditionStatus, reason, message string) (metav1.ConditionStatus, string, string, bool, []metrics.CAValidity) {
	return status, reason, message, false, nil
}
