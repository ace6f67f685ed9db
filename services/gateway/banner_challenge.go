package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/cache"
)

// Defaults of the banner's proof of work.
const (
	// DefaultBannerPowBits is the leading zero bits a solution needs: about
	// 65,000 SHA-256 hashes, a fraction of a second in a browser.
	DefaultBannerPowBits = 16
	bannerChallengeTTL   = 5 * time.Minute
)

// Challenge is what a visitor's widget must solve before its request is
// admitted (JSON: {"challenge":"...","bits":16,"expiresAt":"<RFC 3339>"}).
type Challenge struct {
	// Challenge is opaque to the widget.
	Challenge string
	// Bits is the proof of work's difficulty: SHA-256(challenge + ":" +
	// nonce) must start with this many zero bits.
	Bits int
	// ExpiresAt is when the challenge stops being accepted.
	ExpiresAt time.Time
}

// MarshalJSON writes ExpiresAt in RFC 3339 (whole seconds, UTC).
func (c Challenge) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Challenge string `json:"challenge"`
		Bits      int    `json:"bits"`
		ExpiresAt string `json:"expiresAt"`
	}{c.Challenge, c.Bits, c.ExpiresAt.UTC().Format(time.RFC3339)})
}

// ErrChallengeFailed is the error of a challenge that was not solved: a
// missing, malformed, forged, expired, wrong or already used one. Other
// Verify errors mean the verifier could not decide (its store is down).
var ErrChallengeFailed = errors.New("challenge not solved")

// Challenger decides whether a visitor has paid for a request. The banner
// asks for one when a campaign's challenge mode says so (always, or under
// pressure): Issue hands the visitor a challenge, Verify checks the
// visitor's answer, and must accept each answer only once.
//
// ProofOfWork is the implementation used. A captcha verifier fits the same
// interface: Issue returns the site key in Challenge.Challenge (Bits 0),
// the widget renders the captcha and sends its response token as
// "challenge" (nonce unused), and Verify asks the captcha provider to check
// it for the campaign's origin, mapping a refusal to ErrChallengeFailed and
// an unreachable provider to any other error (the request is then refused
// with 503, not let through).
type Challenger interface {
	Issue(ctx context.Context, campaignID string) (Challenge, error)
	Verify(ctx context.Context, campaignID, challenge, nonce string) error
}

// ProofOfWork is a stateless Challenger: a challenge is
// base64url(payload) "." base64url(HMAC-SHA256(key, payload)), the payload
// binding a version, the difficulty, the expiry, 16 random bytes and the
// campaign id; it is solved by a nonce such that SHA-256(challenge ":"
// nonce) has at least Bits leading zero bits. Issuing costs one HMAC and
// touches nothing; a solved challenge is remembered in Redis until it
// expires so it is accepted once.
type ProofOfWork struct {
	key  []byte
	bits int
	ttl  time.Duration
	rdb  *cache.Client
	now  func() time.Time
}

// NewProofOfWork returns a ProofOfWork keyed by secret (derived, so the
// secret can be shared with other uses) requiring bits leading zero bits.
// rdb remembers used challenges; nil makes Verify fail with a non-challenge
// error (the banner answers 503).
func NewProofOfWork(secret []byte, bits int, rdb *cache.Client) *ProofOfWork {
	return &ProofOfWork{key: deriveKey(secret, "ringback banner challenge v1"), bits: bits, ttl: bannerChallengeTTL, rdb: rdb, now: time.Now}
}

const powVersion = 1

// powHeader is version, bits, expiry (unix seconds) and the random bytes.
const powHeader = 1 + 1 + 8 + 16

func (p *ProofOfWork) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write(payload)
	return m.Sum(nil)
}

// Issue implements Challenger.
func (p *ProofOfWork) Issue(_ context.Context, campaignID string) (Challenge, error) {
	exp := p.now().Add(p.ttl).Truncate(time.Second)
	payload := make([]byte, powHeader, powHeader+len(campaignID))
	payload[0], payload[1] = powVersion, byte(p.bits)
	binary.BigEndian.PutUint64(payload[2:10], uint64(exp.Unix()))
	_, _ = rand.Read(payload[10:26])
	payload = append(payload, campaignID...)
	ch := b64.EncodeToString(payload) + "." + b64.EncodeToString(p.mac(payload))
	return Challenge{Challenge: ch, Bits: p.bits, ExpiresAt: exp}, nil
}

// Verify implements Challenger.
func (p *ProofOfWork) Verify(ctx context.Context, campaignID, challenge, nonce string) error {
	if challenge == "" || nonce == "" {
		return fmt.Errorf("%w: send the challenge with the nonce that solves it", ErrChallengeFailed)
	}
	if len(challenge) > 512 || len(nonce) > 64 {
		return fmt.Errorf("%w: challenge or nonce too long", ErrChallengeFailed)
	}
	p64, m64, ok := strings.Cut(challenge, ".")
	if !ok {
		return fmt.Errorf("%w: malformed challenge", ErrChallengeFailed)
	}
	payload, err1 := b64.DecodeString(p64)
	mac, err2 := b64.DecodeString(m64)
	if err1 != nil || err2 != nil || len(payload) < powHeader || payload[0] != powVersion || !hmac.Equal(mac, p.mac(payload)) {
		return fmt.Errorf("%w: not a challenge of this service", ErrChallengeFailed)
	}
	need := int(payload[1])
	exp := time.Unix(int64(binary.BigEndian.Uint64(payload[2:10])), 0)
	switch {
	case string(payload[powHeader:]) != campaignID:
		return fmt.Errorf("%w: the challenge is another campaign's", ErrChallengeFailed)
	case !p.now().Before(exp):
		return fmt.Errorf("%w: the challenge expired", ErrChallengeFailed)
	case need < p.bits:
		// Issued before the difficulty was raised.
		return fmt.Errorf("%w: the challenge is too easy now", ErrChallengeFailed)
	case leadingZeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) < need:
		return fmt.Errorf("%w: the nonce does not solve the challenge", ErrChallengeFailed)
	}
	if p.rdb == nil {
		return errors.New("verify challenge: no Redis")
	}
	// Remembered under its random bytes until it expires (plus a second for
	// the clocks of other replicas).
	used, err := p.rdb.Redis().SetNX(ctx, p.rdb.Key("banner", "pow", b64.EncodeToString(payload[10:26])), 1,
		exp.Sub(p.now())+time.Second).Result()
	if err != nil {
		return fmt.Errorf("verify challenge: %w", err)
	}
	if !used {
		return fmt.Errorf("%w: the challenge was already used", ErrChallengeFailed)
	}
	return nil
}

// leadingZeroBits counts the zero bits at the start of h.
func leadingZeroBits(h [sha256.Size]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}
