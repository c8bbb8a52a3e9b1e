# docker build -t mobilenet-serving .
#     model files downloaded from their official sources and sha256-checked while building
# docker build -t mobilenet-serving --build-context model-mirror=../shared .
#     model files copied from a local mirror instead (laid out like ../shared: models/, labels/)
# docker build -t mobilenet-serving:no-models --build-arg FETCH_MODELS=0 .
#     no model files: mount them at run time, e.g. -v "$PWD/models/files:/models:ro" -e MODEL_DIR=/models
#
# Every feature used is in BuildKit's built-in Dockerfile frontend: no `# syntax=` image to fetch.
# Debian slim, not Alpine: sharp and onnxruntime-node ship prebuilt binaries for glibc.
ARG NODE_IMAGE=node:20-bookworm-slim

# Empty unless the build is given `--build-context model-mirror=DIR`, which replaces this stage.
FROM scratch AS model-mirror

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NODE_ENV=production
# What `npm ci` and the model fetch read; the source is copied later so that editing it does
# not invalidate this layer.
COPY package.json package-lock.json .npmrc ./
COPY tools/openapi-codegen/package.json tools/openapi-codegen/
COPY models/manifest.json models/
COPY scripts/fetch-models.ts scripts/model-files.ts scripts/
ARG FETCH_MODELS=1
# Where the model files are copied from; empty: /mirror/models if the model-mirror context has
# that folder, else the files' official sources.
ARG MODEL_MIRROR=
# 1: also fetch tfjs-node's native TensorFlow (hundreds of MB) for ENGINE=tfjs; without it,
# ENGINE=tfjs runs on TensorFlow.js's wasm backend.
ARG TFJS_NATIVE=0
# Dependencies without their devDependencies. Install scripts run only for the packages that
# need theirs, and the project's own postinstall (the model fetch) separately, so that
# FETCH_MODELS=0 can leave it out. Every model file is checked against the size and sha256 in
# models/manifest.json; a mismatch fails the build.
# ONNX Runtime ships binaries for every OS and CPU (about 240 MB): only this platform's stay.
# Nothing reads source maps, type declarations, protobufjs's command-line tools or sharp's
# WebAssembly fallback (the native build is there) at run time: about 100 MB.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=bind,from=model-mirror,target=/mirror \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm rebuild esbuild onnxruntime-node protobufjs \
    && if [ "$TFJS_NATIVE" = 1 ]; then npm rebuild @tensorflow/tfjs-node; \
       else rm -rf node_modules/@tensorflow/tfjs-node node_modules/@tensorflow/tfjs node_modules/@tensorflow/tfjs-layers \
                   node_modules/@tensorflow/tfjs-data node_modules/@tensorflow/tfjs-backend-webgl node_modules/core-js; fi \
    && mirror="$MODEL_MIRROR" && if [ -z "$mirror" ] && [ -d /mirror/models ]; then mirror=/mirror/models; fi \
    && if [ "$FETCH_MODELS" = 1 ]; then MODEL_MIRROR="$mirror" npm run models; else mkdir -p models/files; fi \
    && arch="$(node -p process.arch)" \
    && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 ! -path "*/linux" -exec rm -rf {} + \
    && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 ! -name "$arch" -exec rm -rf {} + \
    && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
    && rm -rf node_modules/protobufjs/cli node_modules/@img/sharp-wasm32

FROM ${NODE_IMAGE} AS runtime
# Fonts for the labels that /v1/detect draws (SVG text rendered by sharp's librsvg).
# The downloaded packages go too: a base image without Debian's docker-clean hook keeps them
# (94 MB in the local trixie base).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fontconfig fonts-dejavu-core \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# glibc returns freed blocks of 128 KiB and more to the system at once (npm start sets the same):
# engines released by the segmentation variant cache then give their memory back (docs/engines.md).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
# Owned by root and read-only to the service's user: the process cannot change its own code
# or models. tsx compiles the TypeScript on start and caches it under /tmp.
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/models models
# The built-in model repository: a config per model version, over the model files above.
COPY models/repository models/repository
COPY package.json tsconfig.json openapi.yaml ./
COPY src src
USER node
EXPOSE 8080
# Liveness only: readiness (/readyz) is the orchestrator's to poll; see deploy/k8s.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself as PID 1 (not npm), so SIGTERM reaches the server's graceful drain.
# A larger first heap: V8 counts the per-request buffers (upload, decoded photo) against a heap
# limit sized from the small live heap, and ran a full GC every ~5 requests (docs/engines.md).
CMD ["node", "--initial-heap-size=128", "--import", "tsx", "src/server.ts"]
