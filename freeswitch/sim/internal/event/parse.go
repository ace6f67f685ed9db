package event

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// unhex returns the value of hex digit c (either case) and whether c is one.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// urlDecode undoes URLEncode: %XX (either case) becomes the byte, anything
// else, including a '%' not followed by two hex digits, is kept.
func urlDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, c)
	}
	return string(b)
}

// ParsePlain parses an "event plain" payload (what follows the outer frame's
// blank line) back into an Event, keeping header order and duplicates. Values
// are URL-decoded; "_undef_" (FreeSWITCH's spelling of an empty value) is
// kept as is. A "Content-Length: n" line followed by the blank line
// introduces the body, which must be exactly the n remaining bytes. Lines may
// end in "\r\n".
//
// Because the format cannot tell them apart, a real header called
// Content-Length that happens to be the last header of a body-less event is
// read as a body length (mod_event_socket clients have the same problem).
func ParsePlain(payload []byte) (*Event, error) {
	s := string(payload)
	e := &Event{Headers: make([]Header, 0, strings.Count(s, "\n"))}
	for {
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			return nil, errors.New("event: plain payload does not end with a blank line")
		}
		line := s[:nl]
		s = s[nl+1:]
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			if s != "" {
				return nil, errors.New("event: plain payload has data after its final blank line")
			}
			return e, nil
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, errors.New("event: plain header line without a name and colon: " + strconv.Quote(line))
		}
		name, value := line[:colon], line[colon+1:]
		value = strings.TrimPrefix(value, " ")
		if name == "Content-Length" && (strings.HasPrefix(s, "\n") || strings.HasPrefix(s, "\r\n")) {
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return nil, errors.New("event: plain body Content-Length is not a length: " + strconv.Quote(value))
			}
			s = s[strings.IndexByte(s, '\n')+1:]
			if len(s) != n {
				return nil, errors.New("event: plain body is " + strconv.Itoa(len(s)) + " bytes, Content-Length says " + strconv.Itoa(n))
			}
			e.Body = s
			return e, nil
		}
		e.Headers = append(e.Headers, Header{Name: name, Value: urlDecode(value)})
	}
}

// jsonParser is a small JSON reader for event objects: it keeps member order
// and duplicate keys, which encoding/json cannot, and never validates UTF-8
// (cJSON passes bytes >= 0x80 through raw).
type jsonParser struct {
	s   string
	i   int
	buf []byte // scratch for strings with escapes
}

func (p *jsonParser) errorf(msg string) error {
	return errors.New("event: json at offset " + strconv.Itoa(p.i) + ": " + msg)
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *jsonParser) peek() byte {
	p.skipSpace()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *jsonParser) expect(c byte) error {
	if p.peek() != c {
		return p.errorf("expected " + strconv.QuoteRune(rune(c)))
	}
	p.i++
	return nil
}

