// Package version carries the build's version and commit, set by the linker
// (-X github.com/certctl-io/ejbca-issuer/internal/version.Version=... and
// .Commit=...; the Makefile, the Dockerfile and hack/image pass both).
package version

import (
	"fmt"
	"runtime"
)

// Version of this build; "dev" when built without the release flags.
var Version = "dev"

// Commit is the git commit the build was made from; "unknown" when built
// without the release flags.
var Commit = "unknown"

// String is what `ejbca-issuer --version` prints: the version, the commit
// and the Go toolchain that built the binary (which decides its TLS stack
// and crypto, so an operator checking a CVE needs it).
func String() string {
	return fmt.Sprintf("ejbca-issuer %s (commit %s, %s)", Version, Commit, runtime.Version())
}
