#!/usr/bin/env bash
# System packages the tests need: PostgreSQL with PostGIS (for the Planetary Computer twin's pgstac).
# Installs them with apt when running as root; otherwise says exactly what to install.
set -euo pipefail

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -n 1
}

postgis_present() {
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] || return 1
  local share; share=$("$bin/pg_config" --sharedir 2>/dev/null || true)
  [ -n "$share" ] && ls "$share"/extension/postgis.control >/dev/null 2>&1
}

if postgis_present; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing PostgreSQL + PostGIS with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  bin=$(pg_bindir)
  if [ -n "$bin" ]; then
    major=$(basename "$(dirname "$bin")")
    apt-get install -y -qq "postgresql-$major-postgis-3" >/dev/null
  else
    apt-get install -y -qq postgresql postgis >/dev/null
  fi
  postgis_present && exit 0
  echo "system-deps: PostGIS still not found after apt-get install" >&2
  exit 1
fi

cat >&2 <<'MSG'
system-deps: PostgreSQL with PostGIS is needed for the Planetary Computer twin (tests marked `twin`).
Install it, then run `make setup` again, e.g. on Debian/Ubuntu:
    sudo apt-get install postgresql postgresql-15-postgis-3      # match your PostgreSQL major version
on macOS (Homebrew):
    brew install postgresql@15 postgis
MSG
exit 1
