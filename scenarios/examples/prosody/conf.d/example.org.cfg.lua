VirtualHost "example.org"
	ssl = { certificate = "/etc/prosody/certs/example.org.crt"; key = "/etc/prosody/certs/example.org.key" }

Component "conference.example.org" "muc"
