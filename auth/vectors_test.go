package auth

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// vectorsPath holds the published test vectors, shared with other packages'
// tests through testdata/.
const vectorsPath = "../testdata/vectors/signatures.json"

type vectors struct {
	Comment     string `json:"comment"`
	Key         string `json:"key"`
	Secret      string `json:"secret"`
	ChannelAuth []struct {
		Name         string `json:"name"`
		SocketID     string `json:"socket_id"`
		Channel      string `json:"channel"`
		ChannelData  string `json:"channel_data"`
		StringToSign string `json:"string_to_sign"`
		Signature    string `json:"signature"`
		NotSignature string `json:"not_signature"`
	} `json:"channel_auth"`
	UserAuth []struct {
		Name         string `json:"name"`
		SocketID     string `json:"socket_id"`
		UserData     string `json:"user_data"`
		StringToSign string `json:"string_to_sign"`
		Signature    string `json:"signature"`
	} `json:"user_auth"`
	REST []struct {
		Name         string `json:"name"`
		Method       string `json:"method"`
		Path         string `json:"path"`
		Timestamp    int64  `json:"timestamp"`
		Query        string `json:"query"`
		Body         string `json:"body"`
		StringToSign string `json:"string_to_sign"`
		Signature    string `json:"signature"`
	} `json:"rest"`
	BodyMD5 []struct {
		Name string `json:"name"`
		Body string `json:"body"`
		MD5  string `json:"md5"`
	} `json:"body_md5"`
	Webhook []struct {
		Name      string `json:"name"`
		Body      string `json:"body"`
		Signature string `json:"signature"`
	} `json:"webhook"`
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	if v.Comment == "" || v.Key == "" || v.Secret == "" {
		t.Fatalf("%s: comment, key and secret are required", vectorsPath)
	}
	if len(v.ChannelAuth) == 0 || len(v.UserAuth) == 0 || len(v.REST) == 0 || len(v.BodyMD5) == 0 || len(v.Webhook) == 0 {
		t.Fatalf("%s: a vector section is empty", vectorsPath)
	}
	return &v
}

func TestVectorsChannelAuth(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.ChannelAuth {
		t.Run(tc.Name, func(t *testing.T) {
			if got := channelStringToSign(tc.SocketID, tc.Channel, tc.ChannelData); got != tc.StringToSign {
				t.Fatalf("string to sign = %q, want %q", got, tc.StringToSign)
			}
			if got := Sign(v.Secret, tc.StringToSign); got != tc.Signature {
				t.Fatalf("Sign = %s, want %s", got, tc.Signature)
			}
			want := v.Key + ":" + tc.Signature
			if got := SignChannel(v.Key, v.Secret, tc.SocketID, tc.Channel, tc.ChannelData); got != want {
				t.Fatalf("SignChannel = %s, want %s", got, want)
			}
			if err := VerifyChannel(v.Key, v.Secret, want, tc.SocketID, tc.Channel, tc.ChannelData); err != nil {
				t.Fatalf("VerifyChannel: %v", err)
			}
			if tc.NotSignature != "" {
				bad := v.Key + ":" + tc.NotSignature
				if err := VerifyChannel(v.Key, v.Secret, bad, tc.SocketID, tc.Channel, tc.ChannelData); err == nil {
					t.Fatalf("VerifyChannel accepted the misprinted signature %s", tc.NotSignature)
				}
			}
		})
	}
}

func TestVectorsUserAuth(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.UserAuth {
		t.Run(tc.Name, func(t *testing.T) {
			if got := userStringToSign(tc.SocketID, tc.UserData); got != tc.StringToSign {
				t.Fatalf("string to sign = %q, want %q", got, tc.StringToSign)
			}
			if got := Sign(v.Secret, tc.StringToSign); got != tc.Signature {
				t.Fatalf("Sign = %s, want %s", got, tc.Signature)
			}
			want := v.Key + ":" + tc.Signature
			if got := SignUser(v.Key, v.Secret, tc.SocketID, tc.UserData); got != want {
				t.Fatalf("SignUser = %s, want %s", got, want)
			}
			if err := VerifyUser(v.Key, v.Secret, want, tc.SocketID, tc.UserData); err != nil {
				t.Fatalf("VerifyUser: %v", err)
			}
		})
	}
}

func TestVectorsREST(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.REST {
		t.Run(tc.Name, func(t *testing.T) {
			ps, ok := parseRawQuery(tc.Query, maxParams)
			if !ok {
				t.Fatal("parseRawQuery refused the vector's query")
			}
			toSign := tc.Method + "\n" + tc.Path + "\n" + newQuery(ps).canonical()
			if toSign != tc.StringToSign {
				t.Fatalf("string to sign = %q, want %q", toSign, tc.StringToSign)
			}
			if got := Sign(v.Secret, tc.StringToSign); got != tc.Signature {
				t.Fatalf("Sign = %s, want %s", got, tc.Signature)
			}

			// The docs' request as an SDK sends it, verified at its own time.
			now := time.Unix(tc.Timestamp, 0)
			r := Request{Method: tc.Method, Path: tc.Path, RawQuery: tc.Query + "&auth_signature=" + tc.Signature, Body: []byte(tc.Body)}
			if err := VerifyRequest(r, v.Key, v.Secret, now); err != nil {
				t.Fatalf("VerifyRequest: %v", err)
			}

			// SignRequest, given only the non-auth parameters, reproduces it.
			query, err := url.ParseQuery(tc.Query)
			if err != nil {
				t.Fatal(err)
			}
			extra := url.Values{}
			for k, vs := range query {
				if !strings.HasPrefix(k, "auth_") && k != "body_md5" {
					extra[k] = vs
				}
			}
			signed := SignRequest(v.Key, v.Secret, tc.Method, tc.Path, extra, []byte(tc.Body), now)
			if got := signed.Get("auth_signature"); got != tc.Signature {
				t.Fatalf("SignRequest auth_signature = %s, want %s", got, tc.Signature)
			}
			signed.Del("auth_signature")
			if got, want := signed.Encode(), query.Encode(); got != want {
				t.Fatalf("SignRequest params = %s, want %s", got, want)
			}
		})
	}
}

func TestVectorsBodyMD5(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.BodyMD5 {
		t.Run(tc.Name, func(t *testing.T) {
			sum := md5.Sum([]byte(tc.Body))
			if got := hex.EncodeToString(sum[:]); got != tc.MD5 {
				t.Fatalf("md5 = %s, want %s", got, tc.MD5)
			}
			signed := SignRequest(v.Key, v.Secret, "POST", "/apps/3/events", nil, []byte(tc.Body), time.Unix(1353088179, 0))
			if got := signed.Get("body_md5"); got != tc.MD5 {
				t.Fatalf("SignRequest body_md5 = %s, want %s", got, tc.MD5)
			}
		})
	}
}

func TestVectorsWebhook(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Webhook {
		t.Run(tc.Name, func(t *testing.T) {
			if got := SignWebhook(v.Secret, []byte(tc.Body)); got != tc.Signature {
				t.Fatalf("SignWebhook = %s, want %s", got, tc.Signature)
			}
			if got := Sign(v.Secret, tc.Body); got != tc.Signature {
				t.Fatalf("Sign = %s, want %s", got, tc.Signature)
			}
		})
	}
}
