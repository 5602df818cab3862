package charttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRelease: make release VERSION=v0.2.0 writes the image (layout and a
// docker tarball per architecture, the SBOM), the chart packaged as
// ejbca-issuer-0.2.0.tgz with appVersion v0.2.0 and the image digest, the
// CRDs in one file, the config/default install pinned by digest, and
// SHA256SUMS that sha256sum -c accepts over every file. The packaged chart,
// rendered and applied to the API server, makes a Deployment that names the
// built index by digest; the install YAML passes a server-side dry run. A
// second make release gives the same SHA256SUMS.
func TestRelease(t *testing.T) {
	controlPlane(t)
	dir := filepath.Join(t.TempDir(), "release")
	const version = "v0.2.0"
	runMake(t, "release", "VERSION="+version, "RELEASE_DIR="+dir)

	var files []string
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SHA256SUMS", "ejbca-issuer-0.2.0.tgz", "ejbca-issuer-crds.yaml", "ejbca-issuer.yaml",
		"image/oci/index.json", "image/oci/oci-layout", "image/ejbca-issuer-amd64.tar", "image/ejbca-issuer-arm64.tar",
		"image/sbom.spdx.json", "image/index.digest", "image/bin/ejbca-issuer-linux-amd64", "image/bin/ejbca-issuer-linux-arm64",
	} {
		if !slices.Contains(files, want) {
			t.Errorf("the release lacks %s: %v", want, files)
		}
	}

	// SHA256SUMS covers every other file, and checks.
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var summed []string
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		_, name, _ := strings.Cut(l, "  ")
		summed = append(summed, name)
	}
	others := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == "SHA256SUMS" })
	sort.Strings(others)
	if !slices.Equal(summed, others) {
		t.Errorf("SHA256SUMS lists %v, the release has %v", summed, others)
	}
	check := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}

	// The same source cuts the same release, byte for byte.
	again := filepath.Join(t.TempDir(), "again")
	runMake(t, "release", "VERSION="+version, "RELEASE_DIR="+again)
	if sums2, err := os.ReadFile(filepath.Join(again, "SHA256SUMS")); err != nil || string(sums2) != string(sums) {
		t.Errorf("a second make release differs (%v):\n%s\nvs\n%s", err, sums, sums2)
	}

	layout := ociLayout(filepath.Join(dir, "image", "oci"))
	digest, idx := layout.imageIndex(t)
	if len(idx.Manifests) != 2 {
		t.Errorf("the release image has %d platforms", len(idx.Manifests))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "image", "index.digest")); strings.TrimSpace(string(b)) != digest {
		t.Errorf("index.digest %q, the layout's index %s", b, digest)
	}
	pinned := "ghcr.io/certctl-io/ejbca-issuer@" + digest
	out, err := exec.Command(filepath.Join(dir, "image", "bin", "ejbca-issuer-linux-amd64"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ejbca-issuer "+version+" (commit ") || strings.Contains(string(out), "commit unknown") {
		t.Errorf("the released binary's --version: %q %v", out, err)
	}

	c, err := loader.Load(filepath.Join(dir, "ejbca-issuer-0.2.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Version != "0.2.0" || c.Metadata.AppVersion != version {
		t.Errorf("the packaged chart is version %q appVersion %q", c.Metadata.Version, c.Metadata.AppVersion)
	}
	objs, err := renderChart(c, "released", "released", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := container(t, deploymentOf(t, objs)).Image; got != pinned {
		t.Errorf("the packaged chart's Deployment runs %q, want %q", got, pinned)
	}
	ensureNamespace(t, "released", restrictedLabels)
	takeWarnings()
	apply(t, objs, "helm", false)
	if w := takeWarnings(); len(w) > 0 {
		t.Errorf("installing the packaged chart: API server warnings: %q", w)
	}
	var d appsv1.Deployment
	rendered := deploymentOf(t, objs)
	if err := cp.k8s.Get(ctxFor(t, 10*time.Second), client.ObjectKeyFromObject(rendered), &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != pinned {
		t.Errorf("the installed Deployment runs %q, want %q", got, pinned)
	}

	// The CRDs file is config/crd/bases; the install YAML pins the digest.
	crds := decodeFile(t, filepath.Join(dir, "ejbca-issuer-crds.yaml"))
	bases, _ := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if len(crds) != len(bases) || len(ofKind(crds, "CustomResourceDefinition")) != len(bases) {
		t.Errorf("ejbca-issuer-crds.yaml holds %v; config/crd/bases has %d CRDs", ids(crds), len(bases))
	}
	install := decodeFile(t, filepath.Join(dir, "ejbca-issuer.yaml"))
	if got := container(t, deploymentOf(t, install)).Image; got != pinned {
		t.Errorf("ejbca-issuer.yaml's Deployment runs %q, want %q", got, pinned)
	}
	// A dry run (TestManagerWithKustomizeRBAC installs config/default for
	// real), in its namespace as the file's Namespace object would make it.
	ensureNamespace(t, mustFind(t, install, "Namespace", "", "ejbca-issuer").GetName(), restrictedLabels)
	apply(t, install, "kubectl", true)
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}
