package acmecert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/acme/autocert"
)

// renewState is a name's renewal: failures in a row and the next
// attempt.
type renewState struct {
	failures int
	next     time.Time
}

// renewMetrics count the renewals' failures and show the next attempt.
type renewMetrics struct {
	failures *prometheus.CounterVec
	next     *prometheus.GaugeVec
}

func newRenewMetrics() renewMetrics {
	return renewMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsetup_tls_renewal_failures_total",
			Help: "Failed renewals of an ACME certificate, per name (each retried with a growing wait while the valid certificate stays in use).",
		}, []string{"name"}),
		next: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailsetup_tls_renewal_next_attempt_seconds",
			Help: "When the next renewal of a name's certificate is attempted (Unix time), for names whose renewal failed.",
		}, []string{"name"}),
	}
}

// forget drops a name's series (the name was removed).
func (r renewMetrics) forget(name string) {
	r.failures.DeleteLabelValues(name)
	r.next.DeleteLabelValues(name)
}

// expiry is a held name's NotAfter.
func (mg *Manager) expiry(name string) (time.Time, bool) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	t, ok := mg.expires[name]
	return t, ok
}

// renewGap is the least time between two successful renewals of a
// name: a certificate issued for less than RenewBefore (a CA's short
// lifetime) is renewed at this pace instead of in a loop.
func (mg *Manager) renewGap() time.Duration { return 10 * mg.retry }

// backoff is the wait after the n-th failure in a row (n >= 1): Retry
// doubled per failure up to MaxRetry, plus up to a quarter more of
// jitter (so that many names, or many servers, do not retry in step),
// never beyond MaxRetry.
func (mg *Manager) backoff(n int) time.Duration {
	w := mg.retry
	for i := 1; i < n && w < mg.opts.MaxRetry; i++ {
		w *= 2
	}
	w = min(w, mg.opts.MaxRetry)
	w += time.Duration(rand.Int64N(int64(w)/4 + 1))
	return min(w, mg.opts.MaxRetry)
}

// renewDue renews a held name's certificate when it is within
// RenewBefore of its expiry and its next attempt has come. It returns
// when to look at the name again (zero: at the usual CheckInterval).
func (mg *Manager) renewDue(ctx context.Context, name string) time.Time {
	notAfter, held := mg.expiry(name)
	if !held {
		return time.Time{}
	}
	now := time.Now()
	due := notAfter.Add(-mg.opts.RenewBefore)
	mg.mu.Lock()
	st := mg.renew[name]
	if st == nil {
		st = &renewState{}
		mg.renew[name] = st
	}
	at := st.next
	// Never a certificate younger than renewGap: one issued for less
	// than RenewBefore would be renewed in a loop.
	young := mg.issued[name].Add(mg.renewGap())
	mg.mu.Unlock()
	for _, t := range []time.Time{due, young} {
		if t.After(at) {
			at = t
		}
	}
	if now.Before(at) {
		return at
	}
	err := mg.renewNow(ctx, name, notAfter)
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if _, still := mg.expires[name]; !still {
		return time.Time{} // removed meanwhile
	}
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}
		}
		st.failures++
		wait := mg.backoff(st.failures)
		st.next = time.Now().Add(wait)
		mg.metrics.failures.WithLabelValues(name).Inc()
		mg.metrics.next.WithLabelValues(name).Set(float64(st.next.Unix()))
		mg.log.Warn("acme: renewal failed, the valid certificate stays in use", "name", name, "attempt", st.failures,
			"retry_in", wait.Round(time.Second).String(), "not_after", notAfter.UTC().Format(time.RFC3339), "err", err)
		return st.next
	}
	st.failures = 0
	st.next = time.Now().Add(mg.renewGap())
	mg.metrics.next.DeleteLabelValues(name)
	return st.next
}

