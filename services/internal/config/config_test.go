package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/config"
)

func TestLoaderTypedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		read    func(l *config.Loader) any
		want    any
		problem string // substring of the error; "" means no error
	}{
		{"string default", nil, func(l *config.Loader) any { return l.String("S", "d", "") }, "d", ""},
		{"string set", map[string]string{"S": "v"}, func(l *config.Loader) any { return l.String("S", "d", "") }, "v", ""},
		{"empty counts as unset", map[string]string{"S": ""}, func(l *config.Loader) any { return l.String("S", "d", "") }, "d", ""},
		{"required missing", nil, func(l *config.Loader) any { return l.Required("R", "the thing") }, "", "R: required but not set (the thing)"},
		{"int", map[string]string{"I": " 42 "}, func(l *config.Loader) any { return l.Int("I", 1, "") }, 42, ""},
		{"int bad", map[string]string{"I": "4x"}, func(l *config.Loader) any { return l.Int("I", 1, "") }, 1, `I: "4x" is not an integer`},
		{"bool yes", map[string]string{"B": "yes"}, func(l *config.Loader) any { return l.Bool("B", false, "") }, true, ""},
		{"bool off", map[string]string{"B": "OFF"}, func(l *config.Loader) any { return l.Bool("B", true, "") }, false, ""},
		{"bool bad", map[string]string{"B": "maybe"}, func(l *config.Loader) any { return l.Bool("B", true, "") }, true, "not a boolean"},
		{"duration", map[string]string{"D": "1m30s"}, func(l *config.Loader) any { return l.Duration("D", time.Second, "") }, 90 * time.Second, ""},
		{"duration without unit", map[string]string{"D": "30"}, func(l *config.Loader) any { return l.Duration("D", time.Second, "") }, time.Second, "use a unit"},
		{"duration negative", map[string]string{"D": "-5s"}, func(l *config.Loader) any { return l.Duration("D", time.Second, "") }, time.Second, "negative"},
		{"enum case-insensitive", map[string]string{"E": "SIMULTANEOUS"}, func(l *config.Loader) any { return l.Enum("E", "sequential", "", "sequential", "simultaneous") }, "simultaneous", ""},
		{"enum bad", map[string]string{"E": "random"}, func(l *config.Loader) any { return l.Enum("E", "sequential", "", "sequential", "simultaneous") }, "sequential", "not one of sequential, simultaneous"},
		{"url", map[string]string{"U": "postgres://u:p@db:5432/x"}, func(l *config.Loader) any { return l.URL("U", "", "", "postgres") }, "postgres://u:p@db:5432/x", ""},
		{"url scheme", map[string]string{"U": "mysql://u:p@db/x"}, func(l *config.Loader) any { return l.URL("U", "", "", "postgres") }, "mysql://u:p@db/x", `scheme "mysql" not supported (want postgres)`},
		{"url not absolute", map[string]string{"U": "db:5432"}, func(l *config.Loader) any { return l.URL("U", "", "", "postgres") }, "db:5432", "not supported"},
		{"url unset", nil, func(l *config.Loader) any { return l.URL("U", "", "") }, "", "U: required but not set"},
		{"urls", map[string]string{"N": "nats://a:4222, nats://b:4222"}, func(l *config.Loader) any { return l.URLs("N", "", "", "nats") }, []string{"nats://a:4222", "nats://b:4222"}, ""},
		{"hostport", map[string]string{"H": "127.0.0.1:0"}, func(l *config.Loader) any { return l.HostPort("H", "", "") }, "127.0.0.1:0", ""},
		{"hostport ipv6", map[string]string{"H": "[::1]:8021"}, func(l *config.Loader) any { return l.HostPort("H", "", "") }, "[::1]:8021", ""},
		{"hostport no port", map[string]string{"H": "localhost"}, func(l *config.Loader) any { return l.HostPort("H", "", "") }, "localhost", "not host:port"},
		{"hostport big port", map[string]string{"H": "h:70000"}, func(l *config.Loader) any { return l.HostPort("H", "", "") }, "h:70000", "0-65535"},
		{"hostports", map[string]string{"H": "fs1:8021,fs2:8021"}, func(l *config.Loader) any { return l.HostPorts("H", "", "") }, []string{"fs1:8021", "fs2:8021"}, ""},
		{"hostports one bad", map[string]string{"H": "fs1:8021,fs2"}, func(l *config.Loader) any { return l.HostPorts("H", "", "") }, []string{"fs1:8021", "fs2"}, `"fs2" is not host:port`},
		{"secret", map[string]string{"P": "ClueCon"}, func(l *config.Loader) any { return l.Secret("P", "", "").Reveal() }, "ClueCon", ""},
		{"func", map[string]string{"F": "odd"}, func(l *config.Loader) any {
			l.Func("F", "even", "", func(s string) error {
				if s != "even" {
					return errors.New("must be even")
				}
				return nil
			})
			return nil
		}, nil, `F: "odd": must be even`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := config.NewLoader(config.MapLookup(tt.env))
			got := tt.read(l)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
			err := l.Err()
			switch {
			case tt.problem == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.problem != "" && err == nil:
				t.Errorf("no error, want one containing %q", tt.problem)
			case tt.problem != "" && !strings.Contains(err.Error(), tt.problem):
				t.Errorf("error %q does not contain %q", err, tt.problem)
			}
		})
	}
}

func TestLoaderReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	l := config.NewLoader(config.MapLookup(map[string]string{
		"DATABASE_URL":              "mysql://root:hunter2@db/x",
		"RINGBACK_LOG_LEVEL":        "loud",
		"RINGBACK_SHUTDOWN_TIMEOUT": "soon",
		"RINGBACK_ADMIN_ADDR":       "9090",
	}))
	config.LoadPlatform(l, config.PlatformDefaults{})
	err := l.Err()
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Err() = %v, want *config.Error", err)
	}
	wantVars := []string{"DATABASE_URL", "RINGBACK_ADMIN_ADDR", "RINGBACK_SHUTDOWN_TIMEOUT", "RINGBACK_LOG_LEVEL"}
	if len(cerr.Problems) != len(wantVars) {
		t.Fatalf("got %d problems, want %d: %v", len(cerr.Problems), len(wantVars), err)
	}
	for i, v := range wantVars {
		if cerr.Problems[i].Var != v {
			t.Errorf("problem %d is about %s, want %s", i, cerr.Problems[i].Var, v)
		}
	}
	if !strings.HasPrefix(err.Error(), "invalid configuration (4 problems): ") {
		t.Errorf("message = %q", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks a password: %v", err)
	}
}

func TestLoadPlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		defaults config.PlatformDefaults
		want     config.Platform
		problem  string
	}{
		{
			name: "defaults",
			want: config.Platform{
				DatabaseURL:          config.DefaultDatabaseURL,
				RedisURL:             config.DefaultRedisURL,
				NATSURL:              config.DefaultNATSURL,
				NATSReplicas:         1,
				AdminAddr:            config.DefaultAdminAddr,
				GRPCAddr:             config.DefaultGRPCAddr,
				GRPCMaxConnectionAge: config.DefaultGRPCMaxConnectionAge,
				LogLevel:             slog.LevelInfo,
				ShutdownTimeout:      config.DefaultShutdownTimeout,
			},
		},
		{
			name:     "service defaults",
			defaults: config.PlatformDefaults{AdminAddr: "127.0.0.1:9091", GRPCAddr: "127.0.0.1:50052", ShutdownTimeout: time.Minute},
			want: config.Platform{
				DatabaseURL:          config.DefaultDatabaseURL,
				RedisURL:             config.DefaultRedisURL,
				NATSURL:              config.DefaultNATSURL,
				NATSReplicas:         1,
				AdminAddr:            "127.0.0.1:9091",
				GRPCAddr:             "127.0.0.1:50052",
				GRPCMaxConnectionAge: config.DefaultGRPCMaxConnectionAge,
				LogLevel:             slog.LevelInfo,
				ShutdownTimeout:      time.Minute,
			},
		},
		{
			name: "environment wins",
			env: map[string]string{
				"DATABASE_URL":                     "postgresql://rb:pw@db:5432/ringback",
				"REDIS_URL":                        "rediss://:pw@cache:6380/2",
				"NATS_URL":                         "nats://n1:4222, nats://n2:4222",
				"RINGBACK_ADMIN_ADDR":              "0.0.0.0:9100",
				"RINGBACK_GRPC_ADDR":               "0.0.0.0:9200",
				"RINGBACK_LOG_LEVEL":               "DEBUG",
				"RINGBACK_SHUTDOWN_TIMEOUT":        "90s",
				"RINGBACK_NATS_REPLICAS":           "3",
				"RINGBACK_GRPC_MAX_CONNECTION_AGE": "0s",
			},
			defaults: config.PlatformDefaults{AdminAddr: "127.0.0.1:9091"},
			want: config.Platform{
				DatabaseURL:          "postgresql://rb:pw@db:5432/ringback",
				RedisURL:             "rediss://:pw@cache:6380/2",
				NATSURL:              "nats://n1:4222,nats://n2:4222",
				NATSReplicas:         3,
				AdminAddr:            "0.0.0.0:9100",
				GRPCAddr:             "0.0.0.0:9200",
				GRPCMaxConnectionAge: 0,
				LogLevel:             slog.LevelDebug,
				ShutdownTimeout:      90 * time.Second,
			},
		},
		{
			name:    "negative connection age",
			env:     map[string]string{"RINGBACK_GRPC_MAX_CONNECTION_AGE": "-1m"},
			problem: "RINGBACK_GRPC_MAX_CONNECTION_AGE: \"-1m\" is negative",
		},
		{
			name:    "zero shutdown timeout",
			env:     map[string]string{"RINGBACK_SHUTDOWN_TIMEOUT": "0s"},
			problem: "RINGBACK_SHUTDOWN_TIMEOUT: must be positive",
		},
		{
			name:    "nats replicas out of range",
			env:     map[string]string{"RINGBACK_NATS_REPLICAS": "7"},
			problem: "RINGBACK_NATS_REPLICAS: must be 1 to 5",
		},
		{
			name:    "admin and grpc clash",
			env:     map[string]string{"RINGBACK_ADMIN_ADDR": "127.0.0.1:9000", "RINGBACK_GRPC_ADDR": "127.0.0.1:9000"},
			problem: "RINGBACK_GRPC_ADDR: same address as RINGBACK_ADMIN_ADDR",
		},
		{
			name:    "bad nats url in list",
			env:     map[string]string{"NATS_URL": "nats://a:4222,http://b"},
			problem: `NATS_URL: scheme "http" not supported`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := config.NewLoader(config.MapLookup(tt.env))
			got := config.LoadPlatform(l, tt.defaults)
			err := l.Err()
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("error = %v, want one containing %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestPlatformRedactsSecrets(t *testing.T) {
	t.Parallel()
	p := config.Platform{
		DatabaseURL: "postgres://rb:dbpass@db/ringback?sslmode=disable",
		RedisURL:    "redis://:redispass@cache:6379/0",
		NATSURL:     "nats://u:natspass@n1:4222,nats://n2:4222",
		AdminAddr:   "127.0.0.1:9090",
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "platform", p)
	outputs := map[string]string{
		"slog":   buf.String(),
		"%v":     fmt.Sprintf("%v", p),
		"Redact": fmt.Sprintf("%#v", p.Redact()),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, secret := range []string{"dbpass", "redispass", "natspass"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s leaked in %s", secret, out)
				}
			}
			if !strings.Contains(out, "xxxxx") {
				t.Errorf("no redaction marker in %s", out)
			}
		})
	}
	if p.DatabaseURL != "postgres://rb:dbpass@db/ringback?sslmode=disable" {
		t.Errorf("Redact modified the original")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://postgres@127.0.0.1:5432/ringback", "postgres://postgres@127.0.0.1:5432/ringback"},
		{"postgres://u:p@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db?password=p&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"redis://:p@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"postgres://u:p%zz@h/db", "postgres://xxxxx@h/db"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := config.RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUsageListsVariablesAndHidesSecretDefaults(t *testing.T) {
	t.Parallel()
	l := config.NewLoader(config.MapLookup(nil))
	config.LoadPlatform(l, config.PlatformDefaults{})
	l.Secret("FREESWITCH_ESL_PASSWORD", "ClueCon", "event socket password")
	u := l.Usage()
	for _, v := range []string{"DATABASE_URL", "REDIS_URL", "NATS_URL", "RINGBACK_ADMIN_ADDR", "RINGBACK_GRPC_ADDR", "RINGBACK_LOG_LEVEL", "RINGBACK_SHUTDOWN_TIMEOUT", "RINGBACK_NATS_REPLICAS", "RINGBACK_GRPC_MAX_CONNECTION_AGE", "FREESWITCH_ESL_PASSWORD"} {
		if !strings.Contains(u, v) {
			t.Errorf("usage lacks %s:\n%s", v, u)
		}
	}
	if strings.Contains(u, "ClueCon") {
		t.Errorf("usage shows a secret default:\n%s", u)
	}
	if got := len(l.Vars()); got != 10 {
		t.Errorf("Vars() has %d entries, want 10", got)
	}
}
