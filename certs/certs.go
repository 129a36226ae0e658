// Package certs is the harness's test PKI: a certificate authority and
// leaf certificates for any domain in each state that real federations
// run into (valid, missing, expired, self-signed, untrusted, wrong name,
// and the extended key usages public CAs issue: serverAuth only since
// 2026, clientAuth only, none), generated in memory once per process and
// exportable as PEM for real servers.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"xmppneg/policy/domain"
	"xmppneg/policy/safefile"
)

// State is the condition of the certificate an endpoint presents.
type State string

// The certificate states.
const (
	Valid        State = "valid"          // issued by the harness CA for the domain, serverAuth+clientAuth
	Missing      State = "missing"        // no certificate at all
	Expired      State = "expired"        // issued by the harness CA, validity ended a day ago
	SelfSigned   State = "self-signed"    // signed by its own key
	Untrusted    State = "untrusted"      // issued by a CA the peers do not trust
	WrongName    State = "wrong-name"     // issued by the harness CA for another domain
	NoClientAuth State = "no-client-auth" // serverAuth only: what public CAs issue since 2026 (Let's Encrypt from 2026-02-11)
	ClientOnly   State = "client-auth-only"
	NoEKU        State = "no-eku" // no extended key usage extension: good for any purpose
	// MissingIntermediate is issued by an intermediate CA of the trusted
	// one, but sent alone: the chain is incomplete.
	MissingIntermediate State = "missing-intermediate"
	NotYetValid         State = "not-yet-valid" // validity starts tomorrow
	// SRVNameOnly names the host the SRV record points to (xmpp.DOMAIN),
	// not the XMPP domain: the classic Edge server certificate.
	SRVNameOnly  State = "srv-name-only"
	ExpiringSoon State = "expiring-soon" // valid, for 5 more days
)

// States lists every State.
var States = []State{Valid, Missing, Expired, SelfSigned, Untrusted, WrongName, NoClientAuth, ClientOnly, NoEKU,
	MissingIntermediate, NotYetValid, SRVNameOnly, ExpiringSoon}

// SRVHost is the host name an SRVNameOnly certificate names for domain:
// the target an SRV record would give.
func SRVHost(domain string) string { return "xmpp." + strings.ToLower(domain) }

// ExpiringSoonDays is how long an ExpiringSoon certificate has left.
const ExpiringSoonDays = 5

// Passes reports whether a certificate in state st passes the check of a
// peer that trusts the harness CA and expects the certificate's domain,
// for usage (x509.ExtKeyUsageServerAuth, ClientAuth or Any): what Check
// finds, said without a certificate.
func (st State) Passes(usage x509.ExtKeyUsage) bool {
	switch st {
	case Valid, NoEKU, ExpiringSoon:
		return true
	case NoClientAuth:
		return usage != x509.ExtKeyUsageClientAuth
	case ClientOnly:
		return usage != x509.ExtKeyUsageServerAuth
	}
	return false
}

// AcceptedStates lists the state names, comma separated.
var AcceptedStates = func() string {
	names := make([]string, len(States))
	for i, st := range States {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}()

// ParseState reads a state name (any case; "untrusted-ca" and
// "untrusted CA" are accepted for untrusted, "self signed" for self-signed).
func ParseState(s string) (State, error) {
	n := strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(strings.TrimSpace(s)))
	switch n {
	case "untrusted-ca":
		n = string(Untrusted)
	case "selfsigned":
		n = string(SelfSigned)
	case "wrongname":
		n = string(WrongName)
	case "noclientauth", "server-auth-only":
		n = string(NoClientAuth)
	case "clientauthonly", "client-only":
		n = string(ClientOnly)
	case "noeku":
		n = string(NoEKU)
	case "incomplete-chain", "no-intermediate":
		n = string(MissingIntermediate)
	case "srv-name", "host-name-only":
		n = string(SRVNameOnly)
	}
	for _, st := range States {
		if n == string(st) {
			return st, nil
		}
	}
	return "", fmt.Errorf("invalid certificate state %q: accepted values are %s", s, AcceptedStates)
}

