-- The Debian layout: global settings here, one file per host in conf.d
-- (Include with a glob, relative to this file). Each included file
-- starts in the global section until its VirtualHost line.
modules_enabled = { "saslauth"; "tls"; "dialback"; "ping" }
s2s_secure_auth = false
certificates = "/etc/prosody/certs"

Include "conf.d/*.cfg.lua"
