package mailbackend

import (
	"strings"
	"sync"
	"time"
)

// SendLimit counts each account's recipients of other domains over the
// last hour, in one-minute buckets (smtpd's SendLimiter): a hijacked
// password cannot turn the server into a spam source. Memory is bounded
// by the accounts that sent in the last hour: 60 buckets each.
type SendLimit struct {
	perHour int
	now     func() time.Time

	mu       sync.Mutex
	accounts map[string]*sendWindow
	swept    int64 // minute of the last sweep of idle accounts
}

type sendWindow struct {
	minute [60]int64 // the minute (Unix/60) bucket i counts
	count  [60]int
}

// NewSendLimit allows perHour recipients per account and hour.
func NewSendLimit(perHour int) *SendLimit {
	return &SendLimit{perHour: perHour, now: time.Now, accounts: map[string]*sendWindow{}}
}

// AllowRecipient implements smtpd.SendLimiter.
func (l *SendLimit) AllowRecipient(account string) (bool, int, time.Duration) {
	now := l.now()
	cur := now.Unix() / 60
	account = strings.ToLower(account)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur != l.swept {
		l.sweep(cur)
	}
	w := l.accounts[account]
	if w == nil {
		w = &sendWindow{}
		l.accounts[account] = w
	}
	total, oldest := 0, cur
	for i := range w.minute {
		if w.minute[i] > cur-60 && w.count[i] > 0 {
			total += w.count[i]
			oldest = min(oldest, w.minute[i])
		}
	}
	if total >= l.perHour {
		// The oldest minute of the window leaves it first.
		return false, l.perHour, time.Unix((oldest+60)*60, 0).Sub(now)
	}
	i := cur % 60
	if w.minute[i] != cur {
		w.minute[i], w.count[i] = cur, 0
	}
	w.count[i]++
	return true, l.perHour, 0
}

// Sent returns how many recipients of other domains account sent to in
// the last hour (for the staff console).
func (l *SendLimit) Sent(account string) (sent, limit int) {
	cur := l.now().Unix() / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.accounts[strings.ToLower(account)]; w != nil {
		for i := range w.minute {
			if w.minute[i] > cur-60 {
				sent += w.count[i]
			}
		}
	}
	return sent, l.perHour
}

// sweep forgets accounts that sent nothing in the last hour.
func (l *SendLimit) sweep(cur int64) {
	l.swept = cur
	for a, w := range l.accounts {
		idle := true
		for i := range w.minute {
			if w.minute[i] > cur-60 && w.count[i] > 0 {
				idle = false
				break
			}
		}
		if idle {
			delete(l.accounts, a)
		}
	}
}

// SetPerHour changes the limit (a config reload); what each account sent
// in the last hour still counts.
func (l *SendLimit) SetPerHour(perHour int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perHour = perHour
}
