package webhooks

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/pusher"
)

// Config configures a Dispatcher. Every zero value means the documented default.
type Config struct {
	// Apps are the apps that have webhooks. Events of apps not listed, or listed without endpoints,
	// are ignored at once.
	Apps []App
	// RemovalDelay is how long channel_vacated and member_removed wait: if the channel (or the member)
	// comes back within it, neither the removal nor a new channel_occupied/member_added is sent, so a
	// page reload is not an offline event. Zero: 3 s, Pusher's delay. Negative: removals are sent at once.
	RemovalDelay time.Duration
	// Timeout bounds one delivery attempt (connect, send, response headers). Zero: 10 s.
	Timeout time.Duration
	// RetryFor is how long a request is retried, counted from when its first event was queued, while
	// its endpoint answers non-2xx or cannot be reached; after it the request is dropped, counted and
	// logged, with the events behind it whose own windows passed while they waited. Zero: 5 min,
	// Pusher's window. Negative: one attempt, no retries.
	RetryFor time.Duration
	// RetryBackoff is the wait before the first retry; each further retry doubles it, up to
	// RetryBackoffMax, and each wait is jittered down by up to half. Zero: 1 s.
	RetryBackoff time.Duration
	// RetryBackoffMax caps the wait between retries. Zero: 1 min.
	RetryBackoffMax time.Duration
	// Workers is the number of requests in flight at once, across all endpoints (each endpoint has at
	// most one, so that it receives its requests in order). Zero: 8.
	Workers int
	// EndpointQueueSize bounds the events waiting for one endpoint (those in its request excluded).
	// A full queue sheds its least valuable waiting event for a more valuable new one (counted as
	// shed: public-channel occupancy first, member events last), or drops the new one when nothing
	// waiting is worth less (endpoint_queue_full); both are logged. Zero: 10 000.
	EndpointQueueSize int
	// Client sends the requests. Nil: a client that keeps connections alive and never follows
	// redirects (a redirected POST would silently become a GET: a 3xx is retried like any non-2xx).
	Client *http.Client
	// Clock drives debounce, batching windows, back-off and time_ms. Nil: the system clock.
	Clock Clock
	// Logger receives failures, drops and endpoint state changes; nothing is logged per webhook above
	// Debug. Nil: nothing is logged.
	Logger *zerolog.Logger
	// Observer is told of every attempt and drop, by app, for metrics. Nil: only Stats counts them.
	Observer Observer
}

// Observer receives the dispatcher's measurements by app. Its methods are called from the
// dispatcher's goroutines, sometimes under its lock: they must be quick and must not call back.
type Observer interface {
	// Attempt reports one request.
	Attempt(appID string, a Attempt)
	// Dropped reports events given up on.
	Dropped(appID string, reason DropReason, events int)
}

// Attempt is one request to an endpoint, as the Observer hears of it.
type Attempt struct {
	URL string
	// Events are the events it carried, under Pusher's names; the Observer must neither keep nor
	// change them.
	Events []pusher.WebhookEvent
	// N counts the attempts at these events: 1 for the first.
	N int
	// Status is the endpoint's HTTP status; 0 when it did not answer.
	Status int
	// Err is nil when the endpoint answered 2xx.
	Err      error
	Duration time.Duration
}

// App is one app's webhook setup.
type App struct {
	// ID is the app id Emit is called with. Key and Secret sign the requests: X-Pusher-Key carries
	// the key and X-Pusher-Signature the HMAC-SHA256 of the body with the secret.
	ID, Key, Secret string
	// Endpoints receive the app's events; each has its own filters, headers, naming and queue. At
	// most MaxEndpoints.
	Endpoints []Endpoint
	// Batching lets one request carry several events. Zero: one event per request, unless the
	// endpoint is backlogged (then up to 50, see Stats.Packed).
	Batching Batching
}

// MaxEndpoints is the most endpoints an app may have: the debounce keeps one bit per endpoint.
const MaxEndpoints = 64

// Endpoint is one URL that receives an app's webhooks.
type Endpoint struct {
	// URL is the absolute http or https URL the requests are POSTed to.
	URL string
	// EventTypes lists the event types this endpoint receives (Pusher names; the webman names
	// channel_added, channel_removed, user_added and user_removed are accepted as aliases). Empty:
	// all seven types, or with webman naming the four lifecycle types webman/push sends.
	EventTypes []string
	// ChannelPrefix and ChannelSuffix, when set, restrict the endpoint to events on channels whose
	// names start (and end) with them.
	ChannelPrefix, ChannelSuffix string
	// Headers are added to every request. Content-Type, X-Pusher-Key and X-Pusher-Signature cannot be
	// overridden.
	Headers map[string]string
	// Naming is NamingPusher (the default when empty) or NamingWebman.
	Naming Naming
}

// Batching is an app's batching policy. Batches keep the order in which events occurred, and an
// event on a private-encrypted- channel always travels alone: pusher-http-php throws on an
// encrypted-channel event without data, losing every other event of its request.
type Batching struct {
	// Enabled turns batching on.
	Enabled bool
	// Window is how long the first event of a batch waits for others. Zero: 50 ms.
	Window time.Duration
	// MaxEvents sends a batch as soon as it holds this many events. Zero: 50.
	MaxEvents int
}

// Naming chooses the event names an endpoint receives.
type Naming string

