-- A classic: dialback switched off "for security". Only peers whose
-- certificate validates (SASL EXTERNAL) federate: ejabberd 23 refuses
-- Prosody's serverAuth-only certificate (Let's Encrypt since 2026) for
-- EXTERNAL, and jabberd2 has no EXTERNAL at all.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }
modules_disabled = {
	"dialback";
}

VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }
