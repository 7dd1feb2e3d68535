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

# The on-device page's browser runtimes (docs/ondevice.md), pinned by web/vendor/package-lock.json:
# only the files the server serves, with their licences (MIT; onnxruntime-web states it in its
# package.json and README).
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/vendor/package.json web/vendor/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && o=/vendor/onnxruntime-web && f=/vendor/@vladmandic/face-api \
 && mkdir -p $o/dist $f/dist $f/model \
 && cp node_modules/onnxruntime-web/package.json node_modules/onnxruntime-web/README.md $o/ \
 && cp node_modules/onnxruntime-web/dist/ort.wasm.min.js node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs \
       node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm $o/dist/ \
 && cp node_modules/@vladmandic/face-api/LICENSE $f/ \
 && cp node_modules/@vladmandic/face-api/dist/face-api.js $f/dist/ \
 && cp node_modules/@vladmandic/face-api/model/tiny_face_detector_model* $f/model/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libdnnl2 \
    libavcodec59 libavformat59 libavutil57 libswscale6 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home /data emolens \
 && mkdir -p /data && chown emolens /data
COPY --from=build /emolens /usr/local/bin/emolens
COPY --from=web /vendor /usr/share/emolens/web-vendor
USER emolens
WORKDIR /data
ENV EMOLENS_HOST=0.0.0.0 \
    EMOLENS_PORT=8000 \
    EMOLENS_DATABASE_URL=/data/emolens.db \
    EMOLENS_LOG_FORMAT=json \
    EMOLENS_WEB_VENDOR_DIR=/usr/share/emolens/web-vendor
VOLUME ["/data"]
EXPOSE 8000
# SIGTERM (docker stop) lets in-flight requests finish before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["emolens"]
CMD ["serve"]
