# syntax=docker/dockerfile:1
# Build: docker build -t wechat-oidc --build-arg VERSION=$(git describe --always) .
# Run:   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/wechat-oidc/config.yaml:ro \
#          -v wechat-oidc-keys:/var/lib/wechat-oidc/keys -e WECHAT_OA_SECRET=... wechat-oidc
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/wechat-oidc ./cmd/wechat-oidc \
 && install -d -m 0700 /out/keys

# A static binary on distroless: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wechat-oidc /usr/local/bin/wechat-oidc
COPY --from=build --chown=65532:65532 /out/keys /var/lib/wechat-oidc/keys
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wechat-oidc"]
CMD ["serve", "--config", "/etc/wechat-oidc/config.yaml"]
