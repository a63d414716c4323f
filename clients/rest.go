package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// RESTConfig configures a REST client. Every field but HTTPClient and Now is required.
type RESTConfig struct {
	// BaseURL is where the server's REST API is mounted, e.g. "http://127.0.0.1:6001". It may end in a
	// path prefix ("http://proxy/herald"): requests go to BaseURL + "/apps/{id}/…" and are signed for
	// "/apps/{id}/…" alone, as every Pusher server SDK signs them.
	BaseURL string
	AppID   string
	Key     string
	Secret  string
	// HTTPClient sends the requests. Nil means a client with a 30 s overall timeout whose transport
	// keeps up to 64 idle connections per host, so bursts of triggers reuse connections.
	HTTPClient *http.Client
	// Now is the clock requests are signed with. Nil means time.Now; tests pass a skewed clock to
	// check the server's timestamp window.
	Now func() time.Time
}

// REST is a client for the HTTP API of one app. It is safe for concurrent use.
type REST struct {
	base    string // BaseURL without a trailing slash
	appPath string // "/apps/{id}", escaped
	key     string
	secret  string
	client  *http.Client
	now     func() time.Time
}

// TriggerOptions are the optional fields of a trigger. The zero value asks for nothing.
type TriggerOptions struct {
	// SocketID excludes that connection from delivery (the socket that caused the event).
	SocketID string
	// Info asks for channel attributes in the answer: "user_count", "subscription_count" or both,
	// comma-separated.
	Info string
}

// BatchEvent is one event of a batch trigger. SocketID and Info are optional, as in TriggerOptions.
type BatchEvent struct {
	Channel  string
	Name     string
	Data     string
	SocketID string
	Info     string
}

// StatusError is the error of a typed call answered with anything but 200. Body is the answer as the
// server sent it: Herald's REST errors explain what was wrong, and tests assert on them.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	const max = 512
	body := strings.TrimSpace(e.Body)
	if len(body) > max {
		body = body[:max] + "…"
	}
	return fmt.Sprintf("status %d: %s", e.Status, body)
}

// maxResponseBytes bounds a response body read into memory; Herald's largest answers (channel lists)
// stay far below it.
const maxResponseBytes = 16 << 20

