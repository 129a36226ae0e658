VirtualHost "chat.example.net"
	ssl = { certificate = "/etc/prosody/certs/chat.example.net.crt"; key = "/etc/prosody/certs/chat.example.net.key" }
	modules_disabled = { "dialback" }
