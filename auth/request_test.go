package auth

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/quick"
	"time"
)

// docsBody is the body of the Pusher docs' worked example (PROTOCOL §5.2).
const docsBody = `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`

var testNow = time.Unix(1700000000, 0)

// signed builds the request an SDK would send: SignRequest's parameters
// encoded with url.Values.Encode.
func signed(method, path string, params url.Values, body string, at time.Time) Request {
	q := SignRequest(testKey, testSecret, method, path, params, []byte(body), at)
	return Request{Method: method, Path: path, RawQuery: q.Encode(), Body: []byte(body)}
}

// handSigned builds a request whose signature covers toSign exactly, with
// rawQuery sent as given: for the encodings SDKs other than Go's put on the wire.
func handSigned(method, path, rawQuery, body, toSign string) Request {
	return Request{Method: method, Path: path, RawQuery: rawQuery + "&auth_signature=" + Sign(testSecret, toSign), Body: []byte(body)}
}

// expectedSignatures lists the signatures that would have made r valid, one per
// path the verifier tries.
func expectedSignatures(r Request) []string {
	ps, ok := parseRawQuery(r.RawQuery, maxParams)
	if !ok {
		return nil
	}
	canonical := newQuery(ps).canonical()
	paths, n, _ := pathCandidates(r.Path)
	var sigs []string
	for _, p := range paths[:n] {
		sigs = append(sigs, Sign(testSecret, strings.ToUpper(r.Method)+"\n"+p+"\n"+canonical))
	}
	return sigs
}

func withParam(r Request, key, value string) Request {
	r.RawQuery += "&" + key + "=" + url.QueryEscape(value)
	return r
}

func replaceParam(r Request, key, value string) Request {
	q, _ := url.ParseQuery(r.RawQuery)
	q.Set(key, value)
	r.RawQuery = q.Encode()
	return r
}

