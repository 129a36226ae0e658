package serverconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"xmppneg/policy"
)

// ejabberd's configuration is YAML, read as ejabberd 23.01 (and 24.12)
// reads it (yconf and ejabberd_config): include_config_file spliced in
// place (disallow, allow_only), define_macro replaced wherever a value
// is the macro's name, duplicate options whose values are lists or maps
// joined and other duplicates refused, unknown options refused, then the
// transformer's rewrites of deprecated values (required_trusted,
// *_certfile), then host_config (replacing) and append_host_config
// (appending to lists) per host.

// ejOpt is one top-level option: its key and value nodes and its file.
type ejOpt struct {
	key  string
	k, v *yaml.Node
	file string
}

func (o ejOpt) src() Source { return Source{File: o.file, Line: o.k.Line} }

// value is a scalar option's value, or "".
func (o ejOpt) value() string {
	if o.v == nil || o.v.Kind != yaml.ScalarNode {
		return ""
	}
	return o.v.Value
}

type ejabberdEval struct {
	r       *reader
	version string
	main    string
	data    map[string][]byte
	budget  int // nodes that may still be visited (aliases expanded)
	warn    []Finding
}

// maxYAMLNodes bounds the nodes visited, aliases expanded.
const maxYAMLNodes = 200000

func readEjabberd(r *reader, show string, data []byte, version string) (*Config, error) {
	switch version {
	case "", "23.01":
		version = "23.01"
	case "24.12":
	default:
		return nil, fmt.Errorf("ejabberd version %q: accepted values are 23.01, 24.12", version)
	}
	e := &ejabberdEval{r: r, version: version, main: show, data: map[string][]byte{}, budget: maxYAMLNodes}
	opts, err := e.file(show, data, nil)
	if err != nil {
		return nil, err
	}
	if opts, err = e.macros(opts); err != nil {
		return nil, err
	}
	return e.config(opts)
}

func (e *ejabberdEval) refused(src Source, format string, a ...any) error {
	return &RefusedError{Server: Ejabberd, Source: src, Reason: fmt.Sprintf(format, a...)}
}

// deref follows aliases, counting every node against the budget.
func (e *ejabberdEval) deref(n *yaml.Node) (*yaml.Node, error) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 32 {
			return nil, fmt.Errorf("line %d: aliases nested more than 32 deep", n.Line)
		}
		n = n.Alias
	}
	e.budget--
	if e.budget < 0 {
		return nil, fmt.Errorf("more than %d YAML nodes with aliases expanded", maxYAMLNodes)
	}
	return n, nil
}

// file reads one YAML file into its top-level options, includes
// spliced in.
func (e *ejabberdEval) file(show string, data []byte, stack []string) ([]ejOpt, error) {
	for _, s := range stack {
		if s == show {
			return nil, e.refused(Source{File: show}, "Circularly included YAML file: %s", show)
		}
	}
	if len(stack) >= MaxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested more than %d deep", show, MaxIncludeDepth)
	}
	e.data[show] = data
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line)
		}
		return nil, e.refused(Source{File: show, Line: line}, "Failed to read YAML file: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	top, err := e.deref(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", show, err)
	}
	if top.Kind != yaml.MappingNode {
		return nil, e.refused(Source{File: show, Line: top.Line}, "Configuration error: Expected map, got %s instead", yamlKind(top))
	}
	var out []ejOpt
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, err := e.deref(top.Content[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", show, err)
		}
		v, err := e.deref(top.Content[i+1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", show, err)
		}
		if k.Kind != yaml.ScalarNode {
			return nil, e.refused(Source{File: show, Line: k.Line}, "Configuration error: Expected string, got %s instead", yamlKind(k))
		}
		if k.Value != "include_config_file" {
			out = append(out, ejOpt{key: k.Value, k: k, v: v, file: show})
			continue
		}
		inc, err := e.include(show, k, v, append(stack, show))
		if err != nil {
			return nil, err
		}
		out = append(out, inc...)
	}
	return out, nil
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	return "scalar"
}

