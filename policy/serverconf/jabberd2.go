package serverconf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// jabberd2's s2s.xml is read as its config_load does: every element
// below the root is a key made of the element names joined with dots
// ("security.require_tls"), its value the text directly inside (an
// empty element's value is "1"), with ${key} replaced by an earlier
// key's value; numbers are read with atoi, so "yes" is 0. Its virtual
// hosts are the <local><id> elements, each with its own pemfile; without
// any, s2s serves whatever domain the router gives it.

type j2Value struct {
	text  string
	attrs map[string]string
	src   Source
}

const maxXMLDepth = 64

func readJabberd2(r *reader, show string, data []byte, version string) (*Config, error) {
	switch version {
	case "", "2.7":
	default:
		return nil, fmt.Errorf("jabberd2 version %q: accepted value is 2.7", version)
	}
	refused := func(line int, format string, a ...any) error {
		return &RefusedError{Server: Jabberd2, Source: Source{File: show, Line: line}, Reason: fmt.Sprintf(format, a...)}
	}
	cfg := map[string][]j2Value{}
	var order []string
	dec := xml.NewDecoder(bytes.NewReader(data))
	type open struct {
		name string
		text strings.Builder
		v    j2Value
	}
	var stack []*open
	for {
		tok, err := dec.Token()
		line, _ := dec.InputPos()
		if err == io.EOF {
			if len(stack) > 0 {
				return nil, refused(line, "config_load: parse error at line %d: unclosed token", line)
			}
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, refused(se.Line, "config_load: parse error at line %d: %s", se.Line, se.Msg)
			}
			return nil, refused(line, "config_load: parse error: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, &sandboxError{src: Source{File: show, Line: line}, msg: "a document type declaration: xmppneg does not read DTDs or their entities"}
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("%s:%d: elements nested more than %d deep", show, line, maxXMLDepth)
			}
			o := &open{name: t.Name.Local, v: j2Value{attrs: map[string]string{}, src: Source{File: show, Line: line}}}
			for _, a := range t.Attr {
				o.v.attrs[a.Name.Local] = a.Value
			}
			stack = append(stack, o)
		case xml.CharData:
			if len(stack) > 0 {
				if stack[len(stack)-1].text.Len()+len(t) > MaxFileBytes {
					return nil, fmt.Errorf("%s:%d: text too long", show, line)
				}
				stack[len(stack)-1].text.Write(t)
			}
		case xml.EndElement:
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				continue // the root element is not a key
			}
			var names []string
			for _, s := range stack[1:] {
				names = append(names, s.name)
			}
			key := strings.Join(append(names, o.name), ".")
			text := o.text.String()
			if text == "" {
				text = "1"
			} else {
				var err error
				if text, err = j2Expand(text, cfg); err != nil {
					return nil, refused(o.v.src.Line, "%v", err)
				}
			}
			o.v.text = text
			if _, ok := cfg[key]; !ok {
				order = append(order, key)
			}
			cfg[key] = append(cfg[key], o.v)
		}
	}
	return jabberd2Config(show, data, cfg, order)
}

var j2VarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// j2Expand replaces ${key} with the first value of an earlier key, as
// config_expand does; an unknown key or a missing } is an error.
func j2Expand(s string, cfg map[string][]j2Value) (string, error) {
	for i := 0; strings.Contains(s, "${"); i++ {
		if i > 100 || len(s) > MaxFileBytes {
			return "", fmt.Errorf("config_expand: too many expansions")
		}
		start := strings.Index(s, "${")
		end := strings.Index(s[start+2:], "}")
		if end < 0 {
			return "", fmt.Errorf("config_expand: } mismatch")
		}
		name := s[start+2 : start+2+end]
		v, ok := cfg[name]
		if !ok || len(v) == 0 {
			return "", fmt.Errorf("config_expand: Have no '%s' defined", name)
		}
		s = s[:start] + v[0].text + s[start+2+end+1:]
	}
	return s, nil
}

// atoi is C's atoi: leading space, a sign, digits; anything else stops it.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