func TestVerifyRequest(t *testing.T) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	base := "auth_key=" + testKey + "&auth_timestamp=" + ts
	good := signed("POST", "/apps/3/events", nil, docsBody, testNow)
	tests := []struct {
		name    string
		req     Request
		key     string        // app key to verify against; testKey when ""
		skew    time.Duration // server clock minus signing clock
		reason  string        // expected RequestError.Reason; "" means valid
		message string        // substring the error text must contain
	}{
		{name: "docs example signed now", req: good},
		{name: "docs example, 599s later", req: good, skew: 599 * time.Second},
		{name: "docs example, 599s earlier", req: good, skew: -599 * time.Second},
		{name: "docs example, 600s later", req: good, skew: 600 * time.Second},
		{name: "docs example, 600s earlier", req: good, skew: -600 * time.Second},
		{
			name: "docs example, 601s later", req: good, skew: 601 * time.Second, reason: ReasonTimestamp,
			message: "Timestamp expired: Given timestamp (1700000000) not within 600s of server time (1700000601)",
		},
		{
			name: "docs example, 601s earlier", req: good, skew: -601 * time.Second, reason: ReasonTimestamp,
			message: "Timestamp expired: Given timestamp (1700000000) not within 600s of server time (1699999399)",
		},
		{name: "lower-case method", req: Request{Method: "post", Path: good.Path, RawQuery: good.RawQuery, Body: good.Body}},
		{name: "upper-case hex signature", req: replaceParam(good, "auth_signature", strings.ToUpper(SignRequest(testKey, testSecret, "POST", "/apps/3/events", nil, []byte(docsBody), testNow).Get("auth_signature")))},
		{
			name: "wrong signature", req: replaceParam(good, "auth_signature", Sign(testSecret, "something else")), reason: ReasonSignature,
			message: `Invalid signature: you should have sent HmacSHA256Hex("POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f", your_secret_key), but you sent "` + Sign(testSecret, "something else") + `"`,
		},
		{
			name: "signed with another secret", req: replaceParam(good, "auth_signature", SignRequest(testKey, "other", "POST", "/apps/3/events", nil, []byte(docsBody), testNow).Get("auth_signature")),
			reason: ReasonSignature, message: "Invalid signature",
		},
		{name: "missing signature", req: signedWithout(good, "auth_signature"), reason: ReasonSignature, message: `but you sent ""`},
		{name: "signed for another path", req: Request{Method: "POST", Path: "/apps/4/events", RawQuery: good.RawQuery, Body: good.Body}, reason: ReasonSignature, message: `POST\n/apps/4/events\n`},
		{name: "signed for another method", req: Request{Method: "PUT", Path: good.Path, RawQuery: good.RawQuery, Body: good.Body}, reason: ReasonSignature, message: `PUT\n/apps/3/events\n`},
		{name: "extra parameter not signed", req: withParam(good, "info", "user_count"), reason: ReasonSignature, message: "&info=user_count"},
		{name: "body without body_md5", req: bodyAdded(signed("POST", "/apps/3/events", nil, "", testNow), docsBody), reason: ReasonBodyMD5, message: "Missing body_md5"},
		{
			name: "body_md5 of another body", req: bodyAdded(good, `{"name":"bar"}`), reason: ReasonBodyMD5,
			message: `but you sent "ec365a775a4cd0599faeb73354201b6f"`,
		},
		{name: "body_md5 for an empty body", req: bodyAdded(good, ""), reason: ReasonBodyMD5, message: "Invalid body_md5"},
		{
			name: "empty body with the MD5 of nothing (PHP POST)", req: handSigned("POST", "/apps/3/events", base+"&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e", "",
				"POST\n/apps/3/events\n"+base+"&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e"),
		},
		{name: "wrong auth_key", req: good, key: "0123456789abcdef0123", reason: ReasonAuthKey, message: `Invalid auth_key: "278d425bdf160c739803"`},
		{name: "missing auth_key", req: signedWithout(good, "auth_key"), reason: ReasonAuthKey, message: "Missing auth_key"},
		{name: "missing auth_timestamp", req: signedWithout(good, "auth_timestamp"), reason: ReasonTimestamp, message: "Missing auth_timestamp"},
		{name: "fractional auth_timestamp", req: replaceParam(good, "auth_timestamp", ts+".5"), reason: ReasonTimestamp, message: "not an integer"},
		{name: "huge auth_timestamp", req: replaceParam(good, "auth_timestamp", "-9223372036854775808"), reason: ReasonTimestamp, message: "Timestamp expired"},
		{name: "auth_version 2.0", req: replaceParam(good, "auth_version", "2.0"), reason: ReasonAuthVersion, message: `Invalid auth_version: "2.0"`},
		{
			name: "missing auth_version (webman)",
			req:  handSigned("GET", "/apps/3/channels", base, "", "GET\n/apps/3/channels\n"+base),
		},
		{
			name: "raw comma (Node, Go)",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&info=user_count,subscription_count", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&info=user_count,subscription_count"),
		},
		{
			name: "percent-encoded comma (PHP)",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&info=user_count%2Csubscription_count", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&info=user_count,subscription_count"),
		},
		{
			name: "plus as space",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&filter_by_prefix=a+b", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&filter_by_prefix=a b"),
		},
		{
			name: "percent-encoded space",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&filter_by_prefix=a%20b", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&filter_by_prefix=a b"),
		},
		{
			name: "percent-encoded value signed encoded is refused",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&info=user_count%2Csubscription_count", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&info=user_count%2Csubscription_count"),
			reason: ReasonSignature, message: "info=user_count,subscription_count",
		},
		{
			name: "repeated keys joined with commas",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&info=user_count&info=subscription_count", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&info=user_count,subscription_count"),
		},
		{
			name: "keys lower-cased and sorted",
			req: handSigned("GET", "/apps/3/channels", "Info=user_count&"+base+"&AUTH_VERSION=1.0&Filter_By_Prefix=presence-", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&filter_by_prefix=presence-&info=user_count"),
		},
		{
			name: "semicolon is part of a value",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&filter_by_prefix=a;b", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&filter_by_prefix=a;b"),
		},
		{
			name: "empty pairs ignored",
			req: handSigned("GET", "/apps/3/channels", "&&"+base+"&&auth_version=1.0&", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0"),
		},
		{
			name: "malformed escape kept as sent",
			req: handSigned("GET", "/apps/3/channels", base+"&auth_version=1.0&filter_by_prefix=100%", "",
				"GET\n/apps/3/channels\n"+base+"&auth_version=1.0&filter_by_prefix=100%"),
		},
		{name: "path prefix", req: atPath(signed("POST", "/apps/1/events", nil, docsBody, testNow), "/prefix/apps/1/events")},
		{name: "path prefix signed with it", req: signed("POST", "/prefix/apps/1/events", nil, docsBody, testNow)},
		{
			name: "path prefix, wrong signature shows the /apps/ path", req: replaceParam(atPath(good, "/prefix/apps/3/events"), "auth_signature", "00"),
			reason: ReasonSignature, message: `HmacSHA256Hex("POST\n/apps/3/events\n`,
		},
		{name: "escaped path signed unescaped", req: atPath(signed("GET", "/apps/1/channels/presence-a@b", nil, "", testNow), "/apps/1/channels/presence-a%40b")},
		{name: "escaped path signed escaped", req: signed("GET", "/apps/1/channels/presence-a%40b", nil, "", testNow)},
		{name: "prefixed escaped path signed unescaped", req: atPath(signed("GET", "/apps/1/channels/%23server-to-user-1", nil, "", testNow), "/p/apps/1/channels/%2523server-to-user-1")},
		{name: "query at the limit", req: signed("GET", "/apps/1/channels", url.Values{"pad": {strings.Repeat("x", maxRawQuery-250)}}, "", testNow)},
		{name: "query too long", req: signed("GET", "/apps/1/channels", url.Values{"pad": {strings.Repeat("x", maxRawQuery)}}, "", testNow), reason: ReasonTooLarge, message: "too long"},
		{name: "too many parameters", req: signed("GET", "/apps/1/channels", manyParams(maxParams), "", testNow), reason: ReasonTooLarge, message: "Too many query parameters"},
		{name: "many empty pairs are free", req: handSigned("GET", "/apps/3/channels", strings.Repeat("&", 1000)+base, "", "GET\n/apps/3/channels\n"+base)},
		{name: "path too long", req: signed("GET", "/apps/1/channels/"+strings.Repeat("x", maxPath), nil, "", testNow), reason: ReasonTooLarge, message: "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = testKey
			}
			err := VerifyRequest(tc.req, key, testSecret, testNow.Add(tc.skew))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("VerifyRequest: %v", err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v (%T), want *RequestError", err, err)
			}
			if re.Reason != tc.reason {
				t.Fatalf("reason = %q, want %q (%v)", re.Reason, tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error = %q\nwant it to contain %q", err, tc.message)
			}
			assertNoSignature(t, err.Error(), "", expectedSignatures(tc.req)...)
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error message leaks the secret: %q", err)
			}
		})
	}
}

