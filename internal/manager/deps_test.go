package manager_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

// The manager binary must not link cert-manager's controller machinery (or
// the in-process stack that runs it): that belongs to tests and the demo.
func TestManagerBinaryDoesNotLinkTheInProcessStack(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cert-manager/cert-manager/pkg/controller") ||
			strings.HasPrefix(pkg, "github.com/certctl-io/ejbca-issuer/internal/devstack") ||
			strings.HasPrefix(pkg, "github.com/certctl-io/ejbca-issuer/internal/ejbcasim") ||
			strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime/pkg/envtest") {
			t.Errorf("the manager binary links %s", pkg)
		}
	}
}
