package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/domain"
	"xmppneg/policy/outcome"
	"xmppneg/policy/safefile"
	"xmppneg/policy/serverconf"
	"xmppneg/sim"
	"xmppneg/sim/realserver"
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

// Endpoint is an endpoint as a scenario declares it: one of the
// harness's own, or a real server.
type Endpoint struct {
	Domain   string          `json:"domain"`
	Settings policy.Settings `json:"settings"`
	// Server, when set, makes the endpoint a real server of that setting;
	// Settings are then its knobs in the harness's vocabulary.
	Server   realserver.Setting `json:"-"`
	Unlisted bool               `json:"unlisted,omitempty"`
	Faults   sim.Faults         `json:"-"`
	Timeout  time.Duration      `json:"-"`
	// RecordReads records what the endpoint receives too: behind a proxy,
	// what arrives is not what was sent.
	RecordReads bool `json:"-"`
	// MaxElementBytes is the largest element it reads (0: the default).
	MaxElementBytes int `json:"max_element_bytes,omitempty"`
}

// String names the endpoint and its settings as reports show them.
func (e Endpoint) String() string {
	if e.Server != nil {
		return fmt.Sprintf("%s (real %s: %s)", e.Domain, e.Server.Kind(), e.Server)
	}
	return e.Domain + " " + e.Settings.String()
}

// Oracle says how a negotiation is compared with the oracle's
// prediction, when it is.
type Oracle uint8

// The comparisons with the oracle.
const (
	// NoOracle: the expectation is written out (Expect.Want).
	NoOracle Oracle = iota
	// Predicted: the same method, or a failure at the same step with the
	// same condition raised by the same side.
	Predicted
	// PredictedOutcome: the same method, or a failure however it was
	// raised. Real servers are compared this way: where they name a
	// failure differently, the report notes it.
	PredictedOutcome
	// Unchecked: nothing is expected; the negotiation is only reported
	// (xmppneg negotiate with faults, which the oracle knows nothing of).
	Unchecked
)

// Expect is what a negotiation should come to.
type Expect struct {
	Oracle Oracle
	// Want is the expected outcome when Oracle is NoOracle; its failure
	// may leave step, condition and side open.
	Want outcome.Outcome
	// Reason, when set, is text the observed failure's message must
	// contain (case-insensitive): the reason an administrator reads.
	Reason string
}

func (e Expect) String() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s saying %q", e.want(), e.Reason)
	}
	return e.want()
}

func (e Expect) want() string {
	switch e.Oracle {
	case Predicted:
		return "predicted"
	case PredictedOutcome:
		return "predicted-outcome"
	case Unchecked:
		return "none"
	}
	return e.Want.String()
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
	Expect    Expect     `json:"-"`
	// Proxy puts a man-in-the-middle between initiator and receiver.
	Proxy sim.Downgrade `json:"proxy,omitempty"`
	// For sweeps: the row (a row of the full matrix, or a real server's
	// setting), the partner's row, certificate state and strictness, and
	// which side initiated.
	Sweep       string `json:"sweep,omitempty"`
	Row         string `json:"row,omitempty"`
	Partner     string `json:"partner,omitempty"`
	PartnerCert string `json:"partner_cert,omitempty"`
	// Refuse is when the sweep's harness endpoints refuse an invalid
	// certificate (policy.RefusalPoints).
	Refuse       string `json:"refuse,omitempty"`
	RowInitiates bool   `json:"row_initiates,omitempty"`
	// Direction is, for two real servers meeting (federation), which one
	// initiated: "a-to-b" or "b-to-a".
	Direction string `json:"direction,omitempty"`
}

