package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// API keys look like rb_<prefix>_<random>: prefix is 8 characters (40
// random bits) shown to users to tell keys apart, random is 32 characters
// (160 random bits). Lower-case base32 keeps them safe unescaped in URLs,
// form posts and shell commands (the clickToDial password travels in a
// query string).
const (
	keyScheme      = "rb_"
	keyPrefixLen   = 8
	keyRandomBytes = 20 // 32 base32 characters
	// maxKeyLen bounds a secret given to EnsureAccount (and any token we
	// bother hashing).
	maxKeyLen = 256
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newKey returns a new secret and its display prefix.
func newKey() (secret, prefix string) {
	var p [5]byte // 8 base32 characters
	var r [keyRandomBytes]byte
	_, _ = rand.Read(p[:]) // crypto/rand never fails (it panics instead)
	_, _ = rand.Read(r[:])
	prefix = keyEncoding.EncodeToString(p[:])
	return keyScheme + prefix + "_" + keyEncoding.EncodeToString(r[:]), prefix
}

// keyPrefix returns the part of secret shown to users. For keys in our
// format it is the 8-character prefix; for a key chosen by hand
// (RINGBACK_DEV_API_KEY) at most half of it, so a short key is not shown
// whole.
func keyPrefix(secret string) string {
	if p, ok := strings.CutPrefix(secret, keyScheme); ok && len(p) > keyPrefixLen && p[keyPrefixLen] == '_' {
		return p[:keyPrefixLen]
	}
	return secret[:min(keyPrefixLen, len(secret)/2)]
}

// hashKey is what is stored and looked up: SHA-256 of the secret. A slow
// password hash (bcrypt, argon2) defends low-entropy human passwords against
// offline guessing; our keys carry 200 random bits, which no amount of
// guessing covers, and a fast hash lets every request authenticate with one
// indexed lookup instead of burning ~50 ms of CPU. (A hand-chosen development
// key is only as strong as its author made it.)
func hashKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// validKeyText reports whether s can be an API key: 1-256 visible ASCII
// characters (what fits in an Authorization header and a query string).
func validKeyText(s string) bool {
	if s == "" || len(s) > maxKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
