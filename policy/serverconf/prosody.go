package serverconf

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Prosody's configuration is Lua, evaluated as Prosody's own loader
// (core/configmanager.lua, 0.12 and 13) does: in an environment where
// setting a name sets an option of the current section, VirtualHost and
// Component open a section, and Include reads another file (globs
// included) relative to the including one with a fresh environment that
// starts in the global section. The Lua runs in gopher-lua (Lua 5.1
// syntax; Prosody runs Lua 5.4) with only pure functions.

// luaOpt is one option's value and where it was set.
type luaOpt struct {
	val lua.LValue
	src Source
}

type prosodyHost struct {
	name, kind, module string
	src                Source
	opts               map[string]luaOpt
}

type prosodyEval struct {
	r        *reader
	version  string
	L        *lua.LState
	safe     *lua.LTable
	global   map[string]luaOpt
	hosts    map[string]*prosodyHost
	order    []string
	warnings []Finding
	notes    []Finding // not modelled, whole file
	stack    []string
	data     map[string][]byte
	main     string // the given file as shown
	firstSec Source // the first VirtualHost or Component of the main file
	fatal    error
	ctx      context.Context
}

func readProsody(r *reader, show string, data []byte, version string) (*Config, error) {
	switch version {
	case "", "0.12":
		version = "0.12"
	case "13", "13.0":
		version = "13"
	default:
		return nil, fmt.Errorf("prosody version %q: accepted values are 0.12, 13", version)
	}
	e := &prosodyEval{r: r, version: version, global: map[string]luaOpt{}, hosts: map[string]*prosodyHost{},
		data: map[string][]byte{}, main: show}
	e.L, e.safe = newSandbox()
	defer e.L.Close()
	ctx, cancel := context.WithTimeoutCause(context.Background(), luaTimeout, fmt.Errorf("the configuration ran for more than %s", luaTimeout))
	defer cancel()
	mctx, mcancel := context.WithCancelCause(ctx)
	defer mcancel(nil)
	go watchMemory(mctx, mcancel, luaMemory)
	e.ctx = mctx
	e.L.SetContext(mctx)
	if err := e.load(show, data); err != nil {
		return nil, err
	}
	return e.config()
}

// fail records the first error that ends the evaluation and raises a
// Lua error to unwind to it.
func (e *prosodyEval) fail(err error) {
	if e.fatal == nil {
		e.fatal = err
	}
	e.L.RaiseError("%s", err.Error())
}

// refuse is a file Prosody would not load.
func (e *prosodyEval) refuse(src Source, format string, a ...any) {
	e.fail(&RefusedError{Server: Prosody, Source: src, Reason: fmt.Sprintf(format, a...)})
}

var luaLineRE = regexp.MustCompile(`line:(\d+)\(column:\d+\) near '([^']*)'`)
var lua54Syntax = regexp.MustCompile(`\bgoto\b|::|//|<<|>>|[^~=<>]~[^=]|&|<const>|<close>`)

// load evaluates one file; nested for Include.
func (e *prosodyEval) load(show string, data []byte) error {
	for _, s := range e.stack {
		if s == show {
			return &RefusedError{Server: Prosody, Source: Source{File: show}, Reason: fmt.Sprintf("it includes itself (%s → %s): Prosody recurses until its stack overflows", strings.Join(e.stack, " → "), show)}
		}
	}
	if len(e.stack) >= MaxIncludeDepth {
		return fmt.Errorf("%s: includes nested more than %d deep (%s)", show, MaxIncludeDepth, strings.Join(e.stack, " → "))
	}
	if len(data) > maxLuaBytes {
		return fmt.Errorf("%s: %d bytes, more than the %d a Lua configuration file may have here", show, len(data), maxLuaBytes)
	}
	if line, err := luaShape(string(data)); err != nil {
		return fmt.Errorf("%s:%d: %w", show, line, err)
	}
	e.data[show] = data
	fn, err := e.L.Load(strings.NewReader(string(data)), show)
	if err != nil {
		line, near := 0, ""
		if m := luaLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			near = m[2]
		}
		src := Source{File: show, Line: line}
		if lua54Syntax.MatchString(lineText(data, line)) {
			return &sandboxError{src: src, msg: "Lua 5.2–5.4 syntax (goto, labels, integer division, bitwise operators or attributes) that the reader's Lua 5.1 does not parse"}
		}
		return &RefusedError{Server: Prosody, Source: src, Reason: fmt.Sprintf("Lua syntax error near '%s'", near)}
	}
	e.stack = append(e.stack, show)
	defer func() { e.stack = e.stack[:len(e.stack)-1] }()
	fn.Env = e.newEnv(show)
	e.L.Push(fn)
	err = e.L.PCall(0, 0, nil)
	if e.fatal != nil {
		return e.fatal
	}
	if err != nil {
		if cause := context.Cause(e.ctx); cause != nil {
			e.fatal = fmt.Errorf("%s: %v: not evaluated further", show, cause)
			return e.fatal
		}
		msg := err.Error()
		if i := strings.Index(msg, "\nstack traceback"); i >= 0 {
			msg = msg[:i]
		}
		src := Source{File: show}
		if m := regexp.MustCompile(`^` + regexp.QuoteMeta(show) + `:(\d+): `).FindStringSubmatch(msg); m != nil {
			src.Line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0])
		}
		e.fatal = &RefusedError{Server: Prosody, Source: src, Reason: msg}
		return e.fatal
	}
	return nil
}

