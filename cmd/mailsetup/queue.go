package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mailsetup/server"
	"mailsetup/server/queue"
)

// queueActions are the actions of `mailsetup queue`.
var queueActions = []string{"list", "show", "retry", "remove", "bounce"}

const queueHelp = `usage: mailsetup queue list|show ID|retry [ID]|remove ID|bounce ID [--config FILE] [--data DIR]

The outbound queue: mail for other domains waiting to be delivered.

  list         one line per message: id, age, sender, recipients still
               pending of all, when it is tried next, the last reply
  show ID      the message's envelope and each recipient's state
  retry [ID]   try ID (without: every message) now
  remove ID    delete ID from the queue; the sender is not told
  bounce ID    give ID up: every recipient not yet delivered fails and
               the sender gets a delivery status notification

A running "mailsetup serve" acts on retry and bounce within seconds;
otherwise at its next start. remove takes effect at once.

` + dataFlagsHelp

func cmdQueue(args []string, stdout io.Writer) error {
	var c common
	fs := newFlagSet("queue")
	c.flags(fs)
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, queueActions...)
	switch {
	case err != nil:
		return commandError("queue", err) // one help for every action
	case len(pos) == 0:
		return usageError{"queue", "want an action: " + strings.Join(queueActions, ", ")}
	case verb == "":
		return usageError{"queue", fmt.Sprintf("unknown action %q: want %s", pos[0], strings.Join(queueActions, ", "))}
	}
	rest := pos[1:]
	switch {
	case verb == "list" && len(rest) > 0:
		return usageError{"queue", "list takes no argument"}
	case verb == "retry" && len(rest) > 1:
		return usageError{"queue", "retry takes at most one ID"}
	case verb != "list" && verb != "retry" && len(rest) != 1:
		return usageError{"queue", verb + " takes one ID"}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	q, err := queue.Open(server.QueuePath(cfg))
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		return queueList(q, stdout)
	case "show":
		return queueShow(q, rest[0], stdout)
	case "retry":
		ids := rest
		if len(ids) == 0 {
			envs, err := q.List()
			if err != nil {
				return err
			}
			for _, e := range envs {
				ids = append(ids, e.ID)
			}
		}
		for _, id := range ids {
			if err := q.Request(id, queue.RequestRetry); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "%d message(s) to be tried now\n", len(ids))
	case "remove":
		env, st, err := q.Get(rest[0])
		if err != nil {
			return err
		}
		if err := q.Remove(env.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s from %s: %d recipient(s) not delivered; the sender was not told\n", env.ID, env.From, pending(st))
	case "bounce":
		if err := q.Request(rest[0], queue.RequestBounce); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s will be returned to its sender\n", rest[0])
	}
	return nil
}

func pending(st queue.State) int {
	n := 0
	for _, r := range st.Recipients {
		if r.Outcome == queue.Pending {
			n++
		}
	}
	return n
}

func queueList(q *queue.Queue, w io.Writer) error {
	envs, err := q.List()
	if err != nil {
		return err
	}
	if len(envs) == 0 {
		fmt.Fprintln(w, "the queue is empty")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tFROM\tPENDING\tNEXT\tLAST REPLY")
	now := time.Now()
	for _, e := range envs {
		_, st, err := q.Get(e.ID)
		if err != nil {
			return err
		}
		next, last := "now", "-"
		if st.NextAttempt.After(now) {
			next = "in " + st.NextAttempt.Sub(now).Round(time.Second).String()
		}
		for _, r := range st.Recipients {
			if r.Outcome == queue.Pending && r.Reply != "" {
				last = r.Reply
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", e.ID, now.Sub(e.Received).Round(time.Second), orNull(e.From), pending(st), len(st.Recipients), next, oneLineText(last, 70))
	}
	return tw.Flush()
}

func queueShow(q *queue.Queue, id string, w io.Writer) error {
	env, st, err := q.Get(id)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "id: %s\nfrom: %s\nreceived: %s\nsize: %d bytes\nattempts: %d\n", env.ID, orNull(env.From), env.Received.Format(time.RFC3339), env.Size, st.Attempts)
	if !st.NextAttempt.IsZero() {
		fmt.Fprintf(w, "next attempt: %s\n", st.NextAttempt.Format(time.RFC3339))
	}
	for _, r := range st.Recipients {
		outcome := string(r.Outcome)
		if r.Outcome == queue.Pending {
			outcome = "pending"
		}
		fmt.Fprintf(w, "to: %s: %s", r.Address, outcome)
		if r.Host != "" {
			fmt.Fprintf(w, " (%s", r.Host)
			if !r.Time.IsZero() {
				fmt.Fprintf(w, " at %s", r.Time.Format(time.RFC3339))
			}
			fmt.Fprint(w, ")")
		}
		if r.Reply != "" {
			fmt.Fprintf(w, ": %s", oneLineText(r.Reply, 500))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func orNull(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

// oneLineText is s on one line, at most n characters.
func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}
