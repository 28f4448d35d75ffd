# syntax=docker/dockerfile:1
#
# forkcast image: `docker build -t forkcast .`, then
#   docker run -p 4561:4561 -v forkcast-data:/app/data forkcast   (single node)
#   docker run -p 4561:4561 -e REDIS_URL=redis://… forkcast         (a node of a cluster)
# compose.yaml at the root runs three nodes behind nginx; see docs/operating-a-cluster.md.

# ---------------------------------------------------------------------------------------------
# npm: the version CI runs, which enforces package.json's allowScripts under
# --strict-allow-scripts (the image's own npm may predate it, and would only warn).
FROM node:24-trixie-slim AS npm
RUN npm install -g npm@11.19.1 && npm cache clean --force

# ---------------------------------------------------------------------------------------------
# build: the full toolchain (TypeScript, Angular CLI) compiles dist/server, dist/ticker,
# dist/protocol and dist/client, and generates the API documents in dist/contracts.
FROM npm AS build
WORKDIR /app
# CI=true turns off the Angular build's disk cache, which a one-shot build would only fill.
ENV CI=true NG_CLI_ANALYTICS=false
COPY package.json package-lock.json ./
RUN npm ci --strict-allow-scripts --no-audit --no-fund
# The build inputs only, so an edit to the tests or the docs does not rebuild the image.
COPY angular.json tsconfig.json tsconfig.build.json tsconfig.app.json ./
COPY protocol ./protocol
COPY ticker ./ticker
COPY server ./server
COPY scripts ./scripts
COPY client ./client
RUN npm run build

# ---------------------------------------------------------------------------------------------
# deps: production dependencies only (the Angular packages, TypeScript and the test tools are
# devDependencies). bufferutil is optional: where npm finds no prebuilt binary and no compiler
# (the slim image has none) it skips it, and ws masks frames in plain JavaScript instead.
FROM npm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --strict-allow-scripts --no-audit --no-fund && npm cache clean --force

# ---------------------------------------------------------------------------------------------
# runtime
FROM node:24-trixie-slim AS runtime
# HOST: the server listens on loopback by default, which nobody outside the container reaches.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4561
WORKDIR /app
# The code stays owned by root, so the process (user node) cannot modify it; only data/ is
# writable. package.json is needed at run time: server/paths.ts finds the project root (and
# from it views/, public/, dist/client and the ticker child) by walking up to it.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/server ./dist/server
COPY --from=build /app/dist/ticker ./dist/ticker
COPY --from=build /app/dist/protocol ./dist/protocol
COPY --from=build /app/dist/contracts ./dist/contracts
COPY --from=build /app/dist/client ./dist/client
COPY --from=build /app/dist/build-stamp.json ./dist/
COPY views ./views
COPY public ./public
# Single-node mode keeps its state in STATE_FILE (default data/state.json, next to
# package.json) and writes it atomically (temp file, then rename), so the folder itself must be
# writable. Mount a volume on /app/data to keep the state across containers. A cluster node
# (REDIS_URL set) keeps its state in Redis and does not use it.
RUN mkdir data && chown node:node data
USER node
EXPOSE 4561
# Slim images have no curl; Node's built-in fetch does. /healthz answers 503 while the
# ticker is not available or (cluster) Redis is unreachable, so the container shows unhealthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 4561}/healthz`, { signal: AbortSignal.timeout(4000) }).then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# node itself, not `npm start`: the server gets the container's SIGTERM directly, not through
# npm and a shell (its clean shutdown takes up to 5 s, within Docker's default 10 s stop timeout).
CMD ["node", "dist/server/main.js"]
