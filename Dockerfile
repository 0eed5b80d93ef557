# The berth image: `berth controller` and `berth proxy` (the proxy image also needs nginx).
# Not built by the tests: this machine has no base images and no Docker Hub access.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY bin ./bin
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY package.json ./
COPY crds ./crds
COPY deploy ./deploy
ENV NODE_ENV=production
USER node
ENTRYPOINT ["node", "/app/bin/berth.js"]
CMD ["controller", "--metrics-addr", ":9464"]
