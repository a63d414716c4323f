package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const tokenApp = "app-1"

var (
	tokenNow    = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tokenSecret = []byte(testSecret)
)

// tokenKeys are generated once per test binary: RSA generation is slow.
type tokenKeys struct {
	rsa1, rsa2 *rsa.PrivateKey
	ec1, ec2   *ecdsa.PrivateKey
}

var testTokenKeys = sync.OnceValue(func() tokenKeys {
	var k tokenKeys
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa1, &k.rsa2} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	for _, p := range []**ecdsa.PrivateKey{&k.ec1, &k.ec2} {
		if *p, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	}
	return k
})

// pkixPEM returns pub as a "PUBLIC KEY" PEM block.
func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claimsFor returns valid claims for tokenApp at tokenNow, changed by edit.
func claimsFor(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":      "42",
		"aud":      tokenApp,
		"iat":      tokenNow.Unix(),
		"exp":      tokenNow.Add(time.Minute).Unix(),
		"channels": []string{"private-user-42", "presence-room-*"},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// signedJWT returns claims signed with method and key by golang-jwt.
func signedJWT(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handBuilt assembles a token from raw header and payload JSON and a raw
// signature, bypassing any library.
func handBuilt(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

func TestVerifyToken(t *testing.T) {
	k := testTokenKeys()
	hsKey := TokenKey{HMACSecret: tokenSecret}
	rsKey := TokenKey{PublicKey: &k.rsa1.PublicKey}
	esKey := TokenKey{PublicKey: &k.ec1.PublicKey}
	rsaPEM := pkixPEM(t, &k.rsa1.PublicKey)
	ecPEM := pkixPEM(t, &k.ec1.PublicKey)
	hs := func(edit func(jwt.MapClaims)) string {
		return signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(edit))
	}
	set := func(name string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[name] = v } }
	del := func(name string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, name) } }
	payload, _ := json.Marshal(claimsFor(nil))
	ids := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = "u" + string(rune('a'+i%26))
		}
		return s
	}
	withCrit := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor(nil))
		tok.Header["crit"] = []string{"exp"}
		s, err := tok.SignedString(tokenSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name       string
		token      string
		key        TokenKey
		wantReason string // "" means valid
	}{
		{name: "HS256", token: hs(nil), key: hsKey},
		{name: "RS256", token: signedJWT(t, jwt.SigningMethodRS256, k.rsa1, claimsFor(nil)), key: rsKey},
		{name: "ES256", token: signedJWT(t, jwt.SigningMethodES256, k.ec1, claimsFor(nil)), key: esKey},
		{name: "aud array naming the app", token: hs(set("aud", []string{"other", tokenApp})), key: hsKey},
		{name: "no iat", token: hs(del("iat")), key: hsKey},
		{name: "no channels", token: hs(del("channels")), key: hsKey},
		{name: "expired within leeway", token: hs(set("exp", tokenNow.Add(-4*time.Second).Unix())), key: hsKey},
		{name: "nbf within leeway", token: hs(set("nbf", tokenNow.Add(4*time.Second).Unix())), key: hsKey},
		{name: "nbf past", token: hs(set("nbf", tokenNow.Add(-time.Minute).Unix())), key: hsKey},
		{name: "watchlist at limit", token: hs(set("watchlist", ids(MaxTokenWatchlist))), key: hsKey},
		{name: "channels at limit", token: hs(set("channels", ids(MaxTokenChannels))), key: hsKey},

		// Time.
		{name: "expired", token: hs(set("exp", tokenNow.Add(-time.Minute).Unix())), key: hsKey, wantReason: TokenReasonExpired},
		{name: "expired at leeway edge", token: hs(set("exp", tokenNow.Add(-TokenLeeway).Unix())), key: hsKey, wantReason: TokenReasonExpired},
		{name: "not yet valid", token: hs(set("nbf", tokenNow.Add(time.Minute).Unix())), key: hsKey, wantReason: TokenReasonNotYetValid},
		{name: "issued in the future", token: hs(set("iat", tokenNow.Add(time.Minute).Unix())), key: hsKey, wantReason: TokenReasonNotYetValid},
		{name: "missing exp", token: hs(del("exp")), key: hsKey, wantReason: TokenReasonNoExpiry},
		{name: "null exp", token: hs(set("exp", nil)), key: hsKey, wantReason: TokenReasonNoExpiry},
		{name: "exp not a number", token: hs(set("exp", "tomorrow")), key: hsKey, wantReason: TokenReasonMalformed},

		// Keys and algorithms.
		{name: "wrong HMAC key", token: signedJWT(t, jwt.SigningMethodHS256, []byte("another secret"), claimsFor(nil)), key: hsKey, wantReason: TokenReasonSignature},
		{name: "RS256 with another RSA key", token: signedJWT(t, jwt.SigningMethodRS256, k.rsa2, claimsFor(nil)), key: rsKey, wantReason: TokenReasonSignature},
		{name: "ES256 with another EC key", token: signedJWT(t, jwt.SigningMethodES256, k.ec2, claimsFor(nil)), key: esKey, wantReason: TokenReasonSignature},
		{name: "signature of another payload", token: hs(nil)[:strings.LastIndexByte(hs(nil), '.')] + hs(set("sub", "43"))[strings.LastIndexByte(hs(set("sub", "43")), '.'):], key: hsKey, wantReason: TokenReasonSignature},
		{name: "alg none", token: handBuilt(`{"alg":"none","typ":"JWT"}`, string(payload), nil), key: hsKey, wantReason: TokenReasonAlgorithm},
		{name: "alg None against RSA", token: handBuilt(`{"alg":"None"}`, string(payload), nil), key: rsKey, wantReason: TokenReasonAlgorithm},
		{name: "alg NONE with a signature", token: handBuilt(`{"alg":"NONE"}`, string(payload), []byte("sig")), key: esKey, wantReason: TokenReasonAlgorithm},
		{name: "no alg", token: handBuilt(`{"typ":"JWT"}`, string(payload), []byte("sig")), key: hsKey, wantReason: TokenReasonAlgorithm},
		{name: "alg not a string", token: handBuilt(`{"alg":256}`, string(payload), []byte("sig")), key: hsKey, wantReason: TokenReasonAlgorithm},
		{name: "unknown alg", token: handBuilt(`{"alg":"XS256"}`, string(payload), []byte("sig")), key: hsKey, wantReason: TokenReasonAlgorithm},
		{name: "HS256 keyed with the RSA public key PEM", token: signedJWT(t, jwt.SigningMethodHS256, rsaPEM, claimsFor(nil)), key: rsKey, wantReason: TokenReasonAlgorithm},
		{name: "HS256 keyed with the EC public key PEM", token: signedJWT(t, jwt.SigningMethodHS256, ecPEM, claimsFor(nil)), key: esKey, wantReason: TokenReasonAlgorithm},
		{name: "ES256 when RSA configured", token: signedJWT(t, jwt.SigningMethodES256, k.ec1, claimsFor(nil)), key: rsKey, wantReason: TokenReasonAlgorithm},
		{name: "RS256 when EC configured", token: signedJWT(t, jwt.SigningMethodRS256, k.rsa1, claimsFor(nil)), key: esKey, wantReason: TokenReasonAlgorithm},
		{name: "RS256 when HMAC configured", token: signedJWT(t, jwt.SigningMethodRS256, k.rsa1, claimsFor(nil)), key: hsKey, wantReason: TokenReasonAlgorithm},
		{name: "PS256 with the configured RSA key", token: signedJWT(t, jwt.SigningMethodPS256, k.rsa1, claimsFor(nil)), key: rsKey, wantReason: TokenReasonAlgorithm},
		{name: "HS384 with the right secret", token: signedJWT(t, jwt.SigningMethodHS384, tokenSecret, claimsFor(nil)), key: hsKey, wantReason: TokenReasonAlgorithm},

		// Audience.
		{name: "wrong audience", token: hs(set("aud", "app-2")), key: hsKey, wantReason: TokenReasonAudience},
		{name: "wrong audiences", token: hs(set("aud", []string{"app-2", "app-10"})), key: hsKey, wantReason: TokenReasonAudience},
		{name: "audience prefix of the app", token: hs(set("aud", "app-")), key: hsKey, wantReason: TokenReasonAudience},
		{name: "missing aud", token: hs(del("aud")), key: hsKey, wantReason: TokenReasonAudience},
		{name: "empty aud", token: hs(set("aud", []string{})), key: hsKey, wantReason: TokenReasonAudience},
		{name: "aud not strings", token: hs(set("aud", []int{1})), key: hsKey, wantReason: TokenReasonMalformed},

		// Subject.
		{name: "missing sub", token: hs(del("sub")), key: hsKey, wantReason: TokenReasonSubject},
		{name: "empty sub", token: hs(set("sub", "")), key: hsKey, wantReason: TokenReasonSubject},
		{name: "null sub", token: hs(set("sub", nil)), key: hsKey, wantReason: TokenReasonSubject},
		{name: "numeric sub", token: hs(set("sub", 42)), key: hsKey, wantReason: TokenReasonSubject},
		{name: "object sub", token: hs(set("sub", map[string]int{"id": 42})), key: hsKey, wantReason: TokenReasonSubject},

		// Herald's claims.
		{name: "watchlist over limit", token: hs(set("watchlist", ids(MaxTokenWatchlist+1))), key: hsKey, wantReason: TokenReasonClaims},
		{name: "watchlist a string", token: hs(set("watchlist", "7")), key: hsKey, wantReason: TokenReasonClaims},
		{name: "watchlist of numbers", token: hs(set("watchlist", []int{7, 9})), key: hsKey, wantReason: TokenReasonClaims},
		{name: "channels over limit", token: hs(set("channels", ids(MaxTokenChannels+1))), key: hsKey, wantReason: TokenReasonClaims},
		{name: "channels a string", token: hs(set("channels", "private-user-42")), key: hsKey, wantReason: TokenReasonClaims},
		{name: "channel pattern with inner star", token: hs(set("channels", []string{"presence-*-room"})), key: hsKey, wantReason: TokenReasonClaims},
		{name: "channel pattern with two stars", token: hs(set("channels", []string{"private-**"})), key: hsKey, wantReason: TokenReasonClaims},
		{name: "empty channel pattern", token: hs(set("channels", []string{""})), key: hsKey, wantReason: TokenReasonClaims},

		// Shape and size.
		{name: "empty", token: "", key: hsKey, wantReason: TokenReasonMissing},
		{name: "oversized garbage", token: strings.Repeat("a", MaxTokenBytes+1), key: hsKey, wantReason: TokenReasonTooLarge},
		{name: "oversized but validly signed", token: hs(set("user_info", map[string]string{"bio": strings.Repeat("x", MaxTokenBytes)})), key: hsKey, wantReason: TokenReasonTooLarge},
		{name: "two segments", token: hs(nil)[:strings.LastIndexByte(hs(nil), '.')], key: hsKey, wantReason: TokenReasonMalformed},
		{name: "four segments", token: hs(nil) + ".x", key: hsKey, wantReason: TokenReasonMalformed},
		{name: "bad base64 header", token: "!!!" + hs(nil), key: hsKey, wantReason: TokenReasonMalformed},
		{name: "padded signature", token: hs(nil) + "=", key: hsKey, wantReason: TokenReasonMalformed},
		{name: "header not JSON", token: handBuilt(`alg=HS256`, string(payload), []byte("sig")), key: hsKey, wantReason: TokenReasonMalformed},
		{name: "payload not an object", token: handBuilt(`{"alg":"HS256"}`, `["sub"]`, []byte("sig")), key: hsKey, wantReason: TokenReasonMalformed},
		{name: "crit header", token: withCrit(), key: hsKey, wantReason: TokenReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyToken(tt.token, tokenApp, tt.key, tokenNow)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if c.UserID != "42" || !c.ExpiresAt.After(tokenNow.Add(-TokenLeeway)) {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if c != nil {
				t.Fatalf("claims %+v returned with an error", c)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T) is not a *TokenError", err, err)
			}
			if te.Status != http.StatusUnauthorized || te.Reason != tt.wantReason {
				t.Fatalf("got %d %q (%s), want 401 %q", te.Status, te.Reason, te.Message, tt.wantReason)
			}
			assertNoKeyMaterial(t, te.Message, tt.token, rsaPEM, ecPEM)
			t.Log(te.Message)
		})
	}
}

