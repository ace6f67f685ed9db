package event

import (
	"os"
	"testing"
)

// benchFrame is a real CHANNEL_HANGUP_COMPLETE (about 220 headers, 9 KB of
// JSON) from capture 17.
const benchFrame = "testdata/frames/17_event_json_ALL_sip_call_remote_bye/029_CHANNEL_HANGUP_COMPLETE.frame"

func loadBenchEvent(b *testing.B) *Event {
	b.Helper()
	frame, err := os.ReadFile(benchFrame)
	if err != nil {
		b.Fatal(err)
	}
	_, payload, err := splitFrame(frame)
	if err != nil {
		b.Fatal(err)
	}
	e, err := ParseJSON(payload)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func benchmarkAppendFrame(b *testing.B, f Format) {
	e := loadBenchEvent(b)
	dst := AppendFrame(nil, f, e)
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], f, e)
	}
}

// BenchmarkAppendFrameJSON measures the simulator's usual encoding.
func BenchmarkAppendFrameJSON(b *testing.B) { benchmarkAppendFrame(b, JSON) }

// BenchmarkAppendFramePlain measures the URL-encoding path.
func BenchmarkAppendFramePlain(b *testing.B) { benchmarkAppendFrame(b, Plain) }

// BenchmarkAppendFrameXML measures the xml path (URL-encoding plus markup).
func BenchmarkAppendFrameXML(b *testing.B) { benchmarkAppendFrame(b, XML) }

func BenchmarkParseJSON(b *testing.B) {
	e := loadBenchEvent(b)
	payload := AppendPayload(nil, JSON, e)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePlain(b *testing.B) {
	e := loadBenchEvent(b)
	payload := AppendPayload(nil, Plain, e)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePlain(payload); err != nil {
			b.Fatal(err)
		}
	}
}
