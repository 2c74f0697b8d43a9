# shellcheck shell=bash
# PostgreSQL for the end-to-end tests: installs Debian's server package, starts a
# throwaway cluster on a free port of 127.0.0.1, and exports LEADTRACKR_TEST_POSTGRES_URL,
# which tests/e2e/test_meltano_postgres.py reads. Sourced by .ci/run:
#   source .ci/postgres.sh && start_postgres && trap stop_postgres EXIT
# Needs root (CI runs as root): PostgreSQL itself runs as the `postgres` user.

LEADTRACKR_PG_DIR=""
LEADTRACKR_PG_BIN=""

start_postgres() {
    # Every time, not only when missing: a new machine has no server (about 7 s otherwise).
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # The newest installed major version (15 on Debian 12, 17 on Debian 13).
    LEADTRACKR_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

    # A cluster of our own, not the packaged `main` one: no service manager needed, no
    # fixed port, nothing left behind.
    LEADTRACKR_PG_DIR=$(mktemp -d /tmp/leadtrackr-postgres.XXXXXX)
    chown postgres:postgres "$LEADTRACKR_PG_DIR"
    chmod 700 "$LEADTRACKR_PG_DIR"
    local password port
    password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '%s\n' "$password" >"$LEADTRACKR_PG_DIR/pwfile"
    chown postgres:postgres "$LEADTRACKR_PG_DIR/pwfile"

    runuser -u postgres -- "$LEADTRACKR_PG_BIN/initdb" --pgdata="$LEADTRACKR_PG_DIR/data" \
        --username=postgres --pwfile="$LEADTRACKR_PG_DIR/pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$LEADTRACKR_PG_DIR/initdb.log" \
        || { cat "$LEADTRACKR_PG_DIR/initdb.log"; return 1; }
    rm -f "$LEADTRACKR_PG_DIR/pwfile"
    runuser -u postgres -- "$LEADTRACKR_PG_BIN/pg_ctl" --pgdata="$LEADTRACKR_PG_DIR/data" \
        --log="$LEADTRACKR_PG_DIR/server.log" --wait --timeout=60 \
        --options="-c listen_addresses=127.0.0.1 -p $port -k $LEADTRACKR_PG_DIR" start >/dev/null \
        || { cat "$LEADTRACKR_PG_DIR/server.log"; return 1; }
    PGPASSWORD="$password" runuser -u postgres -- "$LEADTRACKR_PG_BIN/createdb" \
        --host=127.0.0.1 --port="$port" --username=postgres leadtrackr

    export LEADTRACKR_TEST_POSTGRES_URL="postgresql://postgres:$password@127.0.0.1:$port/leadtrackr"
    echo "PostgreSQL $("$LEADTRACKR_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_postgres() {
    if [[ -n "$LEADTRACKR_PG_DIR" && -d "$LEADTRACKR_PG_DIR/data" ]]; then
        runuser -u postgres -- "$LEADTRACKR_PG_BIN/pg_ctl" --pgdata="$LEADTRACKR_PG_DIR/data" \
            --mode=fast --wait stop >/dev/null || true
        rm -rf "$LEADTRACKR_PG_DIR"
    fi
    LEADTRACKR_PG_DIR=""
}
