package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestIssuerReadyReasons(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	untrustedCert, untrustedKey, err := sim.NewUntrustedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	create(t, tlsSecret(ns, "untrusted", untrustedCert, untrustedKey))
	expiredCert, expiredKey, err := sim.NewClientCert("old-admin", false, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	create(t, tlsSecret(ns, "expired", expiredCert, expiredKey))
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "opaque"},
		Data: map[string][]byte{"tls.crt": sim.ClientCertPEM(), "tls.key": sim.ClientKeyPEM()}})
	create(t, tlsSecret(ns, "garbage", []byte("not a certificate"), []byte("not a key")))

	withSecret := func(name string) v1alpha1.IssuerSpec {
		s := issuerSpec(sim)
		s.Auth.MTLS.SecretName = name
		return s
	}
	tokenSpec := func(key string) v1alpha1.IssuerSpec {
		s := issuerSpec(sim)
		s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
			TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "ejbca-token", Key: key}}}
		return s
	}
	unreachable := issuerSpec(sim)
	unreachable.URL = "https://" + freeAddr()
	wrongCA := issuerSpec(sim)
	wrongCA.CAName = "NoSuchCA"
	noBundleKey := issuerSpec(sim)
	noBundleKey.CABundle.ConfigMapRef.Key = "missing.crt"
	untrustedServer := issuerSpec(sim)
	untrustedServer.CABundle = nil

	for _, tc := range []struct {
		name, reason, message string
		spec                  v1alpha1.IssuerSpec
	}{
		{"checked", v1alpha1.ReasonChecked, `has CA "IssuingCA"`, issuerSpec(sim)},
		{"checked-oauth2", v1alpha1.ReasonChecked, `has CA "IssuingCA"`, oauthSpec(sim)},
		{"checked-token", v1alpha1.ReasonChecked, `has CA "IssuingCA"`, tokenSpec("token")},
		{"secret-not-found", v1alpha1.ReasonSecretNotFound, "Secret " + ns + "/absent not found", withSecret("absent")},
		{"wrong-type", v1alpha1.ReasonInvalidSecret, `is of type "Opaque"`, withSecret("opaque")},
		{"unparseable", v1alpha1.ReasonInvalidSecret, "not a usable certificate and key", withSecret("garbage")},
		{"expired", v1alpha1.ReasonInvalidSecret, "expired at", withSecret("expired")},
		{"missing-key", v1alpha1.ReasonInvalidSecret, `has no key "nope"`, tokenSpec("nope")},
		{"missing-bundle-key", v1alpha1.ReasonInvalidSecret, `has no key "missing.crt"`, noBundleKey},
		{"unauthorized", v1alpha1.ReasonUnauthorized, "is not trusted", withSecret("untrusted")},
		{"unreachable", v1alpha1.ReasonUnreachable, "connection refused", unreachable},
		{"untrusted-server", v1alpha1.ReasonUnreachable, "certificate", untrustedServer},
		{"ca-not-found", v1alpha1.ReasonCANotFound, `no CA named "NoSuchCA"`, wrongCA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iss := newIssuer(t, ns, tc.name, tc.spec)
			c := waitIssuer(t, iss, tc.reason)
			if !strings.Contains(c.Message, tc.message) {
				t.Errorf("message %q does not contain %q", c.Message, tc.message)
			}
			wantStatus := metav1.ConditionFalse
			if tc.reason == v1alpha1.ReasonChecked {
				wantStatus = metav1.ConditionTrue
			}
			if c.Status != wantStatus {
				t.Errorf("status %s, want %s", c.Status, wantStatus)
			}
			if tc.reason == v1alpha1.ReasonCANotFound && !strings.Contains(c.Message, "IssuingCA") {
				t.Errorf("CANotFound should list the CAs that exist: %q", c.Message)
			}
			if strings.Contains(c.Message, string(sim.ClientKeyPEM())) || strings.Contains(c.Message, sim.StaticToken()) {
				t.Errorf("condition message carries secret material: %q", c.Message)
			}
		})
	}
}

