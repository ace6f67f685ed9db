package event

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// goldenDir holds event frames copied verbatim from real FreeSWITCH 1.10.12
// captures (see testdata/README.md).
const goldenDir = "testdata/frames"

// splitFrame splits an event frame into its format and payload, checking the
// outer header mod_event_socket writes: Content-Length first, Content-Type
// second, a blank line, and a Content-Length equal to the payload size.
func splitFrame(frame []byte) (Format, []byte, error) {
	head, payload, ok := bytes.Cut(frame, []byte("\n\n"))
	if !ok {
		return 0, nil, fmt.Errorf("no blank line after the outer header")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) != 2 {
		return 0, nil, fmt.Errorf("outer header has %d lines, want 2", len(lines))
	}
	n, err := strconv.Atoi(strings.TrimPrefix(lines[0], "Content-Length: "))
	if err != nil || !strings.HasPrefix(lines[0], "Content-Length: ") {
		return 0, nil, fmt.Errorf("first outer line %q is not Content-Length", lines[0])
	}
	if n != len(payload) {
		return 0, nil, fmt.Errorf("Content-Length %d, payload %d bytes", n, len(payload))
	}
	ct, ok := strings.CutPrefix(lines[1], "Content-Type: text/event-")
	if !ok {
		return 0, nil, fmt.Errorf("second outer line %q is not an event Content-Type", lines[1])
	}
	f, ok := ParseFormat(ct)
	if !ok || f.String() != ct {
		return 0, nil, fmt.Errorf("unknown event format %q", ct)
	}
	return f, payload, nil
}

// parsePayload parses a payload with the parser for f.
func parsePayload(f Format, payload []byte) (*Event, error) {
	switch f {
	case Plain:
		return ParsePlain(payload)
	case JSON:
		return ParseJSON(payload)
	case XML:
		return parseXML(payload)
	}
	return nil, fmt.Errorf("bad format %v", f)
}

type goldenFrame struct {
	path  string
	frame []byte
}

// loadGolden returns every *.frame under goldenDir whose Content-Type is an
// event format.
func loadGolden(t testing.TB) []goldenFrame {
	t.Helper()
	var frames []goldenFrame
	err := filepath.WalkDir(goldenDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".frame") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b[:bytes.Index(b, []byte("\n\n"))+1], []byte("\nContent-Type: text/event-")) {
			frames = append(frames, goldenFrame{path, b})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) == 0 {
		t.Fatalf("no event frames under %s", goldenDir)
	}
	return frames
}

// TestGoldenFrames parses every captured event frame with the parser for its
// format, encodes it again and requires the exact bytes FreeSWITCH sent.
func TestGoldenFrames(t *testing.T) {
	t.Parallel()
	frames := loadGolden(t)
	perFormat := map[Format]int{}
	withBody := map[Format]int{}
	for _, g := range frames {
		f, _, err := splitFrame(g.frame)
		if err == nil {
			perFormat[f]++
			if bytes.Contains(g.frame, []byte("BACKGROUND_JOB")) {
				withBody[f]++
			}
		}
		t.Run(strings.TrimPrefix(filepath.ToSlash(g.path), goldenDir+"/"), func(t *testing.T) {
			t.Parallel()
			f, payload, err := splitFrame(g.frame)
			if err != nil {
				t.Fatal(err)
			}
			e, err := parsePayload(f, payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := AppendFrame(nil, f, e); !bytes.Equal(got, g.frame) {
				t.Fatalf("re-encoded frame differs from capture:\n%s", firstDiff(got, g.frame))
			}
			// The frame must also come out right behind other bytes already in dst.
			prefix := []byte("previous frame\n")
			got := AppendFrame(append([]byte(nil), prefix...), f, e)
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], g.frame) {
				t.Fatalf("re-encoded frame after a prefix differs from capture:\n%s", firstDiff(got[len(prefix):], g.frame))
			}
			checkCrossFormat(t, e)
		})
	}
	for _, f := range []Format{Plain, JSON, XML} {
		if perFormat[f] == 0 || withBody[f] == 0 {
			t.Errorf("golden set has %d %v frames, %d with a body; want some of each", perFormat[f], f, withBody[f])
		}
	}
}

