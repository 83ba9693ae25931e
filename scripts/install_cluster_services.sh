#!/usr/bin/env bash
# Debian's PostgreSQL server and Redis for `make up-cluster` and the cluster e2e suite, when missing.
# Only the binaries are used: scripts/cluster.py runs its own database and broker inside the deployment's
# home (initdb + pg_ctl, redis-server without persistence), never the system services.
set -euo pipefail
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; }
have_redis() { command -v redis-server >/dev/null; }
if have_postgres && have_redis; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "Installing Debian's postgresql and redis-server (for make up-cluster and make e2e-cluster)..."
$SUDO apt-get update -qq
# policy-rc.d 101: the packages' system services are not started; the deployment runs its own.
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
trap '[ -n "$CREATED_POLICY" ] && $SUDO rm -f "$POLICY"' EXIT
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql redis-server >/dev/null
ls /usr/lib/postgresql/*/bin/initdb
redis-server --version
