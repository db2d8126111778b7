#!/usr/bin/env bash
# The whole test suite: static checks (deno fmt/lint/check), the bun suites, the Deno runtime
# suite. Installs what it needs first. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
export NO_COLOR=1 RUST_BACKTRACE=0
bin=node_modules/.bin
passed=0
failed=0
log=$(mktemp -d)

step() { # name, command...
  local name=$1; shift
  echo "== $name"
  if "$@" >"$log/step.out" 2>&1; then
    passed=$((passed + 1)); echo "ok: $name"
  else
    failed=$((failed + 1)); cat "$log/step.out"; echo "FAILED: $name"
  fi
}

step "deno fmt --check" "$bin/deno" fmt --check
step "deno lint" "$bin/deno" lint
step "deno check" "$bin/deno" check mod.ts src/ tests/runtime/deno/
# Scripts run only under Bun and are not type-checked; this catches a name used without its import.
step "scripts no-undef" "$bin/deno" lint --rules-include=no-undef scripts/

echo "== bun test"
"$bin/bun" test --timeout 120000 tests/ 2>&1 | tee "$log/bun.out"
bun_rc=${PIPESTATUS[0]}
bp=$(grep -Eo '^ *[0-9]+ pass$' "$log/bun.out" | tail -1 | tr -dc 0-9)
bf=$(grep -Eo '^ *[0-9]+ fail$' "$log/bun.out" | tail -1 | tr -dc 0-9)
passed=$((passed + ${bp:-0})); failed=$((failed + ${bf:-0}))
if [ "$bun_rc" -ne 0 ] && [ "${bf:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: bun test exited $bun_rc"; fi

echo "== deno test (runtime suite)"
# Type checking already ran above (deno check); --no-check keeps each worker thread from
# checking its module again at start.
"$bin/deno" test -A --no-check tests/runtime/deno/*_deno.ts 2>&1 | tee "$log/deno.out"
deno_rc=${PIPESTATUS[0]}
dp=$(grep -Eo '[0-9]+ passed' "$log/deno.out" | tail -1 | tr -dc 0-9)
df=$(grep -Eo '[0-9]+ failed' "$log/deno.out" | tail -1 | tr -dc 0-9)
passed=$((passed + ${dp:-0})); failed=$((failed + ${df:-0}))
if [ "$deno_rc" -ne 0 ] && [ "${df:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: deno test exited $deno_rc"; fi

rm -rf "$log"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