// assertNoKeyMaterial fails if msg holds the secret, a key PEM, or the
// token's signature segment.
func assertNoKeyMaterial(t testing.TB, msg, token string, pems ...[]byte) {
	t.Helper()
	if msg == "" {
		t.Fatal("empty message")
	}
	if strings.Contains(msg, testSecret) {
		t.Fatalf("message leaks the secret: %q", msg)
	}
	for _, p := range pems {
		if body := strings.Split(string(p), "\n")[1]; strings.Contains(msg, body) {
			t.Fatalf("message leaks a key: %q", msg)
		}
	}
	if i := strings.LastIndexByte(token, '.'); i >= 0 && len(token)-i > 8 && strings.Contains(msg, token[i+1:]) {
		t.Fatalf("message echoes the signature: %q", msg)
	}
	if len(msg) > 400 {
		t.Fatalf("message of %d bytes", len(msg))
	}
}

func TestVerifyTokenMessages(t *testing.T) {
	hsKey := TokenKey{HMACSecret: tokenSecret}
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"expired", signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(func(c jwt.MapClaims) { c["exp"] = tokenNow.Add(-time.Hour).Unix() })),
			"token expired at 2026-01-01T11:00:00Z (server time 2026-01-01T12:00:00Z, leeway 5s)"},
		{"none", handBuilt(`{"alg":"none"}`, `{}`, nil), `token algorithm "none" is not accepted; this app accepts HS256 tokens only`},
		{"long alg clipped", handBuilt(`{"alg":"`+strings.Repeat("A", 100)+`"}`, `{}`, nil),
			`token algorithm "` + strings.Repeat("A", 32) + `…" is not accepted; this app accepts HS256 tokens only`},
		{"wrong app", signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(func(c jwt.MapClaims) { c["aud"] = "app-2" })),
			`token audience does not include app "app-1"; it was minted for another app`},
		{"numeric sub", signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(func(c jwt.MapClaims) { c["sub"] = 42 })),
			"token sub (the user id) must be a JSON string, not a number"},
		{"bad signature", signedJWT(t, jwt.SigningMethodHS256, []byte("x"), claimsFor(nil)),
			"token signature is invalid: not signed with this app's HS256 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyToken(tt.token, tokenApp, hsKey, tokenNow)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestVerifyTokenConfigErrors(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := testTokenKeys()
	token := signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(nil))
	keys := map[string]TokenKey{
		"none":           {},
		"both":           {HMACSecret: tokenSecret, PublicKey: &k.rsa1.PublicKey},
		"RSA 1024":       {PublicKey: &small.PublicKey},
		"nil RSA":        {PublicKey: (*rsa.PublicKey)(nil)},
		"RSA by value":   {PublicKey: k.rsa1.PublicKey},
		"P-384":          {PublicKey: &p384.PublicKey},
		"point off P256": {PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}},
		"Ed25519":        {PublicKey: edPub},
		"private key":    {PublicKey: k.rsa1},
	}
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			if key.Validate() == nil {
				t.Fatal("Validate accepted the key")
			}
			_, err := VerifyToken(token, tokenApp, key, tokenNow)
			var te *TokenError
			if err == nil || errors.As(err, &te) {
				t.Fatalf("VerifyToken error = %v, want a configuration error", err)
			}
		})
	}
	if _, err := VerifyToken(token, "", TokenKey{HMACSecret: tokenSecret}, tokenNow); err == nil {
		t.Fatal("empty app id accepted")
	}
	for _, key := range []TokenKey{{HMACSecret: tokenSecret}, {PublicKey: &k.rsa1.PublicKey}, {PublicKey: &k.ec1.PublicKey}} {
		if err := key.Validate(); err != nil {
			t.Fatalf("Validate(%T): %v", key.PublicKey, err)
		}
	}
}

