package imapd

import (
	"sort"
	"strings"
	"time"

	"mailsetup/server/events"
)

// ClientID implements filter.Session: it records the client's ID as an
// event.
func (sess *session) ClientID(params map[string]string) {
	client := strings.TrimSpace(params["name"] + " " + params["version"])
	sess.mu.Lock()
	sess.client = client
	sess.mu.Unlock()
	var extra []string
	for k, v := range params {
		if k != "name" && k != "version" && v != "" {
			extra = append(extra, k+"="+v)
		}
	}
	sort.Strings(extra)
	ev := events.Event{
		Time:    time.Now(),
		Kind:    events.ClientID,
		Proto:   events.ProtoIMAP,
		Remote:  sess.remote,
		TLS:     sess.c.TLS(),
		Account: sess.accountName(),
		Client:  client,
		Detail:  strings.Join(extra, " "),
	}
	sess.s.opts.Events.Emit(ev)
	sess.log.Debug("client id", "client", client, "detail", ev.Detail)
}
