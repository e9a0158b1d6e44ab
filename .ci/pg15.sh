#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster (Debian's postgresql-15) on a Unix
# socket and prints its libpq URL. Usage: url=$(.ci/pg15.sh start DIR); .ci/pg15.sh stop DIR
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
action=$1 dir=$2
case "$action" in
  start)
    mkdir -p "$dir/data" "$dir/socket"
    chown -R postgres:postgres "$dir"
    runuser -u postgres -- "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 >/dev/null
    runuser -u postgres -- "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-h '' -k $dir/socket -c fsync=off -c max_connections=200" start >/dev/null
    echo "postgresql://postgres@/postgres?host=$dir/socket"
    ;;
  stop)
    runuser -u postgres -- "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
esac
