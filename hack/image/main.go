// Command image builds the ejbca-issuer container image without a Docker
// engine, the way ko does: it cross-compiles the manager for each platform,
// lays the binary on a root filesystem assembled here (no base image is
// pulled), and writes an OCI image index with go-containerregistry. It also
// pushes that index and cuts releases. The Makefile's image, image-push and
// release targets run it; it lives in its own module so that
// go-containerregistry and Helm stay out of the manager's dependencies.
//
//	go -C hack/image run . build   --repo . --out dist/image --img REF --version V --commit C --ldflags '...'
//	go -C hack/image run . push    --layout dist/image/oci --img REF
//	go -C hack/image run . release --repo . --out dist/release --img REPO --version vX.Y.Z --commit C --ldflags '...'
//	go -C hack/image run . spec
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: image build|push|release|spec [flags]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var b buildOptions
	var layoutDir, img string
	switch cmd {
	case "build", "release":
		b.flags(fs)
	case "push":
		fs.StringVar(&layoutDir, "layout", "", "The OCI layout make image wrote (its oci/ folder).")
		fs.StringVar(&img, "img", "", "Where to push the image index, e.g. registry.example.com/pki/ejbca-issuer:v0.2.0.")
	case "spec":
	default:
		return fmt.Errorf("unknown command %q: build, push, release or spec", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "build":
		res, err := build(b)
		if err != nil {
			return err
		}
		fmt.Printf("built %s@%s for %v into %s\n", res.repository, res.digest, b.platforms, b.out)
	case "release":
		res, err := release(b)
		if err != nil {
			return err
		}
		fmt.Printf("release %s: %s@%s, files in %s (see SHA256SUMS)\n", b.version, res.repository, res.digest, b.out)
	case "push":
		ref, err := push(layoutDir, img)
		if err != nil {
			return err
		}
		fmt.Println(ref)
	case "spec":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(imageSpec("$(VERSION)", "$(COMMIT)"))
	}
	return nil
}
