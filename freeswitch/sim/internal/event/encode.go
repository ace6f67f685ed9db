package event

import (
	"strconv"
	"strings"
)

// urlUnsafeSet is SWITCH_URL_UNSAFE from switch_utils.h (FreeSWITCH 1.10.12).
const urlUnsafeSet = "\r\n #%&+:;<=>?@[\\]^`{|}\""

// arrayPrefix marks a FreeSWITCH array header value (switch_event_add_array).
const arrayPrefix = "ARRAY::"

// arraySep separates the items of an array header value.
const arraySep = "|:"

const hexUpper = "0123456789ABCDEF"

// urlUnsafe[c] is true for every byte switch_url_encode turns into %XX
// (NUL included: it ends the C string).
var urlUnsafe = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c < ' ' || c > '~' || strings.IndexByte(urlUnsafeSet, byte(c)) >= 0
	}
	return t
}()

// jsonEscape[c] is 0 for bytes cJSON copies verbatim, otherwise the letter
// written after the backslash ('u' for the \u00xx form). NUL is marked too:
// it ends the C string.
var jsonEscape = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 'u'
	}
	t['"'] = '"'
	t['\\'] = '\\'
	t['\b'] = 'b'
	t['\f'] = 'f'
	t['\n'] = 'n'
	t['\r'] = 'r'
	t['\t'] = 't'
	return t
}()

// xmlSpecial[c] is true for bytes switch_xml_ampencode does not simply copy
// (markup characters, CR, NUL and every byte >= 0x80, which it turns into
// numeric character references).
var xmlSpecial = func() (t [256]bool) {
	t[0] = true
	t['&'] = true
	t['<'] = true
	t['>'] = true
	t['\r'] = true
	for c := 0x80; c < 256; c++ {
		t[c] = true
	}
	return t
}()

// cstr returns s up to its first NUL byte, the string C code would see.
func cstr(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// isUpperHex reports whether c is in switch_url_encode's hex alphabet
// "0123456789ABCDEF" (upper case only).
func isUpperHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F'
}

// URLEncode appends s encoded like switch_url_encode in FreeSWITCH 1.10
// (switch_utils.c), which plain and xml events use for header values: bytes
// below 0x20, above 0x7E and in SWITCH_URL_UNSAFE become %XX in upper-case
// hex, everything else is copied. Two quirks are kept on purpose:
// switch_url_encode does not double-encode, so a '%' already followed by two
// upper-case hex digits ("%3A", not "%3a") is copied as is; and s ends at its
// first NUL byte, as a C string would.
func URLEncode(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !urlUnsafe[c] {
			continue
		}
		if c == '%' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			continue
		}
		dst = append(dst, s[start:i]...)
		if c == 0 {
			return dst
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0x0f])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// AppendPayload appends what FreeSWITCH puts after the outer frame's blank
// line for format f: the serialized event, with no framing. It panics if f is
// not Plain, JSON or XML.
func AppendPayload(dst []byte, f Format, e *Event) []byte {
	switch f {
	case Plain:
		return appendPlain(dst, e)
	case JSON:
		return appendJSON(dst, e)
	case XML:
		return appendXML(dst, e)
	}
	panic("event: invalid Format " + f.String())
}

// frameGuessDigits is the width reserved for the Content-Length value before
// the payload is known; most events are 1000-9999 bytes long, so the payload
// rarely has to be moved once written.
const frameGuessDigits = 4

// AppendFrame appends the whole event frame as mod_event_socket writes it to
// the socket: "Content-Length: N\nContent-Type: text/event-<f>\n\n" followed
// by the payload, N being the payload's length in bytes. It panics if f is
// not Plain, JSON or XML.
func AppendFrame(dst []byte, f Format, e *Event) []byte {
	ct := f.ContentType()
	start := len(dst)
	// Reserve the header with a guessed Content-Length width, write the
	// payload after it, then fill the header in, moving the payload if the
	// guess was wrong.
	hlen := len("Content-Length: ") + frameGuessDigits + len("\nContent-Type: ") + len(ct) + len("\n\n")
	dst = grow(dst, hlen)
	dst = AppendPayload(dst, f, e)
	n := len(dst) - start - hlen

	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(n), 10)
	if d := len(digits) - frameGuessDigits; d > 0 {
		dst = grow(dst, d)
		copy(dst[start+hlen+d:], dst[start+hlen:start+hlen+n])
		hlen += d
	} else if d < 0 {
		copy(dst[start+hlen+d:], dst[start+hlen:start+hlen+n])
		hlen += d
		dst = dst[:start+hlen+n]
	}
	h := dst[start : start : start+hlen]
	h = append(h, "Content-Length: "...)
	h = append(h, digits...)
	h = append(h, "\nContent-Type: "...)
	h = append(h, ct...)
	_ = append(h, '\n', '\n')
	return dst
}

