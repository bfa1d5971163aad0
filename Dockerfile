# The consentd image: built with the Go toolchain alone (esbuild's Go API compiles the
# banner's TypeScript inside consentd, so no Node.js), run as a non-root user on a
# distroless base with no shell, the records and keys in the volume /data.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t consentd .
# compose.yaml runs it behind Caddy with TLS; deploy/container_test.go tests what it runs.

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.Version=${VERSION}" -o /out/consentd ./cmd/consentd
# The volume's mount point, owned by the user, so that a new volume starts out so.
RUN mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/consentd /consentd
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Every flag of consentd serve has its variable (consentd serve -h). The admin listener
# (/metrics, /readyz) is for the machine and its private network only: compose.yaml
# publishes it on 127.0.0.1. The public one, which compose.yaml publishes nowhere, is
# for the reverse proxy, which passes no DPO API on, and for the DPO commands (docker
# compose exec consentd /consentd backup ...), which find it at CONSENTD_URL.
ENV CONSENTD_ADDR=:8080 \
    CONSENTD_ADMIN_ADDR=:9090 \
    CONSENTD_CONFIG=/etc/consentd/sites.yaml \
    CONSENTD_DB=/data/consent.db \
    CONSENTD_KEYS=/data/keys \
    CONSENTD_TOKENS=/data/tokens.json \
    CONSENTD_URL=http://127.0.0.1:8080
VOLUME /data
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/consentd", "health"]
ENTRYPOINT ["/consentd"]
CMD ["serve"]
