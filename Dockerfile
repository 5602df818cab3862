# syntax=docker/dockerfile:1
# The ejbca-issuer manager image: a static Go binary on distroless, run as the
# non-root UID 65532.
#
#   make docker-build VERSION=v0.1.0 IMG=ghcr.io/certctl-io/ejbca-issuer:v0.1.0
#
# hack/charttest (make test-chart) runs this file's `go build` command on the
# build context .dockerignore selects, and checks the binary's version, that
# it is static and built with -trimpath.

FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/certctl-io/ejbca-issuer/internal/version.Version=${VERSION}" \
      -o /out/ejbca-issuer .

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://github.com/certctl-io/ejbca-issuer" \
      org.opencontainers.image.description="cert-manager external issuer for EJBCA" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ejbca-issuer /ejbca-issuer
USER 65532:65532
ENTRYPOINT ["/ejbca-issuer"]