// where is the line of file being executed.
func (e *prosodyEval) where(file string) Source {
	for level := 0; level < 64; level++ {
		dbg, ok := e.L.GetStack(level)
		if !ok {
			break
		}
		if _, err := e.L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.Source == file {
			return Source{File: file, Line: dbg.CurrentLine}
		}
	}
	return Source{File: file}
}

// newEnv is the environment of one file, as parser.load builds it.
func (e *prosodyEval) newEnv(file string) *lua.LTable {
	L := e.L
	env := L.NewTable()
	current := "*"
	setOptions := map[string]bool{}
	var luaTable *lua.LTable

	set := func(host, key string, v lua.LValue, src Source) {
		opts := e.global
		if host != "*" {
			opts = e.hosts[host].opts
		}
		if v == lua.LNil {
			delete(opts, key)
			if knownOptions[key] != "" {
				e.warnings = append(e.warnings, Finding{Code: "option-unset", Source: src,
					Message: fmt.Sprintf("%s is set to nil, which unsets it: Prosody uses its default (%s); a value without quotes that is not a Lua value (True, yes, required) is nil", key, knownOptions[key])})
			}
			return
		}
		opts[key] = luaOpt{val: v, src: src}
	}
	newHost := func(name, kind string, src Source) *prosodyHost {
		h, ok := e.hosts[name]
		if !ok {
			h = &prosodyHost{name: name, kind: kind, src: src, opts: map[string]luaOpt{}}
			e.hosts[name] = h
			e.order = append(e.order, name)
		}
		if file == e.main && e.firstSec.IsZero() {
			e.firstSec = src
		}
		return h
	}
	hostName := func(fn string) string {
		v := L.Get(1)
		src := e.where(file)
		if v == lua.LNil {
			e.refuse(src, "%s must have a name", map[string]string{"VirtualHost": "Host", "Component": "Component"}[fn])
		}
		s, ok := v.(lua.LString)
		if !ok {
			if n, isNum := v.(lua.LNumber); isNum {
				s = lua.LString(n.String())
			} else {
				e.refuse(src, "bad argument #1 to %s (string expected, got %s)", fn, v.Type())
			}
		}
		name := strings.ToLower(string(s))
		if !validHostName(name) {
			e.warnings = append(e.warnings, Finding{Code: "host-name", Source: src,
				Message: fmt.Sprintf("%s %q is not a domain name other servers can reach", fn, string(s))})
		}
		return name
	}
	options := func(host string, src Source, t *lua.LTable) {
		t.ForEach(func(k, v lua.LValue) {
			if ks, ok := k.(lua.LString); ok {
				set(host, string(ks), v, src)
			}
		})
	}
	virtualHost := L.NewFunction(func(L *lua.LState) int {
		name := hostName("VirtualHost")
		src := e.where(file)
		if h, ok := e.hosts[name]; ok && h.module != "" {
			kind := map[string]string{"component": "external", "muc": "MUC"}[h.module]
			if kind == "" {
				kind = h.module
			}
			e.refuse(src, "Host %q clashes with previously defined %s Component %q, for services use a sub-domain like conference.%s", name, kind, name, name)
		}
		newHost(name, "VirtualHost", src)
		current = name
		set(name, "defined", lua.LTrue, src)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			current = "*"
			switch v := L.Get(1).(type) {
			case lua.LString:
				e.refuse(e.where(file), "VirtualHost entries do not accept a module name (module '%s' provided for host '%s')", string(v), name)
			case *lua.LTable:
				options(name, e.where(file), v)
			default:
				e.refuse(e.where(file), "Invalid syntax following VirtualHost, expected options but received a %s", luaType(v))
			}
			return 0
		}))
		return 1
	})
	component := L.NewFunction(func(L *lua.LState) int {
		name := hostName("Component")
		src := e.where(file)
		if h, ok := e.hosts[name]; ok && h.module == "" {
			e.refuse(src, "Component %q clashes with previously defined VirtualHost %q, for services use a sub-domain like conference.%s", name, name, name)
		}
		h := newHost(name, "Component", src)
		h.module = "component"
		set(name, "component_module", lua.LString("component"), src)
		set(name, "load_global_modules", lua.LFalse, src)
		current = name
		handle := L.NewFunction(func(L *lua.LState) int {
			current = "*"
			t, ok := L.Get(1).(*lua.LTable)
			if !ok {
				e.refuse(e.where(file), "bad argument #1 to 'for iterator' (table expected, got %s)", luaType(L.Get(1)))
			}
			options(name, e.where(file), t)
			return 0
		})
		L.Push(L.NewFunction(func(L *lua.LState) int {
			if m, ok := L.Get(1).(lua.LString); ok {
				h.module = string(m)
				set(name, "component_module", m, e.where(file))
				L.Push(handle)
				return 1
			}
			L.Push(handle)
			L.Push(L.Get(1))
			L.Call(1, 0)
			return 0
		}))
		return 1
	})
	include := L.NewFunction(func(L *lua.LState) int {
		src := e.where(file)
		arg, ok := L.Get(1).(lua.LString)
		if !ok {
			e.refuse(src, "attempt to index a %s value (Include expects a file name)", luaType(L.Get(1)))
		}
		e.include(file, string(arg), src)
		return 0
	})
	runScript := L.NewFunction(func(L *lua.LState) int {
		src := e.where(file)
		e.notes = append(e.notes, Finding{Option: "RunScript", Source: src,
			Message: fmt.Sprintf("RunScript(%s) runs a Lua script with Prosody's full powers; xmppneg does not run it, so whatever it changes is not in the prediction", L.Get(1).String())})
		return 0
	})
	fileReader := func(name string) *lua.LFunction {
		return L.NewFunction(func(L *lua.LState) int {
			src := e.where(file)
			e.notes = append(e.notes, Finding{Option: name, Source: src,
				Message: fmt.Sprintf("%s(%s) reads a file's contents into an option; xmppneg does not read it and uses an empty value", name, L.Get(1).String())})
			if name == "FileLines" {
				L.Push(L.NewTable())
			} else {
				L.Push(lua.LString(""))
			}
			return 1
		})
	}
	for _, n := range []string{"Host", "host", "VirtualHost"} {
		env.RawSetString(n, virtualHost)
	}
	for _, n := range []string{"Component", "component"} {
		env.RawSetString(n, component)
	}
	for _, n := range []string{"Include", "include"} {
		env.RawSetString(n, include)
	}
	env.RawSetString("RunScript", runScript)
	if e.version == "13" {
		for _, n := range []string{"FileContents", "FileLine", "FileLines", "Credential"} {
			env.RawSetString(n, fileReader(n))
		}
	}

	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		k, ok := L.Get(2).(lua.LString)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		key := string(k)
		src := e.where(file)
		if strings.HasPrefix(key, "ENV_") {
			e.notes = append(e.notes, Finding{Option: key, Source: src,
				Message: fmt.Sprintf("%s reads the environment variable %s of the server's process, which xmppneg does not know: read as unset", key, key[4:])})
			L.Push(lua.LNil)
			return 1
		}
		if e.version == "13" {
			if key == "Lua" {
				if luaTable == nil {
					luaTable = e.luaGlobals(file)
				}
				L.Push(luaTable)
				return 1
			}
			if v, ok := e.rawOption(current, key); ok {
				if t, isTable := v.(*lua.LTable); isTable {
					L.Push(e.proxy(current, key, t, file))
				} else {
					L.Push(v)
				}
				return 1
			}
		}
		if forbidden[key] {
			e.fail(&sandboxError{src: src, msg: fmt.Sprintf("the configuration uses %s", key)})
		}
		if v := e.safe.RawGetString(key); v != lua.LNil {
			if e.version == "13" {
				e.warnings = append(e.warnings, Finding{Code: "lua-api", Source: src,
					Message: fmt.Sprintf("direct usage of the Lua API is deprecated - replace `%s` with `Lua.%s`", key, key)})
			}
			L.Push(v)
			return 1
		}
		e.warnings = append(e.warnings, Finding{Code: "unrecognized-value", Source: src,
			Message: fmt.Sprintf("unrecognized value: %s (you may be missing quotes around it): it reads as nil", key)})
		L.Push(lua.LNil)
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		k, ok := L.Get(2).(lua.LString)
		if !ok {
			return 0
		}
		key := string(k)
		src := e.where(file)
		path := current + "/" + key
		if setOptions[path] {
			e.warnings = append(e.warnings, Finding{Code: "duplicate-option", Source: src, Message: fmt.Sprintf("Duplicate option '%s'", key)})
		}
		setOptions[path] = true
		set(current, key, L.Get(3), src)
		return 0
	}))
	L.SetMetatable(env, mt)
	return env
}

