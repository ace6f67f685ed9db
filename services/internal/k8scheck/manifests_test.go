package k8scheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ringback/ringback/services/cdr"
	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/gateway"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/origination"
	"github.com/ringback/ringback/services/rating"
	"github.com/ringback/ringback/services/webhook"
)

// repoRoot is the repository's root, seen from this package's directory.
const repoRoot = "../../.."

// The services deployed from k8s/base, by the command their pods run.
var services = []string{"gateway", "origination", "rating", "cdr", "webhook", "dialer"}

// runtimeVars are read by the Go runtime, not by Ringback's code.
var runtimeVars = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

// secretish names must come from a Secret: URLs that carry credentials,
// passwords, tokens and keys.
var secretish = regexp.MustCompile(`^(DATABASE_URL|REDIS_URL|NATS_URL)$|PASSWORD|SECRET|TOKEN|_KEY$`)

// serverStopTimeout is internal/server's DefaultStopTimeout: after the drain,
// in-flight requests get this long before connections close.
const serverStopTimeout = 10 * time.Second

// defaultShutdownTimeout is config.DefaultShutdownTimeout, the drain when
// RINGBACK_SHUTDOWN_TIMEOUT is not set.
const defaultShutdownTimeout = 5 * time.Minute

// ---- manifests ----

type doc struct {
	File string // relative to the repository root
	Kind string
	Name string
	Node *yaml.Node
}

func (d doc) String() string { return fmt.Sprintf("%s %s (%s)", d.Kind, d.Name, d.File) }

func (d doc) decode(t *testing.T, v any) {
	t.Helper()
	if err := d.Node.Decode(v); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
}

// readDocs parses every YAML document of a file.
func readDocs(t *testing.T, path string) []doc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := rel(path)
	var out []doc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		var hdr struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&hdr); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, doc{File: name, Kind: hdr.Kind, Name: hdr.Metadata.Name, Node: &n})
	}
	return out
}

type kustomization struct {
	Dir        string
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	ConfigMaps []struct {
		Name     string   `yaml:"name"`
		Envs     []string `yaml:"envs"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
	SecretGenerator []map[string]any `yaml:"secretGenerator"`
	Patches         []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
}

// kustomizations are every kustomization.yaml under k8s/.
func kustomizations(t *testing.T) []kustomization {
	t.Helper()
	var out []kustomization
	err := filepath.WalkDir(filepath.Join(repoRoot, "k8s"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		k := kustomization{Dir: filepath.Dir(p)}
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no kustomization.yaml under k8s/")
	}
	return out
}

// files are the kustomization's own resource files (not the directories
// it builds on).
func (k kustomization) files() []string {
	var out []string
	for _, r := range k.Resources {
		p := filepath.Join(k.Dir, r)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

func (k kustomization) docs(t *testing.T) []doc {
	var out []doc
	for _, f := range k.files() {
		out = append(out, readDocs(t, f)...)
	}
	return out
}

func base(t *testing.T) kustomization {
	t.Helper()
	for _, k := range kustomizations(t) {
		if filepath.Base(k.Dir) == "base" {
			return k
		}
	}
	t.Fatal("k8s/base/kustomization.yaml not found")
	return kustomization{}
}

// ---- workloads ----

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env     []envVar `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type workload struct {
	doc
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func workloads(t *testing.T, docs []doc) []workload {
	t.Helper()
	var out []workload
	for _, d := range docs {
		if d.Kind != "Deployment" && d.Kind != "StatefulSet" {
			continue
		}
		w := workload{doc: d}
		d.decode(t, &w)
		if len(w.Spec.Template.Spec.Containers) == 0 {
			t.Errorf("%s: no containers", d)
		}
		out = append(out, w)
	}
	return out
}

func (c container) env(name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

func (c container) port(ref any) (int, bool) {
	switch p := ref.(type) {
	case int:
		return p, true
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// ---- the source ----

var (
	envNameRe = regexp.MustCompile(`"((?:RINGBACK|FREESWITCH|FSSIM)_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|NATS_URL)"`)
	durableRe = regexp.MustCompile(`Durable\w*\s*(?:string\s*)?=\s*"([^"]+)"|Durable:\s*"([^"]+)"`)
	streamRe  = regexp.MustCompile(`CallsStream\s*=\s*"([^"]+)"`)
)

var (
	srcMu    sync.Mutex
	srcCache = map[string][]byte{}
)

// source is the concatenated non-test Go source under dir (recursively).
func source(t *testing.T, dir string) []byte {
	t.Helper()
	srcMu.Lock()
	defer srcMu.Unlock()
	if b, ok := srcCache[dir]; ok {
		return b
	}
	var buf bytes.Buffer
	err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		buf.Write(b)
		buf.WriteByte('\n')
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	srcCache[dir] = buf.Bytes()
	return buf.Bytes()
}

func names(re *regexp.Regexp, src []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range re.FindAllSubmatch(src, -1) {
		for _, g := range m[1:] {
			if len(g) > 0 {
				out[string(g)] = true
			}
		}
	}
	return out
}

// commandDirs are the source directories of what a container's command
// runs: a service (services/cmd/<name>, services/<name>, services/internal)
// or the FreeSWITCH simulator (freeswitch/sim).
func commandDirs(cmd string) ([]string, bool) {
	if st, err := os.Stat(filepath.Join(repoRoot, "services/cmd", cmd)); err == nil && st.IsDir() {
		dirs := []string{"services/cmd/" + cmd, "services/internal"}
		if st, err := os.Stat(filepath.Join(repoRoot, "services", cmd)); err == nil && st.IsDir() {
			dirs = append(dirs, "services/"+cmd)
		}
		return dirs, true
	}
	if st, err := os.Stat(filepath.Join(repoRoot, "freeswitch/sim/cmd", cmd)); err == nil && st.IsDir() {
		return []string{"freeswitch/sim/cmd/" + cmd}, true
	}
	return nil, false
}

// readBy is the set of environment variables the command's code reads.
func readBy(t *testing.T, cmd string) (map[string]bool, bool) {
	dirs, ok := commandDirs(cmd)
	if !ok {
		return nil, false
	}
	out := map[string]bool{}
	for _, d := range dirs {
		for n := range names(envNameRe, source(t, d)) {
			out[n] = true
		}
	}
	return out, true
}

// readByAnyService is what at least one deployed service reads.
func readByAnyService(t *testing.T) map[string]bool {
	out := map[string]bool{}
	for _, s := range services {
		vars, ok := readBy(t, s)
		if !ok {
			t.Fatalf("services/cmd/%s does not exist", s)
		}
		for n := range vars {
			out[n] = true
		}
	}
	return out
}

// configKeys are the keys of the ConfigMaps the kustomizations generate
// (env files and literals), with where each was found.
func configKeys(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, k := range kustomizations(t) {
		for _, g := range k.ConfigMaps {
			for _, l := range g.Literals {
				name, _, _ := strings.Cut(l, "=")
				out[name] = rel(filepath.Join(k.Dir, "kustomization.yaml"))
			}
			for _, e := range g.Envs {
				p := filepath.Join(k.Dir, e)
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					line := strings.TrimSpace(sc.Text())
					if line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					name, _, ok := strings.Cut(line, "=")
					if !ok {
						t.Errorf("%s: %q is not NAME=value", p, line)
						continue
					}
					out[name] = rel(p)
				}
				f.Close()
				if err := sc.Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return out
}

// ---- the tests ----

// Every variable a workload sets is read by the program it runs, secrets
// come from Secrets, and the ConfigMap holds only variables some service
// reads and nothing secret.
func TestEnvironmentVariablesAreRead(t *testing.T) {
	n := 0
	for _, k := range kustomizations(t) {
		for _, w := range workloads(t, k.docs(t)) {
			for _, c := range w.Spec.Template.Spec.Containers {
				if len(c.Command) == 0 {
					t.Errorf("%s: container %s has no command (the image holds every service; the command picks one)", w.doc, c.Name)
					continue
				}
				vars, ok := readBy(t, c.Command[0])
				if !ok {
					t.Errorf("%s: command %q is neither a services/cmd nor a freeswitch/sim/cmd program", w.doc, c.Command[0])
					continue
				}
				for _, e := range c.Env {
					n++
					if !vars[e.Name] && !runtimeVars[e.Name] {
						t.Errorf("%s: %s sets %s, which %s's code never reads", w.doc, c.Name, e.Name, c.Command[0])
					}
					if secretish.MatchString(e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
						t.Errorf("%s: %s must come from a secretKeyRef, not a literal value", w.doc, e.Name)
					}
				}
				for _, ef := range c.EnvFrom {
					if ef.SecretRef != nil {
						t.Errorf("%s: envFrom secretRef %s: name each secret variable with a secretKeyRef, so that this test sees it", w.doc, ef.SecretRef.Name)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no environment variable found in any workload")
	}
	all := readByAnyService(t)
	keys := configKeys(t)
	if len(keys) == 0 {
		t.Fatal("no ConfigMap keys found (configMapGenerator envs or literals)")
	}
	for name, where := range keys {
		if !all[name] && !runtimeVars[name] {
			t.Errorf("%s: ConfigMap key %s is read by none of %v", where, name, services)
		}
		if secretish.MatchString(name) {
			t.Errorf("%s: %s is a secret: it belongs in the Secret ringback-secrets, not the ConfigMap", where, name)
		}
	}
}

// No Secret with data is part of any kustomization: secrets are created
// outside the repository, and the example stays an example.
func TestNoSecretDataInKustomizations(t *testing.T) {
	for _, k := range kustomizations(t) {
		kf := rel(filepath.Join(k.Dir, "kustomization.yaml"))
		if len(k.SecretGenerator) > 0 {
			t.Errorf("%s: secretGenerator: secrets are created outside the repository (docs/kubernetes.md)", kf)
		}
		for _, r := range k.Resources {
			if strings.Contains(r, "secret.example") {
				t.Errorf("%s: lists %s, an example that must never be applied", kf, r)
			}
		}
		for _, d := range k.docs(t) {
			if d.Kind != "Secret" {
				continue
			}
			var s struct {
				Data       map[string]any `yaml:"data"`
				StringData map[string]any `yaml:"stringData"`
			}
			d.decode(t, &s)
			if len(s.Data) > 0 || len(s.StringData) > 0 {
				t.Errorf("%s: a Secret with data in a kustomization", d)
			}
		}
	}
	ex := readDocs(t, filepath.Join(repoRoot, "k8s/base/secret.example.yaml"))
	if len(ex) != 1 || ex[0].Kind != "Secret" || ex[0].Name != "ringback-secrets" {
		t.Errorf("k8s/base/secret.example.yaml should be the example of the Secret ringback-secrets")
	}
}

// Every service's readiness probe is /readyz and its liveness probe
// /healthz, both on the admin port the service listens on, which is not a
// loopback address.
func TestProbesOnTheAdminPort(t *testing.T) {
	ws := workloads(t, base(t).docs(t))
	seen := map[string]bool{}
	for _, w := range ws {
		for _, c := range w.Spec.Template.Spec.Containers {
			svc := c.Command[0]
			seen[svc] = true
			admin, ok := c.env("RINGBACK_ADMIN_ADDR")
			if !ok || admin.Value == nil {
				t.Errorf("%s: RINGBACK_ADMIN_ADDR is not set (the default listens on loopback only)", w.doc)
				continue
			}
			adminPort := listenPort(t, w.doc, "RINGBACK_ADMIN_ADDR", *admin.Value)
			for _, v := range []string{"RINGBACK_GRPC_ADDR", "RINGBACK_HTTP_ADDR"} {
				if e, ok := c.env(v); ok && e.Value != nil {
					listenPort(t, w.doc, v, *e.Value)
				} else if v == "RINGBACK_GRPC_ADDR" {
					t.Errorf("%s: RINGBACK_GRPC_ADDR is not set (the default listens on loopback only)", w.doc)
				}
			}
			for _, p := range []struct {
				kind, path string
				probe      *probe
			}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s: no %s probe (httpGet %s on the admin port)", w.doc, p.kind, p.path)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s: %s probe on %q, want %s", w.doc, p.kind, p.probe.HTTPGet.Path, p.path)
				}
				port, ok := c.port(p.probe.HTTPGet.Port)
				if !ok {
					t.Errorf("%s: %s probe port %v is not a port of the container", w.doc, p.kind, p.probe.HTTPGet.Port)
				} else if port != adminPort {
					t.Errorf("%s: %s probe on port %d, but the admin server listens on %d (RINGBACK_ADMIN_ADDR)", w.doc, p.kind, port, adminPort)
				}
			}
		}
	}
	for _, s := range services {
		if !seen[s] {
			t.Errorf("k8s/base: no workload runs %s", s)
		}
	}
}

func listenPort(t *testing.T, d doc, name, addr string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: %s=%q: %v", d, name, addr, err)
		return 0
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: %s=%q listens on loopback: nothing outside the pod reaches it", d, name, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Errorf("%s: %s=%q: port %v", d, name, addr, err)
	}
	return n
}

// terminationGracePeriodSeconds lets the two-stage shutdown run to its end:
// the preStop pause, then the drain (RINGBACK_SHUTDOWN_TIMEOUT), then the
// servers' stop of in-flight requests.
func TestGracefulTermination(t *testing.T) {
	for _, w := range workloads(t, base(t).docs(t)) {
		c := w.Spec.Template.Spec.Containers[0]
		drain := defaultShutdownTimeout
		if e, ok := c.env("RINGBACK_SHUTDOWN_TIMEOUT"); ok && e.Value != nil {
			d, err := time.ParseDuration(*e.Value)
			if err != nil {
				t.Errorf("%s: RINGBACK_SHUTDOWN_TIMEOUT=%q: %v", w.doc, *e.Value, err)
				continue
			}
			drain = d
		}
		var pause time.Duration
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
			t.Errorf("%s: no preStop: the pod would refuse work before the endpoints controller removed it", w.doc)
		} else if s := c.Lifecycle.PreStop.Sleep; s != nil {
			pause = time.Duration(s.Seconds) * time.Second
		}
		need := pause + drain + serverStopTimeout
		g := w.Spec.Template.Spec.TerminationGracePeriodSeconds
		if g == nil {
			t.Errorf("%s: terminationGracePeriodSeconds not set (default 30 s); needs at least %v", w.doc, need)
		} else if got := time.Duration(*g) * time.Second; got < need {
			t.Errorf("%s: terminationGracePeriodSeconds %v < preStop %v + drain %v + stop %v: the kubelet would SIGKILL a draining service",
				w.doc, got, pause, drain, serverStopTimeout)
		}
	}
}

// The pods run as non-root on a read-only root filesystem, with resources,
// the pod name as RINGBACK_INSTANCE where the service reads it, and a
// PodDisruptionBudget.
func TestPodSettings(t *testing.T) {
	docs := base(t).docs(t)
	var pdbs []map[string]string
	for _, d := range docs {
		if d.Kind == "PodDisruptionBudget" {
			var p struct {
				Spec struct {
					Selector struct {
						MatchLabels map[string]string `yaml:"matchLabels"`
					} `yaml:"selector"`
				} `yaml:"spec"`
			}
			d.decode(t, &p)
			pdbs = append(pdbs, p.Spec.Selector.MatchLabels)
		}
	}
	for _, w := range workloads(t, docs) {
		ps := w.Spec.Template.Spec
		if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot is not true", w.doc)
		}
		for _, c := range ps.Containers {
			if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", w.doc)
			}
			if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", w.doc)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("%s: no %s request", w.doc, r)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: no memory limit", w.doc)
			}
			if bytes.Contains(source(t, "services/"+c.Command[0]), []byte(`"RINGBACK_INSTANCE"`)) {
				e, ok := c.env("RINGBACK_INSTANCE")
				if !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
					t.Errorf("%s: %s reads RINGBACK_INSTANCE: set it from fieldRef metadata.name", w.doc, c.Command[0])
				}
			}
		}
		covered := false
		for _, sel := range pdbs {
			if len(sel) > 0 && subset(sel, w.Spec.Template.Metadata.Labels) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", w.doc)
		}
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type trigger struct {
	Type     string            `yaml:"type"`
	Name     string            `yaml:"name"`
	Metadata map[string]string `yaml:"metadata"`
}

// The dialer's ScaledObject scales the dialer Deployment (whose replica
// count it owns) from two replicas up, on JetStream triggers naming the
// CALLS stream and durable consumers the source declares. Triggers kept in
// components (to be enabled later) may name consumers not written yet.
func TestDialerScaledObject(t *testing.T) {
	svcSrc := source(t, "services")
	durables := names(durableRe, svcSrc)
	streams := names(streamRe, svcSrc)
	if len(streams) != 1 {
		t.Fatalf("natsbus.CallsStream not found in services/ (found %v)", streams)
	}
	var stream string
	for s := range streams {
		stream = s
	}
	if !durables["dialer"] {
		t.Fatalf("the dialer's durable consumer (dialer.OutcomesDurable) not found in services/ (durables: %v)", sorted(durables))
	}

	docs := base(t).docs(t)
	deployments := map[string]workload{}
	for _, w := range workloads(t, docs) {
		if w.Kind == "Deployment" {
			deployments[w.Name] = w
		}
	}
	found := 0
	for _, d := range docs {
		if d.Kind != "ScaledObject" {
			continue
		}
		found++
		var so struct {
			Spec struct {
				ScaleTargetRef struct {
					Kind string `yaml:"kind"`
					Name string `yaml:"name"`
				} `yaml:"scaleTargetRef"`
				MinReplicaCount *int      `yaml:"minReplicaCount"`
				MaxReplicaCount *int      `yaml:"maxReplicaCount"`
				Triggers        []trigger `yaml:"triggers"`
			} `yaml:"spec"`
		}
		d.decode(t, &so)
		target, ok := deployments[so.Spec.ScaleTargetRef.Name]
		if !ok || (so.Spec.ScaleTargetRef.Kind != "" && so.Spec.ScaleTargetRef.Kind != "Deployment") {
			t.Errorf("%s: scaleTargetRef %s %s is not a Deployment of k8s/base", d, so.Spec.ScaleTargetRef.Kind, so.Spec.ScaleTargetRef.Name)
		} else if target.Spec.Replicas != nil {
			t.Errorf("%s: sets replicas %d, which the ScaledObject owns (kubectl apply would fight it)", target.doc, *target.Spec.Replicas)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 2 {
			t.Errorf("%s: minReplicaCount must be at least 2, so that one replica's death never stops a campaign", d)
		}
		if so.Spec.MaxReplicaCount == nil || (so.Spec.MinReplicaCount != nil && *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount) {
			t.Errorf("%s: maxReplicaCount missing or below minReplicaCount", d)
		}
		if len(so.Spec.Triggers) == 0 {
			t.Errorf("%s: no triggers", d)
		}
		for _, tr := range so.Spec.Triggers {
			checkTrigger(t, d.String(), tr, stream)
			if c := tr.Metadata["consumer"]; !durables[c] {
				t.Errorf("%s: trigger %s names consumer %q, which no Durable in services/ declares (declared: %v); "+
					"KEDA reports the stream's last sequence as the lag of a consumer it cannot find", d, tr.Name, c, sorted(durables))
			}
		}
	}
	if found == 0 {
		t.Fatal("k8s/base: no ScaledObject")
	}

	// Triggers waiting in components.
	for _, k := range kustomizations(t) {
		for _, p := range k.Patches {
			if p.Path == "" {
				continue
			}
			data, err := os.ReadFile(filepath.Join(k.Dir, p.Path))
			if err != nil {
				t.Fatal(err)
			}
			var ops []struct {
				Op    string  `yaml:"op"`
				Path  string  `yaml:"path"`
				Value trigger `yaml:"value"`
			}
			if yaml.Unmarshal(data, &ops) != nil {
				continue // not a JSON patch of triggers
			}
			for _, op := range ops {
				if !strings.HasPrefix(op.Path, "/spec/triggers") {
					continue
				}
				where := rel(filepath.Join(k.Dir, p.Path))
				checkTrigger(t, where, op.Value, stream)
				if c := op.Value.Metadata["consumer"]; !durables[c] {
					// KEDA would read a missing consumer's lag as the
					// stream's length and pin the dialer at its maximum.
					t.Errorf("%s: consumer %q is no Durable in services/ (declared: %v)", where, c, sorted(durables))
				}
			}
		}
	}
}

func checkTrigger(t *testing.T, where string, tr trigger, stream string) {
	t.Helper()
	if tr.Type != "nats-jetstream" {
		t.Errorf("%s: trigger %s is %q, want nats-jetstream", where, tr.Name, tr.Type)
		return
	}
	if s := tr.Metadata["stream"]; s != stream {
		t.Errorf("%s: trigger %s on stream %q, want %q (natsbus.CallsStream)", where, tr.Name, s, stream)
	}
	if tr.Metadata["natsServerMonitoringEndpoint"] == "" || tr.Metadata["account"] == "" {
		t.Errorf("%s: trigger %s needs natsServerMonitoringEndpoint and account", where, tr.Name)
	}
	if n, err := strconv.Atoi(tr.Metadata["lagThreshold"]); err != nil || n <= 0 {
		t.Errorf("%s: trigger %s lagThreshold %q is not a positive integer", where, tr.Name, tr.Metadata["lagThreshold"])
	}
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rel shows a path from the repository's root.
func rel(p string) string {
	if r, err := filepath.Rel(repoRoot, p); err == nil {
		return r
	}
	return p
}

// loaders run each service's own configuration loading, as its main does,
// and return what it finds wrong.
var loaders = map[string]func(lookup func(string) (string, bool)) error{
	"gateway": func(lookup func(string) (string, bool)) error {
		_, err := gateway.Load(lookup)
		return err
	},
	"origination": platformAnd(func(l *config.Loader) { origination.LoadConfig(l) }),
	"rating":      platformAnd(func(l *config.Loader) { rating.LoadConfig(l) }),
	"cdr":         platformAnd(func(l *config.Loader) { cdr.LoadConfig(l) }),
	"webhook":     platformAnd(func(l *config.Loader) { webhook.LoadConfig(l) }),
	"dialer":      platformAnd(func(l *config.Loader) { dialer.LoadConfig(l) }),
}

func platformAnd(load func(*config.Loader)) func(func(string) (string, bool)) error {
	return func(lookup func(string) (string, bool)) error {
		l := config.NewLoader(lookup)
		config.LoadPlatform(l, config.PlatformDefaults{})
		load(l)
		return l.Err()
	}
}

// exampleSecret is the stringData of k8s/base/secret.example.yaml: the test
// gives the services its values, so the example must be one they accept.
func exampleSecret(t *testing.T) map[string]string {
	t.Helper()
	docs := readDocs(t, filepath.Join(repoRoot, "k8s/base/secret.example.yaml"))
	if len(docs) != 1 {
		t.Fatalf("k8s/base/secret.example.yaml: %d documents, want 1", len(docs))
	}
	var s struct {
		StringData map[string]string `yaml:"stringData"`
	}
	docs[0].decode(t, &s)
	return s.StringData
}

// generated is what each ConfigMap generator holds in the build of dir
// (k8s/base or an overlay): the kustomizations it builds on first, then its
// own generators (an overlay's behavior: merge overrides their keys).
func generated(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	byDir := map[string]kustomization{}
	for _, k := range kustomizations(t) {
		byDir[filepath.Clean(k.Dir)] = k
	}
	out := map[string]map[string]string{}
	var add func(dir string)
	add = func(dir string) {
		k, ok := byDir[filepath.Clean(dir)]
		if !ok {
			t.Fatalf("%s: no kustomization.yaml", rel(dir))
		}
		for _, r := range k.Resources {
			if st, err := os.Stat(filepath.Join(k.Dir, r)); err == nil && st.IsDir() {
				add(filepath.Join(k.Dir, r))
			}
		}
		for _, g := range k.ConfigMaps {
			m := out[g.Name]
			if m == nil {
				m = map[string]string{}
				out[g.Name] = m
			}
			for _, e := range g.Envs {
				data, err := os.ReadFile(filepath.Join(k.Dir, e))
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(string(data), "\n") {
					line = strings.TrimSpace(line)
					if name, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
						m[name] = v
					}
				}
			}
			for _, l := range g.Literals {
				if name, v, ok := strings.Cut(l, "="); ok {
					m[name] = v
				}
			}
		}
	}
	add(dir)
	return out
}

// Every service accepts the configuration the manifests give it (ConfigMaps,
// its own variables, the example Secret's keys), in the base and in each
// overlay: the same validation its main runs at start, so a value it would
// refuse (a malformed duration, an address without a port) fails here.
func TestServicesAcceptTheirConfiguration(t *testing.T) {
	builds := []string{filepath.Join(repoRoot, "k8s/base")}
	entries, err := os.ReadDir(filepath.Join(repoRoot, "k8s/overlays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			builds = append(builds, filepath.Join(repoRoot, "k8s/overlays", e.Name()))
		}
	}
	ws := workloads(t, base(t).docs(t))
	secret := exampleSecret(t)
	for _, build := range builds {
		cms := generated(t, build)
		for _, w := range ws {
			c := w.Spec.Template.Spec.Containers[0]
			load, ok := loaders[c.Command[0]]
			if !ok {
				t.Errorf("%s: no configuration loader known for %q", w.doc, c.Command[0])
				continue
			}
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef == nil {
					continue
				}
				cm, ok := cms[ef.ConfigMapRef.Name]
				if !ok {
					t.Errorf("%s: envFrom ConfigMap %s is not generated by k8s/base", w.doc, ef.ConfigMapRef.Name)
				}
				for k, v := range cm {
					env[k] = v
				}
			}
			for _, e := range c.Env {
				switch {
				case e.Value != nil:
					env[e.Name] = *e.Value
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					ref := e.ValueFrom.SecretKeyRef
					if v, ok := secret[ref.Key]; ok {
						env[e.Name] = v
					} else if !ref.Optional {
						t.Errorf("%s: %s from Secret key %s, which secret.example.yaml does not show", w.doc, e.Name, ref.Key)
					}
				case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
					env[e.Name] = w.Name + "-0"
				}
			}
			if err := load(func(name string) (string, bool) { v, ok := env[name]; return v, ok }); err != nil {
				t.Errorf("%s, %s: %s refuses its configuration: %v", rel(build), w.doc, c.Command[0], err)
			}
		}
	}
}
