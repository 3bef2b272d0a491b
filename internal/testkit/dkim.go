package testkit

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// dkimScript verifies every DKIM-Signature of the message on standard
// input with dkimpy (Debian's python3-dkim), the keys coming from the
// JSON object in DKIM_KEYS (record name -> TXT value) instead of DNS; it
// prints one line per signature: "d=DOMAIN s=SELECTOR a=ALGORITHM pass"
// or "... fail".
const dkimScript = `
import dkim, json, os, sys
keys = json.loads(os.environ["DKIM_KEYS"])
def txt(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = keys.get(n.rstrip("."))
    return v.encode() if v is not None else None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
for i in range(len(sigs)):
    tags = dkim.util.parse_tag_value(sigs[i][1])
    try:
        ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=txt)
    except dkim.ValidationError:
        ok = False
    print("d=%s s=%s a=%s %s" % (tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode(), "pass" if ok else "fail"))
`

// DKIMVerify checks msg's DKIM signatures with an independent verifier
// (dkimpy, the library behind Debian's dkimverify), the public keys
// given as TXT records (name -> value); it returns one line per
// signature, "d=DOMAIN s=SELECTOR a=ALGORITHM pass|fail".
func DKIMVerify(t testing.TB, msg []byte, records map[string]string) []string {
	t.Helper()
	script := Tool(t, "dkimverify", "python3-dkim")
	// dkimverify reads its keys from DNS only; its interpreter runs the
	// same library with ours.
	head, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(head), "\n")
	python := strings.TrimSpace(strings.TrimPrefix(line, "#!"))
	keys, _ := json.Marshal(records)
	cmd := exec.Command(python, "-c", dkimScript)
	cmd.Env = append(os.Environ(), "DKIM_KEYS="+string(keys))
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
