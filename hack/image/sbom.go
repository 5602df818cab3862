package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// An SPDX 2.3 document (JSON) of the Go modules linked into the manager,
// read from the binaries' build information (what `go version -m` prints),
// so it lists what ships, not what go.mod requires. Its time is the image's
// fixed time and its namespace is derived from the image digest, so it is
// reproducible too.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment          string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// goModule is a module as the SBOM lists it.
type goModule struct{ path, version, sum string }

// spdxSBOM describes the binaries (one per architecture, built from the
// same sources): the manager, the Go standard library, and every module.
func spdxSBOM(b buildOptions, binaries []string, digest v1.Hash) ([]byte, error) {
	var mainPath, goVersion string
	mods := map[string]goModule{}
	var sums []string
	for _, bin := range binaries {
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("reading the build information of %s: %w", bin, err)
		}
		mainPath, goVersion = info.Main.Path, info.GoVersion
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			mods[d.Path+"@"+d.Version] = goModule{d.Path, d.Version, d.Sum}
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(data)
		sums = append(sums, hex.EncodeToString(h[:]))
	}
	keys := make([]string, 0, len(mods))
	for k := range mods {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              "ejbca-issuer-" + b.version,
		DocumentNamespace: imageSource + "/spdx/" + b.version + "/" + digest.Hex,
		CreationInfo:      spdxCreationInfo{Created: b.created.Format("2006-01-02T15:04:05Z"), Creators: []string{"Tool: ejbca-issuer hack/image"}},
	}
	main := spdxPackage{
		Name: mainPath, SPDXID: "SPDXRef-Package-ejbca-issuer", VersionInfo: b.version,
		DownloadLocation: "git+" + imageSource + "@" + b.commit,
		ExternalRefs:     []spdxExternalRef{purl("pkg:golang/" + mainPath + "@" + b.version)},
		Comment:          "The manager binary /ejbca-issuer of image index " + digest.String() + "; SHA-256 per architecture: " + strings.Join(sums, ", "),
	}
	doc.Packages = append(doc.Packages, main)
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID})
	std := spdxPackage{
		Name: "stdlib", SPDXID: "SPDXRef-Package-stdlib", VersionInfo: goVersion, DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: []spdxExternalRef{purl("pkg:golang/stdlib@" + strings.TrimPrefix(goVersion, "go"))},
	}
	doc.Packages = append(doc.Packages, std)
	doc.Relationships = append(doc.Relationships, spdxRelationship{main.SPDXID, "DEPENDS_ON", std.SPDXID})
	for i, k := range keys {
		m := mods[k]
		p := spdxPackage{
			Name: m.path, SPDXID: fmt.Sprintf("SPDXRef-Package-go-%d", i), VersionInfo: m.version,
			DownloadLocation: "https://proxy.golang.org/" + m.path + "/@v/" + m.version + ".zip",
			ExternalRefs:     []spdxExternalRef{purl("pkg:golang/" + m.path + "@" + m.version)},
		}
		if m.sum != "" {
			p.Comment = "go.sum " + m.sum
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{main.SPDXID, "DEPENDS_ON", p.SPDXID})
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func purl(locator string) spdxExternalRef {
	return spdxExternalRef{Category: "PACKAGE-MANAGER", Type: "purl", Locator: locator}
}
