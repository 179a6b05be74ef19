// Package auth verifies the BetterAuth JWTs that callers of the API present
// as bearer tokens, against the public keys BetterAuth's jwt plugin publishes
// as a JWKS, and counts every outcome for the metrics and alerts.
//
// The JWT rules: the algorithm must be in an allowlist of asymmetric
// algorithms (so neither "none" nor an HMAC keyed with a public key can pass),
// the key is picked by kid, exp is required, iss and aud must equal the
// configured values, and clocks may differ by at most the leeway (≤ 60 s).
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
)

// FetchTimeout bounds one JWKS download, the first one at start-up
// included: the operator's startup probe budget allows for it.
const FetchTimeout = 10 * time.Second

const (
	// MaxLeeway is the largest clock skew tolerated on exp and nbf.
	MaxLeeway      = 60 * time.Second
	defaultLeeway  = 30 * time.Second
	defaultRefresh = 5 * time.Minute
	// defaultRefetchSpacing spaces the refetches caused by unknown kids:
	// short, so a rotation is picked up within seconds, yet a flood of
	// made-up kids costs BetterAuth one fetch every few seconds.
	defaultRefetchSpacing = 2 * time.Second
)

// MaxTokenBytes bounds the bearer tokens verified; a longer one is refused
// with 431 (ErrTokenTooLarge). BetterAuth's tokens carry the user's name,
// email and image URL, which BetterAuth does not bound: an ordinary user's
// token is under 1 KiB, and 32 KiB leaves room for a name of about 20,000
// characters. httpapi.MaxHeaderBytes, the server's limit on all headers,
// is above it, so such a token gets this clear answer rather than the
// server's bare one.
const MaxTokenBytes = 32 << 10

// ErrTokenTooLarge is the cause of the *Error of a token longer than
// MaxTokenBytes.
var ErrTokenTooLarge = fmt.Errorf("bearer token longer than %d bytes", MaxTokenBytes)

// Options configure a Verifier.
type Options struct {
	// JWKSURL is BetterAuth's JWKS, e.g. https://auth.example.com/api/auth/jwks.
	JWKSURL string
	// Issuer is the required iss claim (BetterAuth's base URL).
	Issuer string
	// Audience is the required aud claim; the token's aud may be a string or
	// an array containing it. Empty means Issuer, BetterAuth's default.
	Audience string
	// Algorithms is the allowlist; empty means config.DefaultJWTAlgorithms.
	Algorithms []string
	// Registerer receives the auth and JWKS metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Dependencies gets the outcome of every JWKS refresh. Nil: none.
	Dependencies *dependency.Gauges
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// Leeway is the tolerated clock skew on exp and nbf: 30 s when zero, at
	// most MaxLeeway.
	Leeway time.Duration
	// RefreshInterval is how often the JWKS is refetched in the background:
	// 5 min when zero.
	RefreshInterval time.Duration
	// RefetchSpacing is the least time between two refetches caused by
	// tokens with an unknown kid: 2 s when zero. A token with an unknown kid
	// waits (at most this long) for the next refetch.
	RefetchSpacing time.Duration
	// MaxTokenAge is the longest lifetime a token may claim (exp - iat, or
	// exp - now without iat): config.DefaultJWTMaxTokenAge when zero.
	MaxTokenAge time.Duration
	// HTTPClient fetches the JWKS; a client with a 10 s timeout when nil.
	HTTPClient *http.Client
}

// Identity is the verified caller.
type Identity struct {
	// UserID is the token's sub: BetterAuth's user id.
	UserID        string
	Email         string
	Name          string
	EmailVerified bool
}

// Error is a rejected token. Result is its class, one of the Result*
// constants; Error() is a message safe to show the caller: it names the
// class and never contains the token.
type Error struct {
	Result string
	cause  error
}

var messages = map[string]string{
	ResultMissing:      "missing bearer token",
	ResultMalformed:    "malformed token",
	ResultExpired:      "token expired or not yet valid",
	ResultBadSignature: "bad token signature",
	ResultUnknownKey:   "token signed by an unknown key",
	ResultBadIssuer:    "wrong token issuer",
	ResultBadAudience:  "wrong token audience",
	ResultBadAlgorithm: "token signing algorithm not allowed",
	ResultBadLifetime:  "token lifetime longer than allowed",
}

func (e *Error) Error() string { return "invalid token: " + messages[e.Result] }

// Unwrap gives the underlying cause, for logs.
func (e *Error) Unwrap() error { return e.cause }

func reject(result string, cause error) *Error { return &Error{Result: result, cause: cause} }

// Verifier checks bearer tokens against BetterAuth's JWKS. It is safe for
// concurrent use. Close stops its background refresh.
type Verifier struct {
	opts    Options
	algs    []string
	parser  *jwt.Parser
	keyfunc keyfunc.Keyfunc
	store   *keyStore
	cache   *tokenCache
	// now is the verifier's clock (the parser's too); tests move it.
	now      func() time.Time
	metrics  *metrics
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
	closeOne sync.Once
}