var j2NotModelled = map[string]string{
	"local.ciphers":              "the TLS ciphers offered",
	"local.cachain":              "the CA chain sent and trusted: the prediction assumes the partner's CA is trusted",
	"security.enable_whitelist":  "only whitelisted domains may federate: the prediction assumes the partner is listed",
	"security.whitelist_domain":  "the domains allowed to federate when the whitelist is enabled",
	"io.compression":             "stream compression",
	"check.queue":                "how long dialback may take before queued stanzas bounce",
	"check.idle":                 "how long an idle connection lives",
	"check.keepalive":            "keepalives on s2s connections",
	"local.secret":               "the dialback secret; it matters only between several s2s instances of one domain",
	"local.origins.ip":           "the addresses outgoing connections come from",
	"out-conn-reuse":             "connections to domains served by the same host are reused",
	"lookup.resolve-ipv6":        "IPv6 lookups",
	"io.limits.stanzasize":       "the largest stanza accepted",
	"local.private_key_password": "the password of the private key",
}

// j2Defaults are jabberd2's defaults of the numeric options above.
var j2Defaults = map[string]int{"check.queue": 60, "check.idle": 86400, "check.keepalive": 0}

func jabberd2Config(show string, data []byte, cfg map[string][]j2Value, order []string) (*Config, error) {
	c := &Config{Server: Jabberd2, Version: "2.7"}
	first := func(key string) (j2Value, bool) {
		v, ok := cfg[key]
		if !ok || len(v) == 0 {
			return j2Value{}, false
		}
		return v[0], true
	}
	requireTLS := false
	var rtSrc Source
	if v, ok := first("security.require_tls"); ok {
		requireTLS = atoi(v.text) != 0
		rtSrc = v.src
		if t := strings.TrimSpace(v.text); t != "1" && t != "0" && t != "" {
			c.Warnings = append(c.Warnings, Finding{Code: "atoi", Source: v.src,
				Message: fmt.Sprintf("<require_tls>%s</require_tls> reads as %d (jabberd2 reads numbers with atoi): TLS is %s", t, atoi(v.text), map[bool]string{true: "required", false: "NOT required"}[requireTLS])})
		}
	}
	globalPEM, hasGlobalPEM := first("local.pemfile")
	var notModelled []Finding
	for _, k := range order {
		if msg, ok := j2NotModelled[k]; ok {
			v := cfg[k][0]
			if d, ok := j2Defaults[k]; ok && atoi(v.text) == d {
				continue // as jabberd2 does without it
			}
			notModelled = append(notModelled, Finding{Option: "<" + k + "> " + strings.TrimSpace(v.text), Source: v.src, Message: msg})
		}
	}
	verify := func(src Source, mode string) []Finding {
		if atoi(mode) == 0 {
			return nil
		}
		return []Finding{{Option: "verify-mode " + mode, Source: src,
			Message: "a verify-mode other than 0 makes jabberd2 abort handshakes with certificates it does not validate, and its own outbound TLS then fails too; the launcher and the prediction use 0"}}
	}
	globalVerify := []Finding{}
	if v, ok := first("local.verify-mode"); ok {
		globalVerify = verify(v.src, strings.TrimSpace(v.text))
	}
	type hostDef struct {
		name string
		v    j2Value
	}
	var defs []hostDef
	for _, v := range cfg["local.id"] {
		name := strings.ToLower(strings.TrimSpace(v.text))
		if !validHostName(name) {
			return nil, &RefusedError{Server: Jabberd2, Source: v.src, Reason: fmt.Sprintf("cannot stringprep id %s, aborting", v.text)}
		}
		defs = append(defs, hostDef{name, v})
	}
	if len(defs) == 0 {
		defs = append(defs, hostDef{name: "*"})
	}
	if _, ok := first("lookup.srv"); !ok {
		// Observed (scenarios/operators_real_test.go): jabberd2 on such a
		// file connects to port 5269 of a partner's address, and its
		// outgoing streams and dialback checks fail where the partner's
		// SRV record names another port.
		c.Warnings = append(c.Warnings, Finding{Code: "no-srv-lookup", Message: "no <lookup><srv>: jabberd2 asks no SRV record and connects to port 5269 of each partner's address; a partner whose SRV record names another port is not reached, neither for jabberd2's own streams nor for the dialback checks of incoming ones (the prediction assumes SRV): add <lookup><srv>xmpp-server</srv></lookup>, as Debian's s2s.xml has"})
	}
	for _, d := range defs {
		h := &Host{Name: d.name, Kind: "id", Sources: map[string]Source{}, NotModelled: append(append([]Finding{}, notModelled...), globalVerify...)}
		if d.name == "*" {
			h.Kind = "*"
			c.Warnings = append(c.Warnings, Finding{Code: "no-local-id", Message: "no <local><id>: s2s serves whatever domains the router routes to it (sm.xml, c2s.xml, not read); every domain gets these settings"})
		}
		pem, pemSrc := "", Source{}
		if p, ok := d.v.attrs["pemfile"]; ok {
			pem, pemSrc = p, d.v.src
			if !hasGlobalPEM {
				h.NotModelled = append(h.NotModelled, Finding{Option: "pemfile of <id> " + d.name, Source: d.v.src,
					Message: "a certificate for this id only: jabberd2 uses the first certificate it loads for its own outbound TLS"})
			}
		} else if hasGlobalPEM {
			pem, pemSrc = strings.TrimSpace(globalPEM.text), globalPEM.src
		}
		if m, ok := d.v.attrs["verify-mode"]; ok {
			h.NotModelled = append(h.NotModelled, verify(d.v.src, m)...)
		}
		cert := "valid"
		if pem == "" {
			cert = "missing"
			h.Warnings = append(h.Warnings, Finding{Code: "no-certificate",
				Message: "no <pemfile>: jabberd2 has no TLS at all and opens pre-1.0 streams; partners that require TLS cannot federate"})
		} else {
			h.Sources["pemfile"] = pemSrc
			h.Sources["cert"] = pemSrc
			h.Warnings = append(h.Warnings, Finding{Code: "certificate-assumed", Source: pemSrc,
				Message: fmt.Sprintf("the certificate in %s is assumed valid: xmppneg does not read it, and if jabberd2 cannot read it, it runs without TLS without stopping", pem)})
		}
		h.Options = append(h.Options, Option{"pemfile", pem, pemSrc})
		if !rtSrc.IsZero() {
			h.Sources["require_tls"] = rtSrc
			h.Options = append(h.Options, Option{"security.require_tls", strings.TrimSpace(cfg["security.require_tls"][0].text), rtSrc})
		}
		h.Knobs = map[string]string{"pemfile": strconv.FormatBool(pem != ""), "require_tls": strconv.FormatBool(requireTLS), "cert": cert}
		h.Warnings = append(h.Warnings, Finding{Code: "no-external",
			Message: "jabberd2 never offers or uses SASL EXTERNAL on s2s: every partnership depends on dialback, so a partner without dialback (Lync's default entry, Prosody or ejabberd without their dialback module) cannot federate"})
		if requireTLS && pem == "" {
			h.Warnings = append(h.Warnings, Finding{Code: "require-tls-without-certificate", Source: rtSrc,
				Message: "<require_tls> without a <pemfile>: no s2s connection can succeed"})
		}
		h.Changes = jabberd2Changes(show, data, requireTLS, rtSrc)
		c.Hosts = append(c.Hosts, h)
	}
	return c, nil
}

func jabberd2Changes(show string, data []byte, requireTLS bool, src Source) []Change {
	want := "1"
	if requireTLS {
		want = "0"
	}
	val := strconv.FormatBool(!requireTLS)
	if !src.IsZero() {
		text := lineText(data, src.Line)
		re := regexp.MustCompile(`<require_tls\s*(/>|>[^<]*</require_tls>)`)
		if re.MatchString(text) {
			return []Change{change("require_tls", val, Edit{File: show, Line: src.Line, Old: text,
				New: re.ReplaceAllString(text, "<require_tls>"+want+"</require_tls>")})}
		}
		return nil
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.Contains(l, "<security>") && !strings.Contains(l, "</security>") {
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			return []Change{change("require_tls", val, Edit{File: show, Line: i + 2, Add: true, New: indent + "  <require_tls>" + want + "</require_tls>"})}
		}
	}
	for i, l := range lines {
		if strings.Contains(l, "</s2s>") {
			return []Change{change("require_tls", val, Edit{File: show, Line: i + 1, Add: true, New: "  <security><require_tls>" + want + "</require_tls></security>"})}
		}
	}
	return nil
}