// checkCrossFormat encodes e in every format and reads it back, checking the
// parsers agree with the encoders on real data.
func checkCrossFormat(t *testing.T, e *Event) {
	t.Helper()
	plain, err := ParsePlain(AppendPayload(nil, Plain, e))
	if err != nil {
		t.Fatalf("plain: %v", err)
	}
	if want := plainModel(e); !eventsEqual(plain, want) {
		t.Errorf("plain round trip:\n%s", eventDiff(plain, want))
	}
	js, err := ParseJSON(AppendPayload(nil, JSON, e))
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	if want := jsonModel(e); !eventsEqual(js, want) {
		t.Errorf("json round trip:\n%s", eventDiff(js, want))
	}
	x1 := AppendPayload(nil, XML, e)
	xe, err := parseXML(x1)
	if err != nil {
		t.Fatalf("xml: %v", err)
	}
	if x2 := AppendPayload(nil, XML, xe); !bytes.Equal(x1, x2) {
		t.Errorf("xml round trip:\n%s", firstDiff(x2, x1))
	}
}

// firstDiff describes where got first departs from want.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-60)
	return fmt.Sprintf("at byte %d (got %d bytes, want %d)\n got: %q\nwant: %q",
		i, len(got), len(want), got[lo:min(len(got), i+60)], want[lo:min(len(want), i+60)])
}

func eventsEqual(a, b *Event) bool {
	if a.Body != b.Body || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

func eventDiff(got, want *Event) string {
	if got.Body != want.Body {
		return fmt.Sprintf("body %q, want %q", got.Body, want.Body)
	}
	for i := 0; i < len(got.Headers) && i < len(want.Headers); i++ {
		if got.Headers[i] != want.Headers[i] {
			return fmt.Sprintf("header %d: %q, want %q", i, got.Headers[i], want.Headers[i])
		}
	}
	return fmt.Sprintf("%d headers, want %d", len(got.Headers), len(want.Headers))
}

// plainModel is what ParsePlain(AppendPayload(Plain, e)) must return, worked
// out independently of the encoder: values and body are C strings (cut at
// NUL), an empty value reads back as "_undef_", and a '%' that
// switch_url_encode leaves alone because two upper-case hex digits follow it
// is decoded by the reader.
func plainModel(e *Event) *Event {
	m := &Event{Body: cstrModel(e.Body)}
	for _, h := range e.Headers {
		v := urlRoundTripModel(cstrModel(h.Value))
		if v == "" {
			v = "_undef_"
		}
		m.Headers = append(m.Headers, Header{h.Name, v})
	}
	return m
}

// xmlModel is what parseXML(AppendPayload(XML, e)) must return: like plain,
// but an empty value stays empty and an array header comes back as one
// header per item.
func xmlModel(e *Event) *Event {
	m := &Event{Body: cstrModel(e.Body)}
	for _, h := range e.Headers {
		v := cstrModel(h.Value)
		if rest, ok := strings.CutPrefix(v, "ARRAY::"); ok && rest != "" {
			for _, item := range strings.Split(rest, "|:") {
				m.Headers = append(m.Headers, Header{h.Name, urlRoundTripModel(item)})
			}
			continue
		}
		m.Headers = append(m.Headers, Header{h.Name, urlRoundTripModel(v)})
	}
	return m
}

// urlRoundTripModel is v after URL-encoding and decoding: unchanged except
// that "%XX" with upper-case hex digits, which switch_url_encode copies
// rather than re-encodes, decodes to its byte.
func urlRoundTripModel(v string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) && strings.IndexByte(hex, v[i+1]) >= 0 && strings.IndexByte(hex, v[i+2]) >= 0 {
			b = append(b, byte(strings.IndexByte(hex, v[i+1])<<4|strings.IndexByte(hex, v[i+2])))
			i += 2
			continue
		}
		b = append(b, v[i])
	}
	return string(b)
}

// jsonModel is what ParseJSON(AppendPayload(JSON, e)) must return: values and
// body cut at NUL, nothing else changed.
func jsonModel(e *Event) *Event {
	m := &Event{Body: cstrModel(e.Body)}
	for _, h := range e.Headers {
		m.Headers = append(m.Headers, Header{h.Name, cstrModel(h.Value)})
	}
	return m
}

func cstrModel(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i]
		}
	}
	return s
}
