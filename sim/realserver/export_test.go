package realserver

// The launcher's own configurations, for launcher_config_test.go (package
// realserver_test), which reads them with package serverconf: a package
// that imports this one.

func ProsodyConfigText(dir, domain string, s ProsodySettings) string {
	direct := 0
	if s.DirectTLS {
		direct = 5270
	}
	return prosodyConfig(dir, domain, 5269, direct, "53", s)
}

func EjabberdConfigText(dir string, hosts []EjabberdHost) string {
	return ejabberdConfig(dir, 5269, hosts)
}

func Jabberd2S2SText(dir string, s Jabberd2Settings, pemfile string) string {
	j := &Jabberd2{dir: dir, settings: s, port: 5269, routerPort: 5347}
	return j.configs(pemfile, "secret")["s2s.xml"]
}