// real returns the endpoint of c that is a real server, if any.
func (c *Case) real() (Endpoint, bool) {
	for _, e := range []Endpoint{c.Initiator, c.Receiver} {
		if e.Server != nil {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Sweep is a declared sweep, kept for row comparisons and grids.
type Sweep struct {
	Suite string `json:"suite"`
	Name  string `json:"name"`
	// Rows are the row ids: rows of the full matrix, or a real server's
	// settings; Titles describe them.
	Rows     []string          `json:"rows"`
	Titles   map[string]string `json:"-"`
	Partners []string          `json:"partners"`
	// PartnerTitles and PartnerShort describe the partners: their
	// settings in full and in short.
	PartnerTitles map[string]string `json:"-"`
	PartnerShort  map[string]string `json:"-"`
	// Server is the real server whose settings are the rows, if any.
	Server      string `json:"server,omitempty"`
	CompareRows bool   `json:"compare_rows"`
	// Federation marks a sweep of two real servers meeting: its rows are
	// RowServer's settings, its partners PartnerServer's.
	Federation               bool   `json:"federation,omitempty"`
	RowServer, PartnerServer string `json:"-"`
}

// Suite is a loaded scenario file.
type Suite struct {
	Name        string  `json:"suite"`
	Description string  `json:"description"`
	File        string  `json:"file"`
	Cases       []*Case `json:"cases"`
	Sweeps      []Sweep `json:"sweeps"`
}

// MaxSuiteBytes is the default limit on a scenario file's size: the YAML
// decoder holds about 47 times a file's size before anything is
// checked, so a file of 16 MiB costs under 1 GiB (run --max-input
// raises it).
const MaxSuiteBytes = 16 << 20

// MaxReportBytes bounds a shard's JSON report read by merge, and
// MaxTranscriptFile a transcript file it copies (one negotiation's
// transcript keeps its first and last 128 KiB).
const (
	MaxReportBytes    = 256 << 20
	MaxTranscriptFile = 4 << 20
)

// Load returns the shipped suite of that name, or reads the file at that
// path, which must be a regular file of at most MaxSuiteBytes.
func Load(nameOrPath string) (*Suite, error) { return LoadLimited(nameOrPath, MaxSuiteBytes) }

// LoadLimited is Load with another size limit.
func LoadLimited(nameOrPath string, limit int64) (*Suite, error) {
	if b, err := shipped.ReadFile(nameOrPath + ".yaml"); err == nil {
		return Parse(nameOrPath+".yaml", b)
	}
	b, err := safefile.Read(nameOrPath, limit, "--max-input")
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

// fields walks a mapping, rejecting keys not in accepted and keys given
// twice.
func (l *loader) fields(n *yaml.Node, what string, accepted []string, f func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return l.errf(n, "%s must be a mapping with keys %s", what, strings.Join(accepted, ", "))
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range accepted {
			ok = ok || a == k.Value
		}
		if !ok {
			hint := ""
			if near := policy.Closest(k.Value, accepted); near != "" {
				hint = fmt.Sprintf("; did you mean %q?", near)
			}
			return l.errf(k, "unknown key %q in %s%s (accepted: %s)", k.Value, what, hint, strings.Join(accepted, ", "))
		}
		if prev, dup := seen[k.Value]; dup {
			return l.errf(k, "key %q given twice in %s (also at line %d)", k.Value, what, prev.Line)
		}
		seen[k.Value] = k
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
	seen := map[string]bool{}
	for _, c := range n.Content {
		v, err := l.scalar(c, what)
		if err != nil {
			return nil, err
		}
		// Found by FuzzParse: repeated values let a sweep ask for
		// millions of negotiations.
		if seen[strings.ToLower(v)] {
			return nil, l.errf(c, "%s: %q given twice", what, v)
		}
		seen[strings.ToLower(v)] = true
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
			err = l.endpoints(v)
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

// endpoints reads the named endpoints; a name given twice is an error
// naming both lines (YAML would let the last one win).
func (l *loader) endpoints(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return l.errf(v, "endpoints must map names to endpoints")
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		name := v.Content[i]
		if prev, ok := lines[name.Value]; ok {
			return l.errf(name, "endpoint %q is named twice (also at line %d)", name.Value, prev)
		}
		lines[name.Value] = name.Line
		e, err := l.endpoint(v.Content[i+1], "endpoint "+name.Value)
		if err != nil {
			return err
		}
		l.named[name.Value] = e
	}
	return nil
}

var endpointKeys = append([]string{"domain", "profile", "tls", "sasl", "dialback", "cert", "strict", "secret", "listed", "silent_at", "faults", "timeout", "max_element_bytes", "server", "config"}, policy.KnobKeys()...)

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
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "server" {
				return l.realEndpoint(n, what)
			}
		}
	}
	e := Endpoint{Settings: policy.DefaultSettings()}
	// A profile (or a server's configuration file) is applied first,
	// wherever it stands; the other keys override it (as in a spec).
	var configHost string
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "config" {
			v := n.Content[i+1]
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == "profile" {
					return e, l.errf(v, "config: profile and config both say where to start from: give one")
				}
			}
			// A relative path is the scenario file's neighbour.
			ref := v.Value
			if file, _ := serverconf.ParseRef(ref); file != "" && !filepath.IsAbs(file) {
				ref = filepath.Join(filepath.Dir(l.file), ref)
			}
			_, h, err := serverconf.Resolve(ref, serverconf.Options{})
			if err != nil {
				return e, l.errf(v, "config: %v", err)
			}
			e.Settings = h.Settings
			configHost = h.Name
		}
		if n.Content[i].Value == "profile" {
			v := n.Content[i+1]
			p, err := policy.LookupProfile(v.Value)
			if err != nil {
				return e, l.errf(v, "profile: %v", err)
			}
			e.Settings = p.Settings
			e.Settings.Profile = p.Name
		}
	}
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
			if fs.SilentAt == 0 {
				fs.SilentAt = e.Faults.SilentAt
			}
			e.Faults = fs
			return nil
		}
		val, err := l.scalar(v, k)
		if err != nil {
			return err
		}
		switch k {
		case "domain":
			// Checked here, where the name enters: it becomes file
			// names (certificates, a real server's configuration).
			if err := domain.Check(val); err != nil {
				return l.errf(v, "domain: %v", err)
			}
			e.Domain = val
		case "profile", "config":
			// applied above
		case "listed":
			b, err := policy.ParseBool(val)
			if err != nil {
				return l.errf(v, "listed: %v", err)
			}
			e.Unlisted = !b
		case "silent_at":
			st, err := sim.ParseFaultStep(val)
			if err != nil {
				return l.errf(v, "silent_at: %v", err)
			}
			e.Faults.SilentAt = st
		case "max_element_bytes":
			var n int
			if _, err := fmt.Sscan(val, &n); err != nil || n < 64 || n > 64<<20 {
				return l.errf(v, "max_element_bytes: %q is not a number of bytes from 64 to 67108864", val)
			}
			e.MaxElementBytes = n
		case "timeout":
			d, err := parseTimeout(val)
			if err != nil {
				return l.errf(v, "timeout: %v", err)
			}
			e.Timeout = d
		default:
			if err := e.Settings.Set(k, val); err != nil {
				return l.errf(v, "%v", err)
			}
		}
		return nil
	})
	if err == nil && e.Domain == "" && configHost != "" && configHost != "*" {
		if cerr := domain.Check(configHost); cerr != nil {
			err = l.errf(n, "%s: the host of its configuration: %v", what, cerr)
		}
		e.Domain = configHost
	}
	if err == nil && e.Domain == "" {
		err = l.errf(n, "%s needs a domain", what)
	}
	if lo, hi := e.Settings.TLSRange(); err == nil && lo > hi {
		err = l.errf(n, "%s: tls_max %d.%d is below tls_min %d.%d: give both, such as tls_min: \"1.0\", tls_max: \"%d.%d\"", what, hi/10, hi%10, lo/10, lo%10, hi/10, hi%10)
	}
	return e, err
}

func parseTimeout(val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid duration %q (write it like 500ms or 2s)", val)
	}
	return d, nil
}

// realEndpoint reads an endpoint that is a real server: {server: KIND,
// domain: D, and the kind's knobs}.
func (l *loader) realEndpoint(n *yaml.Node, what string) (Endpoint, error) {
	var kind *realserver.Kind
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "server" {
			v := n.Content[i+1]
			var err error
			if kind, err = realserver.LookupKind(v.Value); err != nil {
				return Endpoint{}, l.errf(v, "server: %v", err)
			}
		}
	}
	e := Endpoint{Domain: kind.Name + ".test"}
	knobs := map[string]string{}
	err := l.fields(n, what+" (a real "+kind.Name+")", append([]string{"server", "domain"}, kind.KeyNames()...), func(k string, v *yaml.Node) error {
		val, err := l.scalar(v, k)
		switch {
		case err != nil:
			return err
		case k == "domain":
			// Checked before anything is written: a real server's
			// certificate and key are files named after it.
			if err := domain.Check(val); err != nil {
				return l.errf(v, "domain: %v", err)
			}
			e.Domain = val
		case k != "server":
			knobs[k] = val
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	s, err := kind.Parse(knobs)
	if err != nil {
		return e, l.errf(n, "%s: %v", what, err)
	}
	e.Server, e.Settings = s, s.Policy()
	return e, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// acceptedExpect lists what expect accepts: the methods as
// policy/outcome lists them (a new one is accepted and named at once).
var acceptedExpect = outcome.AcceptedMethods + ", predicted, predicted-outcome, fail, or {fail: {step, condition, by, reason}}"

func (l *loader) expect(n *yaml.Node) (Expect, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "predicted":
			return Expect{Oracle: Predicted}, nil
		case "predicted-outcome":
			return Expect{Oracle: PredictedOutcome}, nil
		case "fail":
			return Expect{Want: outcome.AnyFailure()}, nil
		}
		m, err := outcome.ParseMethod(n.Value)
		if err != nil {
			return Expect{}, l.errf(n, "expect: invalid value %q: accepted values are %s", n.Value, acceptedExpect)
		}
		return Expect{Want: outcome.Succeeded(m)}, nil
	}
	var f outcome.Failure
	var reason string
	err := l.fields(n, "expect", []string{"fail"}, func(_ string, v *yaml.Node) error {
		return l.fields(v, "expect.fail", []string{"step", "condition", "by", "reason"}, func(k string, v *yaml.Node) error {
			val, err := l.scalar(v, k)
			if err != nil {
				return err
			}
			switch k {
			case "step":
				f.Step, err = outcome.ParseStep(val)
			case "condition":
				f.Condition, err = outcome.ParseCondition(val)
			case "by":
				f.By, err = outcome.ParseSide(val)
			case "reason":
				if reason = strings.TrimSpace(val); reason == "" {
					err = fmt.Errorf("empty: give text the failure's message must contain")
				}
			}
			if err != nil {
				return l.errf(v, "%s: %v", k, err)
			}
			return nil
		})
	})
	return Expect{Want: outcome.Failed(f), Reason: reason}, err
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
				if e.Server != nil {
					return l.errf(o, "others: a real server can only be the initiator or the receiver")
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
		return nil, l.errf(n, "scenario %q needs expect (accepted: %s)", c.Name, acceptedExpect)
	case c.Initiator.Domain == c.Receiver.Domain:
		return nil, l.errf(recvN, "scenario %q: initiator and receiver are both %s; give them different domains", c.Name, c.Receiver.Domain)
	case c.Initiator.Server != nil && c.Receiver.Server != nil:
		return nil, l.errf(recvN, "scenario %q: two real servers; one side must be the harness's", c.Name)
	}
	c.Others = others
	if c.Proxy != "" {
		c.Initiator.RecordReads = true
		switch {
		case direction == "both":
			return nil, l.errf(n, "scenario %q: a proxied scenario runs in one direction", c.Name)
		case c.Initiator.Server != nil || c.Receiver.Server != nil:
			return nil, l.errf(n, "scenario %q: a proxy stands only between the harness's own endpoints", c.Name)
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

// partnerRow is a row a sweep takes settings from: a row of the full
// matrix, or of the common table.
func partnerRow(id string) (policy.Row, bool) {
	if r, ok := policy.Full.Row(id); ok {
		return r, true
	}
	return policy.Common.Row(id)
}

func (l *loader) rows(n *yaml.Node, what string, common bool) ([]policy.Row, error) {
	vals, err := l.list(n, what)
	if err != nil {
		return nil, err
	}
	if len(vals) == 1 && vals[0] == "all" {
		return policy.Full.Rows, nil
	}
	accepted := "all, or M1 to M18"
	if common {
		accepted = "all, M1 to M18, or C1 to C4"
	}
	var out []policy.Row
	for _, v := range vals {
		r, ok := policy.Full.Row(v)
		if !ok && common {
			r, ok = policy.Common.Row(v)
		}
		if !ok {
			return nil, l.errf(n, "%s: no row %q (accepted: %s)", what, v, accepted)
		}
		out = append(out, r)
	}
	return out, nil
}

// maxSweepCases bounds what one sweep declares: the pairwise suite is
// 9072, and a file must not be able to ask for millions.
const maxSweepCases = 100_000

// sweepRow is one value of a sweep's row dimension: a row of the full
// matrix, a profile, or a setting of a real server.
type sweepRow struct {
	id, title string
	ep        Endpoint
	fixed     bool // a profile or a real server: the refuse dimension leaves it alone
}

// sweepPartner is one value of a sweep's partner dimension: the settings
// of a row of the full matrix or of the common table, or a profile.
type sweepPartner struct {
	id, short, title string
	settings         policy.Settings
	profile          bool
}

func rowPartners(rows []policy.Row) []sweepPartner {
	var out []sweepPartner
	for _, r := range rows {
		out = append(out, sweepPartner{id: r.ID, short: r.Policy.Short(), title: r.Policy.String(), settings: policy.Settings{Policy: r.Policy}})
	}
	return out
}

// profileList reads a list of profile names, or all.
func (l *loader) profileList(n *yaml.Node, what string) ([]policy.Profile, error) {
	vals, err := l.list(n, what)
	if err != nil {
		return nil, err
	}
	if len(vals) == 1 && vals[0] == "all" {
		return policy.Profiles(), nil
	}
	var out []policy.Profile
	for _, v := range vals {
		p, err := policy.LookupProfile(v)
		if err != nil {
			return nil, l.errf(n, "%s: %v", what, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// sweep reads one sweep of a suite in three steps: parse its keys,
// validate them against each other (and make the row dimension), and
// expand the dimensions into cases. Each error names the file and line.
func (l *loader) sweep(suite string, n *yaml.Node) (Sweep, []*Case, error) {
	spec, err := l.parseSweep(n)
	if err != nil {
		return Sweep{}, nil, err
	}
	dims, err := l.validateSweep(spec)
	if err != nil {
		return Sweep{}, nil, err
	}
	sw, cases := spec.expand(suite, l.where(n), dims)
	return sw, cases, nil
}

// sweepSpec is a sweep as its file declares it, each key parsed on its
// own, with the defaults of the keys not given.
type sweepSpec struct {
	node        *yaml.Node
	name        string
	rows        []policy.Row // of the full matrix, unless profiles or a server's settings are the rows
	rowProfiles []policy.Profile
	kind        *realserver.Kind // the real server whose settings are the rows
	settingsN   *yaml.Node       // its settings, read once the server is known
	refuseN     *yaml.Node       // where the refuse (or strict) dimension was given
	partners    []sweepPartner
	directions  string
	pcerts      []certs.State
	pcertsGiven bool
	refusals    []string
	expect      Expect
	compareRows bool
	timeout     time.Duration
}

// sweepKeys are the keys a sweep accepts.
var sweepKeys = []string{"name", "rows", "profiles", "server", "settings", "partners", "partner_profiles", "directions", "partner_certs", "refuse", "strict", "expect", "compare_rows", "timeout"}

// parseSweep reads a sweep's keys, each checked on its own.
func (l *loader) parseSweep(n *yaml.Node) (*sweepSpec, error) {
	sp := &sweepSpec{node: n, rows: policy.Full.Rows, partners: rowPartners(policy.Full.Rows), directions: "both",
		pcerts: []certs.State{certs.Valid}, refusals: []string{"handshake"}, expect: Expect{Oracle: Predicted}}
	err := l.fields(n, "a sweep", sweepKeys, func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "name":
			sp.name, err = l.scalar(v, "name")
		case "rows":
			sp.rows, err = l.rows(v, "rows", false)
		case "profiles":
			sp.rowProfiles, err = l.profileList(v, "profiles")
		case "partner_profiles":
			var ps []policy.Profile
			if ps, err = l.profileList(v, "partner_profiles"); err == nil {
				sp.partners = nil
				for _, p := range ps {
					sp.partners = append(sp.partners, sweepPartner{id: p.Name, short: p.Name, title: p.Settings.String(), settings: p.Settings, profile: true})
				}
			}
		case "server":
			var val string
			if val, err = l.scalar(v, "server"); err == nil {
				if sp.kind, err = realserver.LookupKind(val); err != nil {
					err = l.errf(v, "server: %v", err)
				}
			}
		case "settings":
			sp.settingsN = v
		case "partners":
			var rs []policy.Row
			if rs, err = l.rows(v, "partners", true); err == nil {
				sp.partners = rowPartners(rs)
			}
		case "directions":
			sp.directions, err = l.scalar(v, "directions")
			if err == nil && !contains([]string{"both", "row-initiates", "partner-initiates"}, sp.directions) {
				err = l.errf(v, "directions: invalid value %q: accepted values are both, row-initiates, partner-initiates", sp.directions)
			}
		case "partner_certs":
			sp.pcertsGiven = true
			sp.pcerts, err = l.partnerCerts(v)
		case "refuse", "strict":
			sp.refuseN = v
			sp.refusals, err = l.refusals(v, k)
		case "expect":
			sp.expect, err = l.expect(v)
		case "compare_rows":
			var val string
			if val, err = l.scalar(v, "compare_rows"); err == nil {
				if val != "documented" {
					return l.errf(v, "compare_rows: invalid value %q: the accepted value is documented", val)
				}
				sp.compareRows = true
			}
		case "timeout":
			var val string
			if val, err = l.scalar(v, "timeout"); err == nil {
				if sp.timeout, err = parseTimeout(val); err != nil {
					err = l.errf(v, "timeout: %v", err)
				}
			}
		}
		return err
	})
	return sp, err
}

// partnerCerts reads partner_certs: a list of certificate states, or all.
func (l *loader) partnerCerts(v *yaml.Node) ([]certs.State, error) {
	vals, err := l.list(v, "partner_certs")
	if err != nil {
		return nil, err
	}
	if len(vals) == 1 && vals[0] == "all" {
		return certs.States, nil
	}
	var out []certs.State
	for _, s := range vals {
		st, err := certs.ParseState(s)
		if err != nil {
			return nil, l.errf(v, "partner_certs: %v", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// refusals reads the refuse dimension: refusal points (or all), or, as
// strict (k), booleans that stand for the handshake and sasl points.
func (l *loader) refusals(v *yaml.Node, k string) ([]string, error) {
	vals, err := l.list(v, k)
	if err != nil {
		return nil, err
	}
	if len(vals) == 1 && vals[0] == "all" && k == "refuse" {
		return policy.RefusalPoints, nil
	}
	var out []string
	for _, s := range vals {
		if k == "strict" {
			b, err := policy.ParseBool(s)
			if err != nil {
				return nil, l.errf(v, "strict: %v", err)
			}
			s = map[bool]string{true: "handshake", false: "sasl"}[b]
			if contains(out, s) {
				return nil, l.errf(v, "strict: %q given twice", s)
			}
		}
		var probe policy.Settings
		if err := probe.SetRefusalPoint(s); err != nil {
			return nil, l.errf(v, "%s: %v", k, err)
		}
		out = append(out, strings.ToLower(s))
	}
	return out, nil
}

// profilePartners reports whether the partners are profiles (not rows).
func (sp *sweepSpec) profilePartners() bool { return len(sp.partners) > 0 && sp.partners[0].profile }

// validateSweep checks a sweep's keys against each other and makes its
// row dimension: profiles, a real server's settings, or rows of the full
// matrix. It bounds the number of negotiations the sweep declares.
func (l *loader) validateSweep(sp *sweepSpec) ([]sweepRow, error) {
	n := sp.node
	if sp.name == "" {
		return nil, l.errf(n, "a sweep needs a name")
	}
	var dims []sweepRow
	switch {
	case sp.refuseN != nil && sp.profilePartners():
		return nil, l.errf(sp.refuseN, "refuse: profiles refuse an invalid certificate as they say; the refuse dimension applies to rows of the matrix")
	case sp.rowProfiles != nil && (sp.kind != nil || sp.settingsN != nil):
		return nil, l.errf(n, "sweep %q: the rows are profiles or a server's settings, not both", sp.name)
	case sp.rowProfiles != nil:
		if sp.compareRows {
			return nil, l.errf(n, "sweep %q: compare_rows applies to rows of the full matrix, not to profiles", sp.name)
		}
		for _, p := range sp.rowProfiles {
			dims = append(dims, sweepRow{id: p.Name, title: p.Settings.String(), fixed: true,
				ep: Endpoint{Domain: "row.test", Settings: p.Settings, Timeout: sp.timeout}})
		}
	case sp.kind == nil && sp.settingsN != nil:
		return nil, l.errf(sp.settingsN, "settings: give the server whose settings these are (server: %s)", strings.Join(kindNames(), "|"))
	case sp.kind != nil:
		if sp.compareRows {
			return nil, l.errf(n, "sweep %q: compare_rows applies to rows of the full matrix, not to a real server's settings", sp.name)
		}
		var err error
		if dims, err = l.serverSettings(sp.kind, sp.settingsN); err != nil {
			return nil, err
		}
		for i := range dims {
			dims[i].fixed = true
		}
	default:
		for _, r := range sp.rows {
			dims = append(dims, sweepRow{id: r.ID, title: r.Policy.String(),
				ep: Endpoint{Domain: "row.test", Settings: policy.Settings{Policy: r.Policy, Cert: certs.Valid}}})
		}
	}
	total := len(dims) * len(sp.partners) * len(sp.pcerts) * len(sp.refusals)
	if sp.directions == "both" {
		total *= 2
	}
	if total > maxSweepCases {
		return nil, l.errf(n, "sweep %q would run %d negotiations; the limit is %d", sp.name, total, maxSweepCases)
	}
	return dims, nil
}

// expand makes a validated sweep's record and its cases: every row ×
// partner × partner certificate × refusal point × direction, in that
// order. src is where the sweep is declared.
func (sp *sweepSpec) expand(suite, src string, dims []sweepRow) (Sweep, []*Case) {
	sw := Sweep{Suite: suite, Name: sp.name, Titles: map[string]string{}, PartnerTitles: map[string]string{}, PartnerShort: map[string]string{},
		CompareRows: sp.compareRows}
	if sp.kind != nil {
		sw.Server = sp.kind.Name
	}
	for _, d := range dims {
		sw.Rows = append(sw.Rows, d.id)
		sw.Titles[d.id] = d.title
	}
	pcerts := sp.pcerts
	if sp.profilePartners() && !sp.pcertsGiven {
		pcerts = []certs.State{""} // each profile's own certificate
	}
	for _, p := range sp.partners {
		sw.Partners = append(sw.Partners, p.id)
		sw.PartnerTitles[p.id] = p.title
		sw.PartnerShort[p.id] = p.short
	}
	var cases []*Case
	for ri, d := range dims {
		for pi, p := range sp.partners {
			for _, st := range pcerts {
				for _, refuse := range sp.refusals {
					cases = append(cases, sp.cases(suite, src, ri, pi, d, p, st, refuse, len(pcerts) > 1)...)
				}
			}
		}
	}
	return sw, cases
}

// cases are the negotiations of one row d (the ri-th) and one partner p
// (the pi-th) with the partner's certificate st and the refusal point
// refuse: one per direction the sweep runs. manyCerts says whether the
// sweep has more than one partner certificate, which ids then name.
func (sp *sweepSpec) cases(suite, src string, ri, pi int, d sweepRow, p sweepPartner, st certs.State, refuse string, manyCerts bool) []*Case {
	rowEP := d.ep
	if !d.fixed {
		_ = rowEP.Settings.SetRefusalPoint(refuse)
	}
	partEP := Endpoint{Domain: "partner.test", Settings: p.settings, Timeout: sp.timeout}
	if st != "" {
		partEP.Settings.Cert = st
	}
	if !p.profile {
		_ = partEP.Settings.SetRefusalPoint(refuse)
	}
	cert := string(partEP.Settings.Cert)
	rowDir, partnerDir := "row-initiates", "partner-initiates"
	if sp.kind != nil {
		rowDir, partnerDir = "server-initiates", "harness-initiates"
		// Real servers keep what they learnt of a domain: every
		// negotiation gets a harness domain of its own.
		partEP.Domain = fmt.Sprintf("h%d-%d-%s.test", ri, pi, slug(string(st)))
		partEP.RecordReads = true
	}
	var cases []*Case
	for _, rowInit := range []bool{true, false} {
		if (sp.directions == "row-initiates" && !rowInit) || (sp.directions == "partner-initiates" && rowInit) {
			continue
		}
		c := &Case{Suite: suite, Sweep: sp.name, Source: src, Expect: sp.expect, Row: d.id, Partner: p.id,
			PartnerCert: cert, Refuse: refuse, RowInitiates: rowInit}
		if p.profile {
			c.Refuse = ""
		}
		dir := rowDir
		c.Initiator, c.Receiver = rowEP, partEP
		if !rowInit {
			dir = partnerDir
			c.Initiator, c.Receiver = partEP, rowEP
		}
		id := []string{suite, sp.name, d.id, p.id}
		if manyCerts || (st != certs.Valid && st != "") {
			id = append(id, cert)
		}
		if !p.profile && (len(sp.refusals) > 1 || refuse != "handshake") {
			id = append(id, refuse)
		}
		id = append(id, dir)
		c.ID = strings.Join(id, "/")
		how := fmt.Sprintf("cert %s, refusing at %s", cert, refuse)
		if p.profile {
			how = "cert " + cert
		}
		c.Name = fmt.Sprintf("%s (%s) vs %s (%s, %s), %s", d.id, d.title, p.id, p.short, how, dir)
		if sp.kind != nil {
			c.Name = fmt.Sprintf("%s %s vs harness %s (%s, %s), %s", sp.kind.Name, d.id, p.id, p.short, how, dir)
		}
		cases = append(cases, c)
	}
	return cases
}

// serverSettings reads a real server sweep's settings: "all" (the
// kind's own sweep) or a list of knob mappings.
func (l *loader) serverSettings(kind *realserver.Kind, n *yaml.Node) ([]sweepRow, error) {
	var settings []realserver.Setting
	switch {
	case n == nil || (n.Kind == yaml.ScalarNode && n.Value == "all"):
		settings = kind.Sweep()
	case n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			if hasKey(item, "config") {
				fs, err := l.fileSetting(kind, item)
				if err != nil {
					return nil, err
				}
				settings = append(settings, fs)
				continue
			}
			knobs := map[string]string{}
			err := l.fields(item, "a "+kind.Name+" setting", kind.KeyNames(), func(k string, v *yaml.Node) error {
				val, err := l.scalar(v, k)
				knobs[k] = val
				return err
			})
			if err != nil {
				return nil, err
			}
			s, err := kind.Parse(knobs)
			if err != nil {
				return nil, l.errf(item, "%v", err)
			}
			settings = append(settings, s)
		}
	default:
		return nil, l.errf(n, "settings must be all or a list of %s settings with keys %s", kind.Name, strings.Join(kind.KeyNames(), ", "))
	}
	var out []sweepRow
	seen := map[string]bool{}
	for _, s := range settings {
		if seen[s.ID()] {
			return nil, l.errf(n, "settings: %s given twice", s)
		}
		seen[s.ID()] = true
		domain := kind.Name + ".test"
		if fs, ok := s.(realserver.FileSetting); ok && fs.Host != "*" {
			domain = fs.Host // the file's own name for it
		}
		out = append(out, sweepRow{id: s.ID(), title: s.String(), ep: Endpoint{Domain: domain, Server: s, Settings: s.Policy()}})
	}
	return out, nil
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// fileSetting reads a real server setting that is an operator's own
// configuration file: {config: FILE[#HOST], cert: STATE}, the server
// started on that very file (a relative path is the scenario file's
// neighbour) and predicted from what the harness reads in it.
func (l *loader) fileSetting(kind *realserver.Kind, n *yaml.Node) (realserver.FileSetting, error) {
	var ref, cert string
	var refNode *yaml.Node
	err := l.fields(n, "a "+kind.Name+" configuration file", []string{"config", "cert"}, func(k string, v *yaml.Node) error {
		val, err := l.scalar(v, k)
		if k == "config" {
			ref, refNode = val, v
		} else {
			cert = val
		}
		return err
	})
	if err != nil {
		return realserver.FileSetting{}, err
	}
	if file, _ := serverconf.ParseRef(ref); file != "" && !filepath.IsAbs(file) {
		ref = filepath.Join(filepath.Dir(l.file), ref)
	}
	c, h, err := serverconf.Resolve(ref, serverconf.Options{})
	if err != nil {
		return realserver.FileSetting{}, l.errf(refNode, "config: %v", err)
	}
	if string(c.Server) != kind.Name {
		return realserver.FileSetting{}, l.errf(refNode, "config: %s is %s's configuration, not %s's", c.File, c.Server, kind.Name)
	}
	var st certs.State
	if cert != "" {
		if st, err = certs.ParseState(cert); err != nil {
			return realserver.FileSetting{}, l.errf(n, "cert: %v", err)
		}
	}
	fs, err := c.Real(h, st)
	if err != nil {
		return fs, l.errf(refNode, "config: %v", err)
	}
	return fs, nil
}

func kindNames() []string {
	var out []string
	for _, k := range realserver.Kinds() {
		out = append(out, k.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
