#!/usr/bin/env bash
# Import benchmark (issue 15): `mailsetup import --from-maildir` against
# Dovecot's own `doveadm import` of the same Dovecot Maildirs into a fresh
# mail location, same disk, same run, alternating; then the live POP3
# import (`--from-pop3` against the same private Dovecot) at several
# concurrencies.
#   .ci/bench-import.sh            (from the repository root, as root)
# Env (defaults): USERS=50 MSGS=10000 (accounts x messages of the Maildir
# comparison, the issue's size; smaller for a quick run), ROUNDS=2,
# CONC=4 (accounts at once, both sides), POP_USERS=8 (the first
# POP_USERS of the same accounts), POP_CONCS="1 2 4 8",
# PROFILE=0 (1: one more Maildir import under `perf record` and
# `strace -c`, summaries printed), KEEP=0 (1: keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-50}
MSGS=${MSGS:-10000}
ROUNDS=${ROUNDS:-2}
CONC=${CONC:-4}
POP_USERS=${POP_USERS:-8}
POP_CONCS=${POP_CONCS:-1 2 4 8}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
WORK=$(mktemp -d)
chmod 755 "$WORK"
PEERS=$(cd ../shared/peers && pwd)
DST_USERS=$(seq -f 'dst%g' "$USERS" | tr '\n' ' ')
export PEERS_DIR=$WORK/peers PEERS_USERS=$USERS PEERS_EXTRA_USERS="$DST_USERS"
export PEERS_PASS_SCHEME=${PEERS_PASS_SCHEME:-PLAIN} PEERS_AUTH_CACHE=${PEERS_AUTH_CACHE:-0}
PW=bench-password-1
DOM=example.test
MAIL=$PEERS_DIR/mail/$DOM
CONF=$PEERS_DIR/dovecot/dovecot.conf
MS_PID=
cleanup() {
	[ -n "$MS_PID" ] && kill "$MS_PID" 2>/dev/null || true
	"$PEERS/dovecot-postfix.sh" stop </dev/null >>"$WORK/peers.log" 2>&1 || true
	if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

go build -o "$WORK/mailsetup" ./cmd/mailsetup
(cd "$PEERS/genmaildir" && GOFLAGS=-mod=mod go build -o "$WORK/genmaildir" .)
"$PEERS/dovecot-postfix.sh" start </dev/null >"$WORK/peers.log" 2>&1

# The source: USERS generated Maildirs in the private Dovecot's own mail
# location (so its POP3 serves them too), seen once by Dovecot so that
# dovecot-uidlist and the indexes exist before either side reads them.
"$WORK/genmaildir" -base "$MAIL" -users "$USERS" -n "$MSGS" -seed 1 -chown 65534:65534 >/dev/null
chown 65534:65534 "$MAIL"
for i in $(seq "$USERS"); do doveadm -c "$CONF" mailbox status -u "user$i@$DOM" messages INBOX >/dev/null; done
SRC_BYTES=$(du -sb --exclude='dovecot*' "$MAIL" | cut -f1)

# Our side: a data dir with the accounts, copied fresh for every run.
"$WORK/mailsetup" serve --data "$WORK/ms0" </dev/null >"$WORK/ms.out" 2>"$WORK/ms.log" &
MS_PID=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done
kill "$MS_PID"; wait "$MS_PID" 2>/dev/null || true
MS_PID=
for i in $(seq "$USERS"); do printf '%s\n' "$PW" | "$WORK/mailsetup" user add --data "$WORK/ms0" "user$i@$DOM" >/dev/null; done
for i in $(seq "$USERS"); do echo "user$i@$DOM,user$i/Maildir"; done >"$WORK/maildirs.csv"
for i in $(seq "$POP_USERS"); do echo "user$i@$DOM,user$i@$DOM,secret"; done >"$WORK/pop3.csv"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.0f", n / (b - a)}'; }
fresh_ours() { rm -rf "$WORK/ms" && cp -a "$WORK/ms0" "$WORK/ms" && sync; }
fresh_dovecot() { for u in $DST_USERS; do rm -rf "${MAIL:?}/$u"; done; sync; }

run_ours() { # prints messages/s
	fresh_ours
	local t0 t1
	t0=$(now)
	"$WORK/mailsetup" import --data "$WORK/ms" --from-maildir "$MAIL" --accounts "$WORK/maildirs.csv" --concurrency "$CONC" >"$WORK/import.out"
	t1=$(now)
	tail -n1 "$WORK/import.out" >&2
	grep -q "imported $((USERS * MSGS)), skipped 0, refused 0" "$WORK/import.out" || { echo "mailsetup import incomplete" >&2; exit 1; }
	rate $((USERS * MSGS)) "$t0" "$t1"
}

run_dovecot() { # [hardlinks]: prints messages/s
	fresh_dovecot
	local t0 t1 n=0 c links=no
	[ "${1:-}" = hardlinks ] && links=yes
	t0=$(now)
	seq "$USERS" | xargs -P "$CONC" -I{} doveadm -c "$CONF" -o maildir_copy_with_hardlinks=$links \
		import -u "dst{}@$DOM" "maildir:$MAIL/user{}/Maildir" "" all
	t1=$(now)
	for i in $(seq "$USERS"); do
		c=$(doveadm -c "$CONF" -f flow mailbox status -u "dst$i@$DOM" messages INBOX | sed 's/.*messages=//')
		n=$((n + c))
	done
	echo "doveadm import (maildir_copy_with_hardlinks=$links): $n messages in the fresh location, link count of one: $(stat -c %h "$(find "$MAIL/dst1/Maildir" -type f -name "*,S=*" | head -n1)")" >&2
	[ "$n" -eq $((USERS * MSGS)) ] || { echo "doveadm import incomplete" >&2; exit 1; }
	rate $((USERS * MSGS)) "$t0" "$t1"
}

echo "== machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1024/1024}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(go version | cut -d' ' -f3), Dovecot $(dovecot --version | cut -d' ' -f1), $(findmnt -no FSTYPE --target "$WORK") on one disk"
echo "== data: $USERS accounts x $MSGS messages (genmaildir -seed 1), $((SRC_BYTES / 1024 / 1024)) MiB; concurrency $CONC on both sides"
echo "== fsync: Dovecot mail_fsync=$(doveconf -c "$CONF" -h mail_fsync); mailsetup: every message file fsynced, then per batch (up to 128 messages or 32 MiB) one fsync of new/ and cur/ and one index append and fsync (the store's batched delivery)"
# Warm the page cache with the source (both sides then read it from memory).
find "$MAIL" -path "*/cur/*" -type f -exec cat {} + >/dev/null
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# Every round's rates also as Go benchmark lines (ns per message), for
# benchstat: the median and spread over the rounds.
bench_line() { awk -v name="$1" -v r="$2" -v n=$((USERS * MSGS)) 'BEGIN {printf "BenchmarkImport/%s %d %.0f ns/op %.0f msgs/s\n", name, n, 1e9 / r, r}' >>"$WORK/rounds.txt"; }
echo "| round | doveadm import, copied, msg/s | mailsetup import msg/s | ratio | doveadm import, hard links (Dovecot's default), msg/s | ratio |"
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		d=$(run_dovecot); o=$(run_ours); h=$(run_dovecot hardlinks)
	else
		h=$(run_dovecot hardlinks); o=$(run_ours); d=$(run_dovecot)
	fi
	echo "| $r | $d | $o | $(ratio "$o" "$d") | $h | $(ratio "$o" "$h") |"
	bench_line doveadm-copy "$d"; bench_line mailsetup "$o"; bench_line doveadm-hardlinks "$h"
done
BENCHSTAT=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [ -x "$BENCHSTAT" ] && [ "$ROUNDS" -gt 1 ]; then
	echo "== benchstat over the $ROUNDS rounds (ns per message; msgs/s)"
	(cd "$WORK" && "$BENCHSTAT" rounds.txt) || true
fi

if [ "$PROFILE" = 1 ]; then
	echo "== profile: one mailsetup Maildir import under perf record -g"
	fresh_ours
	perf record -q -g -o "$WORK/perf.data" -- "$WORK/mailsetup" import --data "$WORK/ms" --from-maildir "$MAIL" --accounts "$WORK/maildirs.csv" --concurrency "$CONC" >/dev/null 2>&1 || true
	perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
	echo "== profile: CPU and wall time of the same import"
	fresh_ours
	/usr/bin/time -f '%e s wall, %U s user, %S s system' "$WORK/mailsetup" import --data "$WORK/ms" --from-maildir "$MAIL" --accounts "$WORK/maildirs.csv" --concurrency "$CONC" 2>&1 >/dev/null | tail -n1 || true
	echo "== profile: the same under strace -c -f -w (wall time in each system call)"
	fresh_ours
	strace -c -f -w -o "$WORK/strace.txt" "$WORK/mailsetup" import --data "$WORK/ms" --from-maildir "$MAIL" --accounts "$WORK/maildirs.csv" --concurrency "$CONC" >/dev/null 2>&1 || true
	head -n 20 "$WORK/strace.txt" || true
fi

echo "== live POP3 import from the private Dovecot (POP3S on loopback): $POP_USERS accounts x $MSGS messages"
for r in $(seq "$ROUNDS"); do
	for c in $POP_CONCS; do
		fresh_ours
		t0=$(now)
		"$WORK/mailsetup" import --data "$WORK/ms" --from-pop3 127.0.0.1:21995 --ca "$PEERS_DIR/dovecot/ssl/cert.pem" \
			--accounts "$WORK/pop3.csv" --concurrency "$c" >"$WORK/pop3.out"
		t1=$(now)
		grep -q "imported $((POP_USERS * MSGS)), skipped 0, refused 0" "$WORK/pop3.out" || { echo "POP3 import incomplete" >&2; tail -n3 "$WORK/pop3.out" >&2; exit 1; }
		echo "round $r, --concurrency $c: $(rate $((POP_USERS * MSGS)) "$t0" "$t1") messages/s"
	done
done
