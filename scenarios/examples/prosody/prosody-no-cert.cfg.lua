-- A classic: a new VirtualHost with no certificate (none configured, and
-- no certs directory beside this file). Prosody offers no STARTTLS and,
-- encryption being required by default, no s2s connection succeeds.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }

VirtualHost "new.example.org"
