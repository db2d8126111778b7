#!/usr/bin/env bash
# Builds ./galerad, one self-contained executable that needs no Bun, Deno or node_modules.
#   ./compile.sh            bun build --compile (works offline; what CI builds)
#   ./compile.sh --deno     deno compile, when Deno's runtime download is reachable
#   ./compile.sh --out F    write the executable to F instead of ./galerad
set -euo pipefail
cd "$(dirname "$0")"
out=galerad
engine=bun
while [ $# -gt 0 ]; do
  case "$1" in
    --deno) engine=deno ;;
    --bun) engine=bun ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "compile.sh: unknown argument '$1' (expected --bun, --deno or --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
[ -x node_modules/.bin/bun ] || bash scripts/setup.sh --npm
[ -f src/proxy/assets/uplot.ts ] || node_modules/.bin/bun scripts/gen_assets.ts
if [ "$engine" = bun ]; then
  # --splitting: modules only some commands import (mysql2 for the agent, yaml for config
  # files) stay out of the code every process parses. No .env or bunfig.toml is read from
  # the working directory: configuration comes from flags, GALERAD_* and --config only.
  node_modules/.bin/bun build --compile --splitting --minify-syntax --minify-whitespace \
    --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
    --define 'process.env.NODE_ENV="production"' mod.ts src/dataplane/epoll_thread.ts \
    --outfile "$out" >/dev/null
else
  # deno compile embeds node_modules by default (431 MB seen); leave the runtimes' own
  # packages and type-only packages out.
  node_modules/.bin/deno compile -A --no-check \
    --exclude node_modules/bun --exclude node_modules/deno \
    --exclude 'node_modules/@oven' --exclude 'node_modules/@deno' \
    --exclude node_modules/@types --exclude node_modules/bun-types \
    --include src/dataplane/epoll_thread.ts --output "$out" mod.ts
fi
echo "built $out ($(du -h "$out" | cut -f1), $engine)"
