#!/usr/bin/env bash
# Static checks of the deployment files (Dockerfile, compose.yaml, deploy/nginx/forkcast.conf)
# that run without a Docker engine. A check whose tool is missing is skipped with a message
# saying how to get it; any check that runs and finds a problem fails the script.
#
#   bash deploy/lint.sh
#
# Uses the npm registry (npx) for dclint and dockerfile-utils; neither is a project dependency.
set -euo pipefail
cd "$(dirname "$0")/.."

DCLINT=dclint@3.1.0
DOCKERFILE_UTILS=dockerfile-utils@0.16.3
NGINX_CONF=deploy/nginx/forkcast.conf

failed=()
skipped=()

section() { printf '\n== %s\n' "$1"; }
skip() {
  printf 'SKIPPED: %s\n' "$1"
  skipped+=("$1")
}
run() {
  local name=$1
  shift
  if "$@"; then
    printf 'ok: %s\n' "$name"
  else
    printf 'FAILED: %s\n' "$name"
    failed+=("$name")
  fi
}

# --- compose.yaml: the Compose CLI's own parser (client-side, no engine needed) -------------
section 'compose.yaml: docker compose config'
if docker compose version >/dev/null 2>&1; then
  run 'docker compose config' docker compose -f compose.yaml config --quiet
elif command -v docker-compose >/dev/null 2>&1; then
  # Compose v1 (Debian bookworm's docker-compose package) knows an older schema, which is why
  # compose.yaml has no top-level `name:`.
  run 'docker-compose (v1) config' docker-compose -f compose.yaml config --quiet
else
  skip 'compose config: neither the docker compose plugin nor docker-compose is installed (Debian: apt-get install docker-compose)'
fi

# --- compose.yaml: schema and best practices ------------------------------------------------
section "compose.yaml: $DCLINT"
if command -v npx >/dev/null 2>&1; then
  run "$DCLINT" npx --yes "$DCLINT" compose.yaml
else
  skip "$DCLINT: npx is not installed"
fi

# --- Dockerfile ------------------------------------------------------------------------------
section 'Dockerfile: hadolint'
if command -v hadolint >/dev/null 2>&1; then
  run hadolint hadolint Dockerfile
else
  skip 'hadolint: not installed (no Debian bookworm package; its PyPI wrappers need PyPI)'
fi

section "Dockerfile: $DOCKERFILE_UTILS lint"
# The linter behind VS Code's Dockerfile support. It exits 0 on warnings, so any output fails.
dockerfile_utils() {
  local out
  out=$(npx --yes "$DOCKERFILE_UTILS" lint Dockerfile) || {
    printf '%s\n' "$out"
    return 1
  }
  [[ -z $out ]] || {
    printf '%s\n' "$out"
    return 1
  }
}
if command -v npx >/dev/null 2>&1; then
  run "$DOCKERFILE_UTILS lint" dockerfile_utils
else
  skip "$DOCKERFILE_UTILS: npx is not installed"
fi

section 'Dockerfile: docker build --check (BuildKit lint rules)'
if docker info >/dev/null 2>&1; then
  run 'docker build --check' docker build --check .
else
  skip 'docker build --check: no Docker engine reachable (docker info failed)'
fi

# --- nginx -------------------------------------------------------------------------------------
section "$NGINX_CONF: nginx -t"
nginx_test() {
  local dir status=0
  dir=$(mktemp -d)
  # The upstream names are compose services, which resolve only inside the compose network,
  # and nginx -t resolves them: test a copy with node1..3 replaced by loopback addresses.
  sed -E 's/\bnode([1-3]):4561\b/127.0.0.1:456\1/' "$NGINX_CONF" >"$dir/forkcast.conf"
  # What the nginx image's own nginx.conf puts around conf.d/*.conf, minus logs and users.
  cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/forkcast.conf;
}
EOF
  nginx -t -q -e stderr -p "$dir" -c "$dir/nginx.conf" || status=$?
  rm -rf "$dir"
  return "$status"
}
if command -v nginx >/dev/null 2>&1; then
  printf '(%s, on a copy with node1..3:4561 replaced by 127.0.0.1:4561..4563)\n' "$(nginx -v 2>&1)"
  run 'nginx -t' nginx_test
else
  skip 'nginx -t: nginx is not installed (Debian: apt-get install nginx)'
fi

# --- this script -------------------------------------------------------------------------------
section 'deploy/lint.sh: shellcheck'
if command -v shellcheck >/dev/null 2>&1; then
  run shellcheck shellcheck deploy/lint.sh
else
  skip 'shellcheck: not installed (Debian: apt-get install shellcheck)'
fi

section summary
printf '%d check(s) failed, %d skipped\n' "${#failed[@]}" "${#skipped[@]}"
for name in "${failed[@]}"; do printf '  failed: %s\n' "$name"; done
[[ ${#failed[@]} -eq 0 ]]
