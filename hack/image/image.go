package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The files build writes into --out.
const (
	layoutDir  = "oci"                 // the OCI image layout, the index tagged with the version
	sbomFile   = "sbom.spdx.json"      // the SPDX SBOM of the Go modules in the binary
	digestFile = "index.digest"        // the image index's digest, one line
	tarPattern = "ejbca-issuer-%s.tar" // a docker-load-able tarball per architecture
)

// buildResult is what a build made.
type buildResult struct {
	repository string // the --img repository without a tag
	tag        name.Tag
	digest     v1.Hash // the image index's
	index      v1.ImageIndex
}

// build writes the multi-architecture image of b into b.out: the OCI layout,
// a docker tarball per architecture, the SBOM and the index digest.
func build(b buildOptions) (*buildResult, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	repo, err := repoRoot(b.repo)
	if err != nil {
		return nil, err
	}
	tag, err := name.NewTag(b.img, name.WithDefaultTag(b.version))
	if err != nil {
		return nil, fmt.Errorf("--img %q: %w", b.img, err)
	}
	base, err := rootfs(b.caCerts)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(b.out); err != nil {
		return nil, err
	}
	binDir := filepath.Join(b.out, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	baseLayer, err := layer(base, b.created)
	if err != nil {
		return nil, err
	}
	s := imageSpec(b.version, b.commit)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var binaries []string
	for _, p := range b.platforms {
		arch := strings.TrimPrefix(p, "linux/")
		bin := filepath.Join(binDir, "ejbca-issuer-linux-"+arch)
		if err := goBuild(repo, arch, b.ldflags, bin); err != nil {
			return nil, err
		}
		binaries = append(binaries, bin)
		img, err := platformImage(s, arch, baseLayer, bin, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
		if err := tarball.WriteToFile(filepath.Join(b.out, fmt.Sprintf(tarPattern, arch)), tag, img); err != nil {
			return nil, fmt.Errorf("the docker tarball of %s: %w", p, err)
		}
	}
	idx = mutate.Annotations(idx, map[string]string{
		"org.opencontainers.image.source":   imageSource,
		"org.opencontainers.image.version":  b.version,
		"org.opencontainers.image.revision": b.commit,
		"org.opencontainers.image.created":  b.created.Format("2006-01-02T15:04:05Z"),
	}).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	// The layout's index.json names the image index by its tag, as skopeo
	// and crane write it (oci:dist/image/oci:TAG).
	p, err := layout.Write(filepath.Join(b.out, layoutDir), empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return nil, err
	}
	sbom, err := spdxSBOM(b, binaries, digest)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.out, sbomFile), sbom, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.out, digestFile), []byte(digest.String()+"\n"), 0o644); err != nil {
		return nil, err
	}
	return &buildResult{repository: tag.Repository.Name(), tag: tag, digest: digest, index: idx}, nil
}

// platformImage is the image of one architecture: the base layer, then the
// binary, then the spec's configuration, every time fixed at b.created.
func platformImage(s spec, arch string, base v1.Layer, bin string, b buildOptions) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	binLayer, err := layer([]entry{{path: strings.TrimPrefix(s.Binary, "/"), mode: 0o755, data: data}}, b.created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: b.created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: /etc/passwd, /etc/group, CA roots from " + b.caCerts}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "hack/image: CGO_ENABLED=0 GOARCH=" + arch + " go build -trimpath -ldflags '" + b.ldflags + "'"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, created
	cf.Config.User = s.User
	cf.Config.Entrypoint = s.Entrypoint
	cf.Config.Env = s.Env
	cf.Config.Labels = s.Labels
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}
