# syntax=docker/dockerfile:1
# The ejbca-issuer manager image: a static Go binary on distroless, run as the
# non-root UID 65532.
#
#   make docker-build VERSION=v0.1.0 IMG=ghcr.io/certctl-io/ejbca-issuer:v0.1.0
#
# `make image` builds the same image without a Docker engine (hack/image);
# the release images come from there. hack/charttest (make test-chart) runs
# this file's `go build` command on the build context .dockerignore selects,
# checks the binary's version, that it is static and built with -trimpath,
# and that user, entrypoint, labels and build flags are those of `make image`
# (TestDockerfileMatchesImage).

FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/certctl-io/ejbca-issuer/internal/version.Version=${VERSION} -X github.com/certctl-io/ejbca-issuer/internal/version.Commit=${COMMIT}" \
      -o /out/ejbca-issuer .

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.source="https://github.com/certctl-io/ejbca-issuer" \
      org.opencontainers.image.description="cert-manager external issuer for EJBCA" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=builder /out/ejbca-issuer /ejbca-issuer
USER 65532:65532
ENTRYPOINT ["/ejbca-issuer"]
