package charttest

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// restrictedViolations evaluates the Deployment's pod template against the
// restricted Pod Security Standard (latest version) with the library the
// API server's PodSecurity admission uses.
func restrictedViolations(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	result := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
	if result.Allowed {
		return ""
	}
	return result.ForbiddenReason() + ": " + result.ForbiddenDetail()
}

// TestPodSecurityRestricted: the Deployment of the chart (default values and
// every option on) and of config/default passes the restricted Pod Security
// Standard; weakening the chart's security context fails it, so the check is
// not vacuous.
func TestPodSecurityRestricted(t *testing.T) {
	for name, d := range map[string]*appsv1.Deployment{
		"chart defaults":    deploymentOf(t, mustRender(t, "ejbca-issuer", "ejbca-issuer", nil)),
		"chart all options": deploymentOf(t, mustRender(t, "ejbca", "pki", valuesFile(t, "testdata/all-options.yaml"))),
		"config/default":    deploymentOf(t, kustomizeBuild(t)),
	} {
		if v := restrictedViolations(t, d); v != "" {
			t.Errorf("%s: the Deployment violates the restricted Pod Security Standard: %s", name, v)
		}
	}
	for _, weaker := range []string{
		"securityContext: {allowPrivilegeEscalation: true}",
		"securityContext: {capabilities: {drop: []}}",
		"podSecurityContext: {runAsNonRoot: false}\nsecurityContext: {runAsNonRoot: false}",
		"podSecurityContext: {seccompProfile: null}",
	} {
		d := deploymentOf(t, mustRender(t, "r", "ns", values(t, weaker)))
		if restrictedViolations(t, d) == "" {
			t.Errorf("values %q pass the restricted standard: the check proves nothing", weaker)
		}
	}
}
