# The berth image: one image for `berth controller` and `berth proxy` (it holds nginx).
#
#   docker build -t berth .                          # with network access: npm ci runs in the build stage
#   npm run image -- --base IMAGE --tag NAME         # no network needed: compiled and installed on the
#                                                    # host, the context carries the result (.prebuilt)
#
# BASE must be Debian-based with node 20; when it already has nginx (the tests' base) nothing is
# downloaded during the build.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY . .
# A context made by scripts/image.sh has dist/ and production node_modules/ already (.prebuilt).
RUN [ -f .prebuilt ] || { npm ci && npm prune --omit=dev; } \
 && mkdir /app && cp -a package.json bin dist crds deploy node_modules /app/

FROM ${BASE}
RUN command -v nginx >/dev/null \
 || { apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*; }
# Not root. The controller service of deploy/stack.yml runs as root anyway: the Docker socket
# it needs is root's.
RUN useradd --system --uid 10001 --gid 0 --home-dir /var/lib/berth --create-home berth \
 && chmod 0770 /var/lib/berth
COPY --from=build /app /app
ENV NODE_ENV=production BERTH_HEALTH_URL=http://127.0.0.1:9464/healthz
USER 10001
EXPOSE 8080 9464 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/deploy/image/healthcheck.js"]
ENTRYPOINT ["node", "/app/bin/berth.js"]
CMD ["controller", "--metrics-addr", ":9464"]
