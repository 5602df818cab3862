package main

import "path"

// spec is what the image runs and says about itself. The Dockerfile's final
// stage must say the same: hack/charttest's TestDockerfileMatchesImage reads
// `image spec` and compares.
type spec struct {
	// User is the non-root user the chart's securityContext also names.
	User string `json:"user"`
	// Entrypoint runs the manager; the chart passes only arguments.
	Entrypoint []string `json:"entrypoint"`
	// Binary is where the manager lies in the image.
	Binary string            `json:"binary"`
	Env    []string          `json:"env"`
	Labels map[string]string `json:"labels"`
	// BuildEnv and BuildFlags are the go build settings besides -ldflags
	// (which is the Makefile's LDFLAGS, passed in).
	BuildEnv   []string `json:"buildEnv"`
	BuildFlags []string `json:"buildFlags"`
}

const (
	nonrootUID  = 65532
	caBundleDst = "etc/ssl/certs/ca-certificates.crt"
	imageSource = "https://github.com/certctl-io/ejbca-issuer"
)

func imageSpec(version, commit string) spec {
	bin := "/ejbca-issuer"
	return spec{
		User:       "65532:65532",
		Entrypoint: []string{bin},
		Binary:     bin,
		// What distroless/static sets: no shell needs PATH, but tools that
		// exec into the image expect one; SSL_CERT_FILE names the bundle.
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + path.Join("/", caBundleDst),
		},
		Labels: map[string]string{
			"org.opencontainers.image.source":      imageSource,
			"org.opencontainers.image.description": "cert-manager external issuer for EJBCA",
			"org.opencontainers.image.licenses":    "Apache-2.0",
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.revision":    commit,
		},
		BuildEnv:   []string{"CGO_ENABLED=0"},
		BuildFlags: []string{"-trimpath"},
	}
}
