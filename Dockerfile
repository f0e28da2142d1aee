# A small runtime image of `scimbridge serve` (README, "Run it as a service").
#   docker build -t scimbridge .
#   docker run -d --name scimbridge -p 127.0.0.1:9464:9464 -v scimbridge-data:/data scimbridge
#   docker exec -it scimbridge scimbridge admin password
# The data directory (state store, secret key) is the volume /data; back it up as a whole.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p scimbridge \
    && strip target/release/scimbridge

FROM debian:bookworm-slim
# CA certificates for https:// targets, token endpoints and ldaps:// directories.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin scimbridge \
    && install -d -o scimbridge -g scimbridge -m 0700 /data
COPY --from=build /src/target/release/scimbridge /usr/local/bin/scimbridge
USER scimbridge
ENV SCIMBRIDGE_DATA_DIR=/data \
    SCIMBRIDGE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["scimbridge", "health", "--url", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["scimbridge"]
# All interfaces inside the container: publish the port where only what should reach the admin
# API and console can (they need the administrator or an API token; put TLS in front).
CMD ["serve", "--listen", "0.0.0.0:9464"]
