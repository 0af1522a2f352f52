#!/usr/bin/env bash
# Install (from Debian's packages) and start the servers `sagasim live` runs
# against: PostgreSQL (127.0.0.1:5432, user postgres, trust auth on
# loopback), Redis (127.0.0.1:6379, nothing kept on disk) and NATS with
# JetStream (127.0.0.1:4222). A server that already answers is left alone.
# Runs as root, or with passwordless sudo; reads no standard input.
#
# It is meant for a development or CI machine: on a PostgreSQL that refuses
# the postgres user over loopback, it adds a `trust` line for 127.0.0.1 to
# pg_hba.conf.
set -euo pipefail

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"

say() { echo "install-services: $*"; }
fail() { echo "install-services: error: $*" >&2; exit 1; }

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

answers() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || fail "missing ${need[*]}, and this is not a Debian machine"
    say "installing ${need[*]}"
    { $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null; } ||
        fail "cannot install ${need[*]} (run as root or with passwordless sudo)"
fi

if ! answers 127.0.0.1 5432; then
    say "starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -V | tail -1)
    $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        fail "cannot start PostgreSQL $version"
fi

if ! answers 127.0.0.1 6379; then
    say "starting Redis"
    $sudo mkdir -p /var/lib/redis /var/log/redis
    $sudo redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ||
        fail "cannot start Redis"
fi

if ! answers 127.0.0.1 4222; then
    say "starting NATS with JetStream"
    nats=$(command -v nats-server || echo /usr/sbin/nats-server)
    $sudo mkdir -p /var/lib/nats-server
    $sudo start-stop-daemon --start --oknodo --background --exec "$nats" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ||
        fail "cannot start NATS"
fi

for i in $(seq 1 60); do
    answers 127.0.0.1 5432 && answers 127.0.0.1 6379 && answers 127.0.0.1 4222 && break
    [ "$i" = 60 ] && fail "the servers did not all answer within 30 s"
    sleep 0.5
done

# The postgres user over loopback, without a password (what sagasim live
# uses), or make it so.
if command -v psql >/dev/null 2>&1 &&
    ! psql -h 127.0.0.1 -U postgres -d postgres -w -qtAc 'SELECT 1' >/dev/null 2>&1; then
    hba=$(as_postgres psql -qtAc 'SHOW hba_file' 2>/dev/null || true)
    [ -n "$hba" ] || fail "PostgreSQL refuses postgres@127.0.0.1 and its pg_hba.conf cannot be found"
    say "trusting postgres on 127.0.0.1 in $hba"
    $sudo sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    as_postgres psql -qtAc 'SELECT pg_reload_conf()' >/dev/null
    psql -h 127.0.0.1 -U postgres -d postgres -w -qtAc 'SELECT 1' >/dev/null ||
        fail "PostgreSQL still refuses postgres@127.0.0.1"
fi

say "PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, NATS (JetStream) on 127.0.0.1:4222"
