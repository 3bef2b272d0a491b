#!/usr/bin/env bash
# Outbound delivery benchmark: mailsetup's queue (DKIM on) against a
# relaying Postfix, same machine, same run, same messages, same remote
# MX (a private Postfix on loopback storing into Maildirs).
#   .ci/bench-outbound.sh           (from the repository root, as root)
# Env: WORK (temp dir), N (10000 messages), RCPTS (100), SIZE (10240),
#      ROUNDS (1), CLIENTS (10 submission sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} RCPTS=${RCPTS:-100} SIZE=${SIZE:-10240} ROUNDS=${ROUNDS:-1} CLIENTS=${CLIENTS:-10}
WORK=${WORK:-$(mktemp -d)}
chmod 755 "$WORK"
MXP=${MXP:-24025} RELAYP=${RELAYP:-24587} DNSP=${DNSP:-24053}
PW=bench-password-1

go build -o "$WORK/mailsetup" ./cmd/mailsetup
go build -o "$WORK/mailload" ./cmd/mailload
L=$WORK/mailload

# A private Postfix: $1 its directory, $2 main.cf additions, $3 master.cf's smtpd line.
postfix_instance() {
	local d=$1
	mkdir -p "$d/etc" "$d/queue" "$d/data" "$d/log" "$d/mail"
	chown postfix "$d/data"
	chown 65534:65534 "$d/mail"
	[ -s "$d/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.remote.test \
		-addext "subjectAltName=DNS:mx.remote.test,IP:127.0.0.1" -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
	cat >"$d/etc/main.cf" <<MAIN
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $d/log
maillog_file = $d/log/postfix.log
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled
smtpd_tls_cert_file = $d/cert.pem
smtpd_tls_key_file = $d/key.pem
smtpd_tls_security_level = may
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 100
$2
MAIN
	cat >"$d/etc/master.cf" <<MASTER
$3
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MASTER
	postfix -c "$d/etc" start </dev/null >"$d/log/start.log" 2>&1
}

# The remote domain's MX: stores mail for user1..userRCPTS@remote.test.
MX=$WORK/mx
mkdir -p "$MX/etc"
for i in $(seq "$RCPTS"); do echo "user$i@remote.test remote.test/user$i/"; done >"$MX/etc/vmailbox"
postfix_instance "$MX" "myhostname = mx.remote.test
virtual_mailbox_domains = remote.test
virtual_mailbox_base = $MX/mail
virtual_mailbox_maps = texthash:$MX/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
default_transport = error:no outbound
relay_transport = error:no outbound
smtpd_recipient_restrictions = reject_unauth_destination" "127.0.0.1:$MXP inet n - n - - smtpd"
# The reference: Postfix relaying what it is submitted to the same MX
# (relayhost: no MX lookup), STARTTLS to it when offered, as mailsetup.
RELAY=$WORK/relay
postfix_instance "$RELAY" "myhostname = relay.example.test
relayhost = [127.0.0.1]:$MXP
smtp_tls_security_level = may
smtpd_relay_restrictions = permit_mynetworks, reject" "127.0.0.1:$RELAYP inet n - n - - smtpd"

MS_PID= DNS_PID=
cleanup() {
	[ -n "$MS_PID" ] && kill "$MS_PID" 2>/dev/null || true
	[ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null || true
	postfix -c "$RELAY/etc" stop >/dev/null 2>&1 || true
	postfix -c "$MX/etc" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
$L dns -addr "127.0.0.1:$DNSP" -rr 'remote.test. 60 IN MX 10 mx.remote.test.' -rr 'mx.remote.test. 60 IN A 127.0.0.1' >"$WORK/dns.log" 2>&1 &
DNS_PID=$!

# mailsetup: the embedded default, its queue pointed at the MX through
# the DNS server, as many sessions to one domain as Postfix's default
# (default_destination_concurrency_limit = 20).
"$WORK/mailsetup" serve --data "$WORK/ms" </dev/null >"$WORK/ms.out" 2>"$WORK/ms.log" &
MS_PID=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done
kill "$MS_PID"; wait "$MS_PID" 2>/dev/null || true
printf '%s\n' "$PW" | "$WORK/mailsetup" user add --data "$WORK/ms" bench@example.test >/dev/null
sed -i 's/^max_connections_per_ip = .*/max_connections_per_ip = 1000/' "$WORK/ms/mailsetup.toml"
printf '\n[queue]\nresolver = "127.0.0.1:%s"\nport = %s\nmax_connections = 20\nmax_per_domain = 20\nsend_limit_per_hour = 1000000\n' "$DNSP" "$MXP" >>"$WORK/ms/mailsetup.toml"
"$WORK/mailsetup" serve --data "$WORK/ms" </dev/null >"$WORK/ms.out" 2>"$WORK/ms.log" &
MS_PID=$!
for _ in $(seq 100); do grep -q '^domain ' "$WORK/ms.out" 2>/dev/null && break; sleep 0.1; done
SUB=127.0.0.1:10587 # the embedded default's submission port

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {print $2/1024/1024 " GiB"}' /proc/meminfo); Postfix $(postconf -c "$MX/etc" -h mail_version)"
echo "== $N messages of $SIZE bytes to $RCPTS recipients at the Postfix MX, $CLIENTS submission sessions of 100 messages"
for r in $(seq "$ROUNDS"); do
	echo "== round $r"
	rm -rf "$MX/mail/remote.test"
	$L outbound -addr "127.0.0.1:$RELAYP" -user bench@example.test -to 'user%d@remote.test' -rcpts "$RCPTS" -n "$N" -size "$SIZE" -clients "$CLIENTS" -maildir "$MX/mail/remote.test" | sed 's/^/postfix   /'
	rm -rf "$MX/mail/remote.test"
	$L outbound -addr "$SUB" -user bench@example.test -pass "$PW" -to 'user%d@remote.test' -rcpts "$RCPTS" -n "$N" -size "$SIZE" -clients "$CLIENTS" -maildir "$MX/mail/remote.test" | sed 's/^/mailsetup /'
done
