package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// buildOptions are the flags of build and release.
type buildOptions struct {
	repo      string // the ejbca-issuer checkout
	out       string // the folder written (emptied first)
	img       string // repository[:tag] the tarballs are tagged with
	version   string
	commit    string
	ldflags   string // the Makefile's LDFLAGS
	platforms []string
	caCerts   string // the PEM bundle put at /etc/ssl/certs/ca-certificates.crt
	created   time.Time
}

func (b *buildOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&b.repo, "repo", "../..", "The ejbca-issuer checkout to build.")
	fs.StringVar(&b.out, "out", "", "The folder to write (emptied first).")
	fs.StringVar(&b.img, "img", "ghcr.io/certctl-io/ejbca-issuer", "The image's repository[:tag]: the docker tarballs are tagged with it, a release pins it by digest.")
	fs.StringVar(&b.version, "version", "dev", "The version stamped into the binary and the labels.")
	fs.StringVar(&b.commit, "commit", "unknown", "The git commit stamped into the binary and the labels.")
	fs.StringVar(&b.ldflags, "ldflags", "", "go build -ldflags (the Makefile's LDFLAGS).")
	fs.Func("platforms", "Comma-separated os/arch list (default linux/amd64,linux/arm64).", func(s string) error {
		b.platforms = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&b.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "The CA roots for the image: Debian's ca-certificates bundle, or your organisation's.")
}

// check fills the defaults and rejects what cannot build.
func (b *buildOptions) check() error {
	if b.out == "" {
		return fmt.Errorf("--out is required")
	}
	if len(b.platforms) == 0 {
		b.platforms = []string{"linux/amd64", "linux/arm64"}
	}
	for _, p := range b.platforms {
		if os, arch, ok := strings.Cut(p, "/"); !ok || os != "linux" || arch == "" {
			return fmt.Errorf("platform %q: want linux/<arch>", p)
		}
	}
	if !strings.Contains(b.ldflags, "version.Version=") {
		return fmt.Errorf("--ldflags %q does not stamp internal/version.Version: pass the Makefile's LDFLAGS", b.ldflags)
	}
	// Every timestamp in the image is this one, so that the same source
	// gives the same digest: SOURCE_DATE_EPOCH when set, else the epoch.
	b.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		b.created = time.Unix(sec, 0).UTC()
	}
	return nil
}
