#!/usr/bin/env bash
# A local MariaDB Galera cluster on 127.0.0.1 for tests, benchmarks and the demo.
#
#   scripts/galera-lab.sh up [N]        fresh N-node cluster (default 3), waits until all are Synced
#   scripts/galera-lab.sh init [N]      only the folders and configs of a fresh N-node lab (nothing runs)
#   scripts/galera-lab.sh down          stops every node (gracefully) and keeps the data
#   scripts/galera-lab.sh destroy       stops every node and removes the lab folder
#   scripts/galera-lab.sh kill I        SIGKILL node I (no clean shutdown: seqno -1 on disk)
#   scripts/galera-lab.sh stop I        clean shutdown of node I
#   scripts/galera-lab.sh start I       start node I as a joiner and wait until Synced
#   scripts/galera-lab.sh bootstrap I   start node I with --wsrep-new-cluster (after a full stop)
#   scripts/galera-lab.sh wait I STATE  wait until node I reports wsrep_local_state_comment STATE
#   scripts/galera-lab.sh status        one line per node: port, pid, state, index, cluster size
#   scripts/galera-lab.sh env           shell variables describing the lab (for other scripts)
#   scripts/galera-lab.sh sql I "SQL"   run SQL on node I as the lab admin
#
# Node I (0-based) listens for MySQL on LAB_PORT+I (default 13306), for Galera on
# LAB_GALERA_PORT+10*I (default 14567; +1 IST, +2 SST). Data lives in LAB_DIR (default
# /tmp/galerad-lab). Keep every port below the kernel's ephemeral range (32768+ on Linux): a
# client connection's source port there can take a node's SST or IST port and fail the join.
# Nodes run as the `mysql` user (rsync SST refuses root). The SQL user
# `lab`/`lab` exists on every node, for any host.
set -euo pipefail

LAB_DIR=${LAB_DIR:-/tmp/galerad-lab}
LAB_PORT=${LAB_PORT:-13306}
LAB_GALERA_PORT=${LAB_GALERA_PORT:-14567}
LAB_NODES_FILE="$LAB_DIR/nodes"
LAB_TIMEOUT=${LAB_TIMEOUT:-180}
LAB_BIND=${LAB_BIND:-127.0.0.1} # 0.0.0.0 inside a network namespace of its own (tests/e2e/partition_suite.ts)
MYSQLD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
PROVIDER=${LAB_PROVIDER:-/usr/lib/galera/libgalera_smm.so}

die() { echo "galera-lab: $*" >&2; exit 1; }
say() { echo "galera-lab: $*" >&2; }

nodes() { [ -f "$LAB_NODES_FILE" ] && cat "$LAB_NODES_FILE" || echo 0; }
node_dir() { echo "$LAB_DIR/node$1"; }
node_port() { echo $((LAB_PORT + $1)); }
galera_port() { echo $((LAB_GALERA_PORT + 10 * $1)); }
sock() { echo "$(node_dir "$1")/mysqld.sock"; }
pidof_node() {
  local f; f="$(node_dir "$1")/mysqld.pid"
  [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A killed server whose parent has not reaped it yet is a zombie: not running.
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = "Z" ] && return 1
  echo "$pid"
}
check_index() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] || die "expected a node index, got '${1:-}'"
  [ "$1" -lt "$(nodes)" ] || die "node $1 does not exist (the lab has $(nodes) nodes)"
}

