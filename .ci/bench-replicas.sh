#!/usr/bin/env bash
# Replicas on PostgreSQL: POP3 sessions/s of one mailsetup on files against
# two replicas on one PostgreSQL (same machine, same data, same run), and
# the database statements the POP3 sessions cost (pg_stat_statements).
#   .ci/bench-replicas.sh          (from the repository root)
# Env: WORK (temp dir), DURATION (15s), CLIENTS (40, split over the
#      replicas), USERS (40 accounts of MESSAGES messages: as many as
#      clients, so that no session waits for another's maildrop),
#      MESSAGES (100). Each replica has its own copy of the Maildirs (they
#      stay per machine).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CLIENTS=${CLIENTS:-40}
USERS=${USERS:-40}
MESSAGES=${MESSAGES:-100}
WORK=${WORK:-$(mktemp -d)}
chmod 755 "$WORK"
PEERS=$(cd ../shared/peers && pwd)
PW=bench-password-1
PGBIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
PGPORT=${PGPORT:-25432}

go build -o "$WORK/mailsetup" ./cmd/mailsetup
go build -o "$WORK/mailload" ./cmd/mailload
(cd "$PEERS/genmaildir" && GOFLAGS=-mod=mod go build -o "$WORK/genmaildir" .)
L=$WORK/mailload
M=$WORK/mailsetup

# PostgreSQL, private, on loopback; as nobody when run as root.
AS=()
[ "$(id -u)" = 0 ] && AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
mkdir -p "$WORK/pg" && printf '%s\n' pg-bench-password >"$WORK/pg/password" && chmod 644 "$WORK/pg/password"
[ "$(id -u)" = 0 ] && chown -R nobody "$WORK/pg"
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U mailsetup --auth=scram-sha-256 --pwfile="$WORK/pg/password" -E UTF8 >/dev/null
"${AS[@]}" "$PGBIN/postgres" -D "$WORK/pg/data" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -c unix_socket_directories= \
	-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all >"$WORK/pg/log" 2>&1 &
