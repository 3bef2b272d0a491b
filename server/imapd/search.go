package imapd

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"mailsetup/server/mailstore"
)

// maxSearchRead bounds how much of one message SEARCH reads for HEADER,
// BODY and TEXT keys.
const maxSearchRead = 64 << 20

// Search implements imapserver.Session (RFC 3501 §6.4.4, with the
// ESEARCH result options of RFC 4731 and SEARCHRES's saved result of RFC
// 5182). Keys on flags, dates and sizes are answered from the index;
// HEADER, FROM, TO, SUBJECT, BODY, TEXT and SENT* read the messages.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	defer s.enter()()
	v, err := s.selected()
	if err != nil {
		return nil, err
	}
	all := make([]int, len(v.msgs))
	for i := range all {
		all[i] = i
	}
	idxs, msgs, err := v.present(all)
	if err != nil {
		return nil, s.mapStoreError(err, "reading the selected mailbox")
	}
	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	var saved []uint32
	for k, i := range idxs {
		mc := &matchCtx{v: v, mb: v.mb, seq: uint32(i + 1), m: msgs[k]}
		if !mc.match(criteria) {
			continue
		}
		saved = append(saved, mc.m.UID)
		num := mc.seq
		if kind == imapserver.NumKindUID {
			num = mc.m.UID
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
		seqs.AddNum(mc.seq)
		uids.AddNum(imap.UID(mc.m.UID))
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	if options.ReturnSave {
		v.searchRes = saved
	}
	return data, nil
}

// matchCtx evaluates search keys on one message, reading its file at
// most once.
type matchCtx struct {
	v   *view
	mb  *mailstore.Mailbox
	seq uint32
	m   mailstore.Message

	loaded bool
	raw    []byte // the message, up to maxSearchRead
	hdr    textproto.Header
	body   []byte // raw text after the header
	lower  struct{ header, body, decoded []byte }
}

func (mc *matchCtx) match(c *imap.SearchCriteria) bool {
	for _, set := range c.SeqNum {
		if !seqSetHas(set, mc.seq, uint32(len(mc.v.msgs))) {
			return false
		}
	}
	for _, set := range c.UID {
		if !mc.uidSetHas(set) {
			return false
		}
	}
	day := calendarDay(mc.m.InternalDate.In(time.Local))
	if !c.Since.IsZero() && day.Before(calendarDay(c.Since)) {
		return false
	}
	if !c.Before.IsZero() && !day.Before(calendarDay(c.Before)) {
		return false
	}
	if c.Larger > 0 && mc.m.Size <= c.Larger {
		return false
	}
	if c.Smaller > 0 && mc.m.Size >= c.Smaller {
		return false
	}
	for _, f := range c.Flag {
		if !mc.hasFlag(f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if mc.hasFlag(f) {
			return false
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		sent, ok := mc.sentDay()
		if !ok || !c.SentSince.IsZero() && sent.Before(calendarDay(c.SentSince)) ||
			!c.SentBefore.IsZero() && !sent.Before(calendarDay(c.SentBefore)) {
			return false
		}
	}
	for _, h := range c.Header {
		if !mc.headerHas(h.Key, h.Value) {
			return false
		}
	}
	for _, b := range c.Body {
		if !mc.bodyHas(b) {
			return false
		}
	}
	for _, t := range c.Text {
		if !mc.textHas(t) {
			return false
		}
	}
	for i := range c.Not {
		if mc.match(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !mc.match(&c.Or[i][0]) && !mc.match(&c.Or[i][1]) {
			return false
		}
	}
	return true
}

// seqSetHas reports whether set holds seq, "*" being last.
func seqSetHas(set imap.SeqSet, seq, last uint32) bool {
	for _, r := range set {
		start, stop := staticRange(r.Start, r.Stop, last)
		if seq >= start && seq <= stop {
			return true
		}
	}
	return false
}

func (mc *matchCtx) uidSetHas(set imap.UIDSet) bool {
	if imap.IsSearchRes(set) {
		return slices.Contains(mc.v.searchRes, mc.m.UID)
	}
	var last uint32
	if n := len(mc.v.msgs); n > 0 {
		last = mc.v.msgs[n-1].uid
	}
	for _, r := range set {
		start, stop := staticRange(uint32(r.Start), uint32(r.Stop), last)
		if mc.m.UID >= start && mc.m.UID <= stop {
			return true
		}
	}
	return false
}

// calendarDay is t's date, disregarding time and time zone (RFC 3501
// §6.4.4), as midnight UTC.
func calendarDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (mc *matchCtx) hasFlag(f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return false // this server never sets \Recent
	}
	return mc.m.HasFlag(string(f))
}

// load reads the message once.
func (mc *matchCtx) load() {
	if mc.loaded {
		return
	}
	mc.loaded = true
	f, err := mc.mb.Open(mc.m.UID)
	if err != nil {
		return // expunged meanwhile: matches no text key
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSearchRead))
	if err != nil {
		return
	}
	mc.raw = raw
	br := bufio.NewReader(bytes.NewReader(raw))
	if h, err := textproto.ReadHeader(br); err == nil {
		mc.hdr = h
	}
	end := len(raw)
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	mc.body = raw[end:]
	mc.lower.header = bytes.ToLower(raw[:end])
	mc.lower.body = bytes.ToLower(mc.body)
}

// decodeHeader decodes RFC 2047 encoded words where it can.
func decodeHeader(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func containsFold(hay, needle string) bool {
	return strings.Contains(strings.ToLower(hay), strings.ToLower(needle))
}

// headerHas implements HEADER (and FROM, TO, CC, BCC, SUBJECT): an empty
// value matches any message with the field.
func (mc *matchCtx) headerHas(key, value string) bool {
	mc.load()
	for f := mc.hdr.FieldsByKey(key); f.Next(); {
		if value == "" {
			return true
		}
		raw := f.Value()
		if containsFold(raw, value) || containsFold(decodeHeader(raw), value) {
			return true
		}
	}
	return false
}

// bodyHas implements BODY: the text after the header, raw and, for
// parts in base64 or quoted-printable, decoded.
func (mc *matchCtx) bodyHas(s string) bool {
	mc.load()
	needle := bytes.ToLower([]byte(s))
	if bytes.Contains(mc.lower.body, needle) {
		return true
	}
	return bytes.Contains(mc.decoded(), needle)
}

// textHas implements TEXT: header or body.
func (mc *matchCtx) textHas(s string) bool {
	mc.load()
	if bytes.Contains(mc.lower.header, bytes.ToLower([]byte(s))) {
		return true
	}
	for f := mc.hdr.Fields(); f.Next(); {
		if containsFold(decodeHeader(f.Value()), s) {
			return true
		}
	}
	return mc.bodyHas(s)
}

// decoded returns the lower-cased, transfer-decoded text of the
// message's text parts (charsets other than UTF-8 and ASCII are left as
// they are).
func (mc *matchCtx) decoded() []byte {
	if mc.lower.decoded != nil || mc.raw == nil {
		return mc.lower.decoded
	}
	var out bytes.Buffer
	e, err := gomessage.Read(bytes.NewReader(mc.raw))
	if e != nil && (err == nil || gomessage.IsUnknownCharset(err) || gomessage.IsUnknownEncoding(err)) {
		_ = e.Walk(func(_ []int, part *gomessage.Entity, _ error) error {
			if part.MultipartReader() != nil {
				return nil
			}
			if t, _, _ := part.Header.ContentType(); strings.HasPrefix(t, "text/") {
				_, _ = io.Copy(&out, io.LimitReader(part.Body, maxSearchRead))
				out.WriteByte('\n')
			}
			return nil
		})
	}
	mc.lower.decoded = bytes.ToLower(out.Bytes())
	if mc.lower.decoded == nil {
		mc.lower.decoded = []byte{}
	}
	return mc.lower.decoded
}

// sentDay is the date of the Date header field.
func (mc *matchCtx) sentDay() (time.Time, bool) {
	mc.load()
	t, err := mail.ParseDate(mc.hdr.Get("Date"))
	if err != nil {
		return time.Time{}, false
	}
	return calendarDay(t), true
}
