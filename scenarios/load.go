package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim"
)

//go:embed *.yaml
var shipped embed.FS

// Suites lists the names of the shipped suites.
func Suites() []string {
	entries, _ := fs.ReadDir(shipped, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Endpoint is an endpoint as a scenario declares it.
type Endpoint struct {
	Domain   string          `json:"domain"`
	Settings policy.Settings `json:"settings"`
	Unlisted bool            `json:"unlisted,omitempty"`
	Faults   sim.Faults      `json:"-"`
	Timeout  time.Duration   `json:"timeout,omitempty"`
	// RecordReads records what the endpoint receives too: behind a proxy,
	// what arrives is not what was sent.
	RecordReads bool `json:"-"`
	// MaxElementBytes is the largest element it reads (0: the default).
	MaxElementBytes int `json:"max_element_bytes,omitempty"`
}

// Expect is what a negotiation should come to.
type Expect struct {
	Predicted bool          `json:"predicted,omitempty"` // whatever the oracle says
	Method    policy.Method `json:"method,omitempty"`
	Fail      bool          `json:"fail,omitempty"`
	Step      string        `json:"step,omitempty"`
	Condition string        `json:"condition,omitempty"`
	By        string        `json:"by,omitempty"`
}

func (e Expect) String() string {
	switch {
	case e.Predicted:
		return "predicted"
	case e.Method != "":
		return string(e.Method)
	}
	s := "fail"
	var parts []string
	for _, p := range []string{e.Step, e.Condition, e.By} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// Case is one negotiation to run.
type Case struct {
	ID        string     `json:"id"`
	Suite     string     `json:"suite"`
	Name      string     `json:"name"`
	Source    string     `json:"source"` // file:line of its declaration
	Initiator Endpoint   `json:"initiator"`
	Receiver  Endpoint   `json:"receiver"`
	Others    []Endpoint `json:"others,omitempty"`
	Expect    Expect     `json:"expect"`
	// Proxy puts a man-in-the-middle between initiator and receiver.
	Proxy sim.Downgrade `json:"proxy,omitempty"`
	// For sweeps: the rows of the full matrix the two sides have, the
	// partner's certificate state and strictness, and which side initiated.
	Row          string `json:"row,omitempty"`
	Partner      string `json:"partner,omitempty"`
	PartnerCert  string `json:"partner_cert,omitempty"`
	Strict       *bool  `json:"strict,omitempty"`
	RowInitiates bool   `json:"row_initiates,omitempty"`
	Sweep        string `json:"sweep,omitempty"`
}

// Sweep is a declared sweep, kept for row comparisons and grids.
type Sweep struct {
	Suite       string   `json:"suite"`
	Name        string   `json:"name"`
	Rows        []string `json:"rows"`
	Partners    []string `json:"partners"`
	CompareRows bool     `json:"compare_rows"`
}

// Suite is a loaded scenario file.
type Suite struct {
	Name        string  `json:"suite"`
	Description string  `json:"description"`
	File        string  `json:"file"`
	Cases       []*Case `json:"cases"`
	Sweeps      []Sweep `json:"sweeps"`
}

// Load returns the shipped suite of that name, or reads the file at that
// path.
func Load(nameOrPath string) (*Suite, error) {
	if b, err := shipped.ReadFile(nameOrPath + ".yaml"); err == nil {
		return Parse(nameOrPath+".yaml", b)
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("no suite %q: shipped suites are %s, or give a path to a YAML file", nameOrPath, strings.Join(Suites(), ", "))
		}
		return nil, err
	}
	return Parse(filepath.Clean(nameOrPath), b)
}

// Parse reads a scenario file. Errors name the file, line and column, and
// list the accepted keys or values.
func Parse(file string, data []byte) (*Suite, error) {
	l := &loader{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty file", file)
	}
	return l.suite(doc.Content[0])
}

type loader struct {
	file  string
	named map[string]Endpoint
}

func (l *loader) errf(n *yaml.Node, format string, a ...any) error {
	return fmt.Errorf("%s:%d:%d: %s", l.file, n.Line, n.Column, fmt.Sprintf(format, a...))
}

func (l *loader) where(n *yaml.Node) string { return fmt.Sprintf("%s:%d", l.file, n.Line) }

// fields walks a mapping, rejecting keys not in accepted.
func (l *loader) fields(n *yaml.Node, what string, accepted []string, f func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return l.errf(n, "%s must be a mapping with keys %s", what, strings.Join(accepted, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range accepted {
			ok = ok || a == k.Value
		}
		if !ok {
			return l.errf(k, "unknown key %q in %s (accepted: %s)", k.Value, what, strings.Join(accepted, ", "))
		}
		if seen[k.Value] {
			return l.errf(k, "key %q given twice in %s", k.Value, what)
		}
		seen[k.Value] = true
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", l.errf(n, "%s must be a single value", what)
	}
	return n.Value, nil
}

func (l *loader) list(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, l.errf(n, "%s must be a value or a list", what)
	}
	var out []string
	for _, c := range n.Content {
		v, err := l.scalar(c, what)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (l *loader) suite(n *yaml.Node) (*Suite, error) {
	s := &Suite{File: l.file, Name: strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))}
	l.named = map[string]Endpoint{}
	var scen, sweeps *yaml.Node
	err := l.fields(n, "a scenario file", []string{"suite", "description", "endpoints", "scenarios", "sweeps"}, func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "suite":
			s.Name, err = l.scalar(v, "suite")
		case "description":
			s.Description, err = l.scalar(v, "description")
		case "endpoints":
			if v.Kind != yaml.MappingNode {
				return l.errf(v, "endpoints must map names to endpoints")
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				e, err := l.endpoint(v.Content[i+1], "endpoint "+v.Content[i].Value)
				if err != nil {
					return err
				}
				l.named[v.Content[i].Value] = e
			}
		case "scenarios":
			scen = v
		case "sweeps":
			sweeps = v
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if scen == nil && sweeps == nil {
		return nil, l.errf(n, "a scenario file needs scenarios or sweeps")
	}
	if scen != nil {
		if scen.Kind != yaml.SequenceNode {
			return nil, l.errf(scen, "scenarios must be a list")
		}
		for _, c := range scen.Content {
			cs, err := l.scenario(s.Name, c)
			if err != nil {
				return nil, err
			}
			s.Cases = append(s.Cases, cs...)
		}
	}
	if sweeps != nil {
		if sweeps.Kind != yaml.SequenceNode {
			return nil, l.errf(sweeps, "sweeps must be a list")
		}
		for _, c := range sweeps.Content {
			sw, cs, err := l.sweep(s.Name, c)
			if err != nil {
				return nil, err
			}
			s.Sweeps = append(s.Sweeps, sw)
			s.Cases = append(s.Cases, cs...)
		}
	}
	seen := map[string]string{}
	for _, c := range s.Cases {
		if prev, ok := seen[c.ID]; ok {
			return nil, fmt.Errorf("%s: scenario %q is declared twice (also at %s)", c.Source, c.Name, prev)
		}
		seen[c.ID] = c.Source
	}
	return s, nil
}

var endpointKeys = []string{"domain", "tls", "sasl", "dialback", "cert", "strict", "secret", "listed", "silent_at", "faults", "timeout", "max_element_bytes"}

var silentSteps = []sim.Step{sim.StepStream, sim.StepStartTLS, sim.StepSASL, sim.StepDialback, sim.StepDialbackVerify}

func (l *loader) endpoint(n *yaml.Node, what string) (Endpoint, error) {
	if n.Kind == yaml.ScalarNode {
		e, ok := l.named[n.Value]
		if !ok {
			var names []string
			for k := range l.named {
				names = append(names, k)
			}
			sort.Strings(names)
			return e, l.errf(n, "%s: no endpoint named %q (named endpoints: %s)", what, n.Value, orNone(strings.Join(names, ", ")))
		}
		return e, nil
	}
	e := Endpoint{Settings: policy.DefaultSettings()}
	err := l.fields(n, what, endpointKeys, func(k string, v *yaml.Node) error {
		if k == "faults" {
			vals, err := l.list(v, "faults")
			if err != nil {
				return err
			}
			fs, err := sim.ParseFaults(strings.Join(vals, ","))
			if err != nil {
				return l.errf(v, "faults: %v", err)
			}
			fs.SilentAt = orStep(fs.SilentAt, e.Faults.SilentAt)
			e.Faults = fs
			return nil
		}
		val, err := l.scalar(v, k)
		if err != nil {
			return err
		}
		switch k {
		case "domain":
			e.Domain = val
		case "listed":
			b, err := policy.ParseBool(val)
			if err != nil {
				return l.errf(v, "listed: %v", err)
			}
			e.Unlisted = !b
		case "silent_at":
			for _, st := range silentSteps {
				if string(st) == val {
					e.Faults.SilentAt = st
					return nil
				}
			}
			return l.errf(v, "silent_at: invalid step %q: accepted values are %s", val, joinSteps(silentSteps))
		case "max_element_bytes":
			var n int
			if _, err := fmt.Sscan(val, &n); err != nil || n < 64 || n > 64<<20 {
				return l.errf(v, "max_element_bytes: %q is not a number of bytes from 64 to 67108864", val)
			}
			e.MaxElementBytes = n
		case "timeout":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return l.errf(v, "timeout: invalid duration %q (write it like 500ms or 2s)", val)
			}
			e.Timeout = d
		default:
			if err := e.Settings.Set(k, val); err != nil {
				return l.errf(v, "%v", err)
			}
		}
		return nil
	})
	if err == nil && e.Domain == "" {
		err = l.errf(n, "%s needs a domain", what)
	}
	return e, err
}

func joinSteps(ss []sim.Step) string {
	var out []string
	for _, s := range ss {
		out = append(out, string(s))
	}
	return strings.Join(out, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var failSteps = []string{"tcp", "stream", "starttls", "tls-handshake", "sasl", "dialback", "dialback-verify", "timeout"}
var sides = []string{"initiator", "receiver", "authoritative"}

func (l *loader) expect(n *yaml.Node) (Expect, error) {
	var e Expect
	accepted := "sasl-over-tls, tls-dialback, tcp-dialback, predicted, fail, or {fail: {step, condition, by}}"
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "predicted":
			e.Predicted = true
		case "fail":
			e.Fail = true
		default:
			m, err := policy.ParseMethod(n.Value)
			if err != nil {
				return e, l.errf(n, "expect: invalid value %q: accepted values are %s", n.Value, accepted)
			}
			e.Method = m
		}
		return e, nil
	}
	e.Fail = true
	err := l.fields(n, "expect", []string{"fail"}, func(_ string, v *yaml.Node) error {
		return l.fields(v, "expect.fail", []string{"step", "condition", "by"}, func(k string, v *yaml.Node) error {
			val, err := l.scalar(v, k)
			if err != nil {
				return err
			}
			switch k {
			case "step":
				if !contains(failSteps, val) {
					return l.errf(v, "step: invalid value %q: accepted values are %s", val, strings.Join(failSteps, ", "))
				}
				e.Step = val
			case "condition":
				e.Condition = val
			case "by":
				if !contains(sides, val) {
					return l.errf(v, "by: invalid value %q: accepted values are %s", val, strings.Join(sides, ", "))
				}
				e.By = val
			}
			return nil
		})
	})
	return e, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func slug(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	dash := false
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127 {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

func (l *loader) scenario(suite string, n *yaml.Node) ([]*Case, error) {
	c := &Case{Suite: suite, Source: l.where(n)}
	var others []Endpoint
	direction := "one"
	var initN, recvN, expN *yaml.Node
	err := l.fields(n, "a scenario", []string{"name", "initiator", "receiver", "others", "direction", "expect", "proxy"}, func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "proxy":
			var val string
			if val, err = l.scalar(v, "proxy"); err == nil {
				if c.Proxy, err = sim.ParseDowngrade(val); err != nil {
					err = l.errf(v, "proxy: %v", err)
				}
			}
		case "name":
			c.Name, err = l.scalar(v, "name")
		case "initiator":
			initN = v
			c.Initiator, err = l.endpoint(v, "initiator")
		case "receiver":
			recvN = v
			c.Receiver, err = l.endpoint(v, "receiver")
		case "others":
			if v.Kind != yaml.SequenceNode {
				return l.errf(v, "others must be a list of endpoints")
			}
			for _, o := range v.Content {
				e, err := l.endpoint(o, "others")
				if err != nil {
					return err
				}
				others = append(others, e)
			}
		case "direction":
			direction, err = l.scalar(v, "direction")
			if err == nil && direction != "one" && direction != "both" {
				err = l.errf(v, "direction: invalid value %q: accepted values are one, both", direction)
			}
		case "expect":
			expN = v
			c.Expect, err = l.expect(v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case c.Name == "":
		return nil, l.errf(n, "a scenario needs a name")
	case initN == nil || recvN == nil:
		return nil, l.errf(n, "scenario %q needs an initiator and a receiver", c.Name)
	case expN == nil:
		return nil, l.errf(n, "scenario %q needs expect (accepted: sasl-over-tls, tls-dialback, tcp-dialback, predicted, fail, {fail: {...}})", c.Name)
	case c.Initiator.Domain == c.Receiver.Domain:
		return nil, l.errf(recvN, "scenario %q: initiator and receiver are both %s; give them different domains", c.Name, c.Receiver.Domain)
	}
	c.Others = others
	if c.Proxy != "" {
		c.Initiator.RecordReads = true
		if direction == "both" {
			return nil, l.errf(n, "scenario %q: a proxied scenario runs in one direction", c.Name)
		}
	}
	c.ID = suite + "/" + slug(c.Name)
	cases := []*Case{c}
	if direction == "both" {
		back := *c
		back.Initiator, back.Receiver = c.Receiver, c.Initiator
		back.ID += "/reverse"
		back.Name += " (reverse)"
		c.ID += "/forward"
		cases = append(cases, &back)
	}
	return cases, nil
}

func (l *loader) rows(n *yaml.Node, what string) ([]policy.Row, error) {
	vals, err := l.list(n, what)
	if err != nil {
		return nil, err
	}
	if len(vals) == 1 && vals[0] == "all" {
		return policy.Full.Rows, nil
	}
	var out []policy.Row
	seen := map[string]bool{}
	for _, v := range vals {
		if seen[strings.ToUpper(v)] {
			return nil, l.errf(n, "%s: row %q given twice", what, v)
		}
		seen[strings.ToUpper(v)] = true
		r, ok := policy.Full.Row(v)
		if !ok {
			return nil, l.errf(n, "%s: no row %q in the full matrix (accepted: all, or M1 to M18)", what, v)
		}
		out = append(out, r)
	}
	return out, nil
}

// maxSweepCases bounds what one sweep declares: the pairwise suite is
// 9072, and a file must not be able to ask for millions.
const maxSweepCases = 100_000

func (l *loader) sweep(suite string, n *yaml.Node) (Sweep, []*Case, error) {
	sw := Sweep{Suite: suite}
	rows, partners := policy.Full.Rows, policy.Full.Rows
	directions := "both"
	pcerts := []certs.State{certs.Valid}
	stricts := []bool{true}
	exp := Expect{Predicted: true}
	err := l.fields(n, "a sweep", []string{"name", "rows", "partners", "directions", "partner_certs", "strict", "expect", "compare_rows"}, func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "name":
			sw.Name, err = l.scalar(v, "name")
		case "rows":
			rows, err = l.rows(v, "rows")
		case "partners":
			partners, err = l.rows(v, "partners")
		case "directions":
			directions, err = l.scalar(v, "directions")
			if err == nil && !contains([]string{"both", "row-initiates", "partner-initiates"}, directions) {
				err = l.errf(v, "directions: invalid value %q: accepted values are both, row-initiates, partner-initiates", directions)
			}
		case "partner_certs":
			var vals []string
			if vals, err = l.list(v, "partner_certs"); err != nil {
				return err
			}
			pcerts = nil
			if len(vals) == 1 && vals[0] == "all" {
				pcerts = certs.States
				return nil
			}
			for _, s := range vals {
				st, err := certs.ParseState(s)
				if err != nil {
					return l.errf(v, "partner_certs: %v", err)
				}
				for _, x := range pcerts {
					if x == st {
						return l.errf(v, "partner_certs: %q given twice", s)
					}
				}
				pcerts = append(pcerts, st)
			}
		case "strict":
			var vals []string
			if vals, err = l.list(v, "strict"); err != nil {
				return err
			}
			stricts = nil
			for _, s := range vals {
				b, err := policy.ParseBool(s)
				if err != nil {
					return l.errf(v, "strict: %v", err)
				}
				if len(stricts) > 0 && stricts[0] == b {
					return l.errf(v, "strict: %q given twice", s)
				}
				stricts = append(stricts, b)
			}
		case "expect":
			exp, err = l.expect(v)
		case "compare_rows":
			var val string
			if val, err = l.scalar(v, "compare_rows"); err == nil {
				if val != "documented" {
					return l.errf(v, "compare_rows: invalid value %q: the accepted value is documented", val)
				}
				sw.CompareRows = true
			}
		}
		return err
	})
	if err != nil {
		return sw, nil, err
	}
	if sw.Name == "" {
		return sw, nil, l.errf(n, "a sweep needs a name")
	}
	total := len(rows) * len(partners) * len(pcerts) * len(stricts)
	if directions == "both" {
		total *= 2
	}
	if total > maxSweepCases {
		return sw, nil, l.errf(n, "sweep %q would run %d negotiations; the limit is %d", sw.Name, total, maxSweepCases)
	}
	for _, r := range rows {
		sw.Rows = append(sw.Rows, r.ID)
	}
	for _, p := range partners {
		sw.Partners = append(sw.Partners, p.ID)
	}
	var cases []*Case
	src := l.where(n)
	for _, r := range rows {
		for _, p := range partners {
			for _, st := range pcerts {
				for _, strict := range stricts {
					strict := strict
					rowEP := Endpoint{Domain: "row.test", Settings: policy.Settings{Policy: r.Policy, Cert: certs.Valid, Strict: strict}}
					partEP := Endpoint{Domain: "partner.test", Settings: policy.Settings{Policy: p.Policy, Cert: st, Strict: strict}}
					for _, rowInit := range []bool{true, false} {
						if (directions == "row-initiates" && !rowInit) || (directions == "partner-initiates" && rowInit) {
							continue
						}
						c := &Case{Suite: suite, Sweep: sw.Name, Source: src, Expect: exp, Row: r.ID, Partner: p.ID,
							PartnerCert: string(st), Strict: &strict, RowInitiates: rowInit}
						dir := "row-initiates"
						c.Initiator, c.Receiver = rowEP, partEP
						if !rowInit {
							dir = "partner-initiates"
							c.Initiator, c.Receiver = partEP, rowEP
						}
						id := []string{suite, sw.Name, r.ID, p.ID}
						if len(pcerts) > 1 || st != certs.Valid {
							id = append(id, string(st))
						}
						if len(stricts) > 1 || !strict {
							id = append(id, map[bool]string{true: "strict", false: "lenient"}[strict])
						}
						id = append(id, dir)
						c.ID = strings.Join(id, "/")
						c.Name = fmt.Sprintf("%s (%s) vs %s (%s, cert %s, %s), %s", r.ID, r.Policy.Short(), p.ID, p.Policy.Short(), st,
							map[bool]string{true: "strict", false: "lenient"}[strict], dir)
						cases = append(cases, c)
					}
				}
			}
		}
	}
	return sw, cases, nil
}

func orStep(a, b sim.Step) sim.Step {
	if a != "" {
		return a
	}
	return b
}
