#!/usr/bin/env bash
# The account store at scale: `user add` (wall time, max RSS), `user list`
# (to /dev/null) and `serve` start-up (until /healthz answers, and the RSS
# then) with SIZES accounts, for the files store and for PostgreSQL, each
# with this tree's binary and with the binary of BEFORE (default: the
# merge base with main), in one run on one machine.
#   .ci/bench-accounts.sh                        (from the repository root)
# Env: SIZES ("100000 1000000"), RUNS (3: `user add` runs, the median is
#      reported), BEFORE (a commit), WORK (kept when given; else a temp
#      dir, removed at the end), PGPORT (25433),
#      SHIFT (6000: added to the embedded default's ports).
# The stores are generated directly (the files store in its on-disk format
# with awk, the database with COPY), every account with one precomputed
# argon2id hash: hashing a million passwords would take hours.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-100000 1000000}
RUNS=${RUNS:-3}
BEFORE=${BEFORE:-$(git merge-base HEAD main)}
KEEP=${WORK:+1}
WORK=${WORK:-$(mktemp -d)}
PGPORT=${PGPORT:-25433}
SHIFT=${SHIFT:-6000}
chmod 755 "$WORK"
PGBIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")

mkdir -p "$WORK/after" "$WORK/before-src"
go build -o "$WORK/after/mailsetup" ./cmd/mailsetup
git archive "$BEFORE" | tar -x -C "$WORK/before-src"
(cd "$WORK/before-src" && go build -o "$WORK/before/mailsetup" ./cmd/mailsetup)

# PostgreSQL, private, on loopback; as nobody when run as root.
AS=()
[ "$(id -u)" = 0 ] && AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
mkdir -p "$WORK/pg" && printf '%s\n' pg-bench-password >"$WORK/pg/password" && chmod 644 "$WORK/pg/password"
[ "$(id -u)" = 0 ] && chown -R nobody "$WORK/pg"
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U mailsetup --auth=scram-sha-256 --pwfile="$WORK/pg/password" -E UTF8 >/dev/null
"${AS[@]}" "$PGBIN/postgres" -D "$WORK/pg/data" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -c unix_socket_directories= \
	-c fsync=on -c shared_buffers=256MB >"$WORK/pg/log" 2>&1 &
PG_PID=$!
SERVE=
cleanup() {
	[ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null
	kill -INT "$PG_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "$KEEP" ] || rm -rf "$WORK" # a million accounts, twice
}
trap cleanup EXIT
export PGPASSWORD=pg-bench-password
for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
psql() { "$PGBIN/psql" -X -q -t -A -h 127.0.0.1 -p "$PGPORT" -U mailsetup "$@"; }

# The embedded default, on shifted ports, as the template of every run.
M=$WORK/after/mailsetup
"$M" serve --data "$WORK/template" </dev/null >"$WORK/template.out" 2>"$WORK/template.log" &
SERVE=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/template.out" 2>/dev/null && break; sleep 0.1; done
kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; SERVE=
perl -pi -e 's/(127\.0\.0\.1:|port = )(\d+)/$1.($2+'"$SHIFT"')/ge' "$WORK/template/mailsetup.toml"
ADMIN=$(perl -ne 'print $1 if /^admin = "(.*)"/' "$WORK/template/mailsetup.toml")
HASH=$(printf '%s\n' 'bench password 1' | "$M" staff hash bench 2>/dev/null | perl -ne 'print $1 if /password_hash = "(.*)"/')
[ -n "$HASH" ] && [ -n "$ADMIN" ] || { echo "no hash or admin address from the template" >&2; exit 1; }

# files N DIR: DIR's accounts.json with N accounts and the demo one, in
# the layout every release writes (json.MarshalIndent).
files() {
	awk -v n="$1" -v h="$HASH" 'BEGIN {
		printf "{\n  \"version\": 1,\n  \"accounts\": ["
		for (i = -1; i < n; i++) {
			a = (i < 0) ? "demo@example.test" : sprintf("user%07d@example.test", i)
			printf "%s\n    {\n      \"address\": \"%s\",\n      \"password_hash\": \"%s\",\n      \"created\": \"2026-01-01T00:00:00Z\",\n      \"changed\": \"2026-01-01T00:00:00Z\"\n    }", (i < 0 ? "" : ","), a, h
		}
		printf "\n  ]\n}\n"
	}' >"$2/accounts.json"
	chmod 600 "$2/accounts.json"
}
# database N: the database accounts_N with N accounts, by COPY.
database() {
	psql -d postgres -c "CREATE DATABASE accounts_$1"
	cp -a "$WORK/template" "$WORK/db$1"
	printf '\n[database]\nurl = "postgres://mailsetup@127.0.0.1:%s/accounts_%s?sslmode=disable"\npassword_file = "%s"\n' "$PGPORT" "$1" "$WORK/pg/password" >>"$WORK/db$1/mailsetup.toml"
	"$M" db migrate --data "$WORK/db$1" >/dev/null
	awk -v n="$1" -v h="$HASH" 'BEGIN {
		for (i = -1; i < n; i++) {
			a = (i < 0) ? "demo@example.test" : sprintf("user%07d@example.test", i)
			printf "%s\t%s\t%s\t0\t2026-01-01 00:00:00+00\t2026-01-01 00:00:00+00\n", a, a, h
		}
	}' | psql -d "accounts_$1" -c 'COPY accounts (key, address, password_hash, quota_bytes, created, changed) FROM STDIN'
	psql -d "accounts_$1" -c 'VACUUM ANALYZE accounts'
}