// TestVerifyRequestDocsExample verifies the docs' request at the docs' time,
// exactly as PROTOCOL §5.2 prints it.
func TestVerifyRequestDocsExample(t *testing.T) {
	r := Request{
		Method:   "POST",
		Path:     "/apps/3/events",
		RawQuery: "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
		Body:     []byte(docsBody),
	}
	if err := VerifyRequest(r, testKey, testSecret, time.Unix(1353088179, 0)); err != nil {
		t.Fatalf("VerifyRequest: %v", err)
	}
	if err := VerifyRequest(r, testKey, testSecret, time.Unix(1353088179+601, 0)); err == nil {
		t.Fatal("VerifyRequest accepted the docs example 601 s later")
	}
}

func TestSignRequest(t *testing.T) {
	params := url.Values{"info": {"user_count"}, "AUTH_KEY": {"forged"}, "auth_signature": {"forged"}}
	got := SignRequest(testKey, testSecret, "get", "/apps/3/channels", params, nil, time.Unix(1353088179, 0))
	if got.Has("AUTH_KEY") || got.Get("auth_key") != testKey {
		t.Fatalf("caller's auth parameters were not replaced: %v", got)
	}
	if got.Has("body_md5") {
		t.Fatal("body_md5 set for an empty body")
	}
	if params.Get("auth_signature") != "forged" || params.Has("auth_timestamp") {
		t.Fatal("SignRequest modified its params argument")
	}
	want := Sign(testSecret, "GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&info=user_count")
	if got.Get("auth_signature") != want {
		t.Fatalf("auth_signature = %s, want %s", got.Get("auth_signature"), want)
	}
}

