# The XMPP partners of contoso.test's Lync 2013 gateway, as the commands
# that created them. xmppneg partners reads this file, or the same list
# as Get-CsXmppAllowedPartner | Format-List (partners.txt), Export-Csv
# (partners.csv) or ConvertTo-Json (partners.json).

# Microsoft's own Google Talk example: TCP Dialback only.
New-CsXmppAllowedPartner -Identity gtalk.example -TlsNegotiation NotSupported -SaslNegotiation NotSupported -SupportDialbackNegotiation $true -PartnerType Federated -Description "Google Talk style: dialback only"

# Left on the defaults (TLS Required, SASL Required, dialback True).
New-CsXmppAllowedPartner -Identity jabberd2.example -Description "a jabberd2 server"

# SASL required without TLS: the document calls this invalid.
New-CsXmppAllowedPartner -Identity legacy.example -TlsNegotiation NotSupported -SaslNegotiation Required -SupportDialbackNegotiation $false -Description "an old entry"

New-CsXmppAllowedPartner -Identity prosody.example -TlsNegotiation Optional -SaslNegotiation Optional -SupportDialbackNegotiation $true -Description "a Prosody server"

New-CsXmppAllowedPartner -Identity ejabberd.example -TlsNegotiation Required -SaslNegotiation Required -SupportDialbackNegotiation $false -PartnerType PublicVerified -Description "an ejabberd server"

# Nobody knows what this one runs.
New-CsXmppAllowedPartner -Identity unknown.example -TlsNegotiation Optional -SaslNegotiation Optional -SupportDialbackNegotiation $true
