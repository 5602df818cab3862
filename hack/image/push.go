package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// push writes the image index of the OCI layout at dir to img with the
// credentials of the default keychain (docker's config.json, as `docker
// login` or `crane auth login` leave them) and returns img pinned by digest.
func push(dir, img string) (string, error) {
	if dir == "" || img == "" {
		return "", fmt.Errorf("--layout and --img are required")
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		return "", fmt.Errorf("--img %q: %w", img, err)
	}
	idx, err := layoutIndex(dir)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("pushing to %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// layoutIndex is the one image index an OCI layout written by build holds.
func layoutIndex(dir string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("the OCI layout %s (run make image first): %w", dir, err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("the OCI layout %s holds %d entries, want the one image index make image writes", dir, len(m.Manifests))
	}
	return root.ImageIndex(m.Manifests[0].Digest)
}
