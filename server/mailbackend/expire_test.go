package mailbackend

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
)

// sweepNowUnix is the fake clock of the expiry tests: 2026-03-10T12:00:00Z.
const sweepNowUnix = 1773144000

const day = 24 * time.Hour

func sweepNow() time.Time { return time.Unix(sweepNowUnix, 0).UTC() }

type expiryFixture struct {
	e     *Expirer
	store *mailstore.Store
	reg   *prometheus.Registry
	root  string
}

// newExpiryFixture: domain exp.test expires after 2 days, keep.test never;
// other.test is not configured at all.
func newExpiryFixture(t *testing.T, addresses ...string) *expiryFixture {
	t.Helper()
	dir := t.TempDir()
	accts, err := accounts.Open(filepath.Join(dir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addresses {
		if err := accts.Add(a, "long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "mail")
	store, err := mailstore.Open(root, mailstore.Options{Hostname: "test.example", NoSync: true, Now: sweepNow})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := NewExpirer(accts, store, map[string]int{"exp.test": 2, "keep.test": 0}, nil, NewExpireMetrics(reg))
	return &expiryFixture{e: e, store: store, reg: reg, root: root}
}

// deliver stores a message in box and, unless retrieved is zero, marks
// it retrieved over POP3 at that time; it returns the message's UIDL.
func (f *expiryFixture) deliver(t *testing.T, address, box, subject string, retrieved time.Time) string {
	t.Helper()
	u, err := f.store.User(address)
	if err != nil {
		t.Fatal(err)
	}
	if box != mailstore.Inbox {
		if err := u.CreateMailbox(box); err != nil && !errors.Is(err, mailstore.ErrMailboxExists) {
			t.Fatal(err)
		}
	}
	msg, err := u.Deliver(box, strings.NewReader("Subject: "+subject+"\r\n\r\nbody\r\n"), mailstore.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !retrieved.IsZero() {
		mb, err := u.Mailbox(box)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.MarkRetrieved([]uint32{msg.UID}, retrieved); err != nil {
			t.Fatal(err)
		}
	}
	return msg.UIDL
}

// uidls lists a mailbox's UIDLs.
func (f *expiryFixture) uidls(t *testing.T, address, box string) []string {
	t.Helper()
	u, err := f.store.User(address)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox(box)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.UIDL)
	}
	return out
}

// metricValue reads a counter or gauge from the registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestExpireSweep(t *testing.T) {
	const (
		a = "alice@exp.test"
		b = "bob@exp.test" // no mail storage
		c = "carol@keep.test"
		d = "dave@other.test"
	)
	f := newExpiryFixture(t, a, b, c, d)
	old := f.deliver(t, a, mailstore.Inbox, "retrieved 3 days ago", sweepNow().Add(-3*day))
	recent := f.deliver(t, a, mailstore.Inbox, "retrieved 1 day ago", sweepNow().Add(-1*day))
	never := f.deliver(t, a, mailstore.Inbox, "never retrieved", time.Time{})
	boundary := f.deliver(t, a, mailstore.Inbox, "retrieved exactly 2 days ago", sweepNow().Add(-2*day))
	archived := f.deliver(t, a, "Archive", "another mailbox, retrieved 30 days ago", sweepNow().Add(-30*day))
	keep := f.deliver(t, c, mailstore.Inbox, "domain without expiry, retrieved 30 days ago", sweepNow().Add(-30*day))
	other := f.deliver(t, d, mailstore.Inbox, "domain not configured, retrieved 30 days ago", sweepNow().Add(-30*day))
	inboxBefore := f.uidls(t, a, mailstore.Inbox)

	// Dry run: reported and counted, nothing deleted.
	var dryLogs syncBuffer
	rep, err := f.e.Sweep(context.Background(), ExpireOptions{DryRun: true, Now: sweepNow(), Logger: testLogger(&dryLogs)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Domains != 1 || rep.Checked != 1 || rep.Messages != 1 || len(rep.Accounts) != 1 ||
		rep.Accounts[0].Account != a || rep.Accounts[0].Days != 2 || !slices.Equal(rep.Accounts[0].UIDLs, []string{old}) || rep.Bytes <= 0 {
		t.Errorf("dry run report: %+v", rep)
	}
	if got := f.uidls(t, a, mailstore.Inbox); !slices.Equal(got, inboxBefore) {
		t.Errorf("dry run deleted: INBOX %q, was %q", got, inboxBefore)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expire_candidates"); v != 1 {
		t.Errorf("candidates after dry run = %v, want 1", v)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expired_total"); v != 0 {
		t.Errorf("expired_total after dry run = %v, want 0", v)
	}
	for _, want := range []string{"would delete", "account=" + a, "messages=1", "pop3 expiry sweep", "dry_run=true"} {
		if !strings.Contains(dryLogs.String(), want) {
			t.Errorf("dry run log lacks %q:\n%s", want, dryLogs.String())
		}
	}

	// The sweep deletes exactly the message retrieved more than 2 days ago.
	var logs syncBuffer
	rep, err = f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow(), Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun || rep.Messages != 1 || len(rep.Accounts) != 1 || !slices.Equal(rep.Accounts[0].UIDLs, []string{old}) {
		t.Errorf("sweep report: %+v", rep)
	}
	if got, want := f.uidls(t, a, mailstore.Inbox), []string{recent, never, boundary}; !slices.Equal(got, want) {
		t.Errorf("INBOX after the sweep: %q, want %q", got, want)
	}
	if got := f.uidls(t, a, "Archive"); !slices.Equal(got, []string{archived}) {
		t.Errorf("Archive touched: %q", got)
	}
	if got := f.uidls(t, c, mailstore.Inbox); !slices.Equal(got, []string{keep}) {
		t.Errorf("domain without expiry touched: %q", got)
	}
	if got := f.uidls(t, d, mailstore.Inbox); !slices.Equal(got, []string{other}) {
		t.Errorf("unconfigured domain touched: %q", got)
	}
	if has, _ := f.store.HasUser(b); has {
		t.Error("the sweep created mail storage for an account without mail")
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expired_total"); v != 1 {
		t.Errorf("expired_total = %v, want 1", v)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expire_last_sweep_timestamp_seconds"); v <= 0 {
		t.Errorf("last sweep timestamp = %v", v)
	}
	for _, want := range []string{"deleted messages retrieved over POP3", "account=" + a, "messages=1", "expire_days=2", "dry_run=false"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Errorf("want one line for the account and one summary, got %d:\n%s", n, logs.String())
	}

	// A day later the message retrieved 1 day ago has expired too; the
	// never-retrieved one stays whatever the time.
	rep, err = f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow().Add(day + time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 2 {
		t.Errorf("a day later: %+v", rep)
	}
	if got, want := f.uidls(t, a, mailstore.Inbox), []string{never}; !slices.Equal(got, want) {
		t.Errorf("INBOX a day later: %q, want %q", got, want)
	}
	rep, err = f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow().Add(1000 * day)})
	if err != nil || rep.Messages != 0 || len(rep.Accounts) != 0 {
		t.Errorf("nothing left to expire: %+v, %v", rep, err)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expire_candidates"); v != 0 {
		t.Errorf("candidates after an empty sweep = %v, want 0", v)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expired_total"); v != 3 {
		t.Errorf("expired_total = %v, want 3", v)
	}
}

// TestExpireSkipsOpenPOP3Session: a mailbox with a POP3 session open is
// left alone until the next sweep, and the sweep holds the maildrop the
// way a session does only while it works on it.
func TestExpireSkipsOpenPOP3Session(t *testing.T) {
	const a = "alice@exp.test"
	f := newExpiryFixture(t, a)
	old := f.deliver(t, a, mailstore.Inbox, "retrieved 3 days ago", sweepNow().Add(-3*day))
	m := &Backend{pop3Use: map[string]bool{}}
	f.e.claim = m.ClaimMaildrop

	release, ok := m.ClaimMaildrop("Alice@Exp.Test") // a POP3 session
	if !ok {
		t.Fatal("claim failed")
	}
	var logs syncBuffer
	rep, err := f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow(), Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Busy, []string{a}) || rep.Messages != 0 || rep.Checked != 0 {
		t.Errorf("report with an open session: %+v", rep)
	}
	if got := f.uidls(t, a, mailstore.Inbox); !slices.Equal(got, []string{old}) {
		t.Errorf("deleted under an open session: %q", got)
	}
	if !strings.Contains(logs.String(), "skipped until the next sweep") || !strings.Contains(logs.String(), "account="+a) {
		t.Errorf("skip not logged:\n%s", logs.String())
	}
	release()

	rep, err = f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow()})
	if err != nil || rep.Messages != 1 || len(rep.Busy) != 0 {
		t.Errorf("after the session ended: %+v, %v", rep, err)
	}
	// The sweep gave the maildrop back.
	if release, ok := m.ClaimMaildrop(a); !ok {
		t.Error("the sweep kept the maildrop claimed")
	} else {
		release()
	}
}

