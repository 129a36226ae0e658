// Package serverconf reads the configuration files of real XMPP servers —
// Prosody's prosody.cfg.lua, ejabberd's ejabberd.yml and jabberd2's
// s2s.xml — evaluated as the server evaluates them, and says what each
// virtual host amounts to for server-to-server negotiation: the knobs of
// the project's launcher for that server (sim/realserver), hence the
// harness's settings, every value with the file and line it came from,
// the options that affect s2s but are not modelled, the warnings an
// operator needs, and the one-line changes of the file that a fix may
// propose.
//
// The mapping from a server's knobs to the harness's settings is the
// launcher's own (realserver.Kind.Parse and Setting.Policy): this package
// only finds the knobs' values in a real file.
//
// Every file is hostile: it is read only when it is a regular file no
// larger than MaxFileBytes inside the directory of the file the user
// gave (links are followed only when they stay there), includes are
// bounded in depth and number, and Prosody's Lua runs in a sandbox
// without os, io or require, with bounded time, memory and nesting.
package serverconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim/realserver"
)

// Limits on what a configuration may cost to read.
const (
	// MaxFileBytes bounds each file read; Lua files have their own,
	// lower, bound (maxLuaBytes).
	MaxFileBytes = 1 << 20
	// MaxFiles bounds how many files one configuration may include.
	MaxFiles = 64
	// MaxIncludeDepth bounds how deep includes nest.
	MaxIncludeDepth = 8
)

// Server names a server implementation.
type Server string

// The servers whose files are read.
const (
	Prosody  Server = "prosody"
	Ejabberd Server = "ejabberd"
	Jabberd2 Server = "jabberd2"
)

// Source is where a value was set: a file and a line. A zero Source is a
// built-in default.
type Source struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// String is "file:line", or "default".
func (s Source) String() string {
	if s.File == "" {
		return "default"
	}
	if s.Line == 0 {
		return s.File
	}
	return fmt.Sprintf("%s:%d", s.File, s.Line)
}

// IsZero reports whether s is a built-in default.
func (s Source) IsZero() bool { return s.File == "" }

// Finding is a warning, or an option that affects s2s but that the
// model does not cover.
type Finding struct {
	// Code is a stable name for warnings; Option the server's option for
	// what is not modelled.
	Code   string `json:"code,omitempty"`
	Option string `json:"option,omitempty"`
	Source Source `json:"source"`
	// Message says what it means for s2s, in the operator's words.
	Message string `json:"message"`
}

func (f Finding) String() string {
	where := ""
	if !f.Source.IsZero() {
		where = " (" + f.Source.String() + ")"
	}
	if f.Option != "" {
		return fmt.Sprintf("not modelled: %s%s: %s", f.Option, where, f.Message)
	}
	return f.Message + where
}

// Option is one server option that decided a knob: its name, its value
// as the file wrote it (after includes and macros), and where.
type Option struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source Source `json:"source"`
}

// Config is one server's configuration as the server reads it.
type Config struct {
	// File is the file as given; Files every file read, the given one first.
	File  string   `json:"file"`
	Files []string `json:"files"`
	// Server and Version say whose semantics the file was read with.
	Server  Server `json:"server"`
	Version string `json:"version"`
	Hosts   []*Host
	// Warnings concern the whole file (duplicate options, deprecated
	// values the server rewrites).
	Warnings []Finding `json:"warnings"`
	// modules is Prosody's global modules_enabled (nil when unset): a
	// server started on the file keeps them (Real).
	modules []string
}

