#!/usr/bin/env bash
# The local demo: installs what it needs, builds ./galerad, starts a 3-node MariaDB Galera lab
# on 127.0.0.1, one `galerad healthcheck` per node and `galerad proxy` in front, then prints how
# to connect. Ctrl-C stops everything it started.
#
#   DEMO_PORT=3306 DEMO_API_PORT=8080 DEMO_HEALTH_PORT=1936 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${DEMO_PORT:-3306}
api_port=${DEMO_API_PORT:-8080}
health_port=${DEMO_HEALTH_PORT:-1936}
agent_base=${DEMO_AGENT_PORT:-19200}
export LAB_DIR=${LAB_DIR:-/tmp/galerad-lab}
password=demo-password

bash scripts/setup.sh
bash compile.sh >&2

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo >&2
  echo "demo: stopping galerad and the lab" >&2
  # The proxy first, and once it is gone the agents: an agent stopped under a running proxy
  # would look like a failed node to it, and the log would show failovers that never were.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  bash scripts/galera-lab.sh destroy || true
}
trap cleanup INT TERM EXIT

bash scripts/galera-lab.sh destroy >/dev/null 2>&1 || true
bash scripts/galera-lab.sh up 3
eval "$(bash scripts/galera-lab.sh env)"

backends=()
for i in 0 1 2; do
  sock_var="LAB_NODE${i}_SOCKET"; port_var="LAB_NODE${i}_PORT"
  "$root/galerad" healthcheck --listen "127.0.0.1:$((agent_base + i))" --mysql-socket "${!sock_var}" \
    --api-password "$password" --log-format json >"$LAB_DIR/agent$i.log" 2>&1 &
  pids+=($!)
  backends+=(--backend "node$i=127.0.0.1:${!port_var},health=http://127.0.0.1:$((agent_base + i))")
done

for i in 0 1 2; do # agents first, so the proxy's first choice sees every node
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$((agent_base + i))/" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

"$root/galerad" proxy --listen "127.0.0.1:$port" --api-listen "127.0.0.1:$api_port" \
  --health-listen "127.0.0.1:$health_port" --api-password "$password" --log-format pretty "${backends[@]}" &
pids+=($!)

ready=no
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$health_port/ready" >/dev/null 2>&1; then ready=yes; break; fi
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != yes ]; then
  echo "demo: galerad is not ready (its log is above); stopping" >&2
  exit 1
fi

cat >&2 <<EOF

  galerad is routing to the Galera lab.

  Connect:      mariadb -h127.0.0.1 -P$port -ulab -plab lab -e 'SELECT @@port, @@wsrep_node_name'
  Backends:     curl -s -u admin:$password http://127.0.0.1:$api_port/v0/backends
  Cluster:      curl -s -u admin:$password http://127.0.0.1:$api_port/v0/cluster
  Readiness:    curl -s http://127.0.0.1:$health_port/ready
  Switch over:  curl -s -u admin:$password -H 'Content-Type: application/json' -d '{"backend":"node1"}' http://127.0.0.1:$api_port/v0/cluster/switchover
  Fail over:    scripts/galera-lab.sh kill 0     (then: scripts/galera-lab.sh start 0)
  Lab status:   scripts/galera-lab.sh status     (agent logs in $LAB_DIR/agent*.log)

  Ctrl-C stops everything.

EOF
wait "${pids[-1]}"