func TestIssuerReadsOnlyItsOwnNamespace(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	mine, other := newNamespace(t), newNamespace(t)
	simSecrets(t, sim, other) // the Secrets exist, but in another tenant's namespace
	iss := newIssuer(t, mine, "ejbca", issuerSpec(sim))
	c := waitIssuer(t, iss, v1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, mine+"/") {
		t.Errorf("message should name the issuer's namespace %s: %q", mine, c.Message)
	}

	// A cluster issuer reads the cluster resource namespace, not the
	// namespace of any request.
	cluster := &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "cluster-" + mine}, Spec: issuerSpec(sim)}
	cluster.Spec.Auth.MTLS.SecretName = "client-" + mine
	create(t, cluster)
	waitIssuer(t, cluster, v1alpha1.ReasonSecretNotFound)
	create(t, tlsSecret(other, "client-"+mine, sim.ClientCertPEM(), sim.ClientKeyPEM()))
	create(t, tlsSecret(clusterResourceNamespace, "client-"+mine, sim.ClientCertPEM(), sim.ClientKeyPEM()))
	if err := k8s.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: "ejbca-ca"},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	// The ConfigMap may hold another test's simulator bundle: point this
	// issuer at one of its own.
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: "ca-" + mine},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}})
	update(t, cluster, func(c *v1alpha1.EJBCAClusterIssuer) { c.Spec.CABundle.ConfigMapRef.Name = "ca-" + mine })
	waitIssuer(t, cluster, v1alpha1.ReasonChecked)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), cluster) })
}

func TestIssuerRecoversWhenTheSecretAppearsAndFollowsSpecChanges(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-ca"},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}})
	iss := newIssuer(t, ns, "ejbca", issuerSpec(sim))
	waitIssuer(t, iss, v1alpha1.ReasonSecretNotFound)

	// Creating the Secret re-checks through the watch, not at the failing
	// schedule's next check (a minute at the soonest): noticed before then,
	// whatever the machine's pace.
	create(t, tlsSecret(ns, "ejbca-client", sim.ClientCertPEM(), sim.ClientKeyPEM()))
	waitIssuerFor(t, iss, v1alpha1.ReasonChecked, signing.MinHealthCheckSpacing-5*time.Second)

	// A spec change is checked and observedGeneration follows it.
	update(t, iss, func(i *v1alpha1.EJBCAIssuer) { i.Spec.CAName = "ManagementCA" })
	c := waitIssuer(t, iss, v1alpha1.ReasonChecked)
	if !strings.Contains(c.Message, "ManagementCA") || c.ObservedGeneration != 2 {
		t.Errorf("after the spec change: %+v", c)
	}
}

// TestUnreachableIssuerIsRecheckedWhenItsSecretChanges: an issuer that
// could not reach EJBCA is checked again at once when a user touches its
// Secret (the backoff itself is IssuerCheckDue's, table-tested).
func TestUnreachableIssuerIsRecheckedWhenItsSecretChanges(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	sim.SetDown(true)
	iss := newIssuer(t, ns, "ejbca", issuerSpec(sim))
	waitIssuer(t, iss, v1alpha1.ReasonUnreachable)
	// How often a failing issuer is checked again (never within a minute) is
	// IssuerCheckDue's, table-tested on a fake clock; here only the wiring.
	sim.SetDown(false)
	// Touching the Secret is a user action: it re-checks at once.
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-client"}},
		func(s *corev1.Secret) { s.Labels = map[string]string{"rotated": "yes"} })
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
}

// Issuers that cannot reach EJBCA are not re-checked one by one: one status
// probe per EJBCA URL (every 15s when four or more issuers share it) notices
// EJBCA's return and re-checks them all at once.
func TestUnreachableIssuersRecoverTogetherWhenEJBCAReturns(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	var issuers []*v1alpha1.EJBCAIssuer
	for _, name := range []string{"a", "b", "c", "d"} {
		iss := newIssuer(t, ns, name, issuerSpec(sim))
		waitIssuer(t, iss, v1alpha1.ReasonChecked)
		issuers = append(issuers, iss)
	}
	sim.SetDown(true)
	// A user action (the Secret changed) checks them now: all Unreachable.
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-client"}},
		func(s *corev1.Secret) { s.Labels = map[string]string{"touched": "1"} })
	for _, iss := range issuers {
		waitIssuer(t, iss, v1alpha1.ReasonUnreachable)
	}
	sim.SetDown(false)
	// The probe spacing (15s for four issuers) is TestProbeSpacing's; here
	// the wiring: the probe notices EJBCA and all four are checked again.
	for _, iss := range issuers {
		waitIssuerFor(t, iss, v1alpha1.ReasonChecked, 40*time.Second)
	}
	if n := sim.Counters().Get("status"); n < 1 {
		t.Errorf("no status probe reached EJBCA (%d)", n)
	}
}