PG_PID=$!
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	kill -INT "$PG_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
export PGPASSWORD=pg-bench-password
for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
psql() { "$PGBIN/psql" -X -q -t -A -h 127.0.0.1 -p "$PGPORT" -U mailsetup "$@"; }
psql -d postgres -c 'CREATE DATABASE mailsetup'
psql -d mailsetup -c 'CREATE EXTENSION pg_stat_statements'
statements() { psql -d mailsetup -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'mailsetup'"; }

"$WORK/genmaildir" -dir "$WORK/gen/Maildir" -n "$MESSAGES" -seed 1 >/dev/null

# A data directory on ports shifted by $2 (the embedded default's
# config), its users' Maildirs, and the per-address limit lifted (one
# load generator on one address).
prepare() {
	local dir=$1 shift=$2
	"$M" serve --data "$dir" </dev/null >"$dir.out" 2>"$dir.log" &
	local pid=$!
	for _ in $(seq 100); do grep -q '^domain ' "$dir.out" 2>/dev/null && break; sleep 0.1; done
	kill "$pid"; wait "$pid" 2>/dev/null || true
	perl -pi -e 's/(127\.0\.0\.1:|port = )(\d+)/$1.($2+'"$shift"')/ge; s/^max_connections_per_ip = .*/max_connections_per_ip = 1000/' "$dir/mailsetup.toml"
	for i in $(seq "$USERS"); do mkdir -p "$dir/mail/example.test/user$i" && cp -al "$WORK/gen/Maildir" "$dir/mail/example.test/user$i/Maildir"; done
}
start() {
	"$M" serve --data "$1" </dev/null >"$1.out" 2>"$1.log" &
	PIDS+=($!)
	for _ in $(seq 100); do grep -q '^domain ' "$1.out" 2>/dev/null && break; sleep 0.1; done
}
pop3s() { awk '/^  pop3s /{print $2}' "$1.out"; }
https() { awk '/^  https /{print $2}' "$1.out"; }
# checks DURATION URL...: settings checks (POST /api/v1/probe with the
# account's password: a probe of the account's servers plus one password
# check) by CHECKERS curl loops spread over the URLs; prints the checks
# answered 200 and those answered otherwise.
CHECKERS=${CHECKERS:-4}
checks() {
	local secs=${1%s}; shift
	local urls=("$@") end=$((SECONDS + secs)) loops=()
	for w in $(seq "$CHECKERS"); do
		(
			ok=0 bad=0 url=${urls[$((w % ${#urls[@]}))]}
			while [ $SECONDS -lt $end ]; do
				code=$(curl -sk --max-time 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
					-d "{\"address\":\"user$w@example.test\",\"password\":\"$PW\"}" "$url/api/v1/probe")
				if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
			done
			echo "$ok $bad"
		) &
		loops+=($!)
	done
	wait "${loops[@]}" # not the servers this shell started
}

prepare "$WORK/files" 3000
for i in $(seq "$USERS"); do printf '%s\n' "$PW" | "$M" user add --data "$WORK/files" "user$i@example.test" >/dev/null; done
for r in r1 r2; do
	prepare "$WORK/$r" $([ $r = r1 ] && echo 4000 || echo 5000)
	printf '\n[database]\nurl = "postgres://mailsetup@127.0.0.1:%s/mailsetup?sslmode=disable"\npassword_file = "%s"\n' "$PGPORT" "$WORK/pg/password" >>"$WORK/$r/mailsetup.toml"
done
"$M" db migrate --data "$WORK/r1" >/dev/null
# One API token for the settings checks, in every config.
"$M" staff token bench >"$WORK/token.toml" 2>"$WORK/token.txt"
TOKEN=$(grep -o 'mst_[A-Za-z0-9_-]*' "$WORK/token.txt")
for d in files r1 r2; do cat "$WORK/token.toml" >>"$WORK/$d/mailsetup.toml"; done
for i in $(seq "$USERS"); do printf '%s\n' "$PW" | "$M" user add --data "$WORK/r1" "user$i@example.test" >/dev/null; done

echo "== machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1024/1024}' /proc/meminfo); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'); $USERS accounts x $MESSAGES messages, $CLIENTS clients, $DURATION"
echo "-- one replica on files, USER/PASS/STAT/UIDL/QUIT over POP3S"
start "$WORK/files"
$L pop3 -addr "$(pop3s "$WORK/files")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients "$CLIENTS" -duration 5s >/dev/null
$L pop3 -addr "$(pop3s "$WORK/files")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients "$CLIENTS" -duration "$DURATION" | sed 's/^/files     /'
echo "-- settings checks, one replica on files, $CHECKERS curl loops"
checks "$DURATION" "$(https "$WORK/files")" | awk -v d="${DURATION%s}" '{ok += $1; bad += $2} END {printf "files     checks/s %.1f  checks %d  not 200: %d\n", ok / d, ok, bad}'
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

echo "-- two replicas on one PostgreSQL, half the clients each"
start "$WORK/r1"
start "$WORK/r2"
# Warm-up: every account's first login (not cached yet) on both.
$L pop3 -addr "$(pop3s "$WORK/r1")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients "$USERS" -duration 3s >/dev/null
$L pop3 -addr "$(pop3s "$WORK/r2")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients "$USERS" -duration 3s >/dev/null
sleep 3 # the warm-up's observations written
psql -d mailsetup -c 'SELECT pg_stat_statements_reset()' >/dev/null
before=$(statements)
$L pop3 -addr "$(pop3s "$WORK/r1")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients $((CLIENTS / 2)) -duration "$DURATION" >"$WORK/r1.load" &
LOAD1=$!
$L pop3 -addr "$(pop3s "$WORK/r2")" -user 'user%d@example.test' -users "$USERS" -pass "$PW" -clients $((CLIENTS / 2)) -duration "$DURATION" >"$WORK/r2.load"
wait "$LOAD1"
sleep 2 # the last batch of observations
after=$(statements)
sed 's/^/replica 1 /' "$WORK/r1.load"; sed 's/^/replica 2 /' "$WORK/r2.load"
sessions=$(awk '/^sessions\/s/ {n += $4} END {print n}' "$WORK/r1.load" "$WORK/r2.load")
rate=$(awk '/^sessions\/s/ {n += $2} END {print n}' "$WORK/r1.load" "$WORK/r2.load")
echo "replicas  sessions/s together $rate, sessions $sessions"
echo "database statements during the run: $((after - before)) ($(awk -v s="$((after - before))" -v n="$sessions" 'BEGIN {printf "%.1f", s * 1000 / n}') per 1,000 sessions)"
echo "statements during the run, by statement:"
psql -d mailsetup -c "SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'mailsetup' ORDER BY calls DESC LIMIT 8" | sed 's/^/  /'
echo "-- settings checks, two replicas, the same curl loops spread over both"
psql -d mailsetup -c 'SELECT pg_stat_statements_reset()' >/dev/null
checks "$DURATION" "$(https "$WORK/r1")" "$(https "$WORK/r2")" >"$WORK/checks.txt"
awk -v d="${DURATION%s}" '{ok += $1; bad += $2} END {printf "replicas  checks/s %.1f  checks %d  not 200: %d\n", ok / d, ok, bad}' "$WORK/checks.txt"
echo "database statements during the checks: $(statements)"
# The same time with no load: what the replicas' feed costs by itself.
idle0=$(statements)
sleep "${DURATION%s}"
sleep 2
idle1=$(statements)
echo "database statements in the same time without load: $((idle1 - idle0))"