// grow extends dst by n bytes of unspecified content.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	return append(dst, make([]byte, n)...)
}

// appendPlain writes switch_event_serialize(event, &buf, SWITCH_TRUE).
func appendPlain(dst []byte, e *Event) []byte {
	for i := range e.Headers {
		h := &e.Headers[i]
		dst = append(dst, h.Name...)
		dst = append(dst, ':', ' ')
		n := len(dst)
		dst = URLEncode(dst, h.Value)
		if len(dst) == n {
			// An empty encoded value is written as "_undef_".
			dst = append(dst, "_undef_"...)
		}
		dst = append(dst, '\n')
	}
	if body := cstr(e.Body); body != "" {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, '\n', '\n')
		return append(dst, body...)
	}
	return append(dst, '\n')
}

// appendJSONString writes s as cJSON's print_string_ptr does: quotes,
// backslash, \b \f \n \r \t escaped by letter, other bytes below 0x20 as
// \u00xx with lower-case hex, everything else (including '/', DEL and bytes
// >= 0x80) copied. s ends at its first NUL.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for {
		i := jsonVerbatimPrefix(s)
		dst = append(dst, s[:i]...)
		if i == len(s) {
			break
		}
		c := s[i]
		if c == 0 {
			break
		}
		if esc := jsonEscape[c]; esc == 'u' {
			dst = append(dst, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0x0f])
		} else {
			dst = append(dst, '\\', esc)
		}
		s = s[i+1:]
	}
	return append(dst, '"')
}

// Word-at-a-time constants: one in every byte, and every byte's top bit.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// jsonVerbatimPrefix returns the length of the longest prefix of s that cJSON
// copies unchanged (no byte below 0x20, no '"', no '\\'). It tests eight
// bytes at a time: (w-n*ones)&^w&high is non-zero exactly when some byte of w
// is below n (n <= 0x80), and a byte equal to c is a zero byte of w^(c*ones).
func jsonVerbatimPrefix(s string) int {
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		b := s[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		q, bs := w^(swarOnes*'"'), w^(swarOnes*'\\')
		if ((w-swarOnes*0x20)&^w|(q-swarOnes)&^q|(bs-swarOnes)&^bs)&swarHigh != 0 {
			goto bytewise
		}
	}
	if len(s) >= 8 {
		// Test the last, overlapping word instead of the last few bytes.
		b := s[len(s)-8:]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		q, bs := w^(swarOnes*'"'), w^(swarOnes*'\\')
		if ((w-swarOnes*0x20)&^w|(q-swarOnes)&^q|(bs-swarOnes)&^bs)&swarHigh == 0 {
			return len(s)
		}
	}
bytewise:
	for i < len(s) && jsonEscape[s[i]] == 0 {
		i++
	}
	return i
}

// arrayItems reports whether v is an array header value and if so returns the
// part after "ARRAY::" (up to any NUL). Like switch_event_add_array it needs
// at least one byte after the prefix.
func arrayItems(v string) (string, bool) {
	if len(v) <= len(arrayPrefix) || v[0] != 'A' || v[:len(arrayPrefix)] != arrayPrefix {
		return "", false
	}
	return arrayItemsSlow(v)
}

// arrayItemsSlow is the rarely taken part of arrayItems, kept apart so that
// arrayItems inlines.
func arrayItemsSlow(v string) (string, bool) {
	v = cstr(v)
	if len(v) <= len(arrayPrefix) {
		return "", false
	}
	return v[len(arrayPrefix):], true
}

