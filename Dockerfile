# emolens service image: one static-ish binary with the model inside it.
#   docker build -t emolens .
#   docker run -p 8000:8000 -v emolens-data:/data emolens
#   docker run --rm -v emolens-data:/data emolens keys create --name team
# The build stage runs the same build command as CI and scripts/main.sh:
#   cargo build --release -p emolens
# The bundled default model (models/default.emolens) is embedded at build time when present.

FROM rust:1.95-bookworm AS build
# oneDNN: the CPU kernels for convolution, batch norm and pooling (see crates/emolens-model/src/onednn).
# FFmpeg's libraries (reaction videos), pkg-config and libclang for the binding's generator.
RUN apt-get update && apt-get install -y --no-install-recommends libdnnl-dev \
    pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p emolens \
 && cp target/release/emolens /emolens \
 && strip /emolens

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libdnnl2 \
    libavcodec59 libavformat59 libavutil57 libswscale6 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home /data emolens \
 && mkdir -p /data && chown emolens /data
COPY --from=build /emolens /usr/local/bin/emolens
USER emolens
WORKDIR /data
ENV EMOLENS_HOST=0.0.0.0 \
    EMOLENS_PORT=8000 \
    EMOLENS_DATABASE_URL=/data/emolens.db \
    EMOLENS_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
# SIGTERM (docker stop) lets in-flight requests finish before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["emolens"]
CMD ["serve"]