# timed OUT CMD...: runs CMD under /usr/bin/time; prints "SECONDS MAXRSS_MB".
timed() {
	local out=$1; shift
	/usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$out"
	awk '{printf "%.2f %.0f", $1, $2 / 1024}' "$WORK/time"
}
# add BIN DIR TAG: RUNS `user add`s, prints the median "SECONDS MAXRSS_MB".
add() {
	local r
	for r in $(seq "$RUNS"); do
		printf '%s\n' 'a new password 1' >"$WORK/pw"
		timed /dev/null "$1" user add "new-$3-$r@example.test" --data "$2" <"$WORK/pw"
		echo
	done | sort -n | awk -v m=$(((RUNS + 1) / 2)) 'NR == m'
}
# start BIN DIR: seconds until /healthz answers 200, and the RSS (MB) then.
start() {
	local t0 t1
	t0=$(date +%s.%N)
	"$1" serve --data "$2" </dev/null >"$WORK/serve.out" 2>"$WORK/serve.log" &
	SERVE=$!
	until curl -sf -o /dev/null --max-time 1 "http://$ADMIN/healthz"; do
		kill -0 "$SERVE" 2>/dev/null || { echo "serve exited:" >&2; tail -5 "$WORK/serve.log" >&2; exit 1; }
		sleep 0.05
	done
	t1=$(date +%s.%N)
	printf '%.2f %.0f' "$(echo "$t1 - $t0" | bc)" "$(awk '/^VmRSS/ {print $2 / 1024}' "/proc/$SERVE/status")"
	kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; SERVE=
}
# measure STORE N WHICH DIR: one line of the table.
measure() {
	local bin=$WORK/$3/mailsetup a l s
	a=$(add "$bin" "$4" "$3")
	l=$(timed /dev/null "$bin" user list --data "$4")
	s=$(start "$bin" "$4")
	printf '| %s | %s | %s | %s s | %s MB | %s s | %s MB | %s s | %s MB |\n' "$1" "$2" "$3" $a $l $s
}

echo "== $(date -u +%Y-%m-%dT%H:%MZ); after: $(git rev-parse --short HEAD) (+ working tree), before: $(git rev-parse --short "$BEFORE"); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
lscpu | sed -n 's/^\(Model name\|CPU(s)\|Thread(s) per core\|L3 cache\):/\1:/p'
echo "memory $(awk '/MemTotal/ {printf "%.0f GiB", $2/1024/1024}' /proc/meminfo); user add: median of $RUNS"
# What `user add` spends on the argon2id hash alone (and the process):
# `staff hash`, no store at all.
for r in $(seq "$RUNS"); do
	printf '%s\n' 'a new password 1' >"$WORK/pw"
	timed /dev/null "$M" staff hash bench <"$WORK/pw"
	echo
done | sort -n | awk -v m=$(((RUNS + 1) / 2)) 'NR == m {print "argon2id hash alone (mailsetup staff hash, no store): " $1 " s, max RSS " $2 " MB"}'
echo
echo "| store | accounts | binary | user add | its max RSS | user list | its max RSS | serve until /healthz | RSS then |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
	mkdir -p "$WORK/gen"
	files "$n" "$WORK/gen"
	for which in before after; do
		rm -rf "$WORK/files"; cp -a "$WORK/template" "$WORK/files"; cp "$WORK/gen/accounts.json" "$WORK/files/"
		measure files "$n" "$which" "$WORK/files"
	done
	rm -rf "$WORK/files" "$WORK/gen"
	database "$n"
	for which in before after; do
		measure PostgreSQL "$n" "$which" "$WORK/db$n"
	done
	rm -rf "$WORK/db$n"
done