// Authority is a certificate authority.
type Authority struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewAuthority creates a self-signed CA named name.
func NewAuthority(name string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"xmppneg test PKI"}},
		// Valid well before today, so that an expired leaf it issued was
		// once valid under it, as expired certificates in the field were.
		NotBefore:             now.Add(-30 * 24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing CA certificate: %w", err)
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// Pool returns a pool that trusts only a.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

var serialMax = new(big.Int).Lsh(big.NewInt(1), 120)

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, serialMax)
	if err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		panic(err)
	}
	return n
}

// leafSpec is what distinguishes the certificate of each state.
type leafSpec struct {
	name      string // dNSName SAN and CN
	notBefore time.Time
	notAfter  time.Time
	usage     []x509.ExtKeyUsage
}

func (a *Authority) issue(s leafSpec, selfSign bool) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: s.name},
		DNSNames:              []string{s.name},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.usage,
		BasicConstraintsValid: true,
	}
	parent, signer := a.Cert, any(a.Key)
	if selfSign {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("certs: creating certificate for %s: %w", s.name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing certificate for %s: %w", s.name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// PKI is a trusted CA, an untrusted one and a cache of leaf certificates.
// It is safe for concurrent use.
type PKI struct {
	CA    *Authority // the CA every harness endpoint trusts
	Rogue *Authority // a CA nobody trusts, issuer of Untrusted certificates
	// Inter is an intermediate CA issued by CA: the issuer of
	// MissingIntermediate certificates, which are sent without it.
	Inter *Authority

	mu    sync.Mutex
	leafs map[leafKey]*tls.Certificate
}

type leafKey struct {
	domain string
	state  State
}

// New creates a PKI with fresh keys.
func New() (*PKI, error) {
	ca, err := NewAuthority("xmppneg test CA")
	if err != nil {
		return nil, err
	}
	rogue, err := NewAuthority("xmppneg untrusted CA")
	if err != nil {
		return nil, err
	}
	inter, err := ca.Intermediate("xmppneg intermediate CA")
	if err != nil {
		return nil, err
	}
	return &PKI{CA: ca, Rogue: rogue, Inter: inter, leafs: map[leafKey]*tls.Certificate{}}, nil
}

// Intermediate creates an intermediate CA named name, issued by a.
func (a *Authority) Intermediate(name string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating intermediate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"xmppneg test PKI"}},
		NotBefore:             now.Add(-29 * 24 * time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: creating intermediate certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing intermediate certificate: %w", err)
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// Hints is the pool of intermediates the harness knows of, for saying
// that a chain is incomplete rather than untrusted. It is never used to
// accept a certificate: a peer must send its chain.
func (p *PKI) Hints() *x509.CertPool {
	pool := x509.NewCertPool()
	if p.Inter != nil {
		pool.AddCert(p.Inter.Cert)
	}
	return pool
}

var (
	defaultOnce sync.Once
	defaultPKI  *PKI
	defaultErr  error
)

// Default returns the process-wide PKI, generated on first use, so that
// every endpoint of a run shares one CA and no key is generated twice.
func Default() (*PKI, error) {
	defaultOnce.Do(func() { defaultPKI, defaultErr = New() })
	return defaultPKI, defaultErr
}

// Roots returns the pool of CAs a harness endpoint trusts.
func (p *PKI) Roots() *x509.CertPool { return p.CA.Pool() }

// ErrMissing is returned for the Missing state, which has no certificate.
var ErrMissing = errors.New("certs: the missing state has no certificate")

// Certificate returns the certificate for domain in the given state,
// creating it on first use. For Missing it returns nil and ErrMissing.
func (p *PKI) Certificate(domain string, st State) (*tls.Certificate, error) {
	if st == Missing {
		return nil, ErrMissing
	}
	k := leafKey{strings.ToLower(domain), st}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.leafs[k]; ok {
		return c, nil
	}
	now := time.Now()
	spec := leafSpec{
		name:      k.domain,
		notBefore: now.Add(-time.Hour),
		notAfter:  now.Add(365 * 24 * time.Hour),
		usage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	issuer, selfSign := p.CA, false
	switch st {
	case Valid:
	case Expired:
		spec.notBefore, spec.notAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	case SelfSigned:
		selfSign = true
	case Untrusted:
		issuer = p.Rogue
	case WrongName:
		spec.name = "wrong-name.invalid"
	case NoClientAuth:
		spec.usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case ClientOnly:
		spec.usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case NoEKU:
		spec.usage = nil
	case MissingIntermediate:
		issuer = p.Inter
	case NotYetValid:
		spec.notBefore = now.Add(24 * time.Hour)
	case SRVNameOnly:
		spec.name = SRVHost(k.domain)
	case ExpiringSoon:
		spec.notAfter = now.Add(ExpiringSoonDays * 24 * time.Hour)
	default:
		return nil, fmt.Errorf("certs: unknown state %q", st)
	}
	c, err := issuer.issue(spec, selfSign)
	if err != nil {
		return nil, err
	}
	p.leafs[k] = c
	return c, nil
}

// Check validates a peer's certificate chain as the harness does: trusted
// by roots, within its validity period, usable for usage and naming
// domain (RFC 6125 DNS-ID). It returns nil when the certificate is good,
// else an error that says what is wrong in a sentence. hints (may be nil)
// are intermediates the caller knows of: never used to accept a chain,
// only to say that one the peer sent was incomplete.
func Check(chain []*x509.Certificate, roots *x509.CertPool, domain string, usage x509.ExtKeyUsage, now time.Time, hints *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: domain,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err == nil {
		return nil
	}
	var unk x509.UnknownAuthorityError
	if hints != nil && errors.As(err, &unk) {
		if _, herr := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: hints, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); herr == nil {
			return fmt.Errorf("incomplete certificate chain: issued by the intermediate %q, which the peer did not send (missing intermediate)", chain[0].Issuer.CommonName)
		}
	}
	return describe(err, chain[0], domain, usage, now)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageAny:
		return "any usage"
	}
	return fmt.Sprintf("usage %d", u)
}

// Purposes names the extended key usages of c, such as "serverAuth
// only", or "none" when it lists none (any purpose).
func Purposes(c *x509.Certificate) string { return usageNames(c.ExtKeyUsage) }

// ClientAuthCapable reports whether c may authenticate a TLS client:
// its extended key usage lists clientAuth or any purpose, or lists
// nothing. In s2s the initiating server is the TLS client and presents
// its server certificate; servers that check the purpose (ejabberd
// before 25.08, OpenSSL's defaults) refuse one without clientAuth.
func ClientAuthCapable(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func usageNames(us []x509.ExtKeyUsage) string {
	var names []string
	for _, u := range us {
		names = append(names, usageName(u))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " and ") + " only"
}

func describe(err error, leaf *x509.Certificate, domain string, usage x509.ExtKeyUsage, now time.Time) error {
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired && now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate not yet valid (valid from %s)", leaf.NotBefore.UTC().Format(time.RFC3339))
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Errorf("certificate expired (valid until %s)", leaf.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return fmt.Errorf("certificate not valid for %s: its extended key usage is %s (unsupported certificate purpose)", usageName(usage), usageNames(leaf.ExtKeyUsage))
	case errors.As(err, &unk) && leaf.Issuer.String() == leaf.Subject.String():
		return errors.New("certificate is self-signed")
	case errors.As(err, &unk):
		return fmt.Errorf("certificate signed by an untrusted authority (%s)", leaf.Issuer.CommonName)
	case errors.As(err, &host) && namesHostOf(leaf, domain):
		return fmt.Errorf("certificate names %s, a host of %s, not the XMPP domain itself: the domain must be in the certificate (RFC 6125, XEP-0178), not only the host the SRV record points to",
			strings.Join(leaf.DNSNames, ", "), domain)
	case errors.As(err, &host):
		return fmt.Errorf("certificate names %s, not %s", strings.Join(leaf.DNSNames, ", "), domain)
	}
	return fmt.Errorf("certificate invalid: %v", err)
}

// namesHostOf reports whether leaf names a host under domain.
func namesHostOf(leaf *x509.Certificate, domain string) bool {
	for _, n := range leaf.DNSNames {
		if strings.HasSuffix(strings.ToLower(n), "."+strings.ToLower(domain)) {
			return true
		}
	}
	return false
}

// WritePEM writes ca.pem (the trusted CA) and, for each domain,
// DOMAIN.crt and DOMAIN.key in the given state to dir, which is created
// if needed. Every domain is checked before anything is written (the
// names become file names); each file is written to a fresh file in dir
// and renamed into place, so that a link at its name is replaced, not
// followed, and keys are 0600 whatever existed before.
func (p *PKI) WritePEM(dir string, st State, domains ...string) error {
	type pair struct{ domain, crt, key string }
	var files []pair
	for _, d := range domains {
		crt, err := domain.FileName(d, ".crt")
		if err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		key, _ := domain.FileName(d, ".key")
		files = append(files, pair{d, crt, key})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), 0o644, "CERTIFICATE", p.CA.Cert.Raw); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), p.CA.Key); err != nil {
		return err
	}
	for _, f := range files {
		c, err := p.Certificate(f.domain, st)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, f.crt), 0o644, "CERTIFICATE", c.Certificate[0]); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, f.key), c.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
			return err
		}
	}
	return nil
}