func TestNewTokenRoundTrip(t *testing.T) {
	want := TokenClaims{
		UserID:    "user-42",
		UserInfo:  json.RawMessage(`{"name":"Ann"}`),
		Watchlist: []string{"7", "9"},
		Channels:  []string{"private-user-42", "presence-room-*", "#server-to-user-user-42"},
		Issuer:    "https://example.com",
		ID:        "jti-1",
		NotBefore: tokenNow.Add(-time.Second),
	}
	token, err := NewToken(tokenApp, tokenSecret, want, 10*time.Minute, tokenNow)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyToken(token, tokenApp, TokenKey{HMACSecret: tokenSecret}, tokenNow)
	if err != nil {
		t.Fatal(err)
	}
	want.Audience = []string{tokenApp}
	want.IssuedAt = tokenNow
	want.ExpiresAt = tokenNow.Add(10 * time.Minute)
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("claims\n got %+v\nwant %+v", got, &want)
	}
	if _, err := VerifyToken(token, tokenApp, TokenKey{HMACSecret: tokenSecret}, tokenNow.Add(10*time.Minute+TokenLeeway)); err == nil {
		t.Fatal("token accepted after exp + leeway")
	}
	if _, err := VerifyToken(token, "app-2", TokenKey{HMACSecret: tokenSecret}, tokenNow); err == nil {
		t.Fatal("token accepted for another app")
	}

	// Optional claims absent or null come back nil.
	token = signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(func(c jwt.MapClaims) {
		c["user_info"], c["watchlist"], c["channels"] = nil, nil, nil
	}))
	got, err = VerifyToken(token, tokenApp, TokenKey{HMACSecret: tokenSecret}, tokenNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserInfo != nil || got.Watchlist != nil || got.Channels != nil || got.AllowsChannel("private-user-42") {
		t.Fatalf("null optional claims = %+v", got)
	}
}