sql() { # node, sql: as root over the socket (unix_socket auth)
  mariadb --protocol=socket -S "$(sock "$1")" -uroot -N -B --connect-timeout=3 -e "$2"
}
status_var() { sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{print $2}'; }

cluster_address() {
  local n; n=$(nodes); local list=""
  for ((i = 0; i < n; i++)); do list+="${list:+,}127.0.0.1:$(galera_port "$i")"; done
  echo "gcomm://$list"
}

write_config() { # index
  local i=$1 d; d=$(node_dir "$1")
  local g; g=$(galera_port "$i")
  cat >"$d/my.cnf" <<EOF
[mysqld]
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$(node_port "$i")
bind-address=${LAB_BIND:-127.0.0.1}
skip-name-resolve
server-id=$((i + 1))
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2
performance_schema=OFF
max_connections=2000
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=galerad_lab
wsrep_cluster_address=$(cluster_address)
wsrep_node_name=node$i
wsrep_node_address=127.0.0.1:$g
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$((g + 2))
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$g;ist.recv_addr=127.0.0.1:$((g + 1));gcache.size=64M;pc.wait_prim_timeout=PT30S"
${LAB_EXTRA_CNF:-}
EOF
}

start_mysqld() { # index, extra args...
  local i=$1; shift
  local d; d=$(node_dir "$i")
  pidof_node "$i" >/dev/null && die "node $i is already running (pid $(pidof_node "$i"))"
  rm -f "$d/mysqld.sock" "$d/mysqld.pid"
  local user=()
  [ "$(id -u)" -eq 0 ] && user=(--user=mysql)
  nohup "$MYSQLD" --defaults-file="$d/my.cnf" "${user[@]}" "$@" >>"$d/console.log" 2>&1 &
  echo $! >"$d/launcher.pid"
}

recovered_position() { # index: after a crash (seqno -1), the position InnoDB recovered, as
  # systemd's galera_recovery finds it, so the node rejoins by IST instead of a full SST.
  local i=$1 d; d=$(node_dir "$1")
  local seqno; seqno=$(awk '/^seqno:/ {print $2}' "$d/data/grastate.dat" 2>/dev/null || true)
  [ "$seqno" = "-1" ] || return 0
  local user=()
  [ "$(id -u)" -eq 0 ] && user=(--user=mysql)
  rm -f "$d/recover.log"
  "$MYSQLD" --defaults-file="$d/my.cnf" "${user[@]}" --wsrep-recover --skip-networking --log-error="$d/recover.log" >/dev/null 2>&1 || true
  local pos
  pos=$(grep -o 'WSREP: Recovered position: [^ ]*' "$d/recover.log" 2>/dev/null | tail -n 1 | awk '{print $4}' || true)
  if [ -z "$pos" ]; then
    say "node $i: --wsrep-recover found no position (see $d/recover.log); it will rejoin by SST"
    tail -n 5 "$d/recover.log" >&2 2>/dev/null || true
  fi
  echo "$pos"
}

start_recovered() { # index, extra args...
  local i=$1; shift
  local pos; pos=$(recovered_position "$i")
  # A zero UUID or seqno -1 is no position: let Galera decide (it will ask for an SST).
  case "$pos" in 00000000-0000-0000-0000-000000000000:* | *:-1) pos="" ;; esac
  if [ -n "$pos" ]; then
    say "node $i crashed earlier: recovered position $pos"
    start_mysqld "$i" --wsrep_start_position="$pos" "$@"
  else
    start_mysqld "$i" "$@"
  fi
}

wait_state() { # index, state comment (Synced, Donor/Desynced...), timeout seconds
  local i=$1 want=$2 limit=${3:-$LAB_TIMEOUT}
  local deadline=$((SECONDS + limit)) state=""
  while [ $SECONDS -lt $deadline ]; do
    local launcher; launcher=$(cat "$(node_dir "$i")/launcher.pid" 2>/dev/null || true)
    if [ -n "$launcher" ] && ! kill -0 "$launcher" 2>/dev/null && ! pidof_node "$i" >/dev/null; then
      tail -n 20 "$(node_dir "$i")/error.log" >&2 || true
      die "node $i exited while waiting for $want (log: $(node_dir "$i")/error.log)"
    fi
    state=$(status_var "$i" wsrep_local_state_comment || true)
    [ "$state" = "$want" ] && return 0
    sleep 0.3
  done
  die "node $i did not reach $want within ${limit}s (last state: ${state:-unreachable})"
}

