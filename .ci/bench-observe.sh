#!/usr/bin/env bash
# Log ingestion benchmark (issue 17): a generated, realistic 1,000,000-line
# Debian mail.log (Dovecot and Postfix through syslog into one file) read
# by a Dovecot and a Postfix [[observe.source]] (the file follower, the
# parsers, the counts, the events), against `wc -l` of the same file as
# the floor. Prints lines/s, the peak RSS and each result's count.
#   .ci/bench-observe.sh            (from the repository root)
# Env (defaults): LINES=1000000, ROUNDS=3, KEEP=0 (1: keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-0}
WORK=$(mktemp -d)
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
go test -c -o "$WORK/logwatch.test" ./server/logwatch
LOGWATCH_GENERATE=$WORK/mail.log LOGWATCH_LINES=$LINES "$WORK/logwatch.test" -test.run '^TestGenerateLog$' >/dev/null
echo "log: $(wc -l <"$WORK/mail.log") lines, $(du -m "$WORK/mail.log" | cut -f1) MB"
for r in $(seq "$ROUNDS"); do
	start=$(date +%s.%N)
	wc -l "$WORK/mail.log" >/dev/null
	end=$(date +%s.%N)
	wcs=$(echo "$end - $start" | bc -l)
	printf 'round %d: wc -l %.3f s (%.0f lines/s)\n' "$r" "$wcs" "$(echo "$LINES / $wcs" | bc -l)"
	LOGWATCH_INGEST=$WORK/mail.log /usr/bin/time -f "  process: %e s, %U s user, %S s system, max RSS %M kB" \
		"$WORK/logwatch.test" -test.run '^TestIngestFile$' | grep -v '^PASS'
done