func TestNewTokenErrors(t *testing.T) {
	ok := TokenClaims{UserID: "42"}
	many := make([]string, MaxTokenChannels+1)
	for i := range many {
		many[i] = "private-x"
	}
	tests := []struct {
		name   string
		app    string
		secret []byte
		claims TokenClaims
		ttl    time.Duration
	}{
		{"empty app", "", tokenSecret, ok, time.Minute},
		{"empty secret", tokenApp, nil, ok, time.Minute},
		{"zero ttl", tokenApp, tokenSecret, ok, 0},
		{"negative ttl", tokenApp, tokenSecret, ok, -time.Minute},
		{"no user", tokenApp, tokenSecret, TokenClaims{}, time.Minute},
		{"bad user_info", tokenApp, tokenSecret, TokenClaims{UserID: "42", UserInfo: json.RawMessage(`{"name":`)}, time.Minute},
		{"too many channels", tokenApp, tokenSecret, TokenClaims{UserID: "42", Channels: many}, time.Minute},
		{"too many watched", tokenApp, tokenSecret, TokenClaims{UserID: "42", Watchlist: many}, time.Minute},
		{"inner star", tokenApp, tokenSecret, TokenClaims{UserID: "42", Channels: []string{"a*b"}}, time.Minute},
		{"too large", tokenApp, tokenSecret, TokenClaims{UserID: strings.Repeat("x", MaxTokenBytes)}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := NewToken(tt.app, tt.secret, tt.claims, tt.ttl, tokenNow); err == nil {
				t.Fatalf("NewToken = %q, want an error", tok)
			}
		})
	}
}

