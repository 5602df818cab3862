// Package testenv starts the local control plane the tests run against: a real
// kube-apiserver and etcd (built into bin/ by hack/build-control-plane.sh)
// under controller-runtime's envtest, with cert-manager's CRDs and ours
// installed. One control plane per test package: call Start from TestMain.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	ejbcav1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// Scheme knows the built-in kinds, cert-manager's and ours.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, cmapi.AddToScheme, ejbcav1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// RepoRoot is the directory holding this module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/certctl-io/ejbca-issuer\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod of github.com/certctl-io/ejbca-issuer not found above the working directory")
		}
		dir = parent
	}
}

// CertManagerCRDDir is cert-manager's deploy/crds in the module cache, for the
// cert-manager version go.mod requires. CERT_MANAGER_CRDS overrides it.
func CertManagerCRDDir(root string) (string, error) {
	if d := os.Getenv("CERT_MANAGER_CRDS"); d != "" {
		return d, nil
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the cert-manager module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	return dir, nil
}

// New returns an envtest environment with our CRDs and cert-manager's,
// using the binaries in bin/ (or KUBEBUILDER_ASSETS). It does not start it.
func New() (*envtest.Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make control-plane` (hack/build-control-plane.sh) first", b, assets)
		}
	}
	cmCRDs, err := CertManagerCRDDir(root)
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		Scheme:                   Scheme,
		BinaryAssetsDirectory:    assets,
		DownloadBinaryAssets:     false,
		ErrorIfCRDPathMissing:    true,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases"), cmCRDs},
		ControlPlaneStartTimeout: 120e9,
		ControlPlaneStopTimeout:  60e9,
	}, nil
}
