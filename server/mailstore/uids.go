package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// UID assignment (RFC 3501 §2.3.1.1): choosing a UIDVALIDITY, the UID
// space, and mailsetup.uidvalidity, whose floor keeps a rebuild from
// handing out a UID twice.

// newUIDValidity returns a UIDVALIDITY larger than above and than every
// value this Store handed out, based on the clock so that values also grow
// across restarts (RFC 3501 §2.3.1.1).
func (s *Store) newUIDValidity(above uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := uint32(s.now().Unix())
	v = max(v, s.lastUV+1, above+1, 1)
	s.lastUV = v
	return v
}

// checkUIDSpace refuses to hand out UIDs past 2^32-2 (RFC 3501 §2.3.1.1:
// UIDs are 32-bit); n is how many are needed.
func (st *mbox) checkUIDSpace(n int) error {
	if uint64(st.uidnext)+uint64(n) >= 1<<32-1 {
		return fmt.Errorf("mailbox %s: UIDs exhausted; recreate the mailbox", st.logName)
	}
	return nil
}

// raiseFloor records, before UIDs up to maxUID disappear, that all UIDs
// below uidnext are used, so that a rebuild cannot hand them out again.
func (st *mbox) raiseFloor(maxUID uint32) error {
	if maxUID < st.floor {
		return nil
	}
	if err := st.writeUVFile(st.uidnext); err != nil {
		return err
	}
	st.floor = st.uidnext
	return nil
}

// sortedUIDs returns the UIDs sorted and without duplicates.
func sortedUIDs(uids []uint32) []uint32 {
	u := slices.Clone(uids)
	slices.Sort(u)
	return slices.Compact(u)
}

// uvFile is the content of mailsetup.uidvalidity.
type uvFile struct {
	uv, floor uint32
}

func encodeUVFile(uv, floor uint32) []byte {
	return fmt.Appendf(nil, "%d %d\n", uv, floor)
}

func readUVFile(path string) (uvFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return uvFile{}, err
	}
	a, b, ok := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
	uv, err1 := strconv.ParseUint(a, 10, 32)
	floor, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || uv == 0 {
		return uvFile{}, fmt.Errorf("bad uidvalidity file %q", data)
	}
	return uvFile{uint32(uv), uint32(floor)}, nil
}

func (st *mbox) writeUVFile(floor uint32) error {
	if err := st.s.writeFileAtomic(filepath.Join(st.dir, uidvalidityFile), encodeUVFile(st.uv, floor)); err != nil {
		return fmt.Errorf("mailbox %s: writing uidvalidity file: %w", st.logName, err)
	}
	return nil
}
