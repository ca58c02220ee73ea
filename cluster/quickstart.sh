#!/usr/bin/env bash
# One command on a fresh machine: install nats-server (Debian) and npm packages, then run `infaas up`.
# Arguments go to `infaas up` (for example --once to exit after printing the table).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing nats-server (Debian package)..."
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
  else
    echo "nats-server is missing; install it with:  sudo sh -c 'apt-get update && apt-get install -y nats-server'" >&2
    exit 1
  fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund     # its prepare script compiles the CLI into dist/ (npm run build)
fi
# node_modules from before a pull: compile the sources now if dist/ is older (a failed build only warns).
node bin/build.js --if-possible --if-stale
exec node bin/infaas.js up "$@"