// Host is one virtual host (or component) of a configuration.
type Host struct {
	Name string `json:"host"`
	// Kind is how the file declares it: "VirtualHost", "Component",
	// "host" (ejabberd), "id" (jabberd2), or "*" (jabberd2's s2s without
	// local ids, which serves whatever domain the router gives it).
	Kind string `json:"kind"`
	// Disabled is a host the server does not start (Prosody's enabled =
	// false).
	Disabled bool `json:"disabled,omitempty"`
	// Knobs are the launcher's knobs for this host (realserver.Kind
	// keys), and Settings what they amount to (the launcher's Policy).
	Knobs    map[string]string `json:"knobs"`
	Settings policy.Settings   `json:"-"`
	// Sources say where each knob's value came from; a knob with no
	// source has the server's built-in default.
	Sources map[string]Source `json:"sources"`
	// Options are the server options that decided the knobs.
	Options     []Option  `json:"options"`
	NotModelled []Finding `json:"not_modelled"`
	Warnings    []Finding `json:"warnings"`
	// Exceptions are partner domains for which the server negotiates
	// otherwise (Prosody's s2s_secure_domains and s2s_insecure_domains).
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Changes are the one-line edits of the file a fix may propose.
	Changes []Change `json:"-"`

	kind *realserver.Kind
}

// Exception is a partner domain for which some knobs differ.
type Exception struct {
	Domain string            `json:"domain"`
	Knobs  map[string]string `json:"knobs"`
	Source Source            `json:"source"`
	Why    string            `json:"why"`
}

// Change is a one-line edit of the configuration and the launcher knobs
// it changes (usually one; ejabberd's required_trusted brings dialback
// back with it).
type Change struct {
	Knobs map[string]string
	// Edit says what to write where.
	Edit Edit
}

func change(knob, value string, ed Edit) Change {
	return Change{Knobs: map[string]string{knob: value}, Edit: ed}
}

// Edit is the text of a change: the line of the file to change (or the
// place to add one) and what it should read.
type Edit struct {
	File string `json:"file"`
	// Line is the line to replace; with Add, the line to insert before
	// (0: at the end).
	Line int  `json:"line"`
	Add  bool `json:"add,omitempty"`
	// Old is the line as it reads now (empty when a line is added), New
	// what it should read.
	Old string `json:"old,omitempty"`
	New string `json:"new"`
	// In names the option the line belongs to, when it is an item of a
	// list written over several lines.
	In string `json:"in,omitempty"`
}

func (e Edit) String() string {
	switch {
	case e.Add && e.Line > 0:
		return fmt.Sprintf("%s: add before line %d: %s", e.File, e.Line, strings.TrimSpace(e.New))
	case e.Add:
		return fmt.Sprintf("%s: add at the end: %s", e.File, strings.TrimSpace(e.New))
	case e.New == "" && e.In != "":
		return fmt.Sprintf("%s:%d: remove the line %s (from %s)", e.File, e.Line, strings.TrimSpace(e.Old), e.In)
	case e.New == "":
		return fmt.Sprintf("%s:%d: remove the line %s", e.File, e.Line, strings.TrimSpace(e.Old))
	case e.Add && e.In != "":
		return fmt.Sprintf("%s: add to %s before line %d: %s", e.File, e.In, e.Line, strings.TrimSpace(e.New))
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, strings.TrimSpace(e.New))
}

// Apply returns data (the file the edit names) with the edit applied.
func (e Edit) Apply(data []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	if e.Line < 0 || e.Line > len(lines) || (!e.Add && e.Line == 0) {
		return nil, fmt.Errorf("%s: no line %d", e.File, e.Line)
	}
	nl := e.New
	if nl != "" && !strings.HasSuffix(nl, "\n") {
		nl += "\n"
	}
	switch {
	case e.Add && e.Line == 0:
		out := string(data)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		return []byte(out + nl), nil
	case e.Add:
		lines = append(lines[:e.Line-1], append([]string{nl}, lines[e.Line-1:]...)...)
	default:
		if got := strings.TrimRight(lines[e.Line-1], "\r\n"); got != e.Old {
			return nil, fmt.Errorf("%s:%d reads %q, not %q", e.File, e.Line, got, e.Old)
		}
		lines[e.Line-1] = nl
	}
	return []byte(strings.Join(lines, "")), nil
}

