#!/usr/bin/env bash
# Mail benchmarks: mailsetup vs Postfix (submission) and Dovecot (IMAP,
# POP3) on loopback, same machine, same run, same data, alternating.
#   .ci/bench-mail.sh              (from the repository root)
# Env: WORK (temp dir), ROUNDS (2), DURATION (15s),
#      PEERS_PASS_SCHEME (ARGON2ID: Dovecot hashes like we do),
#      PEERS_AUTH_CACHE (1: Dovecot's auth cache on, a tuned production setup).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15s}
WORK=${WORK:-$(mktemp -d)}
chmod 755 "$WORK"
PEERS=$(cd ../shared/peers && pwd)
# user1..user50: 10,000-message maildrops (hard links to one generated
# Maildir) for POP3; user51, user52: submission; big10k: IMAP.
POPUSERS=50
export PEERS_DIR=$WORK/peers PEERS_USERS=52 PEERS_EXTRA_USERS="big10k"
export PEERS_PASS_SCHEME=${PEERS_PASS_SCHEME:-ARGON2ID} PEERS_AUTH_CACHE=${PEERS_AUTH_CACHE:-1}
PW=bench-password-1

go build -o "$WORK/mailsetup" ./cmd/mailsetup
go build -o "$WORK/mailload" ./cmd/mailload
(cd "$PEERS/genmaildir" && GOFLAGS=-mod=mod go build -o "$WORK/genmaildir" .)
L=$WORK/mailload

"$PEERS/dovecot-postfix.sh" start </dev/null >"$WORK/peers.log" 2>&1
MS_PID=
cleanup() {
	[ -n "$MS_PID" ] && kill "$MS_PID" 2>/dev/null || true
	"$PEERS/dovecot-postfix.sh" stop </dev/null >>"$WORK/peers.log" 2>&1 || true
}
trap cleanup EXIT

# The same 10,000 generated messages in both stores.
"$WORK/genmaildir" -dir "$WORK/gen/Maildir" -n 10000 -seed 1 >/dev/null
PMD=$PEERS_DIR/mail/example.test/big10k/Maildir
rm -rf "$PMD" && mkdir -p "$(dirname "$PMD")" && cp -r "$WORK/gen/Maildir" "$PMD"
for i in $(seq $POPUSERS); do
	d=$PEERS_DIR/mail/example.test/user$i/Maildir
	rm -rf "$d" && mkdir -p "$(dirname "$d")" && cp -al "$WORK/gen/Maildir" "$d"
done
chown -R 65534:65534 "$PEERS_DIR/mail"

# mailsetup: the embedded default on its standard ports, plus our users.
"$WORK/mailsetup" serve --data "$WORK/ms" </dev/null >"$WORK/ms.out" 2>"$WORK/ms.log" &
MS_PID=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done
kill "$MS_PID"; wait "$MS_PID" 2>/dev/null || true
for u in $(seq -f 'user%g' 52) big10k; do printf '%s\n' "$PW" | "$WORK/mailsetup" user add --data "$WORK/ms" "$u@example.test" >/dev/null; done
# One load generator on one address: lift the per-address connection limit
# (Dovecot's peers config has no per-address limit either).
sed -i 's/^max_connections_per_ip = .*/max_connections_per_ip = 1000/' "$WORK/ms/mailsetup.toml"
OMD=$WORK/ms/mail/example.test/big10k/Maildir
mkdir -p "$(dirname "$OMD")" && cp -r "$WORK/gen/Maildir" "$OMD"
for i in $(seq $POPUSERS); do mkdir -p "$WORK/ms/mail/example.test/user$i" && cp -al "$WORK/gen/Maildir" "$WORK/ms/mail/example.test/user$i/Maildir"; done
"$WORK/mailsetup" serve --data "$WORK/ms" </dev/null >"$WORK/ms.out" 2>"$WORK/ms.log" &
MS_PID=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {print $2/1024/1024 " GiB"}' /proc/meminfo); Dovecot $(dovecot --version | cut -d' ' -f1), Postfix $(postconf -h mail_version); Dovecot passwords $PEERS_PASS_SCHEME, auth cache $PEERS_AUTH_CACHE; mailsetup argon2id + its credential cache"
# Warm both (first IMAP open builds indexes) before measuring.
$L imap -addr 127.0.0.1:21993 -user big10k@example.test -pass secret -repeat 1 >/dev/null
$L imap -addr 127.0.0.1:10993 -user big10k@example.test -pass "$PW" -repeat 1 >/dev/null
$L pop3 -addr 127.0.0.1:21995 -user 'user%d@example.test' -users $POPUSERS -pass secret -clients $POPUSERS -duration 20s >/dev/null
$L pop3 -addr 127.0.0.1:10995 -user 'user%d@example.test' -users $POPUSERS -pass "$PW" -clients $POPUSERS -duration 20s >/dev/null
for r in $(seq "$ROUNDS"); do
	echo "== round $r"
	echo "-- submission, 20 clients, STARTTLS + AUTH per message, 10 KB, local recipient"
	$L submit -addr 127.0.0.1:21587 -user user51@example.test -pass secret -to user52@example.test -clients 20 -duration "$DURATION" -size 10240 | sed 's/^/postfix   /'
	$L submit -addr 127.0.0.1:10587 -user user51@example.test -pass "$PW" -to user52@example.test -clients 20 -duration "$DURATION" -size 10240 | sed 's/^/mailsetup /'
	echo "-- IMAP, 10,000-message mailbox"
	$L imap -addr 127.0.0.1:21993 -user big10k@example.test -pass secret -repeat 5 -fetch 100 | sed 's/^/dovecot   /'
	$L imap -addr 127.0.0.1:10993 -user big10k@example.test -pass "$PW" -repeat 5 -fetch 100 | sed 's/^/mailsetup /'
	for c in 50 200; do
		echo "-- POP3, $c clients over $POPUSERS accounts of 10,000 messages, USER/PASS/STAT/UIDL/QUIT"
		$L pop3 -addr 127.0.0.1:21995 -user 'user%d@example.test' -users $POPUSERS -pass secret -clients $c -duration "$DURATION" | sed 's/^/dovecot   /'
		$L pop3 -addr 127.0.0.1:10995 -user 'user%d@example.test' -users $POPUSERS -pass "$PW" -clients $c -duration "$DURATION" | sed 's/^/mailsetup /'
	done
done

rss_tree() { # total RSS (kB) of a process and its descendants
	local root=$1
	ps -eo pid=,ppid=,rss= | awk -v r="$root" '{p[$1]=$2; m[$1]=$3} END {for (i in p) {x=i; while (x && x!=r) x=p[x]; if (x==r) s+=m[i]} print s}'
}
echo "-- memory with 200 idle IMAP connections (the 10,000-message INBOX of big10k selected)"
DV_MASTER=$(cat "$PEERS_DIR/dovecot/run/master.pid")
for side in dovecot mailsetup; do
	if [ $side = dovecot ]; then port=21993 pass=secret root=$DV_MASTER; else port=10993 pass=$PW root=$MS_PID; fi
	before=$(rss_tree "$root")
	$L idle -addr 127.0.0.1:$port -user big10k@example.test -pass "$pass" -conns 200 -hold 12s >"$WORK/idle.$side" &
	IDLE=$!
	sleep 9
	during=$(rss_tree "$root")
	wait $IDLE
	echo "$side: RSS $before kB before, $during kB with 200 connections ($(( (during - before) / 200 )) kB each); $(head -1 "$WORK/idle.$side")"
done
