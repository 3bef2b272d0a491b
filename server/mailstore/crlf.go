package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Line endings: messages are stored with CRLF, as POP3 and IMAP send
// them, so that a stored size is the size a client sees. Deliveries are
// converted while streamed; files of other agents when picked up.

// errLimit: copyCRLF went over its limit.
var errLimit = errors.New("size limit exceeded")

// crlfBuf is copyCRLF's buffers, reused: an import streams hundreds of
// thousands of messages, and 96 KiB of fresh buffers each kept the
// garbage collector busy (about a tenth of an import's CPU profile).
type crlfBuf struct {
	w   *bufio.Writer
	buf []byte
}

var crlfBuffers = sync.Pool{New: func() any {
	return &crlfBuf{w: bufio.NewWriterSize(nil, 64<<10), buf: make([]byte, 32<<10)}
}}

// copyCRLF streams r to w, writing every LF not preceded by CR as CRLF,
// and returns the bytes written. limit >= 0: errLimit as soon as more than
// limit bytes would be written.
func copyCRLF(w io.Writer, r io.Reader, limit int64) (int64, error) {
	cb := crlfBuffers.Get().(*crlfBuf)
	defer func() {
		cb.w.Reset(nil) // hold no file
		crlfBuffers.Put(cb)
	}()
	bw, buf := cb.w, cb.buf
	bw.Reset(w)
	var n int64
	prevCR := false
	for {
		k, rerr := r.Read(buf)
		chunk := buf[:k]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				if _, err := bw.Write(chunk); err != nil {
					return n, err
				}
				n += int64(len(chunk))
				prevCR = chunk[len(chunk)-1] == '\r'
				break
			}
			cr := prevCR
			if i > 0 {
				cr = chunk[i-1] == '\r'
			}
			var err error
			if cr {
				_, err = bw.Write(chunk[:i+1])
				n += int64(i + 1)
			} else {
				if _, err = bw.Write(chunk[:i]); err == nil {
					_, err = bw.WriteString("\r\n")
				}
				n += int64(i + 2)
			}
			if err != nil {
				return n, err
			}
			prevCR = false
			chunk = chunk[i+1:]
		}
		if limit >= 0 && n > limit {
			return n, errLimit
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("reading message: %w", rerr)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, err
	}
	return n, nil
}

// normalizeCRLF rewrites a file whose lines end in a bare LF with CRLF
// line endings, keeping its modification time (the internal date), and
// returns the new size; -1 when the file needed no change. The copy is
// written to tmp/, synced and renamed over the original, so a crash
// leaves one of the two whole.
func (st *mbox) normalizeCRLF(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1, err
	}
	bare := false
	for i := range data {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			bare = true
			break
		}
	}
	if !bare {
		return -1, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return -1, err
	}
	// Through tmp/ (Maildir: never a partial file in new/ or cur/).
	tmp := filepath.Join(st.dir, "tmp", st.s.newUnique(st.s.now())+".crlf")
	var size int64
	err = st.s.replaceFile(tmp, path, fi.ModTime(), func(w io.Writer) error {
		var err error
		size, err = copyCRLF(w, bytes.NewReader(data), -1)
		return err
	})
	if err != nil {
		return -1, err
	}
	return size, nil
}
