// Package ids makes the identifiers Ringback chooses itself: time-ordered
// ids for records (calls, tariffs) and random ones for FreeSWITCH legs.
package ids

import (
	"crypto/rand"
	"time"
)

// NewV7 returns a UUIDv7: 48 bits of milliseconds then random bits, so ids
// sort by creation and never collide across replicas.
func NewV7() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return format(b)
}

// NewV4 returns a random UUID (a leg's origination_uuid).
func NewV4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return format(b)
}

func format(b [16]byte) string {
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[v>>4], hexd[v&0xf])
	}
	return string(out)
}
