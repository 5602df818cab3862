// Package version carries the build's version, set by the linker
// (-X github.com/certctl-io/ejbca-issuer/internal/version.Version=...).
package version

// Version of this build; "dev" when built without the release flags.
var Version = "dev"
