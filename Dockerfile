# etcd-medic: bot and worker in one image; the command picks the role (all | bot | worker).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY commands ./commands
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# etcd is reached over gRPC, hosts over SSH (ssh2), Kubernetes over HTTPS. The one tool needed is
# etcdctl, which reads a snapshot's revision, key count and hash offline to verify backups.
RUN apt-get update && apt-get install -y --no-install-recommends etcd-client && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/etcd-medic/backups && chown node /var/lib/etcd-medic/backups
USER node
EXPOSE 3000
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["all"]