// SettingsWith returns the host's settings with knob set to value, as
// the launcher's mapping says.
func (h *Host) SettingsWith(knobs map[string]string) (policy.Settings, error) {
	st, err := h.kind.Parse(knobs)
	if err != nil {
		return policy.Settings{}, err
	}
	return st.Policy(), nil
}

// KnobsFor returns the knobs with which the host negotiates with the
// partner domain (its exceptions applied).
func (h *Host) KnobsFor(partner string) map[string]string {
	k := copyKnobs(h.Knobs)
	for _, e := range h.Exceptions {
		if strings.EqualFold(e.Domain, partner) {
			for n, v := range e.Knobs {
				k[n] = v
			}
		}
	}
	return k
}

// SettingsFor returns the settings with which the host negotiates with
// the partner domain.
func (h *Host) SettingsFor(partner string) policy.Settings {
	s, err := h.SettingsWith(h.KnobsFor(partner))
	if err != nil {
		return h.Settings
	}
	return s
}

// Apply returns the knobs with the change made.
func (c Change) Apply(knobs map[string]string) map[string]string {
	k := copyKnobs(knobs)
	for n, v := range c.Knobs {
		k[n] = v
	}
	return k
}

// String says what the change does in the launcher's words.
func (c Change) String() string {
	var parts []string
	for _, k := range sortedKeys(c.Knobs) {
		parts = append(parts, k+"="+c.Knobs[k])
	}
	return strings.Join(parts, ",")
}

func copyKnobs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Host returns the host named name (case-insensitive).
func (c *Config) Host(name string) (*Host, error) {
	for _, h := range c.Hosts {
		if strings.EqualFold(h.Name, name) {
			return h, nil
		}
	}
	for _, h := range c.Hosts {
		if h.Kind == "*" {
			return c.anyHost(h, name), nil
		}
	}
	return nil, fmt.Errorf("%s has no host %q (hosts: %s)", c.File, name, c.hostNames())
}

// anyHost is jabberd2's s2s without local ids, serving name.
func (c *Config) anyHost(h *Host, name string) *Host {
	cp := *h
	cp.Name = name
	return &cp
}

