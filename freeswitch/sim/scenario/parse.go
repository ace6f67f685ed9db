package scenario

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse reads a scenario from YAML or JSON and validates it. The result has
// every default filled in.
//
// Layout (keys are snake_case; see example.yaml for a commented example):
//
//	name: my-scenario          # optional
//	seed: 42                   # optional, default 0
//	rules:                     # tried in order; no match -> Default catch-all
//	  - match: "486$"          # Go regexp on the dialed number; absent = match all
//	    kind: busy             # one inline outcome (weight 1) ...
//	  - match: "^\\+44"
//	    outcomes:              # ... or a weighted choice
//	      - {weight: 3, kind: answer, ring: {min: 1s, max: 4s}, talk: {mean: 30s, stddev: 10s}}
//	      - {weight: 1, kind: no_answer}
//	users:                     # optional; absent keys take DefaultUsers values
//	  registered: "^10(0[0-9]|1[0-9])$"
//	  known: "^1[0-9]{3}$"
//	  answer: {ring: 300ms}
//	  busy_when_in_call: true
//
// Outcome keys: kind, ring, talk, early_media, dtmf, dtmf_delay,
// dtmf_interval, dtmf_source, machine_greeting, sip_status, cause, and weight
// inside outcomes (default 1). Durations are Go duration strings ("1.5s",
// "300ms", "0"); a distribution is such a string (fixed), {min, max}
// (uniform), {mean, stddev} (normal truncated at 0) or {shape: lognormal,
// mean, stddev} (lognormal: positive, skewed to the right, as talk times
// are); shape may also be given as uniform or normal. YAML anchors, aliases
// and merge keys (<<) work. Unknown keys are errors.
//
// Errors are *Error values naming the path (rules[2].outcomes[0].ring) and
// the line.
func Parse(data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Msg: "not valid YAML or JSON: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{Msg: "empty document"}
	}
	s, err := parseScenario(doc.Content[0])
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil { // everything was checked on the way; belt and braces
		return nil, err
	}
	return s.normalized(), nil
}

// ParseFile reads and parses a scenario file (see Parse).
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

var (
	scenarioKeys = []string{"name", "seed", "rules", "users"}
	ruleKeys     = []string{"match", "outcomes"}
	outcomeKeys  = []string{"kind", "ring", "talk", "early_media", "dtmf", "dtmf_delay", "dtmf_interval", "dtmf_source", "machine_greeting", "sip_status", "cause"}
	userKeys     = []string{"registered", "known", "answer", "busy_when_in_call"}
)

func parseScenario(root *yaml.Node) (*Scenario, error) {
	fields, err := mapping(root, "")
	if err != nil {
		return nil, err
	}
	s := &Scenario{Users: UserPolicy{BusyWhenInCall: true}}
	for _, f := range fields {
		switch f.key {
		case "name":
			s.Name, err = scalar(f.val, "name")
		case "seed":
			err = decodeScalar(f.val, "seed", &s.Seed, "must be a non-negative integer")
		case "rules":
			s.Rules, err = parseRules(f.val)
		case "users":
			s.Users, err = parseUsers(f.val)
		default:
			err = unknownKey(f, "", scenarioKeys)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseRules(n *yaml.Node) ([]Rule, error) {
	items, err := sequence(n, "rules")
	if err != nil {
		return nil, err
	}
	rules := make([]Rule, 0, len(items))
	for i, item := range items {
		r, err := parseRule(item, fmt.Sprintf("rules[%d]", i))
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(n *yaml.Node, path string) (Rule, error) {
	fields, err := mapping(n, path)
	if err != nil {
		return Rule{}, err
	}
	var (
		r        Rule
		outcomes *field
		inline   []field
	)
	for i, f := range fields {
		switch f.key {
		case "match":
			if r.Match, err = scalar(f.val, path+".match"); err != nil {
				return Rule{}, err
			}
			if _, err := regexp.Compile(r.Match); err != nil {
				return Rule{}, errAt(f.val, path+".match", "%s", badRegexp(r.Match, err))
			}
		case "outcomes":
			outcomes = &fields[i]
		case "weight":
			return Rule{}, errAt(f.keyNode, path+".weight", "only allowed on an entry of outcomes")
		default:
			inline = append(inline, f)
		}
	}
	if outcomes != nil && len(inline) > 0 {
		f := inline[0]
		if isOutcomeKey(f.key) {
			return Rule{}, errAt(f.keyNode, path, "give either outcomes or an inline outcome (%s), not both", f.key)
		}
		return Rule{}, unknownKey(f, path, ruleKeys)
	}
	if outcomes == nil {
		spec, err := parseSpec(inline, path, slices.Concat(ruleKeys, outcomeKeys))
		if err != nil {
			return Rule{}, err
		}
		r.Outcomes = []Weighted{{Weight: 1, Spec: spec}}
		return r, nil
	}
	opath := path + ".outcomes"
	items, err := sequence(outcomes.val, opath)
	if err != nil {
		return Rule{}, err
	}
	if len(items) == 0 {
		return Rule{}, errAt(outcomes.val, opath, "empty: give at least one outcome")
	}
	for j, item := range items {
		w, err := parseWeighted(item, fmt.Sprintf("%s[%d]", opath, j))
		if err != nil {
			return Rule{}, err
		}
		r.Outcomes = append(r.Outcomes, w)
	}
	return r, nil
}

func isOutcomeKey(k string) bool { return slices.Contains(outcomeKeys, k) }

func parseWeighted(n *yaml.Node, path string) (Weighted, error) {
	fields, err := mapping(n, path)
	if err != nil {
		return Weighted{}, err
	}
	w := Weighted{Weight: 1}
	var rest []field
	for _, f := range fields {
		if f.key != "weight" {
			rest = append(rest, f)
			continue
		}
		if err := decodeScalar(f.val, path+".weight", &w.Weight, "must be a positive integer"); err != nil {
			return Weighted{}, err
		}
		if m := checkWeight(w.Weight); m != "" {
			return Weighted{}, errAt(f.val, path+".weight", "%s", m)
		}
	}
	spec, err := parseSpec(rest, path, slices.Concat([]string{"weight"}, outcomeKeys))
	if err != nil {
		return Weighted{}, err
	}
	w.Spec = spec
	return w, nil
}

// parseSpec builds an OutcomeSpec from outcome fields and validates it;
// known lists the keys allowed at this place, for the unknown-key message.
func parseSpec(fields []field, path string, known []string) (OutcomeSpec, error) {
	var s OutcomeSpec
	nodes := map[string]*yaml.Node{}
	for _, f := range fields {
		p := path + "." + f.key
		nodes[f.key] = f.val
		var err error
		switch f.key {
		case "kind":
			var k string
			k, err = scalar(f.val, p)
			s.Kind = Kind(k)
			if err == nil && !s.Kind.Valid() {
				err = errAt(f.val, p, "unknown kind %q (want one of %s)", k, kindList())
			}
		case "ring":
			s.Ring, err = parseDist(f.val, p)
		case "talk":
			s.Talk, err = parseDist(f.val, p)
		case "dtmf_delay":
			s.DTMFDelay, err = parseDist(f.val, p)
		case "dtmf_interval":
			s.DTMFInterval, err = parseDist(f.val, p)
		case "machine_greeting":
			s.MachineGreeting, err = parseDist(f.val, p)
		case "early_media":
			err = decodeScalar(f.val, p, &s.EarlyMedia, "must be true or false")
		case "dtmf":
			s.DTMF, err = scalar(f.val, p)
		case "dtmf_source":
			s.DTMFSource, err = scalar(f.val, p)
		case "sip_status":
			err = decodeScalar(f.val, p, &s.SIPStatus, "must be an integer SIP status")
		case "cause":
			s.Cause, err = scalar(f.val, p)
		default:
			err = unknownKey(f, path, known)
		}
		if err != nil {
			return OutcomeSpec{}, err
		}
	}
	if field, msg := s.check(); msg != "" {
		line := 0
		if n := nodes[field]; n != nil {
			line = n.Line
		} else if len(fields) > 0 {
			line = fields[0].keyNode.Line
		}
		return OutcomeSpec{}, &Error{Path: path + "." + field, Line: line, Msg: msg}
	}
	return s, nil
}

func parseUsers(n *yaml.Node) (UserPolicy, error) {
	fields, err := mapping(n, "users")
	if err != nil {
		return UserPolicy{}, err
	}
	u := UserPolicy{BusyWhenInCall: true}
	for _, f := range fields {
		p := "users." + f.key
		switch f.key {
		case "registered", "known":
			var expr string
			if expr, err = scalar(f.val, p); err != nil {
				return UserPolicy{}, err
			}
			if _, cerr := regexp.Compile(expr); cerr != nil {
				return UserPolicy{}, errAt(f.val, p, "%s", badRegexp(expr, cerr))
			}
			if f.key == "known" {
				u.Known = expr
			} else {
				u.Registered = expr
			}
		case "answer":
			var afields []field
			if afields, err = mapping(f.val, p); err != nil {
				return UserPolicy{}, err
			}
			if u.Answer, err = parseSpec(afields, p, outcomeKeys); err != nil {
				return UserPolicy{}, err
			}
		case "busy_when_in_call":
			if err = decodeScalar(f.val, p, &u.BusyWhenInCall, "must be true or false"); err != nil {
				return UserPolicy{}, err
			}
		default:
			return UserPolicy{}, unknownKey(f, "users", userKeys)
		}
	}
	return u, nil
}

// parseDist reads a duration string, {min, max}, {mean, stddev}, or either
// mapping with a shape: {shape: lognormal, mean, stddev}.
func parseDist(n *yaml.Node, path string) (Dist, error) {
	n = deref(n)
	var d Dist
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return Dist{}, errAt(n, path, "empty; give a duration such as \"1s\"")
		}
		v, msg := parseDuration(n.Value)
		if msg != "" {
			return Dist{}, errAt(n, path, "%s", msg)
		}
		d = Fixed(v)
	case yaml.MappingNode:
		var err error
		if d, err = parseDistMapping(n, path); err != nil {
			return Dist{}, err
		}
	default:
		return Dist{}, errAt(n, path, "must be a duration string, {min, max} or {mean, stddev}, not %s", describe(n))
	}
	if msg := d.check(); msg != "" {
		return Dist{}, errAt(n, path, "%s", msg)
	}
	return d, nil
}

// distKeys are the keys of a distribution's mapping.
var distKeys = []string{"shape", "min", "max", "mean", "stddev"}

// parseDistMapping reads {min, max}, {mean, stddev} and, with a shape,
// {shape: uniform|normal|lognormal, ...}. Without a shape the keys decide:
// min and max are uniform, mean and stddev normal.
func parseDistMapping(n *yaml.Node, path string) (Dist, error) {
	fields, err := mapping(n, path)
	if err != nil {
		return Dist{}, err
	}
	got := map[string]time.Duration{}
	var shape Shape
	for _, f := range fields {
		switch f.key {
		case "shape":
			s, err := scalar(f.val, path+".shape")
			if err != nil {
				return Dist{}, err
			}
			switch shape = Shape(s); shape {
			case ShapeUniform, ShapeNormal, ShapeLognormal:
			default:
				return Dist{}, errAt(f.val, path+".shape", "unknown shape %q (want uniform, normal or lognormal)", s)
			}
		case "min", "max", "mean", "stddev":
			s, err := scalar(f.val, path+"."+f.key)
			if err != nil {
				return Dist{}, err
			}
			v, msg := parseDuration(s)
			if msg != "" {
				return Dist{}, errAt(f.val, path+"."+f.key, "%s", msg)
			}
			got[f.key] = v
		default:
			return Dist{}, unknownKey(f, path, distKeys)
		}
	}
	_, hasMin := got["min"]
	_, hasMax := got["max"]
	_, hasMean := got["mean"]
	_, hasSD := got["stddev"]
	bounds, moments := hasMin || hasMax, hasMean || hasSD
	switch shape {
	case "":
		switch {
		case bounds && moments:
			return Dist{}, errAt(n, path, "give either min and max (uniform) or mean and stddev (normal), not both")
		case bounds:
			shape = ShapeUniform
		case moments:
			shape = ShapeNormal
		default:
			return Dist{}, errAt(n, path, "empty; give min and max, or mean and stddev")
		}
	case ShapeUniform:
		if moments {
			return Dist{}, errAt(n, path, "shape uniform takes min and max, not mean and stddev")
		}
	default:
		if bounds {
			return Dist{}, errAt(n, path, "shape %s takes mean and stddev, not min and max", shape)
		}
	}
	switch {
	case shape == ShapeUniform && !(hasMin && hasMax):
		return Dist{}, errAt(n, path, "uniform needs both min and max")
	case shape == ShapeUniform:
		return Uniform(got["min"], got["max"]), nil
	case !(hasMean && hasSD):
		return Dist{}, errAt(n, path, "%s needs both mean and stddev", shape)
	case shape == ShapeLognormal:
		return Lognormal(got["mean"], got["stddev"]), nil
	}
	return Normal(got["mean"], got["stddev"]), nil
}

// parseDuration parses a Go duration, with a friendlier message for the
// common mistake of a bare number.
func parseDuration(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, ""
	}
	if s != "" && strings.Trim(s, "0123456789.") == "" {
		return 0, fmt.Sprintf("duration %q has no unit; write e.g. \"%ss\" or \"%sms\"", s, s, s)
	}
	return 0, fmt.Sprintf("invalid duration %q (want e.g. \"1.5s\", \"300ms\")", s)
}

// ---- yaml.Node helpers ----

type field struct {
	key     string
	keyNode *yaml.Node // for its line
	val     *yaml.Node
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

func errAt(n *yaml.Node, path, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func unknownKey(f field, path string, known []string) *Error {
	return errAt(f.keyNode, path, "unknown key %q (known: %s)", f.key, strings.Join(known, ", "))
}

// mapping returns n's key/value pairs in order, with merge keys (<<)
// expanded (explicit keys win) and duplicate keys rejected.
func mapping(n *yaml.Node, path string) ([]field, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, path, "must be a mapping, not %s", describe(n))
	}
	var own, merged []field
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, path, "keys must be strings, not %s", describe(k))
		}
		if k.Tag == "!!merge" {
			v = deref(v)
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				fs, err := mapping(src, path)
				if err != nil {
					return nil, err
				}
				merged = append(merged, fs...)
			}
			continue
		}
		if seen[k.Value] {
			return nil, errAt(k, path, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		own = append(own, field{key: k.Value, keyNode: k, val: v})
	}
	for _, f := range merged {
		if !seen[f.key] {
			seen[f.key] = true
			own = append(own, f)
		}
	}
	return own, nil
}

func sequence(n *yaml.Node, path string) ([]*yaml.Node, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, path, "must be a list, not %s", describe(n))
	}
	return n.Content, nil
}

// scalar returns a scalar's text; null is "".
func scalar(n *yaml.Node, path string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, path, "must be a string, not %s", describe(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// decodeScalar decodes a scalar into dst (an *int, *uint64 or *bool). Integer
// targets need an integer-tagged scalar: yaml.v3 would truncate 1.5 to 1.
func decodeScalar(n *yaml.Node, path string, dst any, msg string) error {
	n = deref(n)
	wantInt := false
	switch dst.(type) {
	case *int, *uint64:
		wantInt = true
	}
	if n.Kind != yaml.ScalarNode || (wantInt && n.ShortTag() != "!!int") || n.Decode(dst) != nil {
		return errAt(n, path, "%s, not %s", msg, describe(n))
	}
	return nil
}