// New validates opts, fetches the JWKS once (a failure there is not fatal:
// Ready reports it and the background refresh retries) and starts the
// background refresh, which stops on Close or when ctx ends.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	opts, algs, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: FetchTimeout}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "auth")
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}

	bg, cancel := context.WithCancel(ctx)
	cache := newTokenCache(tokenCacheSize, rejectionCacheSize)
	store := &keyStore{
		Storage: jwkset.NewMemoryStorage(),
		url:     opts.JWKSURL,
		client:  client,
		timeout: FetchTimeout,
		baseCtx: bg,
		refetch: rate.NewLimiter(rate.Every(opts.RefetchSpacing), 1),
		metrics: m,
		deps:    opts.Dependencies,
		log:     log,
		changed: cache.keysChanged,
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: bg, Storage: store})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: keyfunc: %w", err)
	}
	v := &Verifier{
		opts:    opts,
		algs:    algs,
		keyfunc: kf,
		store:   store,
		cache:   cache,
		now:     time.Now,
		metrics: m,
		log:     log,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	_ = store.refresh() // counted and logged; Ready tells the rest
	go func() {
		defer close(v.done)
		store.run(bg, opts.RefreshInterval)
	}()
	return v, nil
}

// withDefaults validates opts and fills in the defaults of the fields left
// zero. It returns the accepted algorithms apart: a copy, so the caller's
// slice is never aliased.
func withDefaults(opts Options) (Options, []string, error) {
	if err := checkURL(opts.JWKSURL); err != nil {
		return opts, nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	if opts.Issuer == "" {
		return opts, nil, errors.New("auth: issuer is required")
	}
	if opts.Audience == "" {
		opts.Audience = opts.Issuer
	}
	algs := slices.Clone(opts.Algorithms)
	if len(algs) == 0 {
		algs = slices.Clone(config.DefaultJWTAlgorithms)
	}
	for _, a := range algs {
		if !slices.Contains(config.SupportedJWTAlgorithms, a) {
			return opts, nil, fmt.Errorf("auth: algorithm %q is not allowed (use some of %s)", a, strings.Join(config.SupportedJWTAlgorithms, ", "))
		}
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = defaultLeeway
	case opts.Leeway < 0 || opts.Leeway > MaxLeeway:
		return opts, nil, fmt.Errorf("auth: leeway %s is outside 0..%s", opts.Leeway, MaxLeeway)
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = defaultRefresh
	}
	if opts.RefetchSpacing <= 0 {
		opts.RefetchSpacing = defaultRefetchSpacing
	}
	if opts.MaxTokenAge <= 0 {
		opts.MaxTokenAge = config.DefaultJWTMaxTokenAge
	}
	return opts, algs, nil
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return nil
}

// Ready returns nil once the JWKS has been loaded at least once, else why not.
func (v *Verifier) Ready() error { return v.store.ready() }

// Close stops the background refresh. Verify keeps working on cached keys.
func (v *Verifier) Close() {
	v.closeOne.Do(func() {
		v.cancel()
		<-v.done
	})
}

// claims are the parts of a BetterAuth jwt-plugin payload the API uses.
type claims struct {
	jwt.RegisteredClaims
	// The time claims, which shadow RegisteredClaims' own (encoding/json
	// fills the least nested field): RFC 7519 makes them numbers, and jwt's
	// type would also take a string such as "1767225600".
	ExpiresAt     *strictDate `json:"exp,omitempty"`
	NotBefore     *strictDate `json:"nbf,omitempty"`
	IssuedAt      *strictDate `json:"iat,omitempty"`
	Email         string      `json:"email"`
	Name          string      `json:"name"`
	EmailVerified bool        `json:"emailVerified"`
}

// The parser validates the time claims through these.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.numeric(), nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.numeric(), nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.numeric(), nil }

// strictDate is a NumericDate that must be a JSON number.
type strictDate struct{ jwt.NumericDate }

func (d *strictDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("a time claim must be a number")
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *strictDate) numeric() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// Key-lookup failures, told apart for the metrics.
var (
	errNoKID       = errors.New("token header has no kid")
	errUnknownKID  = errors.New("no JWKS key with the token's kid")
	errKeyMismatch = errors.New("JWKS key does not fit the token")
	// errCritical: RFC 7515 requires refusing a token whose "crit" header
	// names extensions the verifier does not understand; it understands
	// none, and BetterAuth sets none.
	errCritical = errors.New(`token header has "crit" extensions`)
)

// Verify checks raw (the token without "Bearer ") and returns the caller.
// Every call is counted under its result. A rejection is an *Error. A token
// verified lately is answered from the cache (tokenCache: same verdict,
// without the signature check).
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	id, err := v.verifyCached(ctx, raw)
	result := ResultOK
	if err != nil {
		result = err.Result
		// Checked first: the arguments would be allocated on every
		// rejection, logged or not.
		if v.log.Enabled(ctx, slog.LevelDebug) {
			v.log.DebugContext(ctx, "token rejected", "result", err.Result, "reason", err.cause)
		}
	}
	v.metrics.validations.WithLabelValues(result).Inc()
	if err != nil {
		return Identity{}, err
	}
	return id, nil
}

// verifyCached answers a token verified or rejected lately from the cache
// (tokenCache), and verifies (and remembers) any other.
func (v *Verifier) verifyCached(ctx context.Context, raw string) (Identity, *Error) {
	if raw == "" || len(raw) > MaxTokenBytes {
		id, _, err := v.verify(ctx, raw)
		return id, err
	}
	key := sha256.Sum256([]byte(raw))
	now := v.now()
	if id, ok := v.cache.get(key, now); ok {
		return id, nil
	}
	if err, ok := v.cache.getRejected(key, now); ok {
		return Identity{}, err
	}
	gen := v.cache.generation.Load()
	id, until, err := v.verify(ctx, raw)
	if err != nil {
		v.cache.putRejected(key, err, now, gen)
		return Identity{}, err
	}
	v.cache.put(key, id, until, gen)
	return id, nil
}

// verify runs every check on raw. It returns the caller and the instant
// from which the parser refuses the token as expired.
func (v *Verifier) verify(ctx context.Context, raw string) (Identity, time.Time, *Error) {
	if raw == "" {
		return Identity{}, time.Time{}, reject(ResultMissing, nil)
	}
	if len(raw) > MaxTokenBytes {
		return Identity{}, time.Time{}, reject(ResultMalformed, ErrTokenTooLarge)
	}
	var c claims
	token, err := v.parser.ParseWithClaims(raw, &c, v.keyFor(ctx))
	if err != nil {
		return Identity{}, time.Time{}, reject(v.classify(token, &c, err), err)
	}
	if c.Subject == "" {
		return Identity{}, time.Time{}, reject(ResultMalformed, errors.New("token has no sub"))
	}
	if err := v.checkLifetime(&c); err != nil {
		return Identity{}, time.Time{}, reject(ResultBadLifetime, err)
	}
	if strings.ContainsRune(c.Subject, 0) {
		// BetterAuth's ids never hold one; the id could not be stored.
		return Identity{}, time.Time{}, reject(ResultMalformed, errors.New("token's sub contains a NUL character"))
	}
	id := Identity{UserID: c.Subject, Email: storable(c.Email), Name: storable(c.Name), EmailVerified: c.EmailVerified}
	// The parser's rule: valid while now is before exp + leeway.
	return id, c.ExpiresAt.Add(v.opts.Leeway), nil
}

// storable drops the NUL characters of a claim the users row records:
// BetterAuth accepts them in a name, PostgreSQL text cannot hold them, and
// refusing the token would lock its user out for good. (encoding/json has
// already replaced invalid UTF-8.)
func storable(claim string) string { return strings.ReplaceAll(claim, "\x00", "") }

// checkLifetime refuses a token that claims to live longer than
// MaxTokenAge: counted from iat, or from now when the token has no iat, so
// that leaving iat out does not lift the bound. exp is present (required by
// the parser).
func (v *Verifier) checkLifetime(c *claims) error {
	from := v.now()
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if life := c.ExpiresAt.Sub(from); life > v.opts.MaxTokenAge+v.opts.Leeway {
		return fmt.Errorf("token lives %s, at most %s is allowed", life.Round(time.Second), v.opts.MaxTokenAge)
	}
	return nil
}

// keyFor picks the verification key by kid through keyfunc, marking why a
// lookup failed.
func (v *Verifier) keyFor(ctx context.Context) jwt.Keyfunc {
	lookup := v.keyfunc.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		// Without a kid keyfunc would try every key; BetterAuth always names
		// its key, so a token that does not is not one of its tokens.
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errNoKID
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		key, err := lookup(t)
		switch {
		case errors.Is(err, jwkset.ErrKeyNotFound):
			return nil, fmt.Errorf("%w: %w", errUnknownKID, err)
		case err != nil:
			// The key exists but its alg differs from the token's header.
			return nil, fmt.Errorf("%w: %w", errKeyMismatch, err)
		}
		return key, nil
	}
}

// classify maps a parse failure to its metrics result. Order matters: a
// token is judged by the first thing wrong with it in the order the parser
// checks (structure, algorithm, key, signature, claims).
func (v *Verifier) classify(token *jwt.Token, c *claims, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ResultMalformed
	case token == nil:
		return ResultMalformed
	case !v.algAllowed(token.Header["alg"]), errors.Is(err, errKeyMismatch):
		return ResultBadAlgorithm
	case errors.Is(err, errCritical):
		return ResultMalformed
	case errors.Is(err, errNoKID), errors.Is(err, errUnknownKID):
		return ResultUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ResultBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// The signature is good; look at the claims themselves, since the
		// parser reports a missing iss or aud as a missing claim rather than
		// a wrong one.
		if c.Issuer != v.opts.Issuer {
			return ResultBadIssuer
		}
		if !slices.Contains(c.Audience, v.opts.Audience) {
			return ResultBadAudience
		}
		if c.ExpiresAt == nil {
			return ResultMalformed
		}
		if errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) ||
			errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
			return ResultExpired
		}
		return ResultMalformed
	default:
		return ResultMalformed
	}
}

func (v *Verifier) algAllowed(alg any) bool {
	s, ok := alg.(string)
	return ok && slices.Contains(v.algs, s)
}
