package failover

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// What users write and read on a request to revoke it (docs/revocation.md).
const (
	revokeAnnotation = "ejbca-issuer.certctl.io/revoke"
	revokedCondition = "ejbca-issuer.certctl.io/Revoked"
	alreadyRevoked   = "AlreadyRevoked"
)

// TestDeposedLeaderDuringRevocation is issue 28's case 3 with the real
// manager: the leader is frozen (SIGSTOP) the moment its revoke call
// reaches EJBCA, which carries it out while the leader cannot read the
// answer. A standby takes over and records what EJBCA says then (409:
// AlreadyRevoked). The old leader, resumed with EJBCA's answer waiting for
// it, writes nothing about the request (no Revoked condition, no event) and
// no other event or status, and exits: every write about the request after
// the freeze came from the new leader, and the record stays AlreadyRevoked.
// Judged from the API proxy's records once the old leader has exited.
func TestDeposedLeaderDuringRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	revocationIssuer, revocationRequests := freshName("ejbca-revoking"), freshName("rv")
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: revocationIssuer}, Spec: v1alpha1.IssuerSpec{
		URL: suite.ejA.url, CAName: "IssuingCA", CertificateProfileName: "SERVER", EndEntityProfileName: "EMPTY",
		EndEntityName: v1alpha1.EndEntityNameRequestName,
		Auth:          v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: issuerA + "-client"}},
		CABundle:      &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "proxy-ca", Key: "ca.crt"}, ExcludeSystemRoots: true},
		// Explicit revocations only (the annotation).
		Revocation: &v1alpha1.RevocationSpec{},
	}}
	if err := suite.k8s.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if err := waitIssuerReady(ctx, revocationIssuer, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	// A stable leader, and no failover round stopping another one meanwhile.
	turn.Lock()
	defer turn.Unlock()
	crs := newRequests(t, revocationIssuer, revocationRequests, 1, nil)
	if err := waitIssued(crs, 2*settleTime+60*time.Second); err != nil {
		t.Fatal(err)
	}
	cr := crs[0]
	var serial string
	for _, c := range suite.simA.Issued() {
		if c.Username == username(cr) {
			serial = fmt.Sprintf("%X", c.Serial)
		}
	}
	if serial == "" {
		t.Fatalf("EJBCA issued nothing to %s", username(cr))
	}
	old, err := waitLeader(false)
	if err != nil {
		t.Fatal(err)
	}

	// Frozen when its revoke call has reached the proxy, before EJBCA gets
	// it: EJBCA revokes, the answer waits for a process that cannot run.
	var stopAt time.Time
	hook := &callHook{pid: old.pid, fired: make(chan struct{}, 1),
		match: func(c *ejbcaCall, r *http.Request) bool {
			return c.endpoint == "revoke" && strings.Contains(strings.ToUpper(r.URL.Path), serial)
		},
		fire: func() {
			_ = old.signal(syscall.SIGSTOP)
			if err := old.waitStopped(5 * time.Second); err != nil {
				t.Error(err)
			}
			stopAt = time.Now()
		}}
	suite.ejA.armCall(hook)
	resumed := false
	defer func() {
		if !resumed {
			suite.ejA.disarmCall(hook)
			_ = old.signal(syscall.SIGCONT)
		}
	}()
	patch := client.MergeFrom(cr.DeepCopy())
	if cr.Annotations == nil {
		cr.Annotations = map[string]string{}
	}
	cr.Annotations[revokeAnnotation] = "keyCompromise"
	if err := suite.k8s.Patch(ctx, cr, patch); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hook.fired:
	case <-time.After(30 * time.Second):
		if suite.ejA.disarmCall(hook) {
			t.Fatalf("%s sent no revoke call for %s within 30s", old, serial)
		}
		<-hook.fired
	}

	// A standby takes over, revokes (EJBCA: already revoked) and records.
	var newLeader int
	var takeover time.Time
	if err := testkit.Poll(30*time.Second, func() string {
		pid, at := suite.api.leader()
		if pid != 0 && pid != old.pid && at.After(stopAt) {
			newLeader, takeover = pid, at
			return ""
		}
		return "no standby took over"
	}); err != nil {
		t.Fatal(err)
	}
	recorded := func() (*cmapi.CertificateRequestCondition, string) {
		got := &cmapi.CertificateRequest{}
		if err := suite.k8s.Get(ctx, client.ObjectKeyFromObject(cr), got); err != nil {
			return nil, err.Error()
		}
		for i := range got.Status.Conditions {
			if c := &got.Status.Conditions[i]; string(c.Type) == revokedCondition {
				return c, ""
			}
		}
		return nil, "no " + revokedCondition + " condition yet"
	}
	if err := testkit.Poll(60*time.Second, func() string {
		c, msg := recorded()
		if c == nil {
			return msg
		}
		if c.Status != cmmeta.ConditionTrue || c.Reason != alreadyRevoked {
			return fmt.Sprintf("recorded %s/%s: %s, want True/%s", c.Status, c.Reason, c.Message, alreadyRevoked)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}

	// Resumed with EJBCA's answer in hand, it notices it lost the lease and
	// exits; only then is what it wrote judged.
	logAt := old.logSize()
	resumeAt := time.Now()
	resumed = true
	if err := old.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still runs 30s after it was resumed", old)
	}

	var mine, theirs []string
	for _, w := range suite.api.snapshot() {
		switch {
		case w.pid == old.pid && w.received.After(resumeAt) && w.kind != "lease" && !stoppedLeading(w):
			t.Errorf("deposed leader %s sent a %s write (%s %s, about %q) %s after it was resumed, though pid %d leads",
				old, w.kind, w.method, w.path, w.request, w.received.Sub(resumeAt).Round(time.Millisecond), newLeader)
		case w.request != username(cr) || !w.received.After(stopAt):
		case w.pid == old.pid:
			t.Errorf("a %s write about %s by the old leader %s, %s after its freeze", w.kind, cr.Name, old, w.received.Sub(stopAt).Round(time.Millisecond))
		case w.pid == newLeader:
			theirs = append(theirs, w.kind)
		default:
			mine = append(mine, fmt.Sprintf("%s by pid %d", w.kind, w.pid))
		}
	}
	if len(theirs) == 0 {
		t.Errorf("no write about %s by the new leader (pid %d) seen", cr.Name, newLeader)
	}
	if len(mine) > 0 {
		// Neither the old leader nor the one that took over: a later
		// leader (a failover meanwhile is excluded by turn).
		t.Errorf("writes about %s by another process: %v", cr.Name, mine)
	}
	// The record is still the new leader's.
	if c, msg := recorded(); c == nil || c.Reason != alreadyRevoked {
		t.Errorf("the revocation record changed after the old leader was resumed: %+v %s", c, msg)
	}
	revoked := false
	for _, c := range suite.simA.Issued() {
		if fmt.Sprintf("%X", c.Serial) == serial {
			revoked = c.Revoked && c.RevocationReason == "KEY_COMPROMISE"
		}
	}
	if !revoked {
		t.Errorf("EJBCA did not revoke %s with KEY_COMPROMISE", serial)
	}
	var oldCalls int
	for _, c := range suite.ejA.snapshot() {
		if c.endpoint == "revoke" && c.pid == old.pid && strings.Contains(strings.ToUpper(c.path), serial) {
			oldCalls++
		}
	}
	if oldCalls != 1 {
		t.Errorf("the old leader sent %d revoke calls for %s, want 1", oldCalls, serial)
	}
	var logged []string
	for _, l := range old.logFrom(logAt) {
		logged = append(logged, logMessage(l))
	}
	t.Logf("%s frozen in its revoke call; pid %d took over %s later and recorded %s; revoke calls reaching EJBCA for %s: %d; writes about the request after the freeze by the new leader: [%s]; the old leader exited after SIGCONT, its log then: %s",
		old, newLeader, takeover.Sub(stopAt).Round(time.Millisecond), alreadyRevoked, serial, suite.simA.RevokeCalls(serial), countBy(theirs), countBy(logged))
}
