package wire

import (
	"encoding/binary"
	"hash/crc32"
)

// The messages that carry records, Produce requests and Fetch responses, are
// the whole data path. They are walked, not decoded: the topic ids and leader
// epochs in them are fixed-size fields, patched where they lie, and record
// batches are never copied. Only a response that also carries broker
// addresses (KIP-951 node endpoints, sent after leader changes) falls back to
// a full kmsg re-encode, since a rewritten host changes its length.

// patchProduceRequest maps the client's topic ids to the cluster's (v13+)
// and the producers of batches that crossed a switch.
func patchProduceRequest(body []byte, version int16, t Translator) error {
	producers := t.MapsProducers()
	if version < 13 && !producers {
		return nil
	}
	flexible := version >= 9
	r := reader{src: body}
	if version >= 3 {
		r.skipString(flexible) // transactional id
	}
	r.skip(2 + 4) // acks, timeout
	for topics := r.arrayLen(flexible); topics > 0 && r.err == nil; topics-- {
		// Batches are mapped under the client's topic name or id (not
		// its length prefix, which differs between versions), so the id
		// is patched after its partitions.
		var topic []byte
		if version >= 13 {
			if r.need(16) {
				topic = body[r.off : r.off+16]
				r.off += 16
			}
		} else if n := r.length(flexible, false); n > 0 && r.need(n) {
			topic = body[r.off : r.off+n]
			r.off += n
		}
		for parts := r.arrayLen(flexible); parts > 0 && r.err == nil; parts-- {
			partition := r.int32()
			at, n := r.bytes(flexible)
			if producers && r.err == nil {
				mapProducers(body[at:at+n], topic, partition, t)
			}
			if flexible {
				r.skipTags()
			}
		}
		if version >= 13 && r.err == nil {
			patchTopicID(topic, t, toUpstream)
		}
		if flexible {
			r.skipTags()
		}
	}
	return r.err
}

// Offsets in a v2 record batch header.
const (
	batchLengthAt   = 8
	batchEpochAt    = 12
	batchMagicAt    = 16
	batchCRCAt      = 17
	batchAttrsAt    = 21 // the CRC covers from here to the end of the batch
	batchProducerAt = 43 // producer id, epoch, base sequence
	batchHeaderSize = 61

	transactionalBit = 0x10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// mapProducers rewrites the producer id, epoch and base sequence of each
// non-transactional batch whose producer the translator maps, and reseals
// the batch with a new CRC. Transactional batches are left alone: an open
// transaction cannot move between clusters and must abort.
func mapProducers(records, topic []byte, partition int32, t Translator) {
	for pos := 0; pos+batchHeaderSize <= len(records); {
		end := pos + 12 + int(getInt32(records[pos+batchLengthAt:]))
		if end < pos+batchHeaderSize || end > len(records) {
			return
		}
		b := records[pos:end]
		pos = end
		if b[batchMagicAt] != 2 || binary.BigEndian.Uint16(b[batchAttrsAt:])&transactionalBit != 0 {
			continue
		}
		p := b[batchProducerAt:]
		cur := BatchProducer{
			ID:       int64(binary.BigEndian.Uint64(p)),
			Epoch:    int16(binary.BigEndian.Uint16(p[8:])),
			Sequence: int32(binary.BigEndian.Uint32(p[10:])),
		}
		if cur.ID < 0 {
			continue
		}
		m, ok := t.Producer(topic, partition, cur)
		if !ok {
			continue
		}
		binary.BigEndian.PutUint64(p, uint64(m.ID))
		binary.BigEndian.PutUint16(p[8:], uint16(m.Epoch))
		binary.BigEndian.PutUint32(p[10:], uint32(m.Sequence))
		binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttrsAt:], castagnoli))
	}
}

