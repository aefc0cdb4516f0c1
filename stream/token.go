package stream

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Shard iterators and pagination tokens are opaque to clients: a versioned binary record, an
// HMAC-SHA256 tag (truncated to 16 bytes) under the engine's secret, base64. A client cannot forge a
// position, and a token from another deployment (or a recreated stream) is rejected.

const (
	tokenShardIterator byte = 1
	tokenListShards    byte = 2
	tokenListConsumers byte = 3
	tokenListStreams   byte = 4
	tokenMACLen             = 16
)

var errBadToken = errors.New("stream: malformed or forged token")

// iteratorToken is the decoded content of a shard iterator.
type iteratorToken struct {
	stream  string
	created int64 // stream creation, Unix nanoseconds
	shard   int
	pos     uint64 // storage index of the next record to read
	issued  time.Time
}

func (e *engine) seal(kind byte, body []byte) string {
	buf := make([]byte, 0, 1+len(body)+tokenMACLen)
	buf = append(buf, kind)
	buf = append(buf, body...)
	m := hmac.New(sha256.New, e.secret)
	m.Write(buf)
	buf = m.Sum(buf)[:len(buf)+tokenMACLen]
	return base64.StdEncoding.EncodeToString(buf)
}

func (e *engine) open(kind byte, tok string) ([]byte, error) {
	buf, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(buf) < 1+tokenMACLen || buf[0] != kind {
		return nil, errBadToken
	}
	body := buf[:len(buf)-tokenMACLen]
	m := hmac.New(sha256.New, e.secret)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil)[:tokenMACLen], buf[len(buf)-tokenMACLen:]) {
		return nil, errBadToken
	}
	return body[1:], nil
}

func (e *engine) encodeIterator(t iteratorToken) string {
	b := make([]byte, 0, 32+len(t.stream))
	b = binary.BigEndian.AppendUint64(b, uint64(t.created))
	b = binary.BigEndian.AppendUint32(b, uint32(t.shard))
	b = binary.BigEndian.AppendUint64(b, t.pos)
	b = binary.BigEndian.AppendUint64(b, uint64(t.issued.UnixMilli()))
	b = append(b, t.stream...)
	return e.seal(tokenShardIterator, b)
}

func (e *engine) decodeIterator(s string) (iteratorToken, error) {
	b, err := e.open(tokenShardIterator, s)
	if err != nil || len(b) < 28 {
		return iteratorToken{}, errBadToken
	}
	return iteratorToken{
		created: int64(binary.BigEndian.Uint64(b[0:])),
		shard:   int(binary.BigEndian.Uint32(b[8:])),
		pos:     binary.BigEndian.Uint64(b[12:]),
		issued:  time.UnixMilli(int64(binary.BigEndian.Uint64(b[20:]))),
		stream:  string(b[28:]),
	}, nil
}

// pageToken is the decoded content of a NextToken: where a listing stopped and when it was issued.
type pageToken struct {
	stream  string
	created int64 // stream creation, Unix nanoseconds (0 for ListStreams)
	after   string
	filter  string // serialized shard filter, for ListShards
	max     int
	issued  time.Time
}

func (e *engine) encodePage(kind byte, p pageToken) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(p.created))
	b = binary.BigEndian.AppendUint64(b, uint64(p.issued.UnixMilli()))
	b = binary.BigEndian.AppendUint32(b, uint32(p.max))
	for _, s := range []string{p.stream, p.after, p.filter} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return e.seal(kind, b)
}

func (e *engine) decodePage(kind byte, s string) (pageToken, error) {
	b, err := e.open(kind, s)
	if err != nil || len(b) < 20 {
		return pageToken{}, errBadToken
	}
	p := pageToken{
		created: int64(binary.BigEndian.Uint64(b)),
		issued:  time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:]))),
		max:     int(binary.BigEndian.Uint32(b[16:])),
	}
	b = b[20:]
	for _, dst := range []*string{&p.stream, &p.after, &p.filter} {
		if len(b) < 2 {
			return pageToken{}, errBadToken
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return pageToken{}, errBadToken
		}
		*dst = string(b[2 : 2+n])
		b = b[2+n:]
	}
	return p, nil
}
