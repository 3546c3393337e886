# syntax=docker/dockerfile:1
# Huddle in a container: a static binary built in the Go image, run as a
# non-root user in a distroless image (no shell, no package manager).
#
#   docker build -t huddle .
#   docker run --network host -e HUDDLE_API_KEYS=key:secret -v huddle-data:/data huddle
#
# Host networking is the simplest: media and TURN use the host's addresses
# and ports as they are. With the default bridge network publish every port
# and tell Huddle the host's public address (docs/OPERATIONS.md):
#
#   docker run -p 7880:7880 -p 7882:7882/udp -p 7882:7882 -p 3478:3478/udp -p 3478:3478 \
#     -p 50000-50100:50000-50100/udp -e HUDDLE_TURN_RELAY_PORTS=50000-50100 \
#     -e HUDDLE_PUBLIC_IPS=203.0.113.10 -e HUDDLE_API_KEYS=key:secret -v huddle-data:/data huddle

# The go.mod toolchain version.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo): the runtime image has no libc. The page is embedded.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/huddle ./cmd/huddle
# The data directory, owned by the runtime user (distroless's nonroot,
# uid 65532): the runtime image has no shell to make it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/huddle /huddle
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV HUDDLE_DATA_DIR=/data
VOLUME /data
# HTTP + WebSocket; media UDP and its ICE-TCP fallback; TURN UDP and TCP.
# TURN relay ports are a range of your choosing (--turn-relay-ports).
EXPOSE 7880/tcp 7882/udp 7882/tcp 3478/udp 3478/tcp
ENTRYPOINT ["/huddle"]
CMD ["serve"]