// TestSignRequestRoundTrip is the property that whatever SignRequest signs,
// sent as url.Values.Encode puts it on the wire, VerifyRequest accepts.
func TestSignRequestRoundTrip(t *testing.T) {
	prop := func(method, path string, keys, values []string, body []byte, skew int16) bool {
		params := url.Values{}
		for i, k := range keys {
			v := ""
			if i < len(values) {
				v = values[i]
			}
			params.Add(k, v)
		}
		at := testNow.Add(time.Duration(skew%600) * time.Second)
		r := signed(method, path, params, string(body), at)
		if len(r.RawQuery) > maxRawQuery || len(r.Path) > maxPath || len(keys)+5 > maxParams {
			return true
		}
		if err := VerifyRequest(r, testKey, testSecret, testNow); err != nil {
			t.Logf("method %q path %q query %q: %v", method, path, r.RawQuery, err)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerifyRequest (seeds in testdata/fuzz/FuzzVerifyRequest) checks that no request makes VerifyRequest panic, fail
// with anything but a *RequestError, or leak the expected signature, and that
// a request signed by SignRequest from the same inputs always verifies.
func FuzzVerifyRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, method, path, rawQuery string, body []byte) {
		r := Request{Method: method, Path: path, RawQuery: rawQuery, Body: body}
		if err := VerifyRequest(r, testKey, testSecret, testNow); err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is %T, want *RequestError", err, err)
			}
			assertNoSignature(t, err.Error(), method+"\x00"+path+"\x00"+rawQuery+"\x00"+queryUnescape(rawQuery), expectedSignatures(r)...)
		}

		params, _ := url.ParseQuery(rawQuery)
		s := signed(method, path, params, string(body), testNow)
		if len(s.RawQuery) > maxRawQuery || len(s.Path) > maxPath || strings.Count(s.RawQuery, "&")+1 > maxParams {
			return
		}
		if err := VerifyRequest(s, testKey, testSecret, testNow); err != nil {
			t.Fatalf("signed request rejected: %v\nquery %q", err, s.RawQuery)
		}
	})
}

func BenchmarkVerifyRequest(b *testing.B) {
	body := `{"name":"message","channels":["presence-room-42","private-inbox-7"],"data":"{\"text\":\"hello, world\",\"from\":\"ann\",\"sent_at\":1700000000,\"id\":\"6f1c2d9e-8a7b-4c3d-9e0f-1a2b3c4d5e6f\"}","socket_id":"123.456"}`
	r := signed("POST", "/apps/3/events", nil, body, testNow)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := VerifyRequest(r, testKey, testSecret, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func signedWithout(r Request, key string) Request {
	q, _ := url.ParseQuery(r.RawQuery)
	q.Del(key)
	r.RawQuery = q.Encode()
	return r
}

func bodyAdded(r Request, body string) Request {
	r.Body = []byte(body)
	return r
}

func atPath(r Request, path string) Request {
	r.Path = path
	return r
}

func manyParams(n int) url.Values {
	v := url.Values{}
	for i := range n {
		v.Set("p"+strconv.Itoa(i), "x")
	}
	return v
}