func TestAllowsChannel(t *testing.T) {
	c := &TokenClaims{Channels: []string{
		"private-user-42", "presence-room-*", "private-encrypted-*", "#server-to-user-42", "cache-*",
	}}
	all := &TokenClaims{Channels: []string{"*"}}
	tests := []struct {
		claims  *TokenClaims
		channel string
		want    bool
	}{
		{c, "private-user-42", true},
		{c, "private-user-4", false},
		{c, "private-user-420", false},
		{c, "Private-user-42", false},
		{c, "presence-room-1", true},
		{c, "presence-room-", true},
		{c, "presence-room", false},
		{c, "presence-roomx", false},
		{c, "private-encrypted-chat", true},
		{c, "private-chat", false},
		{c, "cache-news", true},
		{c, "#server-to-user-42", true},
		{c, "#server-to-user-43", false},
		{c, "", false},
		{all, "private-anything", true},
		{all, "presence-anything", true},
		{all, "public", true},
		{all, "#server-to-user-42", false},
		{&TokenClaims{Channels: []string{"#server-to-user-*"}}, "#server-to-user-42", false},
		{&TokenClaims{Channels: []string{"#*"}}, "#server-to-user-42", false},
		{&TokenClaims{}, "private-user-42", false},
		{&TokenClaims{Channels: []string{""}}, "", false},
	}
	for _, tt := range tests {
		if got := tt.claims.AllowsChannel(tt.channel); got != tt.want {
			t.Errorf("%q.AllowsChannel(%q) = %v, want %v", tt.claims.Channels, tt.channel, got, tt.want)
		}
		err := tt.claims.CheckChannel(tt.channel)
		if tt.want != (err == nil) {
			t.Errorf("%q.CheckChannel(%q) = %v", tt.claims.Channels, tt.channel, err)
		}
		var te *TokenError
		if err != nil && (!errors.As(err, &te) || te.Status != http.StatusForbidden || te.Reason != TokenReasonChannel) {
			t.Errorf("CheckChannel error = %#v, want 403 %q", err, TokenReasonChannel)
		}
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	k := testTokenKeys()
	cert := selfSigned(t, k.ec1)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa1.PublicKey)})
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	ecPrivDER, err := x509.MarshalECPrivateKey(k.ec1)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPrivDER})
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	good := []struct {
		name string
		pem  []byte
		want any
	}{
		{"PKIX RSA", pkixPEM(t, &k.rsa1.PublicKey), &k.rsa1.PublicKey},
		{"PKIX EC", pkixPEM(t, &k.ec1.PublicKey), &k.ec1.PublicKey},
		{"PKCS1 RSA", pkcs1, &k.rsa1.PublicKey},
		{"certificate", cert, &k.ec1.PublicKey},
		{"EC parameters first", append(append([]byte("comment\n"), ecParams...), pkixPEM(t, &k.ec1.PublicKey)...), &k.ec1.PublicKey},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKeyPEM(tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Fatalf("got another key")
			}
		})
	}
	bad := map[string][]byte{
		"empty":        nil,
		"not PEM":      []byte("hello"),
		"private key":  ecPriv,
		"only params":  ecParams,
		"corrupt":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}),
		"Ed25519":      pkixPEM(t, edPub),
		"P-384":        pkixPEM(t, &p384.PublicKey),
		"private+cert": append(append([]byte{}, ecPriv...), cert...),
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublicKeyPEM(in); err == nil {
				t.Fatal("accepted")
			} else if bytes.Contains([]byte(err.Error()), []byte("BEGIN")) {
				t.Fatalf("error echoes PEM: %v", err)
			}
		})
	}
}

