-- A classic: a value written as in another language. True is not a Lua
-- value: it reads as nil, which unsets the option, so Prosody uses its
-- default (false) and peers' certificates are not required.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }
s2s_secure_auth = True

VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }
