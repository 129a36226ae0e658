-- Prosody refuses this file: a Component with the name of a VirtualHost.
modules_enabled = { "saslauth"; "tls"; "dialback" }

VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }

Component "example.org" "muc"
