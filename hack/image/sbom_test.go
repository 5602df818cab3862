package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSBOM: the SPDX document beside the image lists the main module, the Go
// standard library of the toolchain that built it, and exactly the modules
// `go version -m` reports for the binaries, each with its purl.
func TestSBOM(t *testing.T) {
	dir := builtImage(t)
	b, err := os.ReadFile(filepath.Join(dir, sbomFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	digest, _ := os.ReadFile(filepath.Join(dir, digestFile))
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || !strings.HasSuffix(doc.DocumentNamespace, strings.TrimPrefix(strings.TrimSpace(string(digest)), "sha256:")) {
		t.Errorf("document header: %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.DocumentNamespace)
	}
	listed := map[string]string{}
	for _, p := range doc.Packages {
		if len(p.ExternalRefs) != 1 || p.ExternalRefs[0].Type != "purl" || !strings.HasPrefix(p.ExternalRefs[0].Locator, "pkg:golang/") {
			t.Errorf("package %s has no Go purl: %+v", p.Name, p.ExternalRefs)
		}
		listed[p.Name] = p.VersionInfo
	}
	if listed["github.com/certctl-io/ejbca-issuer"] != testVersion {
		t.Errorf("the main module is listed at %q", listed["github.com/certctl-io/ejbca-issuer"])
	}
	out, err := exec.Command("go", "version", "-m", filepath.Join(dir, "bin", "ejbca-issuer-linux-amd64")).Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "dep" || f[0] == "=>") {
			if f[0] == "dep" && len(f) >= 3 {
				deps++
			}
			if f[0] == "dep" && strings.Contains(line, "=>") {
				continue // the replacement follows on its own line
			}
			if listed[f[1]] != f[2] {
				t.Errorf("go version -m lists %s %s; the SBOM has %q", f[1], f[2], listed[f[1]])
			}
		}
		if len(f) == 2 && strings.HasSuffix(f[0], ":") && strings.HasPrefix(f[1], "go1.") && listed["stdlib"] != f[1] {
			t.Errorf("built with %s; the SBOM's stdlib is %q", f[1], listed["stdlib"])
		}
	}
	if deps < 20 || len(doc.Packages) != deps+2 || len(doc.Relationships) != deps+2 {
		t.Errorf("%d packages and %d relationships for %d modules (+ main and stdlib)", len(doc.Packages), len(doc.Relationships), deps)
	}
	for _, want := range []string{"sigs.k8s.io/controller-runtime", "github.com/cert-manager/cert-manager", "k8s.io/client-go"} {
		if listed[want] == "" {
			t.Errorf("the SBOM lacks %s", want)
		}
	}
}