// NewREST returns a client for the app described by cfg. It does not contact the server.
func NewREST(cfg RESTConfig) *REST {
	r := &REST{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		appPath: "/apps/" + escapeSegment(cfg.AppID),
		key:     cfg.Key,
		secret:  cfg.Secret,
		client:  cfg.HTTPClient,
		now:     cfg.Now,
	}
	if r.client == nil {
		r.client = defaultRESTClient()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// defaultRESTClient keeps connections alive and bounds every request, so a hung server fails a call
// instead of hanging it.
func defaultRESTClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// Trigger publishes one event to one or more channels (POST /events). The answer is empty unless
// opts.Info asked for channel attributes.
func (r *REST) Trigger(ctx context.Context, channels []string, event, data string, opts *TriggerOptions) (*pusher.TriggerResponse, error) {
	req := pusher.TriggerRequest{Name: event, Data: textPtr(data), Channels: channels}
	if opts != nil {
		req.SocketID, req.Info = opts.SocketID, opts.Info
	}
	var resp pusher.TriggerResponse
	if err := r.call(ctx, http.MethodPost, "/events", nil, req, &resp); err != nil {
		return nil, fmt.Errorf("rest: trigger: %w", err)
	}
	return &resp, nil
}

// TriggerBatch publishes several events in one request (POST /batch_events). The answer holds one
// entry per event when any event asked for Info.
func (r *REST) TriggerBatch(ctx context.Context, batch []BatchEvent) (*pusher.BatchResponse, error) {
	req := pusher.BatchRequest{Batch: make([]pusher.TriggerRequest, len(batch))}
	for i, e := range batch {
		req.Batch[i] = pusher.TriggerRequest{Name: e.Name, Data: textPtr(e.Data), Channel: e.Channel,
			SocketID: e.SocketID, Info: e.Info}
	}
	var resp pusher.BatchResponse
	if err := r.call(ctx, http.MethodPost, "/batch_events", nil, req, &resp); err != nil {
		return nil, fmt.Errorf("rest: trigger batch: %w", err)
	}
	return &resp, nil
}

// Channels lists the occupied channels (GET /channels), optionally only those whose name starts with
// prefix, with the attributes named in info. Empty prefix and info are left out of the request.
func (r *REST) Channels(ctx context.Context, prefix, info string) (*pusher.ChannelsResponse, error) {
	params := url.Values{}
	if prefix != "" {
		params.Set("filter_by_prefix", prefix)
	}
	if info != "" {
		params.Set("info", info)
	}
	var resp pusher.ChannelsResponse
	if err := r.call(ctx, http.MethodGet, "/channels", params, nil, &resp); err != nil {
		return nil, fmt.Errorf("rest: channels: %w", err)
	}
	return &resp, nil
}

// Channel reports one channel's state (GET /channels/{name}) with the attributes named in info.
func (r *REST) Channel(ctx context.Context, name, info string) (*pusher.ChannelResponse, error) {
	params := url.Values{}
	if info != "" {
		params.Set("info", info)
	}
	var resp pusher.ChannelResponse
	if err := r.call(ctx, http.MethodGet, "/channels/"+escapeSegment(name), params, nil, &resp); err != nil {
		return nil, fmt.Errorf("rest: channel %q: %w", name, err)
	}
	return &resp, nil
}

// Users lists the distinct users of a presence channel (GET /channels/{name}/users).
func (r *REST) Users(ctx context.Context, channel string) (*pusher.UsersResponse, error) {
	var resp pusher.UsersResponse
	if err := r.call(ctx, http.MethodGet, "/channels/"+escapeSegment(channel)+"/users", nil, nil, &resp); err != nil {
		return nil, fmt.Errorf("rest: users of %q: %w", channel, err)
	}
	return &resp, nil
}

// TerminateUserConnections closes every connection signed in as userID
// (POST /users/{id}/terminate_connections, body {} as the Node and PHP SDKs send it).
func (r *REST) TerminateUserConnections(ctx context.Context, userID string) error {
	path := "/users/" + escapeSegment(userID) + "/terminate_connections"
	if err := r.call(ctx, http.MethodPost, path, nil, struct{}{}, nil); err != nil {
		return fmt.Errorf("rest: terminate connections of %q: %w", userID, err)
	}
	return nil
}

// Do sends one signed request and returns the answer whatever its status, for tests of error answers
// and for endpoints without a typed call. path is the full path under BaseURL in its escaped wire form,
// e.g. "/apps/1/channels/%23server-to-user-7", and is signed as given; params may be nil; a non-empty
// body is sent as application/json with its body_md5. err is only for failures to get an answer.
func (r *REST) Do(ctx context.Context, method, path string, params url.Values, body []byte) (status int, respBody []byte, err error) {
	q := auth.SignRequest(r.key, r.secret, method, path, params, body, r.now())
	req, err := http.NewRequestWithContext(ctx, method, r.base+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("rest: %s %s: %w", method, path, err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("rest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err == nil && len(respBody) > maxResponseBytes {
		err = fmt.Errorf("answer larger than %d bytes", maxResponseBytes)
	}
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("rest: %s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, respBody, nil
}

// call sends a request under the app's path, with in (when non-nil) as the JSON body, and decodes a
// 200 answer into out (when non-nil). Other statuses become a *StatusError.
func (r *REST) call(ctx context.Context, method, path string, params url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	status, resp, err := r.Do(ctx, method, r.appPath+path, params, body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &StatusError{Status: status, Body: string(resp)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("decode answer %.200q: %w", resp, err)
	}
	return nil
}

func textPtr(s string) *pusher.Text {
	t := pusher.Text(s)
	return &t
}

// escapeSegment escapes s for use as one path segment, leaving alone every byte a segment may hold
// (RFC 3986 pchar). Channel names and ordinary user ids therefore go on the wire unchanged, as the
// Pusher SDKs send them, while '#' (#server-to-user- channels), '/', '?', '%' and spaces are escaped
// so the server sees the segment the caller meant.
func escapeSegment(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !pcharByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; pcharByte(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return string(b)
}

// pcharByte reports whether c may appear unescaped in a path segment: unreserved, sub-delims, ':', '@'.
func pcharByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
