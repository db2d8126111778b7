#!/usr/bin/env bash
# Seed 003's flow with galerad's commands: a Galera node that starts decides by itself whether to
# start a new cluster or join one, from the members a registry lists and what their agents say.
#
#   galera-entrypoint.sh --registry etcd://10.0.0.2:2379/galerad --name db0 \
#     --datadir /var/lib/mysql --defaults-file /etc/mysql/my.cnf [--galera-port 4567] \
#     [--wait 120] -- mariadbd --defaults-file=/etc/mysql/my.cnf [more server args]
#
# 1. It lists the nodes in the registry (`galerad discover list --role node`) and asks each one's
#    agent (`/api/v1/status`) whether it is Synced in a Primary component.
# 2. Some node is up: it starts the server joining them (--wsrep_cluster_address from
#    `galerad discover list --format gcomm`: each node's registered Galera address).
# 3. No node is up and this node's datadir has no cluster state (a new cluster) and it comes
#    first by name among the listed nodes (or none is listed): it initialises the datadir if
#    needed and starts a new cluster (--wsrep-new-cluster). Any other node waits for it.
# 4. No node is up but this node has cluster state: the whole cluster went down. Starting a new
#    cluster here could lose data, so it waits; after --wait seconds it exits 3, asking for
#    `galerad bootstrap`, which picks the node with the newest state.
#
# Register each node's agent with `galerad healthcheck --register URL` so it is listed. Start the
# first node of a new cluster before the others, or start them all: the others wait for it.
set -euo pipefail

galerad=${GALERAD:-galerad}
registry="" name="" datadir="" defaults="" galera_port="" wait_s=120
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --datadir) datadir=$2; shift 2 ;;
    --defaults-file) defaults=$2; shift 2 ;;
    --galera-port) galera_port=$2; shift 2 ;;
    --wait) wait_s=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "galera-entrypoint: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$registry" ] || { echo "galera-entrypoint: missing --registry URL" >&2; exit 2; }
[ -n "$name" ] || { echo "galera-entrypoint: missing --name NAME" >&2; exit 2; }
[ -n "$datadir" ] || { echo "galera-entrypoint: missing --datadir DIR" >&2; exit 2; }
[ $# -gt 0 ] || { echo "galera-entrypoint: missing the server command after --" >&2; exit 2; }

say() { echo "galera-entrypoint[$name]: $*" >&2; }

has_state() { # a datadir that ever belonged to a cluster
  [ -f "$datadir/grastate.dat" ] && ! grep -q '^uuid:[[:space:]]*00000000-0000-0000-0000-000000000000' "$datadir/grastate.dat"
}

deadline=$((SECONDS + wait_s))
while :; do
  members=$("$galerad" discover list --registry "$registry" --role node --format lines 2>/dev/null) || {
    say "registry unreachable; retrying"
    members=""
  }
  up_hosts=() first=""
  while read -r role member address health; do
    [ "$role" = node ] || continue
    [ -n "$first" ] || first=$member
    [ "$member" = "$name" ] && continue
    if [ -n "${health:-}" ] && curl -fsS --max-time 2 "$health/api/v1/status" 2>/dev/null |
      grep -q '"wsrep_local_state":4' && curl -fsS --max-time 2 "$health/api/v1/status" | grep -q '"wsrep_cluster_status":"Primary"'; then
      up_hosts+=("$member")
    fi
  done <<<"$members"

  gcomm=$("$galerad" discover list --registry "$registry" --role node --format gcomm ${galera_port:+--galera-port "$galera_port"} 2>/dev/null || true)
  if [ ${#up_hosts[@]} -gt 0 ] && [ -n "$gcomm" ]; then
    address=$gcomm
    say "joining the running cluster at $address"
    exec "$@" --wsrep_cluster_address="$address"
  fi
  if ! has_state && { [ -z "$first" ] || [ "$first" = "$name" ]; }; then
    if [ ! -d "$datadir/mysql" ]; then
      say "initialising $datadir"
      user=()
      [ "$(id -u)" -eq 0 ] && user=(--user=mysql)
      mariadb-install-db ${defaults:+--defaults-file="$defaults"} --datadir="$datadir" "${user[@]}" --skip-test-db >/dev/null
    fi
    address=${gcomm:-gcomm://}
    say "no node is up and this is a new cluster: starting it (first by name: ${first:-none listed})"
    exec "$@" --wsrep-new-cluster --wsrep_cluster_address="$address"
  fi
  if [ $SECONDS -ge $deadline ]; then
    if has_state; then
      say "no node is up and this node has cluster state: the cluster is down. Run 'galerad bootstrap' to start it from the node with the newest state."
    else
      say "no node came up within ${wait_s}s (waiting for ${first:-a first node} to start the cluster)"
    fi
    exit 3
  fi
  say "no node is up yet; waiting (${first:+$first starts a new cluster})"
  sleep 2
done
