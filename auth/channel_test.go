package auth

import (
	"strings"
	"testing"
)

// Credentials of the Pusher docs, used throughout the tests.
const (
	testKey    = "278d425bdf160c739803"
	testSecret = "7ad3773142a6692b25b8"
)

// assertNoSignature fails if msg contains any of sigs, in either hex case,
// unless the client's own input (sent) already did: echoing what a client sent
// reveals nothing.
func assertNoSignature(t *testing.T, msg, sent string, sigs ...string) {
	t.Helper()
	lower, sent := strings.ToLower(msg), strings.ToLower(sent)
	for _, s := range sigs {
		if s = strings.ToLower(s); s != "" && strings.Contains(lower, s) && !strings.Contains(sent, s) {
			t.Fatalf("error message leaks the expected signature %s: %q", s, msg)
		}
	}
}

func TestVerifyChannel(t *testing.T) {
	const (
		socket   = "1234.1234"
		private  = "private-foobar"
		presence = "presence-foobar"
		data     = `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`
	)
	privateSig := Sign(testSecret, socket+":"+private)
	presenceSig := Sign(testSecret, socket+":"+presence+":"+data)
	tests := []struct {
		name        string
		auth        string
		socket      string
		channel     string
		channelData string
		wantErr     string // exact error text; "" means valid
	}{
		{name: "private", auth: testKey + ":" + privateSig, socket: socket, channel: private},
		{name: "presence", auth: testKey + ":" + presenceSig, socket: socket, channel: presence, channelData: data},
		{name: "presence without channel_data", auth: testKey + ":" + Sign(testSecret, socket+":"+presence), socket: socket, channel: presence},
		{name: "uppercase hex", auth: testKey + ":" + strings.ToUpper(privateSig), socket: socket, channel: private},
		{
			name: "wrong signature", auth: testKey + ":" + Sign(testSecret, socket+":private-other"), socket: socket, channel: private,
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:private-foobar, but got " + Sign(testSecret, socket+":private-other"),
		},
		{
			name: "wrong key prefix", auth: "0000000000:" + privateSig, socket: socket, channel: private,
			wantErr: "Invalid key in subscription auth data: '0000000000'",
		},
		{
			name: "no colon", auth: testKey + privateSig, socket: socket, channel: private,
			wantErr: "Invalid format: auth must have the format key:signature",
		},
		{
			name: "empty", auth: "", socket: socket, channel: private,
			wantErr: "Auth info required to subscribe to private-foobar",
		},
		{
			name: "colon only", auth: ":", socket: socket, channel: private,
			wantErr: "Invalid key in subscription auth data: ''",
		},
		{
			name: "empty signature", auth: testKey + ":", socket: socket, channel: private,
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:private-foobar, but got ",
		},
		{
			name: "truncated signature", auth: testKey + ":" + privateSig[:63], socket: socket, channel: private,
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:private-foobar, but got " + privateSig[:63],
		},
		{
			name: "other socket id", auth: testKey + ":" + privateSig, socket: "1234.1235", channel: private,
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1235:private-foobar, but got " + privateSig,
		},
		{
			name: "presence data changed", auth: testKey + ":" + presenceSig, socket: socket, channel: presence, channelData: data + " ",
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:presence-foobar:" + data + " , but got " + presenceSig,
		},
		{
			name: "presence signed with data, sent without", auth: testKey + ":" + presenceSig, socket: socket, channel: presence,
			wantErr: "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:presence-foobar, but got " + presenceSig,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyChannel(testKey, testSecret, tc.auth, tc.socket, tc.channel, tc.channelData)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyChannel: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyChannel accepted a bad auth string")
			}
			if err.Error() != tc.wantErr {
				t.Fatalf("error = %q\nwant    %q", err, tc.wantErr)
			}
			assertNoSignature(t, err.Error(), "", Sign(testSecret, channelStringToSign(tc.socket, tc.channel, tc.channelData)))
		})
	}
}

