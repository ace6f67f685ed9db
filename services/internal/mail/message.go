package mail

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// maxLine is where header lines are folded (RFC 5322 section 2.1.1: SHOULD
// be no more than 78 characters).
const maxLine = 78

// compose checks m and returns the envelope recipients and the RFC 5322
// message (CRLF line endings, quoted-printable UTF-8 body).
func (s *Sender) compose(m Message, now time.Time) (rcpts []string, data []byte, err error) {
	if len(m.To) == 0 {
		return nil, nil, fmt.Errorf("%w: no recipient", ErrInvalidMessage)
	}
	// A line break would let the caller's text end the header and start
	// another (Bcc:, or a second message).
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, nil, fmt.Errorf("%w: subject contains a line break", ErrInvalidMessage)
	}
	to := make([]string, 0, len(m.To))
	for _, a := range m.To {
		if strings.ContainsAny(a, "\r\n") {
			return nil, nil, fmt.Errorf("%w: recipient %q contains a line break", ErrInvalidMessage, a)
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: recipient %q: %v", ErrInvalidMessage, a, err)
		}
		rcpts = append(rcpts, addr.Address)
		to = append(to, addr.String())
	}

	var b bytes.Buffer
	writeHeader(&b, "From", s.from.String())
	writeHeader(&b, "To", strings.Join(to, ", "))
	// Encode leaves ASCII subjects as they are.
	writeHeader(&b, "Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	writeHeader(&b, "Date", now.Format(time.RFC1123Z))
	writeHeader(&b, "Message-ID", "<"+rand.Text()+"@"+s.domain+">")
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
	writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	// The charset header promises UTF-8; quoted-printable writes every line
	// break as CRLF and keeps lines under 76 characters.
	text := strings.ToValidUTF8(m.Text, "\uFFFD")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return rcpts, b.Bytes(), nil
}

// writeHeader writes "name: value" folded at spaces so that lines stay
// within maxLine where the value allows; a longer word is kept whole. The
// fold may come right after the colon: an encoded word is up to 75
// characters, and RFC 2047 limits its line to 76.
func writeHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	n := len(name) + 1
	for _, w := range strings.Split(value, " ") {
		if n > 0 && w != "" && n+1+len(w) > maxLine {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		n += 1 + len(w)
	}
	b.WriteString("\r\n")
}
