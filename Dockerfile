# syntax=docker/dockerfile:1
# Build: docker build -t wechat-oidc --build-arg VERSION=$(git describe --always) .
# Run:   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/wechat-oidc/config.yaml:ro \
#          -v wechat-oidc-data:/var/lib/wechat-oidc -e WECHAT_OA_SECRET=... wechat-oidc
# Try:   docker run --rm -p 127.0.0.1:8080:8080 wechat-oidc dev --listen 0.0.0.0:8080
# deploy/deploy_test.go (TestImageSteps) runs these steps without Docker: read docs/deploy.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# /out/lib/wechat-oidc becomes /var/lib/wechat-oidc, owned by the non-root user: the key
# directory (keys.dir) and the SQLite database with its -wal and -shm files (directory.path).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/wechat-oidc ./cmd/wechat-oidc \
 && install -d -m 0700 /out/lib/wechat-oidc /out/lib/wechat-oidc/keys

# A static binary on distroless: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wechat-oidc /usr/local/bin/wechat-oidc
# The contents of /out/lib, so that wechat-oidc/ itself is created with this owner.
COPY --from=build --chown=65532:65532 /out/lib/ /var/lib/
USER 65532:65532
# 8080: listen (the OpenID Provider). 9090: metrics.listen, when set (keep it private).
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/wechat-oidc", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/wechat-oidc"]
CMD ["serve", "--config", "/etc/wechat-oidc/config.yaml"]
