package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// bannerTokenTTL is how long a visitor's status token works.
const bannerTokenTTL = 24 * time.Hour

// b64 is the encoding of tokens and challenges: URL-safe, unpadded, so
// they go in query strings as they are.
var b64 = base64.RawURLEncoding

var errBadToken = errors.New("invalid or expired status token")

// deriveKey derives a key for one purpose from the banner secret, so a
// status token can never be passed off as a challenge or the reverse.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// statusTokens are the visitor's stateless credentials for one call's
// status (GET /v1/calls/{id}?token= and its event stream): HMAC-SHA256 over
// the call id, the campaign id and an expiry. Nothing is stored, so any
// gateway replica with the same secret accepts them.
//
// Token: base64url(campaign id "." expiry in base 36 unix seconds) "."
// base64url(first 16 bytes of the MAC). The call id is not carried: it is
// in the URL the token is used with, and the MAC covers it.
type statusTokens struct {
	key []byte
	ttl time.Duration
}

func newStatusTokens(secret []byte) statusTokens {
	return statusTokens{key: deriveKey(secret, "ringback banner status token v1"), ttl: bannerTokenTTL}
}

func (t statusTokens) mac(callID, payload string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(callID))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)[:16]
}

// issue returns a token for callID of campaignID, valid for t.ttl from now.
func (t statusTokens) issue(callID, campaignID string, now time.Time) string {
	payload := campaignID + "." + strconv.FormatInt(now.Add(t.ttl).Unix(), 36)
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(t.mac(callID, payload))
}

// verify checks a token for callID and returns the campaign it binds.
func (t statusTokens) verify(callID, token string, now time.Time) (campaignID string, err error) {
	if len(token) > 256 {
		return "", errBadToken
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return "", errBadToken
	}
	payload, err1 := b64.DecodeString(p64)
	mac, err2 := b64.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, t.mac(callID, string(payload))) {
		return "", errBadToken
	}
	i := strings.LastIndexByte(string(payload), '.')
	if i <= 0 {
		return "", errBadToken
	}
	exp, err := strconv.ParseInt(string(payload[i+1:]), 36, 64)
	if err != nil || now.Unix() >= exp {
		return "", errBadToken
	}
	return string(payload[:i]), nil
}