func (c *Config) hostNames() string {
	var names []string
	for _, h := range c.Hosts {
		n := h.Name
		if h.Disabled {
			n += " (disabled)"
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Real returns host h of the configuration as a real server that runs
// the very file (realserver.FileSetting), predicted from what the file
// was read to mean. Where the file names a certificate for h, the server
// gets one in state cert ("" or valid: a valid one); where it names
// none, it has none whatever cert says.
func (c *Config) Real(h *Host, cert certs.State) (realserver.FileSetting, error) {
	if h.Disabled {
		return realserver.FileSetting{}, fmt.Errorf("%s: host %s is disabled", c.File, h.Name)
	}
	knobs := copyKnobs(h.Knobs)
	if cert != "" && knobs["cert"] != string(certs.Missing) {
		knobs["cert"] = string(cert)
	}
	predicted, err := h.SettingsWith(knobs)
	if err != nil {
		return realserver.FileSetting{}, fmt.Errorf("%s#%s: %w", c.File, h.Name, err)
	}
	return realserver.FileSetting{Server: string(c.Server), File: c.File, Host: h.Name, Knobs: knobs,
		Predicted: predicted, Modules: c.modules}, nil
}

// Only returns the host to use when none is named: the only enabled host
// that is not a component, or an error naming the choices.
func (c *Config) Only() (*Host, error) {
	var cands []*Host
	for _, h := range c.Hosts {
		if !h.Disabled && h.Kind != "Component" {
			cands = append(cands, h)
		}
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%s defines no enabled host (hosts: %s)", c.File, c.hostNames())
	}
	return nil, fmt.Errorf("%s defines %d hosts: name one as FILE#HOST (hosts: %s)", c.File, len(cands), c.hostNames())
}

// RefusedError is a file the server itself would refuse to start with,
// with the server's reason.
type RefusedError struct {
	Server Server
	Source Source
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s: %s would refuse this configuration: %s", e.Source, e.Server, e.Reason)
}

// Options are how a configuration is read.
type Options struct {
	// Server forces the server whose semantics apply; by default it is
	// told from the file's name and first bytes.
	Server Server
	// Version is the server version whose semantics apply: Prosody
	// "0.12" (default) or "13"; ejabberd "23.01"; jabberd2 "2.7".
	Version string
}

// Load reads the configuration at path as the server would.
func Load(path string, opt Options) (*Config, error) {
	r, err := newReader(path)
	if err != nil {
		return nil, err
	}
	data, src, err := r.read(path)
	if err != nil {
		return nil, err
	}
	server := opt.Server
	if server == "" {
		server = detect(path, data)
	}
	var c *Config
	switch server {
	case Prosody:
		c, err = readProsody(r, src, data, opt.Version)
	case Ejabberd:
		c, err = readEjabberd(r, src, data, opt.Version)
	case Jabberd2:
		c, err = readJabberd2(r, src, data, opt.Version)
	case "":
		return nil, fmt.Errorf("%s: not a configuration file xmppneg reads: Prosody's prosody.cfg.lua (*.lua), ejabberd's ejabberd.yml (*.yml, *.yaml) or jabberd2's s2s.xml (*.xml)", path)
	default:
		return nil, fmt.Errorf("unknown server %q: accepted values are prosody, ejabberd, jabberd2", server)
	}
	if err != nil {
		return nil, err
	}
	c.File = path
	c.Files = r.files
	for _, h := range c.Hosts {
		if err := h.finish(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// finish computes the settings from the knobs.
func (h *Host) finish() error {
	kind, err := realserver.LookupKind(h.kindName())
	if err != nil {
		return err
	}
	h.kind = kind
	h.Settings, err = h.SettingsWith(h.Knobs)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	for _, f := range []*[]Finding{&h.NotModelled, &h.Warnings} {
		if *f == nil {
			*f = []Finding{}
		}
	}
	if h.Options == nil {
		h.Options = []Option{}
	}
	return nil
}

func (h *Host) kindName() string {
	if _, ok := h.Knobs["s2s_use_starttls"]; ok {
		return string(Ejabberd)
	}
	if _, ok := h.Knobs["pemfile"]; ok {
		return string(Jabberd2)
	}
	return string(Prosody)
}

// detect tells the server from the file's name, then from its first
// bytes.
func detect(path string, data []byte) Server {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".lua":
		return Prosody
	case ".yml", ".yaml":
		return Ejabberd
	case ".xml":
		return Jabberd2
	}
	head := strings.TrimSpace(string(data[:min(len(data), 4096)]))
	switch {
	case strings.HasPrefix(head, "<"):
		return Jabberd2
	case strings.Contains(head, "VirtualHost") || strings.HasPrefix(head, "--"):
		return Prosody
	case strings.Contains(head, "hosts:"):
		return Ejabberd
	}
	return ""
}

// reader reads the files of one configuration: regular files only,
// bounded, inside the directory of the file the user gave.
type reader struct {
	root     string // the given file's directory, links resolved
	rootShow string // as the user wrote it
	files    []string
	total    int
}

func newReader(path string) (*reader, error) {
	dir := filepath.Dir(path)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	return &reader{root: real, rootShow: dir}, nil
}

// errOutside is a file outside the configuration's directory.
var errOutside = errors.New("outside the directory of the configuration file")

// resolve returns the real path of name (relative to dir, a path as the
// user sees it) and how to show it, checking that it stays inside the
// root directory.
func (r *reader) resolve(name string) (real, show string, err error) {
	show = filepath.Clean(name)
	real, err = filepath.EvalSymlinks(show)
	if err != nil {
		return "", show, err
	}
	if real, err = filepath.Abs(real); err != nil {
		return "", show, err
	}
	rel, err := filepath.Rel(r.root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", show, fmt.Errorf("%s (%s): %w %s: not read", show, real, errOutside, r.rootShow)
	}
	return real, show, nil
}

// read reads one file of the configuration.
func (r *reader) read(name string) ([]byte, string, error) {
	if len(r.files) >= MaxFiles {
		return nil, name, fmt.Errorf("%s: more than %d files in one configuration", name, MaxFiles)
	}
	real, show, err := r.resolve(name)
	if err != nil {
		return nil, show, err
	}
	// O_NONBLOCK: opening a FIFO would wait for a writer; it is then
	// refused as not a regular file.
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, show, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, show, err
	}
	if !st.Mode().IsRegular() {
		return nil, show, fmt.Errorf("%s: not a regular file", show)
	}
	if st.Size() > MaxFileBytes {
		return nil, show, fmt.Errorf("%s: %d bytes, more than the %d a configuration file may have", show, st.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, show, err
	}
	if len(data) > MaxFileBytes {
		return nil, show, fmt.Errorf("%s: more than %d bytes", show, MaxFileBytes)
	}
	r.total += len(data)
	if r.total > 4*MaxFileBytes {
		return nil, show, fmt.Errorf("%s: the configuration's files add up to more than %d bytes", show, 4*MaxFileBytes)
	}
	r.files = append(r.files, show)
	return data, show, nil
}

// glob lists the entries of dir whose names match pattern, sorted, as
// paths under dir; hidden entries are left out.
func (r *reader) glob(dir string, match func(string) bool) ([]string, error) {
	real, _, err := r.resolve(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(real)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !match(e.Name()) {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
		if len(out) > MaxFiles {
			return nil, fmt.Errorf("%s: more than %d files match", dir, MaxFiles)
		}
	}
	sort.Strings(out)
	return out, nil
}

// lineText returns line n (1-based) of data without its end of line.
func lineText(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[n-1], "\r")
}

// Closest finds the shipped profile nearest to s: the fewest differing
// settings (TLS, SASL, dialback, certificate, every behaviour knob), and
// lists the differences as "key: value (profile: its value)".
func Closest(s policy.Settings) (policy.Profile, []string) {
	var best policy.Profile
	var bestDiff []string
	for _, p := range policy.Profiles() {
		d := Differences(p.Settings, s)
		if best.Name == "" || len(d) < len(bestDiff) {
			best, bestDiff = p, d
		}
	}
	return best, bestDiff
}

// Differences lists the settings of s that differ from base.
func Differences(base, s policy.Settings) []string {
	out := []string{}
	add := func(key, got, want string) {
		if got != want {
			out = append(out, fmt.Sprintf("%s=%s (profile: %s)", key, got, want))
		}
	}
	add("tls", s.TLS.String(), base.TLS.String())
	add("sasl", s.SASL.String(), base.SASL.String())
	add("dialback", fmt.Sprint(s.Dialback), fmt.Sprint(base.Dialback))
	add("cert", string(orValid(s.Cert)), string(orValid(base.Cert)))
	bk, sk := base.Behaviour.Knobs(), s.Behaviour.Knobs()
	for i := range sk {
		add(sk[i].Key, sk[i].Value, bk[i].Value)
	}
	return out
}

func orValid(s certs.State) certs.State {
	if s == "" {
		return certs.Valid
	}
	return s
}

// ParseRef splits "FILE#HOST" (HOST optional).
func ParseRef(ref string) (file, host string) {
	if i := strings.LastIndex(ref, "#"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// Resolve reads the configuration a reference names, "FILE" or
// "FILE#HOST", and returns it with the host: the one named, or the only
// one. A disabled host is an error.
func Resolve(ref string, opt Options) (*Config, *Host, error) {
	file, name := ParseRef(ref)
	if file == "" {
		return nil, nil, fmt.Errorf("config=%q names no file (config=FILE or config=FILE#HOST)", ref)
	}
	c, err := Load(file, opt)
	if err != nil {
		return nil, nil, err
	}
	var h *Host
	if name == "" {
		h, err = c.Only()
	} else {
		h, err = c.Host(name)
	}
	if err != nil {
		return nil, nil, err
	}
	if h.Disabled {
		return nil, nil, fmt.Errorf("%s: host %s is disabled (%s does not start it)", file, h.Name, c.Server)
	}
	return c, h, nil
}

func init() {
	policy.RegisterConfigReader(func(ref string) (policy.Settings, error) {
		_, h, err := Resolve(ref, Options{})
		if err != nil {
			return policy.Settings{}, err
		}
		return h.Settings, nil
	})
}

// statFile reports whether path is a regular file (links followed).
func statFile(path string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return st.Mode().IsRegular(), nil
}

// anyCertIn reports whether dir, or a directory below it down to depth
// levels, holds a file that looks like a certificate. It looks at names
// only, and at no more than 1000 of them.
func anyCertIn(dir string, depth int, seen *int) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		*seen++
		if *seen > 1000 {
			return true
		}
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
		case e.IsDir():
			if depth > 1 && anyCertIn(filepath.Join(dir, name), depth-1, seen) {
				return true
			}
		case strings.HasSuffix(name, ".crt") || strings.HasSuffix(name, ".pem") || strings.Contains(name, "fullchain"):
			return true
		}
	}
	return false
}

// SpecValues lists a settings' values by spec key: tls, sasl, dialback,
// cert and every behaviour knob, in that order.
func SpecValues(s policy.Settings) [][2]string {
	out := [][2]string{{"tls", s.TLS.String()}, {"sasl", s.SASL.String()}, {"dialback", fmt.Sprint(s.Dialback)}, {"cert", string(orValid(s.Cert))}}
	for _, k := range s.Behaviour.Knobs() {
		out = append(out, [2]string{k.Key, k.Value})
	}
	return out
}

// Attribution says where each of the host's settings comes from, by spec
// key: the file and line of the option that decides it (found by
// changing each of the launcher's knobs and seeing which settings move),
// "default: KNOB=VALUE" for an option the file leaves to the server's
// default, or the server's observed behaviour for what no option
// changes.
func (h *Host) Attribution() map[string]string {
	out := map[string]string{}
	base := SpecValues(h.Settings)
	knobs := sortedKeys(h.Knobs)
	for _, k := range knobs {
		for _, alt := range []string{"true", "false", "optional", "required", "missing", "valid"} {
			if alt == h.Knobs[k] {
				continue
			}
			m := copyKnobs(h.Knobs)
			m[k] = alt
			s, err := h.SettingsWith(m)
			if err != nil {
				continue
			}
			for i, v := range SpecValues(s) {
				key := base[i][0]
				if v[1] == base[i][1] || out[key] != "" {
					continue
				}
				out[key] = h.knobSource(k)
			}
		}
	}
	// What no single knob decides may need two together (Prosody's tls
	// is Required with s2s_require_encryption or s2s_secure_auth).
	for i, a := range knobs {
		for _, b := range knobs[i+1:] {
			m := copyKnobs(h.Knobs)
			m[a], m[b] = flip(m[a]), flip(m[b])
			s, err := h.SettingsWith(m)
			if err != nil {
				continue
			}
			for j, v := range SpecValues(s) {
				key := base[j][0]
				if v[1] != base[j][1] && out[key] == "" {
					out[key] = h.knobSource(a) + " and " + h.knobSource(b)
				}
			}
		}
	}
	for _, v := range base {
		if out[v[0]] == "" {
			out[v[0]] = fmt.Sprintf("%s %s's behaviour (observed; not an option)", h.kind.Name, h.kind.Version)
		}
	}
	return out
}

func flip(v string) string {
	switch v {
	case "true":
		return "false"
	case "false":
		return "true"
	case "required", "optional":
		return "false"
	}
	return v
}

// knobSource is where a knob's value comes from, for Attribution.
func (h *Host) knobSource(k string) string {
	if src, ok := h.Sources[k]; ok {
		return src.String()
	}
	return "default: " + k + "=" + h.Knobs[k]
}
