package scenarios

import (
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"

	"xmppneg/sim"
)

// Shape is what decided a negotiation, as each end said it on each
// connection: its stream headers, the features it offered, its requests
// and answers, its errors and its closing tag, in order, without what
// differs from one run to the next (ids, keys, names, texts, timing).
// Two negotiations with the same shape went the same way; a real server
// and the engine playing its profile are compared by it (see
// TestRecordedRealServers).
//
// Each line is "CONN SIDE: TOKEN", such as
// "main receiver: features(starttls+required,dialback)"; a connection's
// switch to TLS is "CONN: tls".
type Shape []string

// ShapeOf reads the shape of a transcript. Stanzas (pings and their
// answers) are left out: they prove a stream, they do not negotiate it.
//
// What the server (the initiator when serverInitiates, else the
// receiver; on a verify connection the authoritative server or the
// receiver) said is taken from what the other end read of it
// (sim.Entry.Read), as it must be when the server is a real one; what
// the other end said, from its own record. The engine playing a server
// records what it sends too, which the real server's peer may never have
// read (after a TLS alert, say).
func ShapeOf(entries []sim.Entry, serverInitiates bool) Shape {
	type key struct{ conn, side string }
	pending := map[key]string{}
	secure := map[string]bool{}
	var out Shape
	for _, e := range entries {
		side, _, _ := strings.Cut(e.From, " ")
		if (side == ServerSide(e.Conn, serverInitiates)) != e.Read {
			continue
		}
		if e.TLS && !secure[e.Conn] {
			secure[e.Conn] = true
			out = append(out, e.Conn+": tls")
			for k := range pending {
				if k.conn == e.Conn {
					delete(pending, k)
				}
			}
		}
		k := key{e.Conn, side}
		toks, rest := shapeTokens(pending[k] + e.XML)
		pending[k] = rest
		for _, t := range toks {
			out = append(out, e.Conn+" "+side+": "+t)
		}
	}
	return out
}

// ServerSide is the part the server (the end a shape is about) plays on
// conn: the initiator or the receiver on the main connection; on a
// verify connection, the authoritative server when it initiated the main
// one, else the receiver that opened it.
func ServerSide(conn string, serverInitiates bool) string {
	switch {
	case serverInitiates && conn == "verify":
		return "authoritative"
	case serverInitiates:
		return "initiator"
	}
	return "receiver"
}

// Of returns the lines of one connection and side ("main receiver"), and
// the connection's TLS marker.
func (s Shape) Of(connSide string) Shape {
	conn, _, _ := strings.Cut(connSide, " ")
	var out Shape
	for _, l := range s {
		if strings.HasPrefix(l, connSide+": ") || l == conn+": tls" {
			out = append(out, l)
		}
	}
	return out
}

// Parts lists the connections and sides the shape has lines of.
func (s Shape) Parts() []string {
	var out []string
	for _, l := range s {
		part, _, _ := strings.Cut(l, ": ")
		if strings.Contains(part, " ") && !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	return out
}

// shapeTokens reads the complete top-level elements at the start of
// text, which is what one end sent on one connection (a stream header
// opens a stream; elements are read whole), and returns their tokens and
// what is left for more bytes to complete.
func shapeTokens(text string) (toks []string, rest string) {
	for {
		trimmed := strings.TrimLeft(text, " \t\r\n")
		if trimmed == "" {
			return toks, ""
		}
		text = trimmed
		dec := xml.NewDecoder(strings.NewReader(text))
		dec.Strict = false
		tok, err := dec.Token()
		if err != nil {
			return toks, text
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive, xml.CharData:
			text = text[dec.InputOffset():]
			continue
		case xml.EndElement:
			if t.Name.Local == "stream" {
				toks = append(toks, "close")
			}
			text = text[dec.InputOffset():]
			continue
		case xml.StartElement:
			if t.Name.Local == "stream" {
				tok := "stream"
				if attr(t, "version") == "" {
					tok = "stream(pre-1.0)"
				}
				toks = append(toks, tok)
				text = text[dec.InputOffset():]
				continue
			}
			var n node
			if err := dec.DecodeElement(&n, &t); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected EOF") {
					return toks, text // the rest of the element is to come
				}
				// Not XML a parser can read: said as such, and dropped.
				return append(toks, "not-xml"), ""
			}
			if s := n.token(); s != "" {
				toks = append(toks, s)
			}
			text = text[dec.InputOffset():]
		}
	}
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// node is an element read whole, names by their local part and prefix.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n node) attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (n node) child(local string) (node, bool) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == local {
			return c, true
		}
	}
	return node{}, false
}

// condition is the local name of the first child that names an error
// condition (not <text/>).
func (n node) condition() string {
	for _, c := range n.Nodes {
		if c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}

// dialback says whether the element is of the dialback namespace, by its
// namespace or by the usual db: prefix.
func (n node) dialback() bool {
	return n.XMLName.Space == "db" || n.XMLName.Space == "jabber:server:dialback"
}

// token is the element as a shape says it, or "" for a stanza.
func (n node) token() string {
	switch local := n.XMLName.Local; {
	case local == "features":
		var fs []string
		for _, c := range n.Nodes {
			switch c.XMLName.Local {
			case "starttls":
				if _, ok := c.child("required"); ok {
					fs = append(fs, "starttls+required")
				} else {
					fs = append(fs, "starttls")
				}
			case "mechanisms":
				var ms []string
				for _, m := range c.Nodes {
					ms = append(ms, strings.TrimSpace(m.Text))
				}
				fs = append(fs, "mechanisms["+strings.Join(ms, ",")+"]")
			case "dialback":
				fs = append(fs, c.XMLName.Local)
			case "sasl-channel-binding":
				// XEP-0440, with the types advertised.
				var ts []string
				for _, t := range c.Nodes {
					ts = append(ts, t.attr("type"))
				}
				fs = append(fs, "channel-binding["+strings.Join(ts, ",")+"]")
			case "bidi":
				// XEP-0288's feature, or ejabberd 24.12's in the
				// request's namespace: not the same offer.
				if c.XMLName.Space == "urn:xmpp:bidi" {
					fs = append(fs, "bidi[urn:xmpp:bidi]")
				} else {
					fs = append(fs, "bidi")
				}
			case "limits":
				// XEP-0478, with the values advertised.
				var ls []string
				for _, l := range c.Nodes {
					if l.XMLName.Local != "" {
						ls = append(ls, l.XMLName.Local+"="+strings.TrimSpace(l.Text))
					}
				}
				fs = append(fs, "limits("+strings.Join(ls, ",")+")")
			}
		}
		slices.Sort(fs)
		return "features(" + strings.Join(fs, ",") + ")"
	case local == "error" && (n.XMLName.Space == "stream" || n.XMLName.Space == "http://etherx.jabber.org/streams"):
		return "error:" + n.condition()
	case local == "starttls", local == "proceed":
		return local
	case local == "failure" && n.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-tls":
		return "tls-failure"
	case local == "auth":
		return "auth:" + n.attr("mechanism")
	case local == "success":
		return "success"
	case local == "failure":
		return "sasl-failure:" + n.condition()
	case (local == "result" || local == "verify") && n.dialback():
		if typ := n.attr("type"); typ != "" {
			if e, ok := n.child("error"); ok {
				return "db:" + local + ":" + typ + ":" + e.condition()
			}
			return "db:" + local + ":" + typ
		}
		return "db:" + local
	case local == "iq" || local == "message" || local == "presence":
		return ""
	}
	return n.XMLName.Local
}
