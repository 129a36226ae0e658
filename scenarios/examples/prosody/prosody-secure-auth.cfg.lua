-- Prosody with s2s_secure_auth, as Debian ships it, and one partner
-- exempted because its certificate is self-signed.
-- Expected: prosody-0.12-secure, with s2s_secure_auth off for
-- legacy.example only.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }
s2s_require_encryption = true
s2s_secure_auth = true
s2s_insecure_domains = { "legacy.example" }

VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }
