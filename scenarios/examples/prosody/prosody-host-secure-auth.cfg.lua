-- A classic: s2s_secure_auth written in the VirtualHost section.
-- Prosody's mod_s2s reads it only in the global section, so peers'
-- certificates are NOT required; only STARTTLS's <required/> changes.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }

VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }
	s2s_secure_auth = true