const (
	// NamingPusher sends Pusher's names: channel_occupied, channel_vacated, member_added, …
	NamingPusher Naming = "pusher"
	// NamingWebman sends webman/push's names for the four lifecycle events (channel_added,
	// channel_removed, user_added, user_removed) so existing webman hook handlers work unchanged;
	// the other types keep Pusher's names. time_ms stays an integer (webman sent float seconds).
	NamingWebman Naming = "webman"
)

// Webman/push's names for the lifecycle events.
const (
	WebmanChannelAdded   = "channel_added"
	WebmanChannelRemoved = "channel_removed"
	WebmanUserAdded      = "user_added"
	WebmanUserRemoved    = "user_removed"
)

// EventTypes are the seven Pusher webhook event types, in Pusher's documentation order.
var EventTypes = []string{
	pusher.WebhookChannelOccupied, pusher.WebhookChannelVacated,
	pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved,
	pusher.WebhookClientEvent, pusher.WebhookCacheMiss, pusher.WebhookSubscriptionCount,
}

// webmanTypes are the types webman/push sends, the default of a webman-named endpoint.
var webmanTypes = EventTypes[:4]

// toWebman maps Pusher names to webman names; aliases maps every accepted event type to Pusher's name.
var (
	toWebman = map[string]string{
		pusher.WebhookChannelOccupied: WebmanChannelAdded,
		pusher.WebhookChannelVacated:  WebmanChannelRemoved,
		pusher.WebhookMemberAdded:     WebmanUserAdded,
		pusher.WebhookMemberRemoved:   WebmanUserRemoved,
	}
	aliases = func() map[string]string {
		m := map[string]string{}
		for _, t := range EventTypes {
			m[t] = t
		}
		for p, w := range toWebman {
			m[w] = p
		}
		return m
	}()
)

// reservedHeaders are set by the dispatcher on every request.
var reservedHeaders = []string{"Content-Type", "X-Pusher-Key", "X-Pusher-Signature"}

// Validate reports the first problem with the endpoint. The message starts with the name of the
// field at fault as the config file spells it (url, event_types, headers, naming).
func (e Endpoint) Validate() error {
	u, err := url.Parse(e.URL)
	if e.URL == "" {
		return errors.New("url: is empty")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: %q is not an absolute http or https URL", e.URL)
	}
	for _, t := range e.EventTypes {
		if _, ok := aliases[t]; !ok {
			return fmt.Errorf("event_types: unknown event type %q (want one of %s, or a webman name)", t, strings.Join(EventTypes, ", "))
		}
	}
	for k, v := range e.Headers {
		if !validHeaderName(k) {
			return fmt.Errorf("headers: %q is not a valid header name", k)
		}
		if slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, k) }) {
			return fmt.Errorf("headers: %s is set by Herald and cannot be overridden", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("headers: the value of %s contains a line break", k)
		}
	}
	switch e.Naming {
	case "", NamingPusher, NamingWebman:
	default:
		return fmt.Errorf("naming: unknown naming mode %q (want pusher or webman)", e.Naming)
	}
	return nil
}

// Validate reports the first problem with the batching policy, naming the field.
func (b Batching) Validate() error {
	switch {
	case b.Window < 0:
		return errors.New("window: must not be negative")
	case b.MaxEvents < 0:
		return errors.New("max_events: must not be negative")
	}
	return nil
}

// validate reports the first problem with the app, naming the app and the field.
func (a App) validate() error {
	switch {
	case a.ID == "":
		return errors.New("app id is empty")
	case a.Key == "" || a.Secret == "":
		return fmt.Errorf("app %q: key and secret are required to sign webhooks", a.ID)
	case len(a.Endpoints) > MaxEndpoints:
		return fmt.Errorf("app %q: webhooks: %d endpoints, at most %d", a.ID, len(a.Endpoints), MaxEndpoints)
	}
	for i, e := range a.Endpoints {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("app %q: webhooks[%d].%w", a.ID, i, err)
		}
	}
	if err := a.Batching.Validate(); err != nil {
		return fmt.Errorf("app %q: batching.%w", a.ID, err)
	}
	return nil
}

// withDefaults fills in the zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	seen := map[string]bool{}
	for _, a := range c.Apps {
		if err := a.validate(); err != nil {
			return c, fmt.Errorf("webhooks: %w", err)
		}
		if seen[a.ID] {
			return c, fmt.Errorf("webhooks: app %q is listed twice", a.ID)
		}
		seen[a.ID] = true
	}
	if c.Workers < 0 || c.EndpointQueueSize < 0 || c.Timeout < 0 || c.RetryBackoff < 0 || c.RetryBackoffMax < 0 {
		return c, errors.New("webhooks: workers, queue size, timeout and back-off must not be negative")
	}
	setDefault(&c.RemovalDelay, 3*time.Second)
	setDefault(&c.Timeout, 10*time.Second)
	setDefault(&c.RetryFor, 5*time.Minute)
	setDefault(&c.RetryBackoff, time.Second)
	setDefault(&c.RetryBackoffMax, time.Minute)
	setDefault(&c.Workers, 8)
	setDefault(&c.EndpointQueueSize, 10_000)
	if c.Client == nil {
		c.Client = defaultClient()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaultClient keeps connections to receivers alive and never follows redirects.
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
