# Turnout: one static binary (gateway, agent and the operator's commands) on a
# minimal base image with no shell.
#   docker build -t turnout .
#   docker run --rm turnout version
# docker-compose.yml builds and runs it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
# CGO_ENABLED=0: a static binary, which distroless/static runs without libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/turnout ./cmd/turnout \
 && mkdir -p /out/state /out/raft

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/turnout /usr/local/bin/turnout
# Owned by the nonroot user (65532), so that volumes mounted here start
# writable: the gateway config and signal file, and the agent's Raft data.
COPY --from=build --chown=65532:65532 /out/state /var/lib/turnout
COPY --from=build --chown=65532:65532 /out/raft /var/lib/turnout-raft
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/turnout"]
CMD ["--help"]
