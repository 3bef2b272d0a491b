package pop3d

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// maildrop is the server's compact view of a maildrop: per message a
// 4-byte size, a 4-byte offset into one shared UIDL byte slice, the UIDL
// bytes themselves and two bits (deleted, retrieved). Sizes of 4 GiB and
// more go to a map that is nil for every real maildrop.
type maildrop struct {
	sizes     []uint32
	bigSizes  map[int]int64 // sizes >= math.MaxUint32, stored as MaxUint32 in sizes
	uidlEnd   []uint32      // UIDL of message i is uidls[uidlEnd[i-1]:uidlEnd[i]]
	uidls     string        // all UIDLs, concatenated
	deleted   bitset
	retrieved bitset

	total        int64 // octets of all messages at login
	liveCount    int   // messages not marked deleted
	liveOctets   int64 // their octets
	deletedCount int
}

// maxUIDL is the longest unique-id, RFC 1939 §7.
const maxUIDL = 70

// newMaildrop copies what the server needs from msgs.
func newMaildrop(msgs []MessageInfo) (*maildrop, error) {
	if len(msgs) >= math.MaxInt32 {
		return nil, fmt.Errorf("maildrop has %d messages, too many", len(msgs))
	}
	n := 0
	for i, m := range msgs {
		if err := checkUIDL(m.UIDL); err != nil {
			return nil, fmt.Errorf("message %d: %w", i+1, err)
		}
		if m.Size < 0 {
			return nil, fmt.Errorf("message %d: negative size %d", i+1, m.Size)
		}
		n += len(m.UIDL)
	}
	if int64(n) > math.MaxUint32 {
		return nil, fmt.Errorf("maildrop UIDLs take %d bytes, too many", n)
	}
	d := &maildrop{
		sizes:     make([]uint32, len(msgs)),
		uidlEnd:   make([]uint32, len(msgs)),
		deleted:   newBitset(len(msgs)),
		retrieved: newBitset(len(msgs)),
		liveCount: len(msgs),
	}
	var uidls strings.Builder
	uidls.Grow(n) // one allocation, not zeroed first
	for i, m := range msgs {
		if m.Size >= math.MaxUint32 {
			if d.bigSizes == nil {
				d.bigSizes = make(map[int]int64)
			}
			d.bigSizes[i] = m.Size
			d.sizes[i] = math.MaxUint32
		} else {
			d.sizes[i] = uint32(m.Size)
		}
		uidls.WriteString(m.UIDL)
		d.uidlEnd[i] = uint32(uidls.Len())
		d.total += m.Size
	}
	d.uidls = uidls.String()
	d.liveOctets = d.total
	return d, nil
}

// checkUIDL enforces RFC 1939 §7: 1 to 70 characters in 0x21-0x7E.
func checkUIDL(u string) error {
	if len(u) == 0 || len(u) > maxUIDL {
		return fmt.Errorf("UIDL length %d not in 1..%d", len(u), maxUIDL)
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return fmt.Errorf("UIDL has byte 0x%02x outside 0x21-0x7E", u[i])
		}
	}
	return nil
}

func (d *maildrop) count() int { return len(d.sizes) }

func (d *maildrop) size(i int) int64 {
	if s := d.sizes[i]; s != math.MaxUint32 {
		return int64(s)
	}
	if s, ok := d.bigSizes[i]; ok {
		return s
	}
	return math.MaxUint32
}

func (d *maildrop) uidl(i int) string {
	start := uint32(0)
	if i > 0 {
		start = d.uidlEnd[i-1]
	}
	return d.uidls[start:d.uidlEnd[i]]
}

func (d *maildrop) markDeleted(i int) {
	if d.deleted.get(i) {
		return
	}
	d.deleted.set(i)
	d.deletedCount++
	d.liveCount--
	d.liveOctets -= d.size(i)
}

func (d *maildrop) reset() {
	d.deleted.clear()
	d.deletedCount = 0
	d.liveCount = len(d.sizes)
	d.liveOctets = d.total
}

// deletedList returns the 0-based numbers of the messages marked deleted.
func (d *maildrop) deletedList() []int { return d.deleted.list(d.deletedCount) }

// footprint returns the bytes the maildrop holds, for documentation and
// tests.
func (d *maildrop) footprint() int {
	return cap(d.sizes)*4 + cap(d.uidlEnd)*4 + len(d.uidls) + cap(d.deleted)*8 + cap(d.retrieved)*8 + len(d.bigSizes)*16
}

// bitset is a fixed-size set of small non-negative integers.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) get(i int) bool { return b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b bitset) set(i int)      { b[i/64] |= 1 << (uint(i) % 64) }
func (b bitset) clear()         { clear(b) }

// list returns the members in ascending order; n is a capacity hint.
func (b bitset) list(n int) []int {
	out := make([]int, 0, n)
	for w, word := range b {
		for word != 0 {
			i := bits.TrailingZeros64(word)
			out = append(out, w*64+i)
			word &^= 1 << uint(i)
		}
	}
	return out
}