// str reads a JSON string starting at its opening quote.
func (p *jsonParser) str() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	start := p.i
	// Fast path: no escapes, the result is a substring of the input.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			p.i++
			return p.s[start : p.i-1], nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.i++
	}
	b := append(p.buf[:0], p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			p.buf = b
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			break
		}
		p.i += 2
		switch e := p.s[p.i-1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf(`bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if strings.HasPrefix(p.s[p.i:], `\u`) {
					save := p.i
					p.i += 2
					if lo, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
							r2 = d
						} else {
							p.i = save
						}
					} else {
						p.i = save
					}
				}
				r = r2
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.errorf("bad escape")
		}
	}
	return "", p.errorf("unterminated string")
}

// hex4 reads the four hex digits of a \u escape.
func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	p.i += 4
	return r, true
}

// scalar reads a member value that is not an array: a string, or a number or
// boolean kept as its literal text (FreeSWITCH only sends strings, but
// hand-written control requests may not).
func (p *jsonParser) scalar() (string, error) {
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == '-' || '0' <= c && c <= '9':
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("+-.0123456789eE", p.s[p.i]) >= 0 {
			p.i++
		}
		lit := p.s[start:p.i]
		if _, err := strconv.ParseFloat(lit, 64); err != nil {
			return "", p.errorf("bad number")
		}
		return lit, nil
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return "true", nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return "false", nil
	}
	return "", p.errorf("expected a string, number or boolean")
}

// value reads a member value; an array of scalars becomes a FreeSWITCH array
// header value "ARRAY::a|:b".
func (p *jsonParser) value() (string, error) {
	if p.peek() != '[' {
		return p.scalar()
	}
	p.i++
	var b strings.Builder
	b.WriteString(arrayPrefix)
	if p.peek() == ']' {
		p.i++
		return "", p.errorf("empty array")
	}
	for n := 0; ; n++ {
		v, err := p.scalar()
		if err != nil {
			return "", err
		}
		if n > 0 {
			b.WriteString(arraySep)
		}
		b.WriteString(v)
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return b.String(), nil
		default:
			return "", p.errorf("expected ',' or ']'")
		}
	}
}

// ParseJSON parses an "event json" payload back into an Event. Members are
// kept in order with duplicate keys; "_body" becomes Body, and the
// "Content-Length" member written next to it (FreeSWITCH derives it from the
// body) is dropped so that encoding the event again reproduces it. An array
// of strings becomes an "ARRAY::a|:b" value, the form FreeSWITCH itself uses
// for array headers. Numbers and booleans are kept as their literal text.
//
// An empty "_body" yields an empty Body, which encodes as no body at all:
// FreeSWITCH would write "Content-Length":"0","_body":"" for an empty but
// present body, which Event cannot express.
func ParseJSON(payload []byte) (*Event, error) {
	p := &jsonParser{s: string(payload)}
	e := &Event{Headers: make([]Header, 0, strings.Count(p.s, `":`))}
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	if p.peek() == '}' {
		p.i++
	} else {
		bodySeen := false // drop a Content-Length that directly follows _body
		for {
			name, err := p.str()
			if err != nil {
				return nil, err
			}
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			value, err := p.value()
			if err != nil {
				return nil, err
			}
			switch {
			case name == "_body":
				e.Body = value
				if k := len(e.Headers) - 1; k >= 0 && e.Headers[k].Name == "Content-Length" {
					e.Headers = e.Headers[:k]
					bodySeen = false
				} else {
					bodySeen = true
				}
			case name == "Content-Length" && bodySeen:
				bodySeen = false
			default:
				e.Headers = append(e.Headers, Header{Name: name, Value: value})
				bodySeen = false
			}
			c := p.peek()
			p.i++
			if c == '}' {
				break
			}
			if c != ',' {
				p.i--
				return nil, p.errorf("expected ',' or '}'")
			}
		}
	}
	if p.peek() != 0 {
		return nil, p.errorf("data after the object")
	}
	return e, nil
}

// parseXML parses an "event xml" payload in the exact layout appendXML (and
// FreeSWITCH) writes. It is not a general XML parser: it is what the golden
// tests need to read capture frames back. Header values are URL-decoded and
// a header repeated for an array comes back as separate headers (which
// encode to the same bytes).
func parseXML(payload []byte) (*Event, error) {
	s := string(payload)
	bad := func(what string) (*Event, error) {
		return nil, errors.New("event: xml payload: " + what)
	}
	const head = "<event>\n  <headers>"
	if !strings.HasPrefix(s, head) {
		return bad("does not start with <event><headers>")
	}
	s = s[len(head):]
	e := &Event{}
	if !strings.HasPrefix(s, "</headers>\n") {
		if !strings.HasPrefix(s, "\n") {
			return bad("no newline after <headers>")
		}
		s = s[1:]
		for !strings.HasPrefix(s, "  </headers>\n") {
			if !strings.HasPrefix(s, "    <") {
				return bad("header element expected")
			}
			s = s[len("    <"):]
			gt := strings.IndexByte(s, '>')
			if gt < 0 {
				return bad("unterminated tag")
			}
			name := s[:gt]
			s = s[gt+1:]
			lt := strings.IndexByte(s, '<')
			if lt < 0 {
				return bad("unterminated header " + name)
			}
			value := s[:lt]
			s = s[lt:]
			closing := "</" + name + ">\n"
			if !strings.HasPrefix(s, closing) {
				return bad("header " + name + " not closed")
			}
			s = s[len(closing):]
			e.Headers = append(e.Headers, Header{Name: name, Value: urlDecode(value)})
		}
		s = s[len("  "):]
	}
	s = s[len("</headers>\n"):]
	if strings.HasPrefix(s, "  <Content-Length>") {
		s = s[len("  <Content-Length>"):]
		end := strings.Index(s, "</Content-Length>\n  <body>")
		if end < 0 {
			return bad("Content-Length not followed by body")
		}
		n, err := strconv.Atoi(s[:end])
		if err != nil {
			return bad("bad Content-Length")
		}
		s = s[end+len("</Content-Length>\n  <body>"):]
		const tail = "</body>\n</event>\n"
		if !strings.HasSuffix(s, tail) {
			return bad("body not closed")
		}
		body := xmlUnescape(s[:len(s)-len(tail)])
		// The closing tag is indented when the body ends in a newline; the
		// body's byte count says whether those two spaces are ours.
		if len(body) == n+2 && strings.HasSuffix(body, "\n  ") {
			body = body[:len(body)-2]
		}
		e.Body = body
		return e, nil
	}
	if s != "</event>\n" {
		return bad("does not end with </event>")
	}
	return e, nil
}

// xmlUnescape decodes the character references switch_xml_ampencode writes
// (&amp; &lt; &gt; &quot; &apos; and numeric &#xH; / &#D;); anything else is
// kept. From a raw "<!" on, the text is taken verbatim, as ampencode wrote
// it.
func xmlUnescape(s string) string {
	i := strings.IndexAny(s, "&<")
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c == '<' && strings.HasPrefix(s[i:], "<!") {
			b = append(b, s[i:]...)
			break
		}
		if c != '&' {
			b = append(b, c)
			i++
			continue
		}
		semi := strings.IndexByte(s[i:], ';')
		if semi < 0 {
			b = append(b, s[i:]...)
			break
		}
		ref := s[i+1 : i+semi]
		switch ref {
		case "amp":
			b = append(b, '&')
		case "lt":
			b = append(b, '<')
		case "gt":
			b = append(b, '>')
		case "quot":
			b = append(b, '"')
		case "apos":
			b = append(b, '\'')
		default:
			var v uint64
			var err error
			switch {
			case strings.HasPrefix(ref, "#x"), strings.HasPrefix(ref, "#X"):
				v, err = strconv.ParseUint(ref[2:], 16, 32)
			case strings.HasPrefix(ref, "#"):
				v, err = strconv.ParseUint(ref[1:], 10, 32)
			default:
				err = strconv.ErrSyntax
			}
			if err != nil {
				b = append(b, c)
				i++
				continue
			}
			b = utf8.AppendRune(b, rune(v))
		}
		i += semi + 1
	}
	return string(b)
}