// include reads include_config_file's value: a path, a list of paths,
// or a map of paths to {disallow, allow_only}.
func (e *ejabberdEval) include(from string, k, v *yaml.Node, stack []string) ([]ejOpt, error) {
	type inc struct {
		path               string
		line               int
		disallow, allowOnl []string
	}
	var incs []inc
	src := Source{File: from, Line: k.Line}
	strs := func(n *yaml.Node) ([]string, error) {
		n, err := e.deref(n)
		if err != nil {
			return nil, err
		}
		switch n.Kind {
		case yaml.ScalarNode:
			return []string{n.Value}, nil
		case yaml.SequenceNode:
			var out []string
			for _, c := range n.Content {
				c, err := e.deref(c)
				if err != nil {
					return nil, err
				}
				if c.Kind != yaml.ScalarNode {
					return nil, e.refused(Source{File: from, Line: c.Line}, "Invalid value of option include_config_file: Expected string, got %s instead", yamlKind(c))
				}
				out = append(out, c.Value)
			}
			return out, nil
		}
		return nil, e.refused(Source{File: from, Line: n.Line}, "Invalid value of option include_config_file: Expected list, got map instead")
	}
	switch v.Kind {
	case yaml.ScalarNode, yaml.SequenceNode:
		paths, err := strs(v)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			incs = append(incs, inc{path: p, line: v.Line})
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			pk, err := e.deref(v.Content[i])
			if err != nil {
				return nil, err
			}
			pv, err := e.deref(v.Content[i+1])
			if err != nil {
				return nil, err
			}
			in := inc{path: pk.Value, line: pk.Line}
			if pv.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(pv.Content); j += 2 {
					ok, err := e.deref(pv.Content[j])
					if err != nil {
						return nil, err
					}
					l, err := strs(pv.Content[j+1])
					if err != nil {
						return nil, err
					}
					switch ok.Value {
					case "disallow":
						in.disallow = l
					case "allow_only":
						in.allowOnl = l
					default:
						return nil, e.refused(Source{File: from, Line: ok.Line}, "Invalid value of option include_config_file->%s: Unknown option: %s", pk.Value, ok.Value)
					}
				}
			}
			incs = append(incs, in)
		}
	}
	var out []ejOpt
	for _, in := range incs {
		p := in.path
		if !filepath.IsAbs(p) {
			e.warn = append(e.warn, Finding{Code: "relative-include", Source: Source{File: from, Line: in.line},
				Message: fmt.Sprintf("include_config_file %q is relative: ejabberd resolves it from its working directory (Debian: /var/lib/ejabberd), not from this file's; xmppneg read it beside this file — write an absolute path", p)})
			p = filepath.Join(filepath.Dir(from), p)
		}
		data, show, err := e.r.read(p)
		if err != nil {
			if errors.Is(err, errOutside) || strings.Contains(err.Error(), "more than") || strings.Contains(err.Error(), "regular") {
				return nil, fmt.Errorf("%s: include_config_file: %w", src, err)
			}
			return nil, e.refused(Source{File: from, Line: in.line}, "Failed to read YAML file: %s", trimPathError(err))
		}
		opts, err := e.file(show, data, stack)
		if err != nil {
			return nil, err
		}
		for _, o := range opts {
			keep := !contains(in.disallow, o.key)
			if len(in.allowOnl) > 0 {
				keep = contains(in.allowOnl, o.key)
			}
			if keep {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var macroNameRE = regexp.MustCompile(`^[A-Z_0-9]+$`)

// macros replaces define_macro's names wherever a value (not a key) is
// exactly a macro's name; a macro may use others.
func (e *ejabberdEval) macros(opts []ejOpt) ([]ejOpt, error) {
	defs := map[string]*yaml.Node{}
	var rest []ejOpt
	for _, o := range opts {
		if o.key != "define_macro" {
			rest = append(rest, o)
			continue
		}
		if o.v.Kind != yaml.MappingNode {
			return nil, e.refused(o.src(), "Invalid value of option define_macro: Expected map, got %s instead", yamlKind(o.v))
		}
		for i := 0; i+1 < len(o.v.Content); i += 2 {
			k := o.v.Content[i]
			if !macroNameRE.MatchString(k.Value) {
				return nil, e.refused(Source{File: o.file, Line: k.Line}, "Invalid value of option define_macro: Invalid string: %s (the name of a macro is capital letters, digits and _)", k.Value)
			}
			if _, dup := defs[k.Value]; dup {
				return nil, e.refused(Source{File: o.file, Line: k.Line}, "Duplicated macro: %s", k.Value)
			}
			defs[k.Value] = o.v.Content[i+1]
		}
	}
	if len(defs) == 0 {
		return rest, nil
	}
	var replace func(n *yaml.Node, path []string) (*yaml.Node, error)
	replace = func(n *yaml.Node, path []string) (*yaml.Node, error) {
		n, err := e.deref(n)
		if err != nil {
			return nil, err
		}
		switch n.Kind {
		case yaml.ScalarNode:
			def, ok := defs[n.Value]
			if !ok {
				return n, nil
			}
			if contains(path, n.Value) {
				return nil, e.refused(Source{File: e.main, Line: n.Line}, "Circularly defined macro: %s", n.Value)
			}
			return replace(def, append(path, n.Value))
		case yaml.SequenceNode, yaml.MappingNode:
			cp := *n
			cp.Content = make([]*yaml.Node, len(n.Content))
			for i, c := range n.Content {
				if n.Kind == yaml.MappingNode && i%2 == 0 {
					cp.Content[i] = c // keys stay
					continue
				}
				if cp.Content[i], err = replace(c, path); err != nil {
					return nil, err
				}
			}
			return &cp, nil
		}
		return n, nil
	}
	for i := range rest {
		v, err := replace(rest[i].v, nil)
		if err != nil {
			return nil, err
		}
		rest[i].v = v
	}
	return rest, nil
}

// ejOptions are the top-level options of ejabberd 23.01 (ejabberd_options)
// and those its transformer rewrites or drops; 24.12 adds a few.
var ejOptions = strings.Fields(`access_rules acl acme allow_contrib_modules allow_multiple_connections anonymous_protocol
api_permissions append_host_config auth_cache_life_time auth_cache_missed auth_cache_size auth_method auth_opts
auth_password_format auth_scram_hash auth_use_cache c2s_cafile c2s_ciphers c2s_dhfile c2s_protocol_options
c2s_tls_compression ca_file cache_life_time cache_missed cache_size captcha_cmd captcha_host captcha_limit captcha_url
certfiles cluster_backend cluster_nodes default_db default_ram_db define_macro disable_sasl_mechanisms domain_balancing
ext_api_headers ext_api_http_pool_size ext_api_path_oauth ext_api_url extauth_pool_name extauth_pool_size
extauth_program fqdn hide_sensitive_log_data host_config hosts include_config_file jwt_auth_only_rule jwt_jid_field
jwt_key language ldap_backups ldap_base ldap_deref_aliases ldap_dn_filter ldap_encrypt ldap_filter ldap_password
ldap_port ldap_rootdn ldap_servers ldap_tls_cacertfile ldap_tls_certfile ldap_tls_depth ldap_tls_verify ldap_uids
listen log_burst_limit_count log_burst_limit_window_time log_modules_fully log_rotate_count log_rotate_size loglevel
max_fsm_queue modules negotiation_timeout net_ticktime new_sql_schema oauth_access oauth_cache_life_time
oauth_cache_missed oauth_cache_rest_failure_life_time oauth_cache_size oauth_client_id_check oauth_db_type
oauth_expire oauth_use_cache oom_killer oom_queue oom_watermark outgoing_s2s_families outgoing_s2s_ipv4_address
outgoing_s2s_ipv6_address outgoing_s2s_port outgoing_s2s_timeout pam_service pam_userinfotype
pgsql_users_number_estimate queue_dir queue_type redis_connect_timeout redis_db redis_password redis_pool_size
redis_port redis_queue_type redis_server registration_timeout resource_conflict router_cache_life_time
router_cache_missed router_cache_size router_db_type router_use_cache rpc_timeout s2s_access s2s_cafile s2s_ciphers
s2s_dhfile s2s_dns_retries s2s_dns_timeout s2s_max_retry_delay s2s_protocol_options s2s_queue_type s2s_timeout
s2s_tls_compression s2s_use_starttls s2s_zlib shaper shaper_rules sm_cache_life_time sm_cache_missed sm_cache_size
sm_db_type sm_use_cache sql_connect_timeout sql_database sql_keepalive_interval sql_odbc_driver sql_password
sql_pool_size sql_port sql_prepared_statements sql_query_timeout sql_queue_type sql_server sql_ssl sql_ssl_cafile
sql_ssl_certfile sql_ssl_verify sql_start_interval sql_type sql_username trusted_proxies use_cache validate_stream
version websocket_origin websocket_ping_interval websocket_timeout
domain_certfile c2s_certfile s2s_certfile log_rotate_date log_rate_limit ca_path iqdisc access commands
ejabberdctl_access_commands commands_admin_access ldap_group_cache_size ldap_user_cache_size ldap_group_cache_validity
ldap_user_cache_validity ldap_local_filter deref_aliases extauth_cache extauth_instances route_subdomains`)

var ejOptions2412 = strings.Fields(`auth_external_user_exists_check disable_sasl_scram_downgrade_protection
install_contrib_modules sql_flags update_sql_schema update_sql_schema_timeout`)

// ejGlobals may not appear in host_config.
var ejGlobals = strings.Fields(`acme allow_contrib_modules api_permissions append_host_config auth_cache_life_time
auth_cache_missed auth_cache_size ca_file captcha_cmd captcha_host captcha_limit captcha_url certfiles cluster_backend
cluster_nodes domain_balancing ext_api_path_oauth fqdn hosts host_config listen loglevel log_rotate_count
log_rotate_size log_burst_limit_count log_burst_limit_window_time log_modules_fully negotiation_timeout net_ticktime
new_sql_schema node_start oauth_cache_life_time oauth_cache_missed oauth_cache_size oauth_cache_rest_failure_life_time
oauth_db_type oauth_expire oauth_use_cache oom_killer oom_queue oom_watermark queue_dir redis_connect_timeout redis_db
redis_password redis_pool_size redis_port redis_queue_type redis_server registration_timeout router_cache_life_time
router_cache_missed router_cache_size router_db_type router_use_cache rpc_timeout s2s_max_retry_delay shaper
sm_cache_life_time sm_cache_missed sm_cache_size trusted_proxies validate_stream version websocket_origin
websocket_ping_interval websocket_timeout`)

// ejNotModelled are the options that change how ejabberd federates but
// that the harness's model of ejabberd does not cover.
var ejNotModelled = map[string]string{
	"s2s_access":              "which servers may federate (an access rule): the prediction assumes the partner is allowed",
	"s2s_protocol_options":    "TLS protocol options (no_tlsv1_1, …): the prediction assumes TLS 1.2–1.3",
	"s2s_ciphers":             "the TLS ciphers offered",
	"s2s_dhfile":              "Diffie-Hellman parameters",
	"s2s_cafile":              "the CAs trusted for s2s: the prediction assumes the partner's CA is trusted",
	"ca_file":                 "the CAs trusted: the prediction assumes the partner's CA is trusted",
	"s2s_tls_compression":     "TLS compression",
	"s2s_timeout":             "how long an idle s2s connection lives",
	"s2s_dns_timeout":         "how long a DNS query may take",
	"s2s_dns_retries":         "how often a DNS query is retried",
	"s2s_max_retry_delay":     "the delay before connecting again after a failure",
	"s2s_queue_type":          "where stanzas wait for a connection",
	"s2s_zlib":                "stream compression (XEP-0138)",
	"outgoing_s2s_families":   "IPv4 or IPv6 for outgoing connections",
	"outgoing_s2s_port":       "the port used when DNS has no SRV record",
	"outgoing_s2s_timeout":    "how long an outgoing connection may take; the harness's deadline is its own (--timeout)",
	"negotiation_timeout":     "how long a stream may take to authenticate",
	"disable_sasl_mechanisms": "external is disabled: ejabberd offers no SASL EXTERNAL on s2s either, so only dialback authenticates (not modelled)",
	"acme":                    "certificates requested automatically (ACME): the prediction uses the certificate state given",
	"fqdn":                    "the names the certificate must carry",
}

// config builds the hosts from the top-level options.
func (e *ejabberdEval) config(opts []ejOpt) (*Config, error) {
	c := &Config{Server: Ejabberd, Version: e.version}
	known := map[string]bool{}
	for _, o := range ejOptions {
		known[o] = true
	}
	if e.version == "24.12" {
		for _, o := range ejOptions2412 {
			known[o] = true
		}
	}
	var names []string
	for o := range known {
		names = append(names, o)
	}
	// Duplicates: lists and maps are joined (group_dups), others refused.
	global := map[string]ejOpt{}
	var order []string
	for _, o := range opts {
		if !known[o.key] {
			hint := ""
			if near := policy.Closest(o.key, names); near != "" {
				hint = ". Did you mean " + near + "?"
			}
			return nil, e.refused(o.src(), "Unknown option: %s%s", o.key, hint)
		}
		prev, dup := global[o.key]
		if !dup {
			global[o.key] = o
			order = append(order, o.key)
			continue
		}
		if prev.v.Kind == o.v.Kind && (o.v.Kind == yaml.SequenceNode || o.v.Kind == yaml.MappingNode) {
			joined := *prev.v
			joined.Content = append(append([]*yaml.Node{}, prev.v.Content...), o.v.Content...)
			prev.v = &joined
			global[o.key] = prev
			continue
		}
		return nil, e.refused(o.src(), "Duplicated option: %s (also at %s)", o.key, prev.src())
	}
	hostsOpt, ok := global["hosts"]
	if !ok {
		return nil, e.refused(Source{File: e.main}, "Missing required option: hosts")
	}
	hosts, err := e.scalars(hostsOpt, "hosts")
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, e.refused(hostsOpt.src(), "Invalid value of option hosts: Empty list")
	}
	// host_config and append_host_config: host → option → value.
	hostCfg := map[string]map[string]ejOpt{}
	appendCfg := map[string]map[string]ejOpt{}
	for _, which := range []struct {
		key string
		m   map[string]map[string]ejOpt
	}{{"host_config", hostCfg}, {"append_host_config", appendCfg}} {
		o, ok := global[which.key]
		if !ok {
			continue
		}
		if o.v.Kind != yaml.MappingNode {
			return nil, e.refused(o.src(), "Invalid value of option %s: Expected map, got %s instead", which.key, yamlKind(o.v))
		}
		for i := 0; i+1 < len(o.v.Content); i += 2 {
			h := strings.ToLower(o.v.Content[i].Value)
			hv, err := e.deref(o.v.Content[i+1])
			if err != nil {
				return nil, err
			}
			if !contains(hosts, h) {
				c.Warnings = append(c.Warnings, Finding{Code: "unknown-host", Source: Source{File: o.file, Line: o.v.Content[i].Line},
					Message: fmt.Sprintf("%s for %s, which is not in hosts: ejabberd ignores it", which.key, h)})
			}
			if hv.Kind != yaml.MappingNode {
				return nil, e.refused(Source{File: o.file, Line: hv.Line}, "Invalid value of option %s->%s: Expected map, got %s instead", which.key, h, yamlKind(hv))
			}
			m := which.m[h]
			if m == nil {
				m = map[string]ejOpt{}
				which.m[h] = m
			}
			for j := 0; j+1 < len(hv.Content); j += 2 {
				k, v := hv.Content[j], hv.Content[j+1]
				v, err := e.deref(v)
				if err != nil {
					return nil, err
				}
				src := ejOpt{key: k.Value, k: k, v: v, file: o.file}
				if !known[k.Value] {
					return nil, e.refused(src.src(), "Invalid value of option %s->%s: Unknown option: %s", which.key, h, k.Value)
				}
				if contains(ejGlobals, k.Value) {
					return nil, e.refused(src.src(), "Invalid value of option %s->%s: Option '%s' is not allowed in this context", which.key, h, k.Value)
				}
				if which.key == "append_host_config" && v.Kind == yaml.ScalarNode {
					return nil, e.refused(src.src(), "Cannot merge value of option '%s' defined in append_host_config for virtual host %s: only options of type list or map are allowed in append_host_config. Hint: specify the option in host_config", k.Value, h)
				}
				m[k.Value] = src
			}
		}
	}
	// The transformer: deprecated *_certfile options join certfiles.
	var certfiles []string
	var certSrc Source
	if o, ok := global["certfiles"]; ok {
		l, err := e.scalars(o, "certfiles")
		if err != nil {
			return nil, err
		}
		certfiles, certSrc = append(certfiles, l...), o.src()
	}
	for _, dep := range []string{"domain_certfile", "c2s_certfile", "s2s_certfile"} {
		if o, ok := global[dep]; ok {
			c.Warnings = append(c.Warnings, Finding{Code: "deprecated", Source: o.src(),
				Message: fmt.Sprintf("Option '%s' is deprecated and was automatically appended to 'certfiles' option (ejabberd's warning)", dep)})
			certfiles = append(certfiles, o.v.Value)
			if certSrc.IsZero() {
				certSrc = o.src()
			}
		}
	}
	if o, ok := global["route_subdomains"]; ok {
		c.Warnings = append(c.Warnings, Finding{Code: "deprecated", Source: o.src(),
			Message: "Option 'route_subdomains' was removed: use s2s_access instead (ejabberd's warning); it is ignored"})
	}
	if o, ok := global["s2s_access"]; ok && o.v.Kind == yaml.ScalarNode && o.v.Value != "all" && o.v.Value != "none" {
		defined := false
		if r, ok := global["access_rules"]; ok && r.v.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(r.v.Content); i += 2 {
				defined = defined || r.v.Content[i].Value == o.v.Value
			}
		}
		if !defined {
			// Observed on ejabberd 23.01 started on such a file
			// (scenarios/examples/ejabberd/ejabberd-macros.yml): it opens no
			// s2s stream and refuses every incoming one.
			c.Warnings = append(c.Warnings, Finding{Code: "s2s-access-undefined", Option: "s2s_access: " + o.v.Value, Source: o.src(),
				Message: fmt.Sprintf("s2s_access names the access rule %q, which access_rules does not define: ejabberd denies every server, so this server federates with no one (the prediction, which assumes the partner is allowed, does not hold); define it, e.g. access_rules: {%s: {allow: all}}", o.v.Value, o.v.Value)})
		}
	}
	globalFindings := []Finding{}
	for _, k := range order {
		if msg, ok := ejNotModelled[k]; ok {
			o := global[k]
			if k == "disable_sasl_mechanisms" && !strings.Contains(strings.ToLower(yamlText(o.v)), "external") {
				continue // client mechanisms only
			}
			globalFindings = append(globalFindings, Finding{Option: k + ": " + yamlText(o.v), Source: o.src(), Message: msg})
		}
	}
	if o, ok := global["listen"]; ok {
		globalFindings = append(globalFindings, e.listeners(o)...)
	}
	for _, name := range hosts {
		h := &Host{Name: name, Kind: "host", Sources: map[string]Source{}, NotModelled: append([]Finding{}, globalFindings...)}
		get := func(key string) (ejOpt, string, bool) {
			if o, ok := hostCfg[name][key]; ok {
				return o, "host_config", true
			}
			o, ok := global[key]
			return o, "", ok
		}
		// s2s_use_starttls: false (default), true/optional, required;
		// required_trusted becomes required and drops mod_s2s_dialback
		// for the section it is in.
		starttls := "false"
		rtGlobal := strings.EqualFold(global["s2s_use_starttls"].value(), "required_trusted")
		rtHost := strings.EqualFold(hostCfg[name]["s2s_use_starttls"].value(), "required_trusted")
		if o, where, ok := get("s2s_use_starttls"); ok {
			v := strings.ToLower(o.v.Value)
			if o.v.Kind != yaml.ScalarNode {
				return nil, e.refused(o.src(), "Invalid value of option s2s_use_starttls: Expected string, got %s instead", yamlKind(o.v))
			}
			switch v {
			case "false", "off", "no", "n":
				starttls = "false"
			case "true", "on", "yes", "y":
				starttls = "optional"
				h.Warnings = append(h.Warnings, Finding{Code: "starttls-true", Source: o.src(),
					Message: fmt.Sprintf("s2s_use_starttls: %s behaves as optional", o.v.Value)})
			case "optional", "required":
				starttls = v
			case "required_trusted":
				starttls = "required"
				h.Warnings = append(h.Warnings, Finding{Code: "required-trusted", Source: o.src(),
					Message: "The value 'required_trusted' of option 's2s_use_starttls' is deprecated and was automatically replaced with value 'required'. The module 'mod_s2s_dialback' has also been automatically removed from the configuration (ejabberd's warning): without dialback, only peers whose certificate ejabberd validates for SASL EXTERNAL federate"})
			default:
				return nil, e.refused(o.src(), "Invalid value of option s2s_use_starttls: Unexpected value: %s. Did you mean required? Possible values are: false, true, optional, required", o.v.Value)
			}
			h.Sources["s2s_use_starttls"] = o.src()
			h.Options = append(h.Options, Option{"s2s_use_starttls" + inSection(where), o.v.Value, o.src()})
			_ = where
		}
		// modules: host_config replaces, append_host_config appends.
		var modules []*yaml.Node // key nodes
		var modFiles []string
		var modAlone []bool  // the only module of its map: removing it leaves an empty value
		var droppedAt Source // mod_s2s_dialback listed, and removed by required_trusted
		addMods := func(o ejOpt, dropDialback bool) error {
			if o.v.Kind != yaml.MappingNode {
				if o.v.Kind == yaml.ScalarNode && (o.v.Value == "" || o.v.Tag == "!!null") {
					return nil
				}
				return e.refused(o.src(), "Invalid value of option modules: Expected map, got %s instead", yamlKind(o.v))
			}
			for i := 0; i < len(o.v.Content); i += 2 {
				if dropDialback && o.v.Content[i].Value == "mod_s2s_dialback" {
					droppedAt = Source{File: o.file, Line: o.v.Content[i].Line}
					continue // the transformer removed it with required_trusted
				}
				modules = append(modules, o.v.Content[i])
				modFiles = append(modFiles, o.file)
				modAlone = append(modAlone, e.aloneInFile(o.file, o.v.Content[i].Line))
			}
			return nil
		}
		var modsOpt ejOpt
		drop := rtGlobal
		if o, ok := hostCfg[name]["modules"]; ok {
			modsOpt, drop = o, rtHost
		} else if o, ok := global["modules"]; ok {
			modsOpt = o
		}
		if modsOpt.v != nil {
			if err := addMods(modsOpt, drop); err != nil {
				return nil, err
			}
		}
		if o, ok := appendCfg[name]["modules"]; ok {
			if err := addMods(o, rtHost); err != nil {
				return nil, err
			}
		}
		dialback := false
		var dbSrc Source
		for i, m := range modules {
			if m.Value == "mod_s2s_dialback" {
				dialback, dbSrc = true, Source{File: modFiles[i], Line: m.Line}
			}
		}
		if !dbSrc.IsZero() {
			h.Sources["dialback"] = dbSrc
		}
		switch {
		case !droppedAt.IsZero() && !dialback:
			h.Sources["dialback"] = h.Sources["s2s_use_starttls"]
			h.Options = append(h.Options, Option{"mod_s2s_dialback", "listed in modules (" + droppedAt.String() + "), removed by s2s_use_starttls: required_trusted", h.Sources["s2s_use_starttls"]})
		default:
			h.Options = append(h.Options, Option{"mod_s2s_dialback", map[bool]string{true: "listed in modules", false: "not listed in modules"}[dialback], dbSrc})
		}
		cert := "valid"
		if len(certfiles) == 0 {
			cert = "missing"
			h.Warnings = append(h.Warnings, Finding{Code: "no-certificate",
				Message: fmt.Sprintf("no certfiles: ejabberd has no certificate for %s, so it offers no STARTTLS (unless ACME obtains one)", name)})
		} else {
			h.Sources["cert"] = certSrc
			h.Warnings = append(h.Warnings, Finding{Code: "certificate-assumed", Source: certSrc,
				Message: fmt.Sprintf("ejabberd picks the certificate for %s among certfiles (%s) by the names it carries; xmppneg does not read them and assumes a valid one (model another state with cert=STATE; ejabberd refuses to start with a self-signed or untrusted one)", name, strings.Join(certfiles, ", "))})
		}
		h.Options = append(h.Options, Option{"certfiles", strings.Join(certfiles, ", "), certSrc})
		for _, k := range sortedKeys(hostCfg[name]) {
			if msg, ok := ejNotModelled[k]; ok {
				o := hostCfg[name][k]
				h.NotModelled = append(h.NotModelled, Finding{Option: "host_config " + name + " " + k + ": " + yamlText(o.v), Source: o.src(), Message: msg})
			}
		}
		h.Knobs = map[string]string{"s2s_use_starttls": starttls, "dialback": fmt.Sprint(dialback), "cert": cert}
		switch {
		case starttls == "false":
			h.Warnings = append(h.Warnings, Finding{Code: "no-starttls", Source: h.Sources["s2s_use_starttls"],
				Message: "s2s_use_starttls is false (ejabberd's default \"for historical reasons\"): no TLS on s2s at all; partners that require TLS (Prosody by default, Lync's default entry) cannot federate"})
		case !dialback:
			h.Warnings = append(h.Warnings, Finding{Code: "no-dialback", Source: dbSrc,
				Message: "mod_s2s_dialback is not loaded: only SASL EXTERNAL, and ejabberd 23.01 accepts it only from certificates with the clientAuth purpose, which public CAs stopped issuing in 2026"})
		}
		if dialback && starttls != "false" {
			h.Warnings = append(h.Warnings, Finding{Code: "eku-client",
				Message: "ejabberd 23.01 refuses SASL EXTERNAL from a certificate without clientAuth (\"unsupported certificate purpose\", as Let's Encrypt issues them since 2026); dialback rescues such partners"})
		}
		h.Changes = e.changes(global, hostCfg[name], modsOpt, drop, modules, modFiles, modAlone, starttls, dialback)
		c.Hosts = append(c.Hosts, h)
	}
	c.Warnings = append(c.Warnings, e.warn...)
	return c, nil
}

func inSection(where string) string {
	if where == "" {
		return ""
	}
	return " (" + where + ")"
}

// scalars reads a list of strings (or a single one).
func (e *ejabberdEval) scalars(o ejOpt, name string) ([]string, error) {
	switch o.v.Kind {
	case yaml.ScalarNode:
		return []string{o.v.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range o.v.Content {
			c, err := e.deref(c)
			if err != nil {
				return nil, err
			}
			if c.Kind != yaml.ScalarNode {
				return nil, e.refused(Source{File: o.file, Line: c.Line}, "Invalid value of option %s: Expected string, got %s instead", name, yamlKind(c))
			}
			out = append(out, strings.ToLower(c.Value))
		}
		return out, nil
	}
	return nil, e.refused(o.src(), "Invalid value of option %s: Expected list, got map instead", name)
}

// listeners notes what the s2s listeners set that is not modelled.
func (e *ejabberdEval) listeners(o ejOpt) []Finding {
	var out []Finding
	if o.v.Kind != yaml.SequenceNode {
		return nil
	}
	for _, l := range o.v.Content {
		if l.Kind != yaml.MappingNode {
			continue
		}
		var module string
		var extra []string
		for i := 0; i+1 < len(l.Content); i += 2 {
			k, v := l.Content[i].Value, l.Content[i+1]
			if k == "module" {
				module = v.Value
			}
			if k != "module" && k != "port" && k != "ip" {
				extra = append(extra, k+": "+yamlText(v))
			}
		}
		if module != "ejabberd_s2s_in" || len(extra) == 0 {
			continue
		}
		msg := "options of the s2s listener: only STARTTLS on the port the harness connects to is modelled"
		for _, x := range extra {
			if strings.HasPrefix(x, "tls: true") {
				msg = "tls: true makes the s2s listener direct TLS (XEP-0368), which the model of ejabberd does not cover"
			}
		}
		out = append(out, Finding{Option: "listen ejabberd_s2s_in " + strings.Join(extra, ", "), Source: Source{File: o.file, Line: l.Line}, Message: msg})
	}
	return out
}

func yamlText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.SequenceNode:
		var items []string
		for i, c := range n.Content {
			if i == 10 {
				items = append(items, "…")
				break
			}
			items = append(items, yamlText(c))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case yaml.MappingNode:
		var items []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i == 20 {
				items = append(items, "…")
				break
			}
			items = append(items, n.Content[i].Value+": "+yamlText(n.Content[i+1]))
		}
		return "{" + strings.Join(items, ", ") + "}"
	case yaml.AliasNode:
		return "*" + n.Value
	}
	return ""
}