// patchProduceResponse maps topic ids (v13+) and KIP-951 leader epochs, and
// reports whether the response carries node endpoints and so needs a full
// rewrite.
func patchProduceResponse(body []byte, version int16, t Translator) (full bool, err error) {
	flexible := version >= 9
	base := t.EpochBase()
	r := reader{src: body}
	for topics := r.arrayLen(flexible); topics > 0 && r.err == nil; topics-- {
		r.responseTopic(body, version >= 13, flexible, t)
		for parts := r.arrayLen(flexible); parts > 0 && r.err == nil; parts-- {
			r.skip(4 + 2 + 8) // partition, error, base offset
			if version >= 2 {
				r.skip(8)
			}
			if version >= 5 {
				r.skip(8)
			}
			if version >= 8 {
				for errs := r.arrayLen(flexible); errs > 0 && r.err == nil; errs-- {
					r.skip(4)
					r.skipString(flexible)
					if flexible {
						r.skipTags()
					}
				}
				r.skipString(flexible)
			}
			if flexible {
				r.tags(func(tag uint32, start, n int) {
					if tag == 0 && n >= 8 { // current leader: id, epoch
						patchEpoch(body[start+4:start+8], base)
					}
				})
			}
		}
		if flexible {
			r.skipTags()
		}
	}
	if version >= 1 {
		r.skip(4)
	}
	if flexible {
		r.tags(func(tag uint32, _, _ int) { full = full || tag == 0 })
	}
	return full, r.err
}

// responseTopic maps a response's topic id to the client's (Produce and
// Fetch v13+), or skips its topic name.
func (r *reader) responseTopic(body []byte, byID, flexible bool, t Translator) {
	if !byID {
		r.skipString(flexible)
		return
	}
	if r.need(16) {
		patchTopicID(body[r.off:r.off+16], t, toClient)
		r.off += 16
	}
}

// patchFetchResponse maps topic ids (v13+), leader epochs in KIP-951 hints,
// diverging epochs and record batch headers, and reports whether the
// response carries node endpoints and so needs a full rewrite.
func patchFetchResponse(body []byte, version int16, t Translator) (full bool, err error) {
	flexible := version >= 12
	base := t.EpochBase()
	r := reader{src: body}
	if version >= 1 {
		r.skip(4)
	}
	if version >= 7 {
		r.skip(2 + 4)
	}
	for topics := r.arrayLen(flexible); topics > 0 && r.err == nil; topics-- {
		r.responseTopic(body, version >= 13, flexible, t)
		for parts := r.arrayLen(flexible); parts > 0 && r.err == nil; parts-- {
			r.skip(4 + 2 + 8) // partition, error, high watermark
			if version >= 4 {
				r.skip(8)
			}
			if version >= 5 {
				r.skip(8)
			}
			if version >= 4 {
				for aborted := r.arrayLen(flexible); aborted > 0 && r.err == nil; aborted-- {
					r.skip(16)
					if flexible {
						r.skipTags()
					}
				}
			}
			if version >= 11 {
				r.skip(4)
			}
			start, n := r.bytes(flexible)
			if r.err == nil && base != 0 {
				patchBatchEpochs(body[start:start+n], base)
			}
			if flexible {
				r.tags(func(tag uint32, start, n int) {
					switch {
					case tag == 0 && n >= 4: // diverging epoch: epoch, end offset
						patchEpoch(body[start:start+4], base)
					case tag == 1 && n >= 8: // current leader: id, epoch
						patchEpoch(body[start+4:start+8], base)
					}
				})
			}
		}
		if flexible {
			r.skipTags()
		}
	}
	if flexible {
		r.tags(func(tag uint32, _, _ int) { full = full || tag == 0 })
	}
	return full, r.err
}

// patchBatchEpochs shifts the partition leader epoch in the header of every
// v2 record batch. That field sits outside the batch CRC (the leader stamps
// it after the producer sealed the batch), so patching it keeps the batch
// valid. A partial batch at the end of a fetch is patched as far as its
// header goes; clients discard it anyway.
func patchBatchEpochs(records []byte, base int32) {
	if base == 0 {
		return
	}
	for pos := 0; pos+batchMagicAt+1 <= len(records); {
		length := getInt32(records[pos+batchLengthAt:])
		if records[pos+batchMagicAt] == 2 {
			patchEpoch(records[pos+batchEpochAt:pos+batchEpochAt+4], base)
		}
		if length <= 0 {
			return
		}
		pos += 12 + int(length)
	}
}

func patchEpoch(b []byte, base int32) {
	if base != 0 {
		putInt32(b, ClientEpoch(getInt32(b), base))
	}
}

func patchTopicID(b []byte, t Translator, dir direction) {
	var id [16]byte
	copy(id[:], b)
	if id == ([16]byte{}) {
		return
	}
	if dir == toClient {
		id = t.ClientTopicID(id)
	} else {
		id = t.UpstreamTopicID(id)
	}
	copy(b, id[:])
}
