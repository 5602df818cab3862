package charttest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	leaderElectionID     = "ejbca-issuer.certctl.io"
	annotationApprovalID = "ejbca-issuer.certctl.io/approval-request-id"
)

func argValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// checkLeader: the manager holds the leader election Lease in the leader
// election namespace, which only the leader election Role lets it write.
func checkLeader(t *testing.T, namespace string) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		var l coordinationv1.Lease
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKey{Namespace: namespace, Name: leaderElectionID}, &l); err != nil {
			return "leader election Lease: " + err.Error()
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return "the Lease has no holder"
		}
		return ""
	})
}

func checkNoForbidden(t *testing.T, m *manager) {
	t.Helper()
	if f := m.forbiddenLines(); len(f) > 0 {
		t.Errorf("the manager was refused by RBAC:\n%s", strings.Join(f, "\n"))
	}
}

// TestManagerWithChartRBAC: the manager, running with nothing but the default
// chart's ServiceAccount token and the Deployment's args, becomes leader,
// makes an EJBCAIssuer (mTLS, Secret and ConfigMap in its namespace) and an
// EJBCAClusterIssuer (OAuth2, Secrets in the release namespace) Ready, signs
// approved requests for both through the EJBCA simulator, and completes
// EJBCA's approval flow (which creates an enrolment Secret next to the
// request, owned by it for garbage collection: the manager may not delete
// Secrets), without a single RBAC refusal in its log.
func TestManagerWithChartRBAC(t *testing.T) {
	simulator(t)
	objs := installChart(t, "ejbca-issuer", "ejbca-issuer", nil)
	d := deploymentOf(t, objs)
	c := container(t, d)
	m := startManager(t, d.Namespace, d.Spec.Template.Spec.ServiceAccountName, c.Args)
	user, groups := serviceAccountUser(d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
	for _, verb := range []string{"delete", "update", "patch"} {
		if allowed(t, user, groups, authorizationv1.ResourceAttributes{Namespace: "team-a", Resource: "secrets", Verb: verb}) {
			t.Errorf("the manager may %s Secrets: it only creates and reads them", verb)
		}
	}

	iss := mtlsIssuer(t, "team-a", "ejbca", "SERVER")
	approval := mtlsIssuer(t, "team-a", "ejbca-approval", "APPROVAL")
	ciss := oauthClusterIssuer(t, argValue(c.Args, "--cluster-resource-namespace"), "chart-default")
	t.Cleanup(func() { deleteIssuers(t, iss, approval, ciss) })
	for _, i := range []issuer{iss, approval, ciss} {
		waitIssuerReady(t, i)
	}
	cr1, key1 := request(t, "team-a", iss, "web")
	cr2, key2 := request(t, "team-b", ciss, "api")
	waitIssued(t, cr1, key1)
	waitIssued(t, cr2, key2)

	cr3, key3 := request(t, "team-a", approval, "approved-in-ejbca")
	var id string
	eventually(t, 30*time.Second, func() string {
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(cr3), cr3); err != nil {
			return err.Error()
		}
		if id = cr3.GetAnnotations()[annotationApprovalID]; id == "" {
			return "no EJBCA approval request id on the CertificateRequest yet: " + stringOf(condition(cr3, "Ready"))
		}
		return ""
	})
	enrolmentSecret := cr3.GetName() + "-ejbca-enrolment"
	var secret corev1.Secret
	if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKey{Namespace: "team-a", Name: enrolmentSecret}, &secret); err != nil {
		t.Fatalf("the manager did not create the enrolment Secret: %v", err)
	}
	if !metav1.IsControlledBy(&secret, cr3) {
		t.Error("the enrolment Secret is not controlled by its request, so garbage collection would not delete it")
	}
	approveInEJBCA(t, id)
	waitIssued(t, cr3, key3)
	checkLeader(t, argValue(c.Args, "--leader-election-namespace"))
	checkNoForbidden(t, m)
}