// changes are the one-line edits a fix may propose for this host.
// Replacing required_trusted also brings back mod_s2s_dialback where it
// is listed (the transformer removed it), and adding mod_s2s_dialback
// where required_trusted removes it again is no change at all.
func (e *ejabberdEval) changes(global, hostCfg map[string]ejOpt, modsOpt ejOpt, modsDropped bool, modules []*yaml.Node, modFiles []string, modAlone []bool, starttls string, dialback bool) []Change {
	var out []Change
	o, inHost := hostCfg["s2s_use_starttls"]
	if !inHost {
		o = global["s2s_use_starttls"]
	}
	trusted := strings.EqualFold(o.value(), "required_trusted")
	listed := false // mod_s2s_dialback listed, before the transformer
	if modsOpt.v != nil && modsOpt.v.Kind == yaml.MappingNode {
		for i := 0; i < len(modsOpt.v.Content); i += 2 {
			listed = listed || modsOpt.v.Content[i].Value == "mod_s2s_dialback"
		}
	}
	for _, v := range []string{"false", "optional", "required"} {
		if v == starttls && !trusted {
			continue
		}
		knobs := map[string]string{"s2s_use_starttls": v}
		if trusted && modsDropped && listed {
			knobs["dialback"] = "true"
		}
		if o.k != nil {
			text := lineText(e.data[o.file], o.k.Line)
			re := regexp.MustCompile(`^(\s*s2s_use_starttls\s*:\s*)(\S+)(.*)$`)
			if m := re.FindStringSubmatch(text); m != nil {
				out = append(out, Change{Knobs: knobs, Edit: Edit{File: o.file, Line: o.k.Line, Old: text, New: m[1] + v + m[3]}})
			}
			continue
		}
		out = append(out, Change{Knobs: knobs, Edit: Edit{File: e.main, Line: e.topLine("modules"), Add: true, New: "s2s_use_starttls: " + v}})
	}
	if dialback {
		for i, m := range modules {
			if m.Value != "mod_s2s_dialback" {
				continue
			}
			text := lineText(e.data[modFiles[i]], m.Line)
			if !modAlone[i] && regexp.MustCompile(`^\s*mod_s2s_dialback\s*:\s*(\{\s*\})?\s*(#.*)?$`).MatchString(text) {
				out = append(out, change("dialback", "false", Edit{File: modFiles[i], Line: m.Line, Old: text, New: "", In: "modules"}))
			}
		}
	} else if !(modsDropped && trusted) && modsOpt.v != nil && modsOpt.v.Kind == yaml.MappingNode && len(modsOpt.v.Content) > 0 {
		first := modsOpt.v.Content[0]
		text := lineText(e.data[modsOpt.file], first.Line)
		indent := text[:len(text)-len(strings.TrimLeft(text, " "))]
		out = append(out, change("dialback", "true", Edit{File: modsOpt.file, Line: first.Line, Add: true, New: indent + "mod_s2s_dialback: {}", In: "modules"}))
	}
	return out
}

// aloneInFile reports whether the map key at line is the only entry
// written under its parent key in its file: removing it would leave
// the parent empty.
func (e *ejabberdEval) aloneInFile(file string, line int) bool {
	lines := strings.Split(string(e.data[file]), "\n")
	if line < 1 || line > len(lines) {
		return false
	}
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	blank := func(l string) bool { t := strings.TrimSpace(l); return t == "" || strings.HasPrefix(t, "#") }
	me := indent(lines[line-1])
	for i := line - 2; i >= 0; i-- {
		if blank(lines[i]) {
			continue
		}
		if indent(lines[i]) >= me {
			return false // a sibling before it
		}
		break
	}
	for i := line; i < len(lines); i++ {
		if blank(lines[i]) {
			continue
		}
		return indent(lines[i]) < me
	}
	return true
}

// topLine is the line of a top-level option of the main file, where a
// new option goes before; 0 (the end) when there is none.
func (e *ejabberdEval) topLine(key string) int {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(key) + `\s*:`)
	for i, l := range strings.Split(string(e.data[e.main]), "\n") {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}
