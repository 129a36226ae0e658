package partners

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"xmppneg/policy"
	"xmppneg/policy/domain"
	"xmppneg/policy/safefile"
	"xmppneg/scenarios"
)

// ParseDeclared reads what a partner runs: a profile name
// ("prosody-0.12") or a spec ("profile=prosody-0.12,cert=expired",
// "tls=Optional,sasl=NotSupported").
func ParseDeclared(text string) (Declared, error) {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "=") {
		p, err := policy.LookupProfile(text)
		if err != nil {
			return Declared{}, err
		}
		return Declared{Label: p.Name, Settings: p.Settings}, nil
	}
	s, err := policy.ParseSpec(text)
	if err != nil {
		return Declared{}, err
	}
	return Declared{Label: text, Settings: s}, nil
}

var domainRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// LoadDeclared reads a file that maps partner domains to what they run,
// "domain: profile-or-spec" a line (YAML).
func LoadDeclared(path string) (map[string]Declared, error) {
	data, err := safefile.Read(path, scenarios.MaxSuiteBytes, "")
	if err != nil {
		return nil, err
	}
	return ParseDeclaredFile(filepath.Base(path), data)
}

// ParseDeclaredFile is LoadDeclared on data read from file.
func ParseDeclaredFile(file string, data []byte) (map[string]Declared, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	out := map[string]Declared{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected lines of \"partner.domain: profile or spec\"", file, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: expected \"partner.domain: profile or spec\"", file, k.Line)
		}
		if !domainRE.MatchString(k.Value) {
			return nil, fmt.Errorf("%s:%d: %q is not a domain name", file, k.Line, k.Value)
		}
		d, err := ParseDeclared(v.Value)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", file, v.Line, k.Value, err)
		}
		key := strings.ToLower(k.Value)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s is declared twice", file, k.Line, k.Value)
		}
		out[key] = d
	}
	return out, nil
}

// WriteTranscripts writes the transcript of every negotiation the
// report shows (each partner's own, its fix's, its candidates', its
// blockers') into dir/transcripts, one file each, and records the
// paths, relative to dir, in the report. Each file holds both
// connections (the main one and the verify connection), inside TLS
// included.
func WriteTranscripts(dir string, r *Report) error {
	td, err := safefile.Dir(dir, "transcripts", 0o755)
	if err != nil {
		return err
	}
	for _, p := range r.Partners {
		for _, n := range p.Shown() {
			if n.Transcript == "" {
				continue
			}
			// A file name made from the domain, by the one function
			// that makes them (the readers have checked the domain).
			name, err := domain.FileName(strings.ToLower(p.Entry.Domain), "__"+strings.ReplaceAll(n.Label, "/", "__")+".txt")
			if err != nil {
				return err
			}
			head := fmt.Sprintf("%s %s\n%s\n\n", p.Entry.Domain, n.Label, n.Explanation)
			if err := safefile.Write(filepath.Join(td, name), []byte(head+n.Transcript), 0o644); err != nil {
				return err
			}
			n.TranscriptFile = "transcripts/" + name
		}
	}
	return nil
}

// Transcripts counts the transcripts WriteTranscripts wrote.
func (r *Report) Transcripts() int {
	n := 0
	for _, p := range r.Partners {
		for _, x := range p.Shown() {
			if x.TranscriptFile != "" {
				n++
			}
		}
	}
	return n
}