cmd_up() {
  local n=${1:-3}
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "expected a node count from 1 to 99, got '$n'"
  for ((i = 0; i < $(nodes); i++)); do pidof_node "$i" >/dev/null && die "the lab is running; run '$0 destroy' first"; done
  command -v mariadb-install-db >/dev/null || die "mariadb-server is not installed (run scripts/setup.sh)"
  [ -f "$PROVIDER" ] || die "galera-4 is not installed ($PROVIDER missing; run scripts/setup.sh)"
  rm -rf "$LAB_DIR"
  mkdir -p "$LAB_DIR"
  chmod 755 "$LAB_DIR"
  echo "$n" >"$LAB_NODES_FILE"
  for ((i = 0; i < n; i++)); do
    mkdir -p "$(node_dir "$i")/data"
    write_config "$i"
  done
  [ "$(id -u)" -eq 0 ] && chown -R mysql:mysql "$LAB_DIR"/node*
  [ "${LAB_INIT_ONLY:-}" = 1 ] && return 0
  say "initialising node 0"
  local user=()
  [ "$(id -u)" -eq 0 ] && user=(--user=mysql)
  mariadb-install-db --defaults-file="$(node_dir 0)/my.cnf" "${user[@]}" --skip-test-db >"$(node_dir 0)/install.log" 2>&1 ||
    { cat "$(node_dir 0)/install.log" >&2; die "mariadb-install-db failed"; }
  say "bootstrapping node 0"
  start_mysqld 0 --wsrep-new-cluster
  wait_state 0 Synced
  sql 0 "CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY 'lab'; GRANT ALL ON *.* TO 'lab'@'%' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS lab;"
  for ((i = 1; i < n; i++)); do
    say "joining node $i"
    start_mysqld "$i"
    wait_state "$i" Synced
  done
  cmd_status
}

cmd_stop() {
  local i=$1 pid
  pid=$(pidof_node "$i") || { say "node $i is not running"; return 0; }
  kill -TERM "$pid"
  local deadline=$((SECONDS + LAB_TIMEOUT))
  while pidof_node "$i" >/dev/null; do
    [ $SECONDS -lt $deadline ] || die "node $i did not stop within ${LAB_TIMEOUT}s"
    sleep 0.2
  done
  say "node $i stopped"
}

cmd_kill() {
  local i=$1 pid
  pid=$(pidof_node "$i") || die "node $i is not running"
  kill -KILL "$pid"
  while pidof_node "$i" >/dev/null; do sleep 0.05; done
  say "node $i killed"
}

cmd_status() {
  local n; n=$(nodes)
  [ "$n" -gt 0 ] || die "no lab in $LAB_DIR (run '$0 up')"
  for ((i = 0; i < n; i++)); do
    local pid state index size primary
    if pid=$(pidof_node "$i"); then
      state=$(status_var "$i" wsrep_local_state_comment || true)
      index=$(status_var "$i" wsrep_local_index || true)
      size=$(status_var "$i" wsrep_cluster_size || true)
      primary=$(status_var "$i" wsrep_cluster_status || true)
      printf 'node%s port=%s pid=%s state=%s index=%s cluster_size=%s cluster_status=%s\n' \
        "$i" "$(node_port "$i")" "$pid" "${state:-?}" "${index:-?}" "${size:-?}" "${primary:-?}"
    else
      printf 'node%s port=%s pid=- state=stopped\n' "$i" "$(node_port "$i")"
    fi
  done
}

cmd_env() {
  local n; n=$(nodes)
  echo "LAB_DIR=$LAB_DIR"
  echo "LAB_NODES=$n"
  for ((i = 0; i < n; i++)); do
    echo "LAB_NODE${i}_PORT=$(node_port "$i")"
    echo "LAB_NODE${i}_SOCKET=$(sock "$i")"
    echo "LAB_NODE${i}_DATADIR=$(node_dir "$i")/data"
    echo "LAB_NODE${i}_CNF=$(node_dir "$i")/my.cnf"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) cmd_up "${1:-3}" ;;
  init) LAB_INIT_ONLY=1 cmd_up "${1:-3}" ;;
  down) for ((i = $(nodes) - 1; i >= 0; i--)); do cmd_stop "$i"; done ;;
  destroy)
    for ((i = 0; i < $(nodes); i++)); do pid=$(pidof_node "$i") && kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.2
    rm -rf "$LAB_DIR" ;;
  kill) check_index "${1:-}"; cmd_kill "$1" ;;
  stop) check_index "${1:-}"; cmd_stop "$1" ;;
  start) check_index "${1:-}"; start_recovered "$1"; wait_state "$1" Synced ;;
  bootstrap)
    check_index "${1:-}"
    sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$(node_dir "$1")/data/grastate.dat" 2>/dev/null || true
    start_recovered "$1" --wsrep-new-cluster; wait_state "$1" Synced ;;
  wait) check_index "${1:-}"; wait_state "$1" "${2:-Synced}" "${3:-$LAB_TIMEOUT}" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  sql) check_index "${1:-}"; sql "$1" "${2:?expected SQL}" ;;
  conf) check_index "${1:-}"; echo "$(node_dir "$1")/my.cnf" ;;
  ""|-h|--help|help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (run '$0 --help')" ;;
esac