// renewNow orders a new certificate for name with a second autocert
// manager whose cache misses that certificate (so it asks the CA) and
// stores what it gets in the shared cache; the challenges' tokens go
// through that cache to the listeners' manager. Only a certificate that
// was issued replaces the served one: the renewing manager becomes the
// served one (it reads every other certificate from the cache).
func (mg *Manager) renewNow(ctx context.Context, name string, old time.Time) error {
	cache := &missOnce{Cache: autocert.DirCache(mg.opts.CacheDir), key: name}
	why := &challengeErrors{}
	fresh, rt := mg.autocert(cache, func(base http.RoundTripper) http.RoundTripper { why.base = base; return why })
	done := make(chan struct{})
	var leafErr error
	var notBefore, notAfter time.Time
	go func() {
		defer close(done)
		leaf, err := leafOf(fresh.GetCertificate(ecdsaHello(name)))
		if err == nil {
			notBefore, notAfter = leaf.NotBefore, leaf.NotAfter
		}
		leafErr = err
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err() // the order ends with its own deadline
	}
	cache.stop()
	if leafErr != nil {
		rt.retired.Store(true) // its manager is dropped
		return why.wrap(leafErr)
	}
	if !notAfter.After(old) {
		rt.retired.Store(true)
		return errors.New("the CA returned a certificate that expires no later than the one held")
	}
	mg.m.Store(fresh)
	mg.transport.Swap(rt).retired.Store(true)
	mg.mu.Lock()
	if _, ok := mg.expires[name]; ok {
		mg.expires[name], mg.issued[name] = notAfter, notBefore
	}
	mg.mu.Unlock()
	mg.log.Info("acme: certificate renewed", "name", name, "not_after", notAfter.UTC().Format(time.RFC3339), "was", old.UTC().Format(time.RFC3339))
	return nil
}

// missOnce is the cache of a renewal: it misses the certificate being
// renewed until stop (so autocert asks the CA instead of reading the
// one held) and passes everything else, writes included, to Cache.
type missOnce struct {
	autocert.Cache
	key     string
	stopped atomic.Bool
}

func (c *missOnce) stop() { c.stopped.Store(true) }

func (c *missOnce) Get(ctx context.Context, key string) ([]byte, error) {
	if key == c.key && !c.stopped.Load() {
		return nil, autocert.ErrCacheMiss
	}
	return c.Cache.Get(ctx, key)
}

// challengeErrors records what the CA said of the challenges that
// failed during one renewal: autocert tries each challenge type in a new
// order and returns only "no viable challenge type found", dropping the
// CA's reasons (no address for the name, connection refused, ...).
type challengeErrors struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

// maxAuthzBody bounds what is read of a response to look for errors.
const maxAuthzBody = 64 << 10

func (c *challengeErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	// Authorizations and challenges (Let's Encrypt: /acme/authz/,
	// /acme/chall/; Pebble: /authZ/, /chalZ/).
	path := strings.ToLower(req.URL.Path)
	if err != nil || !strings.Contains(path, "authz") && !strings.Contains(path, "chal") {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAuthzBody+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil || len(body) > maxAuthzBody {
		return resp, err
	}
	var z struct {
		Challenges []struct {
			Type  string `json:"type"`
			Error *struct {
				Detail string `json:"detail"`
			} `json:"error"`
		} `json:"challenges"`
	}
	if json.Unmarshal(body, &z) == nil {
		c.mu.Lock()
		for _, ch := range z.Challenges {
			if ch.Error != nil && ch.Error.Detail != "" {
				if why := ch.Type + ": " + ch.Error.Detail; !slices.Contains(c.seen, why) && len(c.seen) < 8 {
					c.seen = append(c.seen, why)
				}
			}
		}
		c.mu.Unlock()
	}
	return resp, err
}

// wrap adds the recorded reasons to err.
func (c *challengeErrors) wrap(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) == 0 {
		return err
	}
	return fmt.Errorf("%w (the CA: %s)", err, strings.Join(c.seen, "; "))
}
