package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ringback/ringback/services/internal/logging"
)

// decode returns the JSON lines written to buf.
func decode(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestNewWritesJSONWithCallAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want map[string]any
	}{
		{
			name: "call",
			log:  func(l *slog.Logger) { logging.WithCall(l, "c-1").Info("dialing") },
			want: map[string]any{"msg": "dialing", "call_id": "c-1", "service": "origination", "level": "INFO"},
		},
		{
			name: "leg",
			log:  func(l *slog.Logger) { logging.WithLeg(l, "c-1", "u-2").Warn("busy") },
			want: map[string]any{"call_id": "c-1", "leg_uuid": "u-2", "level": "WARN"},
		},
		{
			name: "account",
			log:  func(l *slog.Logger) { logging.WithAccount(l, "a-3").Error("no balance") },
			want: map[string]any{"account_id": "a-3", "level": "ERROR"},
		},
		{
			name: "single line attributes",
			log: func(l *slog.Logger) {
				l.LogAttrs(t.Context(), slog.LevelInfo, "x",
					logging.CallID("c"), logging.LegUUID("u"), logging.AccountID("a"), logging.Err(errors.New("boom")))
			},
			want: map[string]any{"call_id": "c", "leg_uuid": "u", "account_id": "a", "error": "boom"},
		},
		{
			name: "nil error",
			log:  func(l *slog.Logger) { l.Info("x", logging.Err(nil)) },
			want: map[string]any{"error": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.log(logging.New(&buf, slog.LevelDebug, "origination"))
			lines := decode(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1: %s", len(lines), buf.String())
			}
			for k, v := range tt.want {
				if got, ok := lines[0][k]; !ok || got != v {
					t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
				}
			}
		})
	}
}

func TestNewFiltersByLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"INFO", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"error", []string{"e"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			lvl, err := logging.ParseLevel(tt.level)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			l := logging.New(&buf, lvl, "")
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, line := range decode(t, &buf) {
				got = append(got, line["msg"].(string))
				if _, ok := line["service"]; ok {
					t.Errorf("service attribute present with empty service")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseLevelRejectsUnknown(t *testing.T) {
	t.Parallel()
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Fatal("ParseLevel(loud) succeeded")
	}
}

func TestSecretIsRedactedEverywhere(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-pa55"
	type cfg struct {
		User     string
		Password logging.Secret
	}
	c := cfg{User: "esl", Password: pw}
	tests := []struct {
		name string
		out  func() string
	}{
		{"slog json", func() string {
			var buf bytes.Buffer
			logging.New(&buf, slog.LevelInfo, "").Info("cfg", "password", c.Password, "cfg", c)
			return buf.String()
		}},
		{"slog text", func() string {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "password", c.Password)
			return buf.String()
		}},
		{"%v", func() string { return fmt.Sprintf("%v", c) }},
		{"%+v", func() string { return fmt.Sprintf("%+v", c) }},
		{"%#v", func() string { return fmt.Sprintf("%#v", c) }},
		{"%s", func() string { return fmt.Sprintf("%s", c.Password) }},
		{"json", func() string {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := tt.out()
			if strings.Contains(out, pw) {
				t.Errorf("secret leaked: %s", out)
			}
			if !strings.Contains(out, logging.Redacted) {
				t.Errorf("no %s marker in %s", logging.Redacted, out)
			}
		})
	}
	if c.Password.Reveal() != pw {
		t.Errorf("Reveal = %q", c.Password.Reveal())
	}
	if logging.Secret("").String() != "" {
		t.Errorf("empty secret should print empty")
	}
}