func TestExpireNoDomainWithExpiry(t *testing.T) {
	const c = "carol@keep.test"
	f := newExpiryFixture(t, c)
	f.e.days = map[string]int{"keep.test": 0}
	keep := f.deliver(t, c, mailstore.Inbox, "retrieved long ago", sweepNow().Add(-300*day))
	rep, err := f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow()})
	if err != nil || rep.Domains != 0 || rep.Checked != 0 || rep.Messages != 0 {
		t.Errorf("report: %+v, %v", rep, err)
	}
	if got := f.uidls(t, c, mailstore.Inbox); !slices.Equal(got, []string{keep}) {
		t.Errorf("touched: %q", got)
	}
}

// TestExpireStorageErrorGoesOn: an account whose storage cannot be read
// is reported, logged and counted; the others are still swept.
func TestExpireStorageErrorGoesOn(t *testing.T) {
	const a, z = "alice@exp.test", "zoe@exp.test"
	f := newExpiryFixture(t, a, z)
	f.deliver(t, a, mailstore.Inbox, "retrieved 3 days ago", sweepNow().Add(-3*day))
	kept := f.deliver(t, z, mailstore.Inbox, "retrieved 3 days ago", sweepNow().Add(-3*day))
	// An index that cannot be read (not one that is damaged: that is
	// rebuilt) fails the load of alice's INBOX.
	f.store.Evict(0)
	idx := filepath.Join(f.root, "exp.test", "alice", "Maildir", "mailsetup.index")
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(idx, 0o700); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	rep, err := f.e.Sweep(context.Background(), ExpireOptions{Now: sweepNow(), Logger: testLogger(&logs)})
	if err == nil || !strings.Contains(err.Error(), "pop3 expiry of "+a) {
		t.Errorf("error = %v, want one naming %s", err, a)
	}
	if len(rep.Accounts) != 1 || rep.Accounts[0].Account != z || !slices.Equal(rep.Accounts[0].UIDLs, []string{kept}) {
		t.Errorf("the healthy account was not swept: %+v", rep)
	}
	if v := metricValue(t, f.reg, "mailsetup_pop3_expire_errors_total"); v != 1 {
		t.Errorf("errors_total = %v, want 1", v)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "errors=1") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestSweepLoop: the service sweeps after the first delay and then
// periodically, with the configured dry-run mode, until its context ends.
func TestSweepLoop(t *testing.T) {
	const a = "alice@exp.test"
	f := newExpiryFixture(t, a)
	f.deliver(t, a, mailstore.Inbox, "retrieved long ago", time.Now().Add(-30*day))
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.e.Run(ctx, time.Millisecond, 5*time.Millisecond, func() bool { return true }, testLogger(&logs))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "pop3 expiry sweep") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two sweeps:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sweepLoop did not stop")
	}
	if !strings.Contains(logs.String(), "component=pop3-expire") || !strings.Contains(logs.String(), "would delete") {
		t.Errorf("log:\n%s", logs.String())
	}
	if got := f.uidls(t, a, mailstore.Inbox); len(got) != 1 {
		t.Errorf("dry-run loop deleted: %q", got)
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
