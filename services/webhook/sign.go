package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// secretPrefix starts every signing secret, as the Standard Webhooks
// specification recommends.
const secretPrefix = "whsec_"

// Bounds of a signing secret's key, in bytes.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// NewSecret returns a new random signing secret.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// parseSecret returns the HMAC key of a "whsec_<base64>" secret.
func parseSecret(s string) ([]byte, bool) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, false
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, false
	}
	return key, true
}

// Sign returns the webhook-signature header value of a request: "v1," and
// the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" (Standard Webhooks).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