func luaType(v lua.LValue) string {
	if v == lua.LNil {
		return "nil"
	}
	return v.Type().String()
}

var hostNameRE = regexp.MustCompile(`^[a-z0-9\p{L}]([a-z0-9\p{L}-]{0,61}[a-z0-9\p{L}])?(\.[a-z0-9\p{L}]([a-z0-9\p{L}-]{0,61}[a-z0-9\p{L}])?)*$`)

func validHostName(s string) bool { return len(s) <= 253 && hostNameRE.MatchString(s) }

// rawOption is an option of host as set (no fallback to the global
// section), as Prosody 13's environment reads it.
func (e *prosodyEval) rawOption(host, key string) (lua.LValue, bool) {
	opts := e.global
	if host != "*" {
		opts = e.hosts[host].opts
	}
	o, ok := opts[key]
	return o.val, ok
}

// proxy is Prosody 13's view of a list option read back: append, value
// and values, and a call that appends (modules_enabled { "x" }).
func (e *prosodyEval) proxy(host, key string, t *lua.LTable, file string) *lua.LTable {
	L := e.L
	p := L.NewTable()
	appendFn := L.NewFunction(func(L *lua.LState) int {
		v, ok := L.Get(2).(*lua.LTable)
		if !ok {
			e.refuse(e.where(file), "'append' operation expects a list of values to append to the existing list")
		}
		cur, _ := e.rawOption(host, key)
		ct, ok := cur.(*lua.LTable)
		if !ok {
			ct = L.NewTable()
		}
		if v.RawGetInt(1) != lua.LNil {
			v.ForEach(func(k, x lua.LValue) {
				if _, isNum := k.(lua.LNumber); isNum {
					ct.Append(x)
				}
			})
		} else {
			v.ForEach(func(k, x lua.LValue) { ct.RawSet(k, x) })
		}
		opts := e.global
		if host != "*" {
			opts = e.hosts[host].opts
		}
		opts[key] = luaOpt{val: ct, src: e.where(file)}
		L.Push(L.Get(1))
		return 1
	})
	methods := map[string]*lua.LFunction{
		"append": appendFn,
		"value": L.NewFunction(func(L *lua.LState) int {
			v, _ := e.rawOption(host, key)
			if v == nil {
				v = lua.LNil
			}
			L.Push(v)
			return 1
		}),
	}
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		k := L.Get(2).String()
		if f, ok := methods[k]; ok {
			L.Push(f)
			return 1
		}
		e.refuse(e.where(file), "Unknown config option operation: '%s'", k)
		return 0
	}))
	mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
		if _, ok := L.Get(2).(*lua.LTable); !ok {
			e.refuse(e.where(file), "Invalid syntax - missing '=' perhaps?")
		}
		L.Push(appendFn)
		L.Push(L.Get(1))
		L.Push(L.Get(2))
		L.Call(2, 1)
		return 1
	}))
	L.SetMetatable(p, mt)
	_ = t
	return p
}

