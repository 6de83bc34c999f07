package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errTruncated = errors.New("message is truncated")

// reader walks a message to find the offsets of fields to patch in place. It
// only skips and locates; decoding is kmsg's job. The first error sticks and
// every later call is a no-op, so callers check err once at the end.
type reader struct {
	src []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.src)-r.off < n {
		r.fail(errTruncated)
		return false
	}
	return true
}

func (r *reader) skip(n int) {
	if r.need(n) {
		r.off += n
	}
}

func (r *reader) int16() int16 {
	if !r.need(2) {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.src[r.off:]))
	r.off += 2
	return v
}

func (r *reader) int32() int32 {
	if !r.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.src[r.off:]))
	r.off += 4
	return v
}

func (r *reader) uvarint() uint32 {
	if r.err != nil {
		return 0
	}
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		if !r.need(1) {
			return 0
		}
		c := r.src[r.off]
		r.off++
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.fail(errors.New("uvarint overflows 32 bits"))
	return 0
}

// length reads an array, string or bytes length; -1 means null.
func (r *reader) length(flexible bool, wide bool) int {
	switch {
	case flexible:
		return int(r.uvarint()) - 1
	case wide:
		return int(r.int32())
	default:
		return int(r.int16())
	}
}

func (r *reader) arrayLen(flexible bool) int {
	n := r.length(flexible, true)
	if n < -1 {
		r.fail(fmt.Errorf("negative array length %d", n))
	}
	// Every element takes at least one byte: a length past the end is a lie
	// that must not size anything.
	if n > len(r.src)-r.off {
		r.fail(errTruncated)
		return 0
	}
	return n
}

func (r *reader) skipString(flexible bool) {
	if n := r.length(flexible, false); n > 0 {
		r.skip(n)
	}
}

// bytes skips a (nullable) byte field and returns its span in src.
func (r *reader) bytes(flexible bool) (start, n int) {
	n = r.length(flexible, true)
	start = r.off
	if n > 0 {
		r.skip(n)
	}
	return start, max(n, 0)
}

// tags calls fn with each tagged field's tag and value span.
func (r *reader) tags(fn func(tag uint32, start, n int)) {
	for count := r.uvarint(); count > 0 && r.err == nil; count-- {
		tag := r.uvarint()
		n := int(r.uvarint())
		start := r.off
		r.skip(n)
		if r.err == nil && fn != nil {
			fn(tag, start, n)
		}
	}
}

func (r *reader) skipTags() { r.tags(nil) }

func putInt32(b []byte, v int32) { binary.BigEndian.PutUint32(b, uint32(v)) }
func getInt32(b []byte) int32    { return int32(binary.BigEndian.Uint32(b)) }
