#!/usr/bin/env bash
# Network namespaces for partition tests: each party in a namespace of its own, joined by veth
# pairs to a bridge that lives in a namespace of its own. Addresses are our own, inside the
# namespaces; the host's interfaces, routes and nftables ruleset are never touched. Needs root.
#
#   scripts/netns-lab.sh up NAME...       namespaces ${NETNS_PREFIX}-NAME, addresses 10.231.7.10+i
#   scripts/netns-lab.sh down             removes every namespace this script made
#   scripts/netns-lab.sh addr NAME        the address of NAME
#   scripts/netns-lab.sh cut A B          A and B stop hearing each other (both directions)
#   scripts/netns-lab.sh oneway A B       B stops hearing A (A's datagrams to B are dropped)
#   scripts/netns-lab.sh cutport A B PORT... A cannot reach B on these TCP and UDP ports
#   scripts/netns-lab.sh heal [A]         drops every rule (in A's namespace, or everywhere)
#   scripts/netns-lab.sh exec NAME CMD... runs CMD inside NAME's namespace
set -euo pipefail

P=${NETNS_PREFIX:-glrd}
NET=10.231.7
STATE=${NETNS_STATE:-/tmp/$P-netns}

die() { echo "netns-lab: $*" >&2; exit 1; }
ns() { echo "$P-$1"; }
addr() {
  [ -f "$STATE/names" ] || die "no namespaces: run 'up' first"
  local i; i=$(grep -nx "$1" "$STATE/names" | cut -d: -f1) || die "unknown name '$1'"
  echo "$NET.$((9 + i))"
}
nft_in() { ip netns exec "$(ns "$1")" nft "${@:2}"; }
ensure_table() {
  nft_in "$1" list table inet glrd >/dev/null 2>&1 && return
  nft_in "$1" add table inet glrd
  nft_in "$1" add chain inet glrd out '{ type filter hook output priority 0; policy accept; }'
}

case "${1:-}" in
  up)
    shift
    [ $# -gt 0 ] || die "usage: up NAME..."
    [ "$(id -u)" -eq 0 ] || die "needs root"
    "$0" down >/dev/null 2>&1 || true
    mkdir -p "$STATE"
    printf '%s\n' "$@" >"$STATE/names"
    ip netns add "$(ns br)"
    ip -n "$(ns br)" link add br0 type bridge
    ip -n "$(ns br)" link set br0 up
    ip -n "$(ns br)" link set lo up
    i=0
    for name in "$@"; do
      i=$((i + 1))
      ip netns add "$(ns "$name")"
      ip link add "gv$i" netns "$(ns "$name")" type veth peer name "gb$i" netns "$(ns br)"
      ip -n "$(ns br)" link set "gb$i" master br0 up
      ip -n "$(ns "$name")" link set lo up
      ip -n "$(ns "$name")" addr add "$NET.$((9 + i))/24" dev "gv$i"
      ip -n "$(ns "$name")" link set "gv$i" up
    done
    ;;
  down)
    if [ -f "$STATE/names" ]; then
      while read -r name; do ip netns del "$(ns "$name")" 2>/dev/null || true; done <"$STATE/names"
    fi
    ip netns del "$(ns br)" 2>/dev/null || true
    rm -rf "$STATE"
    ;;
  addr) addr "$2" ;;
  cut)
    ensure_table "$2"; ensure_table "$3"
    nft_in "$2" add rule inet glrd out ip daddr "$(addr "$3")" drop
    nft_in "$3" add rule inet glrd out ip daddr "$(addr "$2")" drop
    ;;
  oneway)
    ensure_table "$2"
    nft_in "$2" add rule inet glrd out ip daddr "$(addr "$3")" drop
    ;;
  cutport)
    a=$2; b=$3; shift 3
    ensure_table "$a"
    ports=$(IFS=,; echo "$*")
    nft_in "$a" add rule inet glrd out ip daddr "$(addr "$b")" tcp dport "{ $ports }" drop
    nft_in "$a" add rule inet glrd out ip daddr "$(addr "$b")" udp dport "{ $ports }" drop
    ;;
  heal)
    names=${2:-$(cat "$STATE/names")}
    for name in $names; do nft_in "$name" delete table inet glrd 2>/dev/null || true; done
    ;;
  exec)
    name=$2; shift 2
    exec ip netns exec "$(ns "$name")" "$@"
    ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
