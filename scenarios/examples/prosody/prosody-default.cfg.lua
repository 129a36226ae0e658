-- Prosody 0.12 federating with the built-in defaults: encryption
-- required (the default), dialback loaded, no s2s_secure_auth.
-- Expected: the prosody-0.12 profile.
admins = { }
modules_enabled = {
	"disco";
	"roster";
	"saslauth"; -- SASL EXTERNAL for servers too
	"tls"; -- STARTTLS on c2s and s2s
	"dialback"; -- Server Dialback (XEP-0220)
	"ping";
}
authentication = "internal_hashed"
s2s_secure_auth = false

VirtualHost "example.org"
	ssl = {
		certificate = "/etc/prosody/certs/example.org.crt";
		key = "/etc/prosody/certs/example.org.key";
	}