func selfSigned(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    tokenNow.Add(-time.Hour),
		NotAfter:     tokenNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// FuzzVerifyToken checks that no input panics, that every refusal is a 401
// *TokenError with a known reason and no secret in its message, and that an
// accepted token keeps VerifyToken's guarantees. Each input is tried against
// an HMAC, an RSA and an ECDSA key; seeds are in testdata/fuzz/FuzzVerifyToken.
func FuzzVerifyToken(f *testing.F) {
	k := testTokenKeys()
	keys := []TokenKey{
		{HMACSecret: tokenSecret},
		{PublicKey: &k.rsa1.PublicKey},
		{PublicKey: &k.ec1.PublicKey},
	}
	reasons := map[string]bool{
		TokenReasonMissing: true, TokenReasonTooLarge: true, TokenReasonMalformed: true,
		TokenReasonAlgorithm: true, TokenReasonSignature: true, TokenReasonNoExpiry: true,
		TokenReasonExpired: true, TokenReasonNotYetValid: true, TokenReasonAudience: true,
		TokenReasonSubject: true, TokenReasonClaims: true, TokenReasonLifetime: true,
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, key := range keys {
			c, err := VerifyToken(token, tokenApp, key, tokenNow)
			if err != nil {
				var te *TokenError
				if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || !reasons[te.Reason] {
					t.Fatalf("error %#v", err)
				}
				assertNoKeyMaterial(t, te.Message, token)
				continue
			}
			from := tokenNow
			if !c.IssuedAt.IsZero() {
				from = c.IssuedAt
			}
			if c.UserID == "" || len(c.Watchlist) > MaxTokenWatchlist || len(c.Channels) > MaxTokenChannels ||
				!c.ExpiresAt.After(tokenNow.Add(-TokenLeeway)) || !slices.Contains(c.Audience, tokenApp) ||
				c.ExpiresAt.Sub(from) > DefaultTokenMaxLifetime+TokenLeeway+time.Second {
				t.Fatalf("accepted claims break the guarantees: %+v", c)
			}
			if key.HMACSecret == nil {
				t.Fatalf("a token was accepted by a public key: %q", token)
			}
		}
	})
}

func BenchmarkVerifyTokenHS256(b *testing.B) {
	token, err := NewToken(tokenApp, tokenSecret, TokenClaims{
		UserID:    "42",
		UserInfo:  json.RawMessage(`{"name":"Ann"}`),
		Watchlist: []string{"7", "9"},
		Channels:  []string{"private-user-42", "presence-room-*"},
	}, time.Minute, tokenNow)
	if err != nil {
		b.Fatal(err)
	}
	key := TokenKey{HMACSecret: tokenSecret}
	b.ReportAllocs()
	for b.Loop() {
		c, err := VerifyToken(token, tokenApp, key, tokenNow)
		if err != nil || !c.AllowsChannel("presence-room-1") {
			b.Fatal(err)
		}
	}
}

// TestFuzzVerifyTokenSeedValid keeps the fuzz corpus honest: its valid_hs256
// seed must pass, so fuzzing starts from the accept path too.
func TestFuzzVerifyTokenSeedValid(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzVerifyToken/valid_hs256")
	if err != nil {
		t.Fatal(err)
	}
	_, quoted, _ := strings.Cut(strings.TrimSpace(string(raw)), "string(")
	token, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyToken(token, tokenApp, TokenKey{HMACSecret: tokenSecret}, tokenNow)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowsChannel("presence-room-1") || string(c.UserInfo) != `{"name":"Ann"}` {
		t.Fatalf("claims = %+v", c)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc.def.ghi", "abc.def.ghi", true},
		{"BEARER abc.def.ghi", "abc.def.ghi", true},
		{"bEaReR abc", "abc", true},
		{"Bearer    abc", "abc", true},
		{"  Bearer abc \t", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"", "", false},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", false},
		{"Bearerabc", "", false},
		{"Bearer\tabc", "", false},
		{"Token abc", "", false},
	} {
		token, ok := BearerToken(tt.header)
		if token != tt.token || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, token, ok, tt.token, tt.ok)
		}
	}
}

// hsBuilt signs a hand-written header and payload with HS256 and tokenSecret,
// for payloads no JSON encoder would write (duplicate keys).
func hsBuilt(header, payload string) string {
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(signingInput, tokenSecret)
	if err != nil {
		panic(err)
	}
	return signingInput + "." + enc.EncodeToString(sig)
}

// expectVerdict fails unless VerifyToken accepted user 42 (want "") or
// refused with 401, reason and a message containing want.
func expectVerdict(t *testing.T, c *TokenClaims, err error, reason, want string) {
	t.Helper()
	if want == "" {
		if err != nil || c.UserID != "42" {
			t.Fatalf("VerifyToken = %+v, %v", c, err)
		}
		return
	}
	var te *TokenError
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || te.Reason != reason || !strings.Contains(te.Message, want) {
		t.Fatalf("VerifyToken error %v, want 401 %s: %s", err, reason, want)
	}
}

// TestVerifyTokenClaimShape: a claim given twice, or a time claim given as a
// string, is refused as malformed even when the token is validly signed.
func TestVerifyTokenClaimShape(t *testing.T) {
	const header = `{"alg":"HS256","typ":"JWT"}`
	exp := strconv.FormatInt(tokenNow.Add(time.Minute).Unix(), 10)
	iat := strconv.FormatInt(tokenNow.Unix(), 10)
	valid := `"sub":"42","aud":"` + tokenApp + `","iat":` + iat + `,"exp":` + exp
	for _, tt := range []struct {
		name, payload, want string // want "": accepted
	}{
		{"as minted", `{` + valid + `}`, ""},
		{"an ignored claim", `{` + valid + `,"scope":"x"}`, ""},
		{"null nbf", `{` + valid + `,"nbf":null}`, ""},
		{"aud twice, the app last", `{"aud":"app-2",` + valid + `}`, `malformed token: claim "aud" appears twice; each claim must be given once`},
		{"aud twice, the app first", `{` + valid + `,"aud":"app-2"}`, `claim "aud" appears twice`},
		{"aud in another case", `{` + valid + `,"AUD":"app-2"}`, `claim "aud" appears twice`},
		{"sub twice", `{` + valid + `,"sub":"admin"}`, `claim "sub" appears twice`},
		{"exp twice", `{` + valid + `,"exp":` + exp + `}`, `claim "exp" appears twice`},
		{"an ignored claim twice", `{` + valid + `,"scope":"x","scope":"y"}`, `claim "scope" appears twice`},
		{"exp a numeric string", `{"sub":"42","aud":"` + tokenApp + `","exp":"` + exp + `"}`,
			`malformed token: claim "exp" must be a number of seconds since 1970 (a NumericDate), not a string`},
		{"iat a string", `{"sub":"42","aud":"` + tokenApp + `","exp":` + exp + `,"iat":"` + iat + `"}`, `claim "iat" must be a number`},
		{"nbf a string", `{` + valid + `,"nbf":"` + iat + `"}`, `claim "nbf" must be a number`},
		{"exp an array", `{"sub":"42","aud":"` + tokenApp + `","exp":[` + exp + `]}`, `claim "exp" must be a number of seconds since 1970 (a NumericDate), not an array`},
		{"exp beyond float64", `{"sub":"42","aud":"` + tokenApp + `","exp":1e400}`, `claim "exp" is out of range`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := hsBuilt(header, tt.payload)
			c, err := VerifyToken(token, tokenApp, TokenKey{HMACSecret: tokenSecret}, tokenNow)
			expectVerdict(t, c, err, TokenReasonMalformed, tt.want)
		})
	}
}

// TestVerifyTokenLifetime: exp may lie at most the key's MaxLifetime (24 h by
// default) after iat, or after now without iat, TokenLeeway added; past that,
// whatever the size of exp, the message names the maximum and the setting.
func TestVerifyTokenLifetime(t *testing.T) {
	day := DefaultTokenMaxLifetime
	issued := tokenNow.Add(-time.Hour)
	at := func(iat time.Time, exp any) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) {
			c["exp"] = exp
			if iat.IsZero() {
				delete(c, "iat")
			} else {
				c["iat"] = iat.Unix()
			}
		}
	}
	hour := TokenKey{HMACSecret: tokenSecret, MaxLifetime: time.Hour}
	for _, tt := range []struct {
		name  string
		claim func(jwt.MapClaims)
		key   TokenKey
		want  string // "": accepted
	}{
		{"a day after iat", at(issued, issued.Add(day).Unix()), TokenKey{}, ""},
		{"a day and the leeway after iat", at(issued, issued.Add(day+TokenLeeway).Unix()), TokenKey{}, ""},
		{"a second more", at(issued, issued.Add(day+TokenLeeway+time.Second).Unix()), TokenKey{}, "token lifetime exceeds the 24h maximum (token_max_lifetime)"},
		{"a day from now without iat", at(time.Time{}, tokenNow.Add(day+TokenLeeway).Unix()), TokenKey{}, ""},
		{"a second more without iat", at(time.Time{}, tokenNow.Add(day+TokenLeeway+time.Second).Unix()), TokenKey{}, "token lifetime exceeds the 24h maximum"},
		{"2^62 seconds", at(issued, int64(1)<<62), TokenKey{}, "token lifetime exceeds the 24h maximum"},
		{"1e300 seconds", at(issued, 1e300), TokenKey{}, "token lifetime exceeds the 24h maximum (token_max_lifetime)"},
		{"an hour and the leeway allowed", at(issued, issued.Add(time.Hour+TokenLeeway).Unix()), hour, ""},
		{"over an hour", at(issued, issued.Add(time.Hour+TokenLeeway+time.Second).Unix()), hour, "token lifetime exceeds the 1h maximum"},
		{"90 minutes allowed", at(issued, issued.Add(2*time.Hour).Unix()), TokenKey{HMACSecret: tokenSecret, MaxLifetime: 90 * time.Minute}, "the 1h30m maximum"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			key.HMACSecret = tokenSecret
			token := signedJWT(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(tt.claim))
			c, err := VerifyToken(token, tokenApp, key, tokenNow)
			expectVerdict(t, c, err, TokenReasonLifetime, tt.want)
		})
	}
	if err := (TokenKey{HMACSecret: tokenSecret, MaxLifetime: -time.Second}).Validate(); err == nil {
		t.Error("a negative MaxLifetime validated")
	}
}