// TestManagerWithKustomizeRBAC: the same for `kustomize build config/default`:
// its ServiceAccount, RBAC and Deployment args run a manager that becomes
// leader in its namespace and signs for both issuer kinds.
func TestManagerWithKustomizeRBAC(t *testing.T) {
	simulator(t)
	objs := installKustomize(t)
	d := deploymentOf(t, objs)
	c := container(t, d)
	m := startManager(t, d.Namespace, d.Spec.Template.Spec.ServiceAccountName, c.Args)

	iss := mtlsIssuer(t, "team-k", "ejbca", "SERVER")
	ciss := oauthClusterIssuer(t, d.Namespace, "kustomize")
	t.Cleanup(func() { deleteIssuers(t, iss, ciss) })
	waitIssuerReady(t, iss)
	waitIssuerReady(t, ciss)
	cr1, key1 := request(t, "team-k", iss, "web")
	cr2, key2 := request(t, "team-k", ciss, "api")
	waitIssued(t, cr1, key1)
	waitIssued(t, cr2, key2)
	checkLeader(t, d.Namespace)
	checkNoForbidden(t, m)
}

// TestManagerWithNamespaceOnlySecretAccess: with rbac.secretsClusterWide=false
// the chart's ServiceAccount may read Secrets and ConfigMaps in the cluster
// resource namespace and nowhere else (SubjectAccessReview, and a real GET
// with its token is Forbidden), and the manager, started with the flag the
// chart adds, still signs for an EJBCAClusterIssuer without any RBAC refusal.
func TestManagerWithNamespaceOnlySecretAccess(t *testing.T) {
	simulator(t)
	installChart(t, "ejbca-issuer", "ejbca-issuer", nil) // the CRDs
	const ns = "pki-restricted"
	objs := installChart(t, "restricted", ns, values(t, "rbac: {secretsClusterWide: false}\ncrds: {enabled: false}\napprover: {enabled: false}"))
	d := deploymentOf(t, objs)
	c := container(t, d)
	sa := d.Spec.Template.Spec.ServiceAccountName
	user, groups := serviceAccountUser(ns, sa)

	ensureNamespace(t, "team-c", nil)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "someone-elses"}, Data: map[string][]byte{"k": []byte("v")}})
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Verb: "get"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Verb: "watch"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Resource: "configmaps", Verb: "list"}, true},
		{authorizationv1.ResourceAttributes{Namespace: "team-c", Resource: "secrets", Verb: "get", Name: "someone-elses"}, false},
		{authorizationv1.ResourceAttributes{Namespace: "team-c", Resource: "configmaps", Verb: "get"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "list"}, false},
		{authorizationv1.ResourceAttributes{Namespace: "kube-system", Resource: "secrets", Verb: "get"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Verb: "update"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Resource: "secrets", Verb: "delete"}, false},
		{authorizationv1.ResourceAttributes{Namespace: "team-c", Group: "cert-manager.io", Resource: "certificaterequests", Verb: "list"}, true},
		{authorizationv1.ResourceAttributes{Namespace: "kube-system", Group: "coordination.k8s.io", Resource: "leases", Verb: "update"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Group: "coordination.k8s.io", Resource: "leases", Verb: "update"}, true},
	} {
		if got := allowed(t, user, groups, tc.attrs); got != tc.want {
			t.Errorf("%s may %s %s in %q: %v, want %v", sa, tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Namespace, got, tc.want)
		}
	}
	cs, err := kubernetes.NewForConfig(tokenConfig(t, ns, sa))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("team-c").Get(context.Background(), "someone-elses", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("GET of a Secret in team-c with the manager's token: %v, want Forbidden", err)
	}

	m := startManager(t, ns, sa, c.Args)
	ciss := oauthClusterIssuer(t, ns, "restricted")
	t.Cleanup(func() { deleteIssuers(t, ciss) })
	waitIssuerReady(t, ciss)
	cr, key := request(t, "team-c", ciss, "api")
	waitIssued(t, cr, key)

	// An EJBCAIssuer outside the cluster resource namespace cannot be used
	// in this mode: it says so, and what to do, instead of looping on cache
	// errors.
	nsIssuer := mtlsIssuer(t, "team-c", "ejbca", "SERVER")
	t.Cleanup(func() { deleteIssuers(t, nsIssuer) })
	eventually(t, 30*time.Second, func() string {
		u := nsIssuer.object()
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(u), u); err != nil {
			return err.Error()
		}
		c := condition(u, "Ready")
		if c == nil || c["status"] != "False" || c["reason"] != "SecretsNotAccessible" ||
			!strings.Contains(fmt.Sprint(c["message"]), "use an EJBCAClusterIssuer (its Secrets go in namespace "+ns+")") {
			return fmt.Sprintf("EJBCAIssuer team-c/ejbca: %v", c)
		}
		return ""
	})
	checkLeader(t, ns)
	checkNoForbidden(t, m)
}

func stringOf(v any) string {
	if v == nil {
		return "<nil>"
	}
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(v)
}