func TestVerifyUser(t *testing.T) {
	const (
		socket = "1234.1234"
		data   = `{"id":"12345"}`
	)
	sig := Sign(testSecret, socket+"::user::"+data)
	tests := []struct {
		name     string
		auth     string
		socket   string
		userData string
		wantErr  string
	}{
		{name: "good", auth: testKey + ":" + sig, socket: socket, userData: data},
		{
			name: "wrong signature", auth: testKey + ":" + Sign(testSecret, socket+"::user::{}"), socket: socket, userData: data,
			wantErr: `Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234::user::{"id":"12345"}, but got ` + Sign(testSecret, socket+"::user::{}"),
		},
		{
			name: "channel signature is not a user signature", auth: testKey + ":" + Sign(testSecret, socket+":"+data), socket: socket, userData: data,
			wantErr: `Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234::user::{"id":"12345"}, but got ` + Sign(testSecret, socket+":"+data),
		},
		{
			name: "wrong key prefix", auth: "nope:" + sig, socket: socket, userData: data,
			wantErr: "Invalid key in subscription auth data: 'nope'",
		},
		{name: "no colon", auth: sig, socket: socket, userData: data, wantErr: "Invalid format: auth must have the format key:signature"},
		{name: "empty", auth: "", socket: socket, userData: data, wantErr: "Invalid format: auth must have the format key:signature"},
		{
			name: "other socket id", auth: testKey + ":" + sig, socket: "99.99", userData: data,
			wantErr: `Invalid signature: Expected HMAC SHA256 hex digest of 99.99::user::{"id":"12345"}, but got ` + sig,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyUser(testKey, testSecret, tc.auth, tc.socket, tc.userData)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyUser: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyUser accepted a bad auth string")
			}
			if err.Error() != tc.wantErr {
				t.Fatalf("error = %q\nwant    %q", err, tc.wantErr)
			}
			assertNoSignature(t, err.Error(), "", Sign(testSecret, userStringToSign(tc.socket, tc.userData)))
		})
	}
}

// FuzzVerifyChannel (seeds in testdata/fuzz/FuzzVerifyChannel) checks that no auth string or subscription makes the
// verifiers panic or leak the expected signature, and that what SignChannel
// and SignUser produce always verifies.
func FuzzVerifyChannel(f *testing.F) {
	f.Fuzz(func(t *testing.T, authString, socketID, channel, channelData string) {
		wantChannel := Sign(testSecret, channelStringToSign(socketID, channel, channelData))
		if err := VerifyChannel(testKey, testSecret, authString, socketID, channel, channelData); err != nil {
			assertNoSignature(t, err.Error(), authString+"\x00"+socketID+"\x00"+channel+"\x00"+channelData, wantChannel)
		}
		wantUser := Sign(testSecret, userStringToSign(socketID, channelData))
		if err := VerifyUser(testKey, testSecret, authString, socketID, channelData); err != nil {
			assertNoSignature(t, err.Error(), authString+"\x00"+socketID+"\x00"+channelData, wantUser)
		}
		if err := VerifyChannel(testKey, testSecret, SignChannel(testKey, testSecret, socketID, channel, channelData), socketID, channel, channelData); err != nil {
			t.Fatalf("SignChannel output rejected: %v", err)
		}
		if err := VerifyUser(testKey, testSecret, SignUser(testKey, testSecret, socketID, channelData), socketID, channelData); err != nil {
			t.Fatalf("SignUser output rejected: %v", err)
		}
	})
}

func BenchmarkVerifyChannel(b *testing.B) {
	const (
		socket  = "123456.7890123"
		channel = "presence-room-42"
		data    = `{"user_id":"42","user_info":{"name":"Ann","avatar":"https://example.com/a/42.png"}}`
	)
	auth := SignChannel(testKey, testSecret, socket, channel, data)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyChannel(testKey, testSecret, auth, socket, channel, data); err != nil {
			b.Fatal(err)
		}
	}
}
