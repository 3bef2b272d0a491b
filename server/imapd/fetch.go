package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"mailsetup/server/mailstore"
)

// Fetch implements imapserver.Session. The whole message, its header and
// its text are streamed from the file (with partial ranges by seeking);
// other sections go through the library's extractors. A body section
// fetched without PEEK sets \Seen (RFC 3501 §6.4.5) unless the mailbox
// is read-only, and the new flags are part of the response.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	defer s.enter()()
	v, err := s.selected()
	if err != nil {
		return err
	}
	idxs, msgs, err := v.present(v.resolve(numSet))
	if err != nil {
		return s.mapStoreError(err, "reading the selected mailbox")
	}
	if len(idxs) == 0 {
		return nil
	}

	setSeen := false
	if !v.readOnly {
		for _, bs := range options.BodySection {
			setSeen = setSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			setSeen = setSeen || !bs.Peek
		}
	}
	seenNow := map[uint32]bool{}
	if setSeen {
		var unseen []uint32
		for _, m := range msgs {
			if !m.HasFlag(mailstore.FlagSeen) {
				unseen = append(unseen, m.UID)
			}
		}
		if len(unseen) > 0 {
			changed, err := v.mb.StoreFlags(unseen, mailstore.FlagsAdd, []string{mailstore.FlagSeen})
			if err != nil {
				return s.mapStoreError(err, "setting \\Seen")
			}
			for _, c := range changed {
				seenNow[c.UID] = true
				for k := range msgs {
					if msgs[k].UID == c.UID {
						msgs[k].Flags = c.Flags
					}
				}
			}
		}
	}

	for k, i := range idxs {
		m := msgs[k]
		err := s.fetchOne(w, uint32(i+1), m, options, seenNow[m.UID])
		if errors.Is(err, mailstore.ErrNoMessage) {
			continue // expunged by another agent meanwhile
		}
		if err != nil {
			return err
		}
		if options.Flags || seenNow[m.UID] {
			v.msgs[i].flags = m.Flags // told now
		}
	}
	return nil
}

// needsContent reports whether a fetch reads the message file.
func needsContent(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

func (s *session) fetchOne(w *imapserver.FetchWriter, seq uint32, m mailstore.Message, o *imap.FetchOptions, flagsChanged bool) error {
	var f *os.File
	if needsContent(o) {
		var err error
		f, err = s.view.mb.Open(m.UID)
		if err != nil {
			if errors.Is(err, mailstore.ErrNoMessage) {
				return err
			}
			return s.mapStoreError(err, "opening a message")
		}
		defer f.Close()
	}
	// Everything that can fail before the response starts is read first,
	// so that a failure never leaves a half-written FETCH response.
	var (
		env *imap.Envelope
		bs  imap.BodyStructure
	)
	if o.Envelope {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h, err := textproto.ReadHeader(bufio.NewReader(f))
		if err != nil {
			h = textproto.Header{}
		}
		env = imapserver.ExtractEnvelope(h)
	}
	if o.BodyStructure != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		bs = imapserver.ExtractBodyStructure(f)
	}
	var hdrEnd, fileSize int64
	if len(o.BodySection) > 0 {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		fileSize = fi.Size()
		if hdrEnd, err = headerEnd(f); err != nil {
			return err
		}
	}

	rw := w.CreateMessage(seq)
	if o.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if o.Flags || flagsChanged {
		rw.WriteFlags(toIMAPFlags(m.Flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	if env != nil {
		rw.WriteEnvelope(env)
	}
	if bs != nil {
		rw.WriteBodyStructure(bs)
	}
	for _, sec := range o.BodySection {
		if err := writeBodySection(rw, f, sec, hdrEnd, fileSize); err != nil {
			rw.Close()
			return err
		}
	}
	for _, sec := range o.BinarySection {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			rw.Close()
			return err
		}
		b := imapserver.ExtractBinarySection(f, sec)
		if err := writeLiteral(rw.WriteBinarySection(sec, int64(len(b))), bytes.NewReader(b), int64(len(b))); err != nil {
			rw.Close()
			return err
		}
	}
	for _, sec := range o.BinarySectionSize {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			rw.Close()
			return err
		}
		rw.WriteBinarySectionSize(sec, imapserver.ExtractBinarySectionSize(f, sec))
	}
	return rw.Close()
}

// writeBodySection writes one BODY[...] item. BODY[], BODY[HEADER] and
// BODY[TEXT] of the message itself are streamed from the file; the rest
// is extracted in memory (messages are bounded by MaxLiteralBytes).
func writeBodySection(rw *imapserver.FetchResponseWriter, f *os.File, sec *imap.FetchItemBodySection, hdrEnd, size int64) error {
	var start, end int64
	whole := len(sec.Part) == 0 && len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0
	switch {
	case whole && sec.Specifier == imap.PartSpecifierNone:
		start, end = 0, size
	case whole && sec.Specifier == imap.PartSpecifierHeader:
		start, end = 0, hdrEnd
	case whole && sec.Specifier == imap.PartSpecifierText:
		start, end = hdrEnd, size
	default:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		b := imapserver.ExtractBodySection(f, sec) // applies the partial range
		return writeLiteral(rw.WriteBodySection(sec, int64(len(b))), bytes.NewReader(b), int64(len(b)))
	}
	if p := sec.Partial; p != nil {
		start = min(start+p.Offset, end)
		end = min(start+p.Size, end)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	return writeLiteral(rw.WriteBodySection(sec, end-start), f, end-start)
}

// writeLiteral copies exactly n bytes into a literal and closes it.
func writeLiteral(lw io.WriteCloser, r io.Reader, n int64) error {
	_, err := io.CopyN(lw, r, n)
	if cerr := lw.Close(); err == nil {
		err = cerr
	}
	return err
}

// headerEnd returns the offset just past the blank line that ends the
// header (the whole file when there is none).
func headerEnd(f *os.File) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	br := bufio.NewReader(f)
	var off int64
	for {
		line, err := br.ReadSlice('\n')
		off += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				off += int64(len(line))
			}
			if err != nil {
				return off, nilIfEOF(err)
			}
			continue
		}
		if err != nil {
			return off, nilIfEOF(err)
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return off, nil
		}
	}
}

func nilIfEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