// KeyMode is the mode of every private key written.
const KeyMode = 0o600

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("certs: encoding key: %w", err)
	}
	return writePEM(path, KeyMode, "PRIVATE KEY", der)
}

func writePEM(path string, mode os.FileMode, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := safefile.Write(path, b, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// LoadCA reads the CA (ca.pem and ca.key) of a directory written by
// WritePEM, to issue new certificates from it. The error wraps
// fs.ErrNotExist when the directory has no CA.
func LoadCA(dir string) (*PKI, error) {
	caCert, err := readCert(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	caKey, err := readKey(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	if !caKey.PublicKey.Equal(caCert.PublicKey) {
		return nil, fmt.Errorf("certs: %s does not hold the key of %s", filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.pem"))
	}
	rogue, err := NewAuthority("xmppneg untrusted CA")
	if err != nil {
		return nil, err
	}
	ca := &Authority{Cert: caCert, Key: caKey}
	inter, err := ca.Intermediate("xmppneg intermediate CA")
	if err != nil {
		return nil, err
	}
	return &PKI{CA: ca, Rogue: rogue, Inter: inter, leafs: map[leafKey]*tls.Certificate{}}, nil
}

// LoadPEM reads a directory written by WritePEM: the CA becomes the PKI's
// trusted CA (with its key, so that more certificates can be issued) and
// the leaf certificates found there are used as the Valid certificates of
// their domains.
func LoadPEM(dir string) (*PKI, error) {
	p, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	crts, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
	for _, f := range crts {
		domain := strings.TrimSuffix(filepath.Base(f), ".crt")
		c, err := tls.LoadX509KeyPair(f, strings.TrimSuffix(f, ".crt")+".key")
		if err != nil {
			return nil, fmt.Errorf("certs: loading %s: %w", f, err)
		}
		p.leafs[leafKey{strings.ToLower(domain), Valid}] = &c
	}
	return p, nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return c, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("certs: %s holds no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("certs: %s is not an ECDSA key", path)
	}
	return ek, nil
}

// Chain is what an administrator needs to know of the certificate chain
// a server presents.
type Chain struct {
	Subject  string   `json:"subject"`
	Issuer   string   `json:"issuer"`
	Names    []string `json:"names"`     // DNS names of the leaf
	NamesFor bool     `json:"names_for"` // whether they cover the XMPP domain (RFC 6125 DNS-ID)
	Sent     int      `json:"sent"`      // certificates in the chain as sent
	// Trust says who vouches for it: "issued by the harness CA
	// (trusted)", "issued by the system roots (trusted)", or why nobody
	// does. It is judged apart from the validity period: an expired
	// certificate from a trusted CA is trusted and expired, not
	// "trusted by nobody".
	Trust    string    `json:"trust"`
	Trusted  bool      `json:"trusted"`
	Complete bool      `json:"complete"` // false when an intermediate was not sent
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Validity says where now stands in the validity period: "valid
	// for 364 more days", "expired 1 day ago", "not valid until …".
	Validity    string `json:"validity"`
	Expired     bool   `json:"expired"`
	NotYetValid bool   `json:"not_yet_valid"`
	SelfSigned  bool   `json:"self_signed"`
	Purposes    string `json:"purposes"`
	// ClientAuth says whether the certificate may authenticate a TLS
	// client, as the server's own outbound connections need.
	ClientAuth bool `json:"client_auth"`
	// Problem is what the harness's check finds wrong for serverAuth and
	// the domain, or "" when nothing.
	Problem string `json:"problem,omitempty"`
}

// ago says how long ago a span was, in days when it is a day or more:
// "1 day ago", "3 hours ago".
func ago(d time.Duration) string { return span(d) + " ago" }

// span is a duration as a person counts it: "364 days", "1 day", "5
// hours", "a few minutes".
func span(d time.Duration) string {
	switch days := int(d.Hours() / 24); {
	case days == 1:
		return "1 day"
	case days > 1:
		return fmt.Sprintf("%d days", days)
	}
	switch hours := int(d.Hours()); {
	case hours == 1:
		return "1 hour"
	case hours > 1:
		return fmt.Sprintf("%d hours", hours)
	}
	return "a few minutes"
}

// Analyze describes chain as presented for domain at now: roots are the
// harness's CAs, system adds the system's roots (may be nil), hints the
// intermediates known, to tell an incomplete chain. The peer wrote the
// names it quotes (Subject, Issuer, Names, and within Trust and
// Problem): whoever prints them makes them printable first, as the
// probe does where a peer's chain enters its report.
func Analyze(chain []*x509.Certificate, roots, system, hints *x509.CertPool, domain string, now time.Time) Chain {
	if len(chain) == 0 {
		return Chain{Problem: "no certificate presented"}
	}
	leaf := chain[0]
	c := Chain{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), Names: append([]string{}, leaf.DNSNames...),
		Sent: len(chain), NotAfter: leaf.NotAfter, DaysLeft: int(leaf.NotAfter.Sub(now).Hours() / 24),
		Purposes: Purposes(leaf), ClientAuth: ClientAuthCapable(leaf), Complete: true}
	c.NamesFor = leaf.VerifyHostname(domain) == nil
	inter := x509.NewCertPool()
	for _, x := range chain[1:] {
		inter.AddCert(x)
	}
	// Trust is judged within the leaf's validity period, so that an
	// expired certificate from a trusted CA is not called untrusted.
	during := now
	switch {
	case now.After(leaf.NotAfter):
		c.Expired, during = true, leaf.NotAfter.Add(-time.Second)
		c.Validity = "expired " + ago(now.Sub(leaf.NotAfter))
	case now.Before(leaf.NotBefore):
		c.NotYetValid, during = true, leaf.NotBefore.Add(time.Second)
		c.Validity = fmt.Sprintf("not valid until %s (in %s)", leaf.NotBefore.UTC().Format(time.RFC3339), span(leaf.NotBefore.Sub(now)))
	default:
		c.Validity = fmt.Sprintf("valid for %s more", span(leaf.NotAfter.Sub(now)))
	}
	verifies := func(pool *x509.CertPool, more *x509.CertPool) bool {
		if pool == nil {
			return false
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: more, CurrentTime: during, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	}
	switch {
	case verifies(roots, inter):
		c.Trusted, c.Trust = true, "issued by the harness CA (trusted)"
	case verifies(system, inter):
		c.Trusted, c.Trust = true, "issued by a CA of the system roots (trusted)"
	case verifies(roots, hints) || verifies(system, hints):
		c.Complete, c.Trust = false, "trusted by nobody as sent: an intermediate is missing from the chain"
	case leaf.Issuer.String() == leaf.Subject.String():
		c.Trust, c.SelfSigned = "self-signed (trusted by nobody)", true
	default:
		c.Trust = "issued by " + leaf.Issuer.CommonName + ", a CA nobody here trusts"
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	if err := Check(chain, roots, domain, x509.ExtKeyUsageServerAuth, now, hints); err != nil {
		if system == nil || Check(chain, system, domain, x509.ExtKeyUsageServerAuth, now, hints) != nil {
			c.Problem = err.Error()
		}
	}
	return c
}
