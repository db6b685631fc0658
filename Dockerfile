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
# No shell tools are needed here: etcd is reached over gRPC, hosts over SSH (ssh2), Kubernetes over HTTPS.
USER node
EXPOSE 3000
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["all"]
