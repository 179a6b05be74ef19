# syntax=docker/dockerfile:1
# One image, two binaries: the operator (`manager`, the entrypoint) and the
# API it deploys (`chat-apiserver`, on PATH, run by the operator's Deployments
# and migrations Jobs with an explicit command). Shipping them together is
# what lets the operator default ChatBackends to "its own image at its own
# version": the API and its migrations move in lockstep with the operator.
#
#   make docker-build IMG=ghcr.io/chatbackend/chatbackend:v0.1.0

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS builder
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# Static (no libc in the final image), reproducible paths, version stamped
# where `chat-apiserver version` and the operator read it; chat-apiserver's
# build tags are internal/version.APIServerTags (it says why).
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH}
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags nomsgpack,grpcnotrace \
      -ldflags "-s -w -X github.com/chatbackend/chatbackend/internal/version.Version=${VERSION}" \
      -o /out/chat-apiserver ./apiserver/cmd/chat-apiserver && \
    go build -trimpath \
      -ldflags "-s -w -X github.com/chatbackend/chatbackend/internal/version.Version=${VERSION}" \
      -o /out/manager .

# distroless/static: CA certificates, tzdata and /etc/passwd with the nonroot
# user, nothing else (no shell, no package manager).
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="chatbackend" \
      org.opencontainers.image.description="chatbackend operator and chat-apiserver" \
      org.opencontainers.image.source="https://github.com/chatbackend/chatbackend" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/chat-apiserver /out/manager /usr/local/bin/
# 65532 is distroless' "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/manager"]