// appendJSON writes cJSON_PrintUnformatted(switch_event_serialize_json_obj()).
func appendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, '{')
	for i := range e.Headers {
		h := &e.Headers[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, h.Name)
		dst = append(dst, ':')
		if items, ok := arrayItems(h.Value); ok {
			dst = append(dst, '[')
			for {
				j := strings.Index(items, arraySep)
				if j < 0 {
					break
				}
				dst = appendJSONString(dst, items[:j])
				dst = append(dst, ',')
				items = items[j+len(arraySep):]
			}
			dst = appendJSONString(dst, items)
			dst = append(dst, ']')
			continue
		}
		dst = appendJSONString(dst, h.Value)
	}
	if body := cstr(e.Body); body != "" {
		if len(e.Headers) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"Content-Length":"`...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, `","_body":`...)
		dst = appendJSONString(dst, body)
	}
	return append(dst, '}')
}

// appendXMLHeader writes one header element at the indentation of
// switch_xml_toxml for a child of <headers> (depth 2) or of <event> (depth 1).
func appendXMLHeader(dst []byte, indent, name, value string) []byte {
	dst = append(dst, indent...)
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = URLEncode(dst, value)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>', '\n')
}

// appendXML writes switch_xml_toxml(switch_event_xmlize(event), SWITCH_FALSE).
//
// The layout follows from switch_xml_toxml_r with XML_INDENT "  ": a newline
// goes before an opening tag only when the output so far ends in '>', every
// closing tag is followed by "\n", and a closing tag is indented only when the
// output so far ends in '\n' (which for <body> happens when the body ends in
// a newline). Header values are URL-encoded, so only the body goes through
// switch_xml_ampencode.
func appendXML(dst []byte, e *Event) []byte {
	dst = append(dst, "<event>\n  <headers>"...)
	if len(e.Headers) > 0 {
		dst = append(dst, '\n')
		for i := range e.Headers {
			h := &e.Headers[i]
			if items, ok := arrayItems(h.Value); ok {
				for {
					j := strings.Index(items, arraySep)
					if j < 0 {
						break
					}
					dst = appendXMLHeader(dst, "    ", h.Name, items[:j])
					items = items[j+len(arraySep):]
				}
				dst = appendXMLHeader(dst, "    ", h.Name, items)
				continue
			}
			dst = appendXMLHeader(dst, "    ", h.Name, h.Value)
		}
		dst = append(dst, "  "...)
	}
	dst = append(dst, "</headers>\n"...)
	if body := cstr(e.Body); body != "" {
		dst = append(dst, "  <Content-Length>"...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "</Content-Length>\n  <body>"...)
		dst = appendXMLText(dst, body)
		if dst[len(dst)-1] == '\n' {
			dst = append(dst, "  "...)
		}
		dst = append(dst, "</body>\n"...)
	}
	return append(dst, "</event>\n"...)
}

// appendXMLText writes s as switch_xml_ampencode(s, 0, ..., a=0,
// use_utf8_encoding=SWITCH_TRUE) does for element text:
//
//   - & < > become &amp; &lt; &gt;, CR becomes &#xD;; '"', LF and TAB are
//     copied.
//   - "<!" switches to verbatim mode: the '<' and every later byte are
//     copied unchanged (meant for CDATA and comments).
//   - A UTF-8 sequence becomes &#xHEX; (upper-case hex code point). Bytes
//     that break a sequence are dropped: a stray continuation byte, an
//     ASCII byte where a continuation was expected (the markup characters
//     above are still written and do not end the sequence), and an
//     unfinished sequence at the end.
func appendXMLText(dst []byte, s string) []byte {
	var cp uint32
	expect := 0
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !xmlSpecial[c] && expect == 0 {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch c {
		case 0:
			return dst
		case '&':
			dst = append(dst, "&amp;"...)
			continue
		case '<':
			if i+1 < len(s) && s[i+1] == '!' {
				return append(dst, cstr(s[i:])...)
			}
			dst = append(dst, "&lt;"...)
			continue
		case '>':
			dst = append(dst, "&gt;"...)
			continue
		case '\r':
			dst = append(dst, "&#xD;"...)
			continue
		case '"', '\n', '\t':
			dst = append(dst, c)
			continue
		}
		switch {
		case expect == 0 && c >= 0x80:
			// Count the leading one bits after the first (at most three).
			num := 1
			for num < 4 && (c>>(7-num))&1 != 0 {
				num++
			}
			switch num {
			case 2:
				cp = uint32(c & 0x1f)
			case 3:
				cp = uint32(c & 0x0f)
			case 4:
				cp = uint32(c & 0x07)
			}
			expect = num - 1
		case expect > 0:
			if c>>6 != 2 {
				expect = 0 // not a continuation byte: dropped
				continue
			}
			cp = cp<<6 | uint32(c&0x3f)
			expect--
			if expect == 0 {
				dst = append(dst, '&', '#', 'x')
				dst = appendHexUpper(dst, cp)
				dst = append(dst, ';')
			}
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, s[start:]...)
}

// appendHexUpper appends v in upper-case hex without leading zeros, like
// printf("%X").
func appendHexUpper(dst []byte, v uint32) []byte {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = hexUpper[v&0x0f]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