// luaGlobals is Prosody 13's Lua: the sandbox's functions, and an error
// for the rest.
func (e *prosodyEval) luaGlobals(file string) *lua.LTable {
	L := e.L
	t := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		key := L.Get(2).String()
		if v := e.safe.RawGetString(key); v != lua.LNil {
			L.Push(v)
			return 1
		}
		e.fail(&sandboxError{src: e.where(file), msg: fmt.Sprintf("the configuration uses Lua.%s", key)})
		return 0
	}))
	L.SetMetatable(t, mt)
	return t
}

// include is Include(name) from file, as Prosody resolves it: relative
// to the including file's directory, a glob in its last element matched
// against the directory's entries (hidden ones left out).
func (e *prosodyEval) include(file, name string, src Source) {
	dir := filepath.Dir(file)
	if strings.ContainsAny(name, "*?") {
		path, glob := filepath.Split(name)
		if path == "" {
			path = dir
		} else if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		re := regexp.MustCompile("^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(glob)) + "$")
		matches, err := e.r.glob(path, re.MatchString)
		if err != nil {
			if errors.Is(err, errOutside) {
				e.fail(fmt.Errorf("%s: Include %q: %w", src, name, err))
			}
			e.refuse(src, "Error expanding wildcard pattern in Include %q: %v", name, trimPathError(err))
		}
		for _, m := range matches {
			e.includeFile(m, src)
		}
		return
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	e.includeFile(name, src)
}

func (e *prosodyEval) includeFile(path string, src Source) {
	data, show, err := e.r.read(path)
	if err != nil {
		if errors.Is(err, errOutside) || strings.Contains(err.Error(), "more than") {
			e.fail(fmt.Errorf("%s: Include: %w", src, err))
		}
		e.refuse(src, "Error loading included %s: %v", show, trimPathError(err))
	}
	if err := e.load(show, data); err != nil {
		e.fail(err)
	}
}

func trimPathError(err error) string {
	var pe interface{ Unwrap() error }
	if errors.As(err, &pe) {
		if inner := pe.Unwrap(); inner != nil {
			return fmt.Sprintf("%v", err)
		}
	}
	return err.Error()
}

// knownOptions are the s2s options the reader looks at, with Prosody
// 0.12's defaults.
var knownOptions = map[string]string{
	"s2s_require_encryption": "true", "s2s_secure_auth": "false", "s2s_secure_domains": "none",
	"s2s_insecure_domains": "none", "modules_enabled": "none", "modules_disabled": "none",
	"s2s_direct_tls_ports": "none", "ssl": "none", "certificates": `"certs"`, "enabled": "true",
}

// notModelled are options that change how Prosody federates but that
// the harness's model of Prosody does not cover, with what they do.
var prosodyNotModelled = map[string]string{
	"s2s_timeout":            "how long an outgoing connection may take (default 90 s); the harness's deadline is its own (--timeout)",
	"s2s_close_timeout":      "how long Prosody waits for the peer to close a stream",
	"s2s_stanza_size_limit":  "the largest stanza accepted from a peer (default 512 KiB)",
	"s2s_ports":              "the s2s ports (default 5269); the harness connects wherever the peer listens",
	"s2s_interfaces":         "the addresses s2s listens on",
	"s2s_tcp_keepalives":     "TCP keepalives on s2s connections",
	"s2s_allow_encryption":   "s2s_allow_encryption = false stops Prosody offering or using TLS on s2s (not observed here)",
	"tls_profile":            "the TLS versions and ciphers (Mozilla's profiles); the prediction assumes TLS 1.2–1.3 (Debian's OpenSSL refuses older versions anyway)",
	"s2s_ssl":                "TLS settings for s2s only (protocol, ciphers, verification)",
	"dialback_secret":        "the dialback secret; it matters only between several nodes of one domain",
	"disallow_s2s":           "disallow_s2s = true turns federation off entirely",
	"use_dane":               "DANE checks of peers' certificates",
	"use_ipv4":               "whether Prosody connects over IPv4",
	"use_ipv6":               "whether Prosody connects over IPv6",
	"network_settings":       "socket settings of connections",
	"s2s_send_queue_size":    "how much Prosody queues for a peer",
	"limits":                 "bandwidth limits (mod_limits), s2sin included",
	"s2s_whitelist":          "only the listed servers may federate (community module)",
	"s2s_blacklist":          "the listed servers may not federate (community module)",
	"s2s_dns_resolvers":      "the DNS servers Prosody asks",
	"unbound":                "libunbound's settings: how Prosody resolves peers",
	"s2s_require_encryption": "",
}

// prosodyModules that change s2s and are not modelled.
var prosodyModulesNotModelled = map[string]string{
	"s2s_bidi":             "bidirectional streams (XEP-0288): Prosody answers over the same stream",
	"s2s_auth_dane":        "certificates checked through DANE (community module)",
	"s2s_auth_dane_in":     "certificates checked through DANE (Prosody 13)",
	"s2s_auth_fingerprint": "certificates pinned by fingerprint (community module)",
	"s2s_auth_manual":      "certificates accepted by hand (community module)",
	"s2s_auth_posh":        "POSH certificates (community module)",
	"s2s_whitelist":        "only the listed servers may federate (community module)",
	"s2s_blacklist":        "the listed servers may not federate (community module)",
	"s2s_keepalive":        "keepalives on s2s streams",
	"limits":               "bandwidth limits on s2s connections",
}

var prosodyAutoload = []string{"presence", "message", "iq", "offline", "c2s", "s2s", "s2s_auth_certs"}
var prosodyComponentInheritable = map[string]bool{"tls": true, "saslauth": true, "dialback": true, "iq": true, "s2s": true, "s2s_bidi": true, "smacks": true, "server_contact_info": true}

// get is config.get: the host's value, else the global one.
func (e *prosodyEval) get(host, key string) (luaOpt, bool) {
	if h, ok := e.hosts[host]; ok {
		if o, ok := h.opts[key]; ok {
			return o, true
		}
	}
	o, ok := e.global[key]
	return o, ok
}

// boolean is get_option_boolean: true, "true" and 1 are true; false,
// "false" and 0 false; anything else is not understood (nil).
func boolean(v lua.LValue) (val, understood bool) {
	switch v {
	case lua.LTrue, lua.LString("true"), lua.LNumber(1):
		return true, true
	case lua.LFalse, lua.LString("false"), lua.LNumber(0):
		return false, true
	}
	if t, ok := v.(*lua.LTable); ok {
		return boolean(t.RawGetInt(1)) // get_option_scalar takes the first item
	}
	return false, false
}

// set is util.set.new on a value read with get_option_set: a list's
// items, or a single value.
func luaSet(v lua.LValue) map[string]bool {
	out := map[string]bool{}
	switch t := v.(type) {
	case *lua.LTable:
		for i := 1; i <= t.Len(); i++ {
			out[t.RawGetInt(i).String()] = true
		}
	case lua.LString, lua.LNumber:
		out[t.String()] = true
	}
	return out
}

func luaText(v lua.LValue) string {
	switch t := v.(type) {
	case lua.LString:
		return strconv.Quote(string(t))
	case *lua.LTable:
		var items []string
		for i := 1; i <= t.Len() && i <= 20; i++ {
			items = append(items, luaText(t.RawGetInt(i)))
		}
		t.ForEach(func(k, x lua.LValue) {
			if ks, ok := k.(lua.LString); ok && len(items) < 20 {
				items = append(items, string(ks)+" = "+luaText(x))
			}
		})
		return "{ " + strings.Join(items, "; ") + " }"
	}
	return v.String()
}

// modules is get_modules_for_host.
func (e *prosodyEval) modules(h *prosodyHost) (mods map[string]bool, src map[string]Source) {
	mods, src = map[string]bool{}, map[string]Source{}
	for _, m := range prosodyAutoload {
		mods[m] = true
	}
	if o, ok := e.global["modules_enabled"]; ok {
		for m := range luaSet(o.val) {
			mods[m], src[m] = true, o.src
		}
	}
	if o, ok := e.global["modules_disabled"]; ok {
		for m := range luaSet(o.val) {
			delete(mods, m)
			src[m] = o.src
		}
	}
	if h.module != "" {
		for m := range mods {
			if !prosodyComponentInheritable[m] {
				delete(mods, m)
			}
		}
	}
	if o, ok := h.opts["modules_enabled"]; ok {
		for m := range luaSet(o.val) {
			mods[m], src[m] = true, o.src
		}
	}
	if o, ok := h.opts["modules_disabled"]; ok {
		for m := range luaSet(o.val) {
			delete(mods, m)
			src[m] = o.src
		}
	}
	return mods, src
}

// config turns the evaluated options into hosts.
func (e *prosodyEval) config() (*Config, error) {
	c := &Config{Server: Prosody, Version: e.version, Warnings: append([]Finding{}, e.warnings...)}
	if o, ok := e.global["modules_enabled"]; ok {
		c.modules = sortedKeys(luaSet(o.val))
	}
	if e.version == "13" {
		c.Warnings = append(c.Warnings, Finding{Code: "version", Message: "read with Prosody 13's loader; what each knob does is Prosody 0.12.3's behaviour, observed (the launcher's profile)"})
	}
	// mod_s2s is a global module: it reads these in the global section.
	requireEnc, secureAuth := true, false
	var opts []Option
	sources := map[string]Source{}
	if o, ok := e.global["s2s_require_encryption"]; ok {
		v, understood := boolean(o.val)
		if !understood {
			c.Warnings = append(c.Warnings, Finding{Code: "not-understood", Source: o.src,
				Message: fmt.Sprintf("s2s_require_encryption = %s is not understood (Prosody logs \"expecting true/false\"): mod_s2s reads it as false, so encryption is NOT required, while mod_tls still marks STARTTLS required", luaText(o.val))})
		}
		requireEnc = v
		opts = append(opts, Option{"s2s_require_encryption", luaText(o.val), o.src})
		sources["s2s_require_encryption"] = o.src
	}
	if o, ok := e.global["s2s_secure_auth"]; ok {
		v, understood := boolean(o.val)
		if !understood {
			c.Warnings = append(c.Warnings, Finding{Code: "not-understood", Source: o.src,
				Message: fmt.Sprintf("s2s_secure_auth = %s is not understood (Prosody logs \"expecting true/false\") and reads as false: peers' certificates are not required", luaText(o.val))})
		}
		secureAuth = v
		opts = append(opts, Option{"s2s_secure_auth", luaText(o.val), o.src})
		sources["s2s_secure_auth"] = o.src
	}
	directTLS := false
	if o, ok := e.global["s2s_direct_tls_ports"]; ok {
		directTLS = len(luaSet(o.val)) > 0
		opts = append(opts, Option{"s2s_direct_tls_ports", luaText(o.val), o.src})
		sources["s2s_direct_tls"] = o.src
	}
	var secureDomains, insecureDomains map[string]bool
	var secureSrc, insecureSrc Source
	if o, ok := e.global["s2s_secure_domains"]; ok {
		secureDomains, secureSrc = luaSet(o.val), o.src
		opts = append(opts, Option{"s2s_secure_domains", luaText(o.val), o.src})
	}
	if o, ok := e.global["s2s_insecure_domains"]; ok {
		insecureDomains, insecureSrc = luaSet(o.val), o.src
		opts = append(opts, Option{"s2s_insecure_domains", luaText(o.val), o.src})
	}
	var global []Finding
	for _, k := range sortedKeys(e.global) {
		if msg, ok := prosodyNotModelled[k]; ok && msg != "" {
			o := e.global[k]
			global = append(global, Finding{Option: k + " = " + luaText(o.val), Source: o.src, Message: msg})
		}
		if k == "ssl" {
			global = append(global, sslNotModelled(e.global[k])...)
		}
	}
	global = append(global, e.notes...)

	for _, name := range e.order {
		ph := e.hosts[name]
		h := &Host{Name: name, Kind: ph.kind, Sources: map[string]Source{}, Options: append([]Option{}, opts...),
			NotModelled: append([]Finding{}, global...)}
		for k, v := range sources {
			h.Sources[k] = v
		}
		if o, ok := ph.opts["enabled"]; ok {
			if v, _ := boolean(o.val); !v && o.val != lua.LTrue {
				h.Disabled = true
				h.Warnings = append(h.Warnings, Finding{Code: "disabled", Source: o.src, Message: fmt.Sprintf("enabled = %s: Prosody does not start %s", luaText(o.val), name)})
			}
		}
		mods, modSrc := e.modules(ph)
		dialback := mods["dialback"]
		if s, ok := modSrc["dialback"]; ok {
			h.Sources["dialback"] = s
		}
		h.Options = append(h.Options, Option{"mod_dialback", map[bool]string{true: "loaded", false: "not loaded"}[dialback], modSrc["dialback"]})
		for _, m := range []struct{ mod, what string }{
			{"tls", "mod_tls is not loaded: Prosody neither offers nor uses STARTTLS, so with s2s_require_encryption every s2s connection fails; the prediction assumes it is loaded"},
			{"saslauth", "mod_saslauth is not loaded: Prosody neither offers nor uses SASL EXTERNAL; the prediction assumes it is loaded"},
		} {
			if !mods[m.mod] {
				h.Warnings = append(h.Warnings, Finding{Code: "module-missing", Source: modSrc[m.mod], Message: m.what})
				h.NotModelled = append(h.NotModelled, Finding{Option: "mod_" + m.mod + " not loaded", Source: modSrc[m.mod], Message: "the launcher always loads it"})
			}
		}
		var modNames []string
		for m := range mods {
			modNames = append(modNames, m)
		}
		sort.Strings(modNames)
		for _, m := range modNames {
			if msg, ok := prosodyModulesNotModelled[m]; ok {
				h.NotModelled = append(h.NotModelled, Finding{Option: "mod_" + m, Source: modSrc[m], Message: msg})
			}
		}
		for _, k := range sortedKeys(ph.opts) {
			o := ph.opts[k]
			switch {
			case k == "s2s_require_encryption" || k == "s2s_secure_auth":
				h.NotModelled = append(h.NotModelled, Finding{Option: k + " = " + luaText(o.val) + " in the section of " + name, Source: o.src,
					Message: "Prosody's mod_s2s reads it only in the global section; for this host it changes only whether STARTTLS is marked <required/> (mod_tls)"})
				h.Warnings = append(h.Warnings, Finding{Code: "host-option-ignored", Source: o.src,
					Message: fmt.Sprintf("%s under %s %q does not change authentication: mod_s2s reads it in the global section (before the first VirtualHost)", k, ph.kind, name)})
			case k == "s2s_secure_domains" || k == "s2s_insecure_domains" || k == "s2s_direct_tls_ports":
				h.NotModelled = append(h.NotModelled, Finding{Option: k + " in the section of " + name, Source: o.src, Message: "read only in the global section"})
			case prosodyNotModelled[k] != "":
				h.NotModelled = append(h.NotModelled, Finding{Option: k + " = " + luaText(o.val), Source: o.src, Message: prosodyNotModelled[k]})
			case k == "ssl":
				h.NotModelled = append(h.NotModelled, sslNotModelled(o)...)
			}
		}
		cert, certSrc, certWhat := e.certificate(ph)
		if !certSrc.IsZero() {
			h.Sources["cert"] = certSrc
		}
		h.Options = append(h.Options, Option{"certificate", certWhat, certSrc})
		if cert == "missing" {
			enc := ": partners that take the offer fail at the TLS handshake"
			if requireEnc || secureAuth {
				enc = ", as required: no s2s connection with it can succeed"
			}
			// Observed (scenarios/examples/operators-real_test.go): Prosody
			// 0.12 started on such a file offers STARTTLS and fails the
			// handshake; the profiles' cert=missing, which offers none,
			// does not describe it, so the prediction is marked as such.
			h.Warnings = append(h.Warnings, Finding{Code: "no-certificate", Source: certSrc,
				Message: fmt.Sprintf("no certificate for %s (%s): Prosody 0.12 still offers STARTTLS and fails every TLS handshake (\"no shared cipher\"), incoming and for the dialback checks of its own streams%s; the prediction (no STARTTLS offered) does not hold", name, certWhat, enc)})
		} else {
			h.Warnings = append(h.Warnings, Finding{Code: "certificate-assumed", Source: certSrc,
				Message: fmt.Sprintf("the certificate (%s) is assumed valid for %s: xmppneg does not read it; check it with 'prosodyctl check certs', and model another state with cert=STATE (cert=self-signed, cert=no-client-auth, …)", certWhat, name)})
		}
		h.Knobs = map[string]string{
			"s2s_require_encryption": strconv.FormatBool(requireEnc),
			"s2s_secure_auth":        strconv.FormatBool(secureAuth),
			"dialback":               strconv.FormatBool(dialback),
			"cert":                   cert,
			"s2s_direct_tls":         strconv.FormatBool(directTLS),
		}
		if !dialback && !secureAuth {
			h.Warnings = append(h.Warnings, Finding{Code: "no-dialback", Source: modSrc["dialback"],
				Message: "mod_dialback is not loaded: only peers whose certificate Prosody validates (SASL EXTERNAL) can federate; a peer with a self-signed certificate, or without clientAuth where the peer checks it (ejabberd before 25.08), cannot"})
		}
		if secureAuth {
			h.Warnings = append(h.Warnings, Finding{Code: "secure-auth", Source: sources["s2s_secure_auth"],
				Message: "s2s_secure_auth = true: every peer needs a certificate Prosody validates for its domain; a self-signed, expired or wrong-name certificate is closed with <not-authorized/> right after TLS, whatever dialback says (s2s_insecure_domains lists exceptions)"})
		}
		for d := range insecureDomains {
			if secureAuth {
				h.Exceptions = append(h.Exceptions, Exception{Domain: d, Knobs: map[string]string{"s2s_secure_auth": "false"}, Source: insecureSrc,
					Why: "s2s_insecure_domains: s2s_secure_auth does not apply to it"})
			}
		}
		for d := range secureDomains {
			if !secureAuth {
				h.Exceptions = append(h.Exceptions, Exception{Domain: d, Knobs: map[string]string{"s2s_secure_auth": "true"}, Source: secureSrc,
					Why: "s2s_secure_domains: its certificate must validate, as with s2s_secure_auth"})
			}
		}
		sort.Slice(h.Exceptions, func(i, j int) bool { return h.Exceptions[i].Domain < h.Exceptions[j].Domain })
		h.Changes = e.changes(ph, mods, modSrc, requireEnc, secureAuth)
		c.Hosts = append(c.Hosts, h)
	}
	if len(c.Hosts) == 0 {
		c.Warnings = append(c.Warnings, Finding{Code: "no-hosts", Source: Source{File: e.main}, Message: "the configuration defines no VirtualHost: Prosody serves no domain"})
	}
	return c, nil
}

func sslNotModelled(o luaOpt) []Finding {
	t, ok := o.val.(*lua.LTable)
	if !ok {
		return nil
	}
	var out []Finding
	t.ForEach(func(k, v lua.LValue) {
		switch k.String() {
		case "certificate", "key", "cafile", "capath":
		default:
			out = append(out, Finding{Option: "ssl." + k.String() + " = " + luaText(v), Source: o.src,
				Message: "TLS settings (protocols, ciphers, verification) are not modelled: the prediction assumes TLS 1.2–1.3 and Prosody's certificate checks"})
		}
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// certificate says whether the host has a certificate, as certmanager
// finds it: ssl.certificate (the host's or the global one), else a file
// named after the host (or a parent domain) in the certificates
// directory. Files are only looked at, never read.
func (e *prosodyEval) certificate(h *prosodyHost) (state string, src Source, what string) {
	for _, o := range []luaOpt{h.opts["ssl"], e.global["ssl"]} {
		if t, ok := o.val.(*lua.LTable); ok {
			if c := t.RawGetString("certificate"); c != lua.LNil {
				return "valid", o.src, "ssl.certificate = " + luaText(c)
			}
		}
	}
	dir := "certs"
	var dirSrc Source
	if o, ok := e.global["certificates"]; ok {
		dir, dirSrc = o.val.String(), o.src
	}
	base := filepath.Dir(e.main)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	if o, ok := e.get(h.name, "certificate"); ok {
		dirSrc = o.src
		if p := o.val.String(); filepath.IsAbs(p) {
			dir = p
		} else {
			dir = filepath.Join(base, p)
		}
	}
	for name := h.name; name != ""; {
		for _, p := range [][2]string{{name + ".crt", name + ".key"}, {name + "/fullchain.pem", name + "/privkey.pem"}, {name + ".pem", name + ".pem"}} {
			if e.exists(filepath.Join(dir, p[0])) && e.exists(filepath.Join(dir, p[1])) {
				return "valid", dirSrc, "found " + filepath.Join(dir, p[0])
			}
		}
		_, rest, ok := strings.Cut(name, ".")
		if !ok {
			break
		}
		name = rest
	}
	if _, _, err := e.r.resolve(dir); err != nil && errors.Is(err, errOutside) {
		return "valid", dirSrc, "not looked for: the certificates directory " + dir + " is outside the configuration's directory"
	}
	if !e.anyCert(dir) {
		where := "certificates directory " + dir
		if dirSrc.IsZero() {
			where += " (the default, \"certs\" beside the configuration)"
		}
		return "missing", dirSrc, "none configured and none in the " + where
	}
	return "valid", dirSrc, "not found by name in " + dir + "; Prosody may find one there by the names inside the certificates"
}

func (e *prosodyEval) exists(path string) bool {
	real, _, err := e.r.resolve(path)
	if err != nil {
		return false
	}
	st, err := statFile(real)
	return err == nil && st
}

// anyCert reports whether dir (or a directory below it, three levels)
// holds anything that looks like a certificate.
func (e *prosodyEval) anyCert(dir string) bool {
	real, _, err := e.r.resolve(dir)
	if err != nil {
		return false
	}
	return anyCertIn(real, 3, new(int))
}

// prosodyGlobalSection is where a new global option goes: before the
// first VirtualHost or Component of the main file, or at its end.
func (e *prosodyEval) globalInsert() (file string, line int) {
	if !e.firstSec.IsZero() {
		return e.firstSec.File, e.firstSec.Line
	}
	return e.main, 0
}

var luaAssignRE = regexp.MustCompile(`^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(.*?)(\s*(--.*)?)$`)

// changes are the edits a fix may propose for this host.
func (e *prosodyEval) changes(h *prosodyHost, mods map[string]bool, modSrc map[string]Source, requireEnc, secureAuth bool) []Change {
	var out []Change
	boolChange := func(opt, knob string, now bool) {
		val := strconv.FormatBool(!now)
		if o, ok := e.global[opt]; ok {
			if ed, ok := e.replaceValue(o.src, opt, val); ok {
				out = append(out, change(knob, val, ed))
				return
			}
		}
		f, l := e.globalInsert()
		out = append(out, change(knob, val, Edit{File: f, Line: l, Add: true, New: opt + " = " + val}))
	}
	boolChange("s2s_secure_auth", "s2s_secure_auth", secureAuth)
	boolChange("s2s_require_encryption", "s2s_require_encryption", requireEnc)
	if mods["dialback"] {
		if s, ok := modSrc["dialback"]; ok {
			if ed, ok := e.removeListItem(s, "dialback"); ok {
				out = append(out, change("dialback", "false", ed))
			}
		}
	} else {
		if s, ok := modSrc["dialback"]; ok { // disabled somewhere
			if ed, ok := e.removeListItem(s, "dialback"); ok {
				out = append(out, change("dialback", "true", ed))
			}
		} else if o, ok := h.opts["modules_enabled"]; ok {
			if ed, ok := e.addListItem(o.src, "modules_enabled", "dialback"); ok {
				out = append(out, change("dialback", "true", ed))
			}
		} else if o, ok := e.global["modules_enabled"]; ok {
			if ed, ok := e.addListItem(o.src, "modules_enabled", "dialback"); ok {
				out = append(out, change("dialback", "true", ed))
			}
		} else {
			f, l := e.globalInsert()
			out = append(out, change("dialback", "true", Edit{File: f, Line: l, Add: true, New: `modules_enabled = { "tls"; "saslauth"; "dialback" }`}))
		}
	}
	return out
}

// replaceValue is the edit that sets opt to val on the line where it is
// set (at or a few lines before src, for a statement over several lines).
func (e *prosodyEval) replaceValue(src Source, opt, val string) (Edit, bool) {
	data := e.data[src.File]
	for l := src.Line; l > 0 && l > src.Line-20; l-- {
		text := lineText(data, l)
		if m := luaAssignRE.FindStringSubmatch(text); m != nil && m[2] == opt {
			if strings.Contains(m[4], "{") && !strings.Contains(m[4], "}") {
				return Edit{}, false // a table over several lines
			}
			return Edit{File: src.File, Line: l, Old: text, New: m[1] + m[2] + m[3] + val + m[5]}, true
		}
	}
	return Edit{}, false
}

var luaListItemRE = `^\s*["']%s["']\s*[;,]?\s*(--.*)?$`

// removeListItem is the edit that removes the item from the list
// assigned at src: the line holding only the item, or the one-line list
// rewritten without it.
func (e *prosodyEval) removeListItem(src Source, item string) (Edit, bool) {
	data := e.data[src.File]
	in := ""
	if m := luaAssignRE.FindStringSubmatch(lineText(data, src.Line)); m != nil {
		in = m[2]
	}
	re := regexp.MustCompile(fmt.Sprintf(luaListItemRE, regexp.QuoteMeta(item)))
	one := regexp.MustCompile(`(["']` + regexp.QuoteMeta(item) + `["']\s*[;,]?\s*)`)
	for l := src.Line; l < src.Line+300; l++ {
		text := lineText(data, l)
		if re.MatchString(text) {
			return Edit{File: src.File, Line: l, Old: text, New: "", In: in}, true
		}
		code, _, _ := strings.Cut(text, "--")
		if one.MatchString(code) && strings.Contains(code, "}") {
			return Edit{File: src.File, Line: l, Old: text, New: one.ReplaceAllString(text, "")}, true
		}
		if strings.Contains(code, "}") || (l > src.Line && luaAssignRE.MatchString(text)) {
			break
		}
	}
	return Edit{}, false
}

// addListItem is the edit that adds the item to the list opt assigned
// at src: a line after "opt = {", or the one-line list rewritten.
func (e *prosodyEval) addListItem(src Source, opt, item string) (Edit, bool) {
	text := lineText(e.data[src.File], src.Line)
	m := luaAssignRE.FindStringSubmatch(text)
	if m == nil || m[2] != opt || !strings.HasPrefix(strings.TrimSpace(m[4]), "{") {
		return Edit{}, false
	}
	if i := strings.LastIndex(text, "}"); i >= 0 {
		head := strings.TrimRight(text[:i], " \t")
		sep := "; "
		if strings.HasSuffix(head, "{") || strings.HasSuffix(head, ";") || strings.HasSuffix(head, ",") {
			sep = " "
		}
		return Edit{File: src.File, Line: src.Line, Old: text, New: head + sep + `"` + item + `" ` + text[i:]}, true
	}
	return Edit{File: src.File, Line: src.Line + 1, Add: true, New: m[1] + "\t" + `"` + item + `";`, In: opt}, true
}
