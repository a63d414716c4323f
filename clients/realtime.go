package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/pusher"
)

// sdkVersion is sent as the version query parameter, as every Pusher client identifies itself.
const sdkVersion = "0.1.0"

// readLimit bounds one incoming message. Herald's frames are far smaller (event data ≤ 10 KiB, a full
// presence payload ≤ ~150 KiB); a larger message ends the connection with 1009.
const readLimit = 1 << 20

// closeWait bounds how long Dial waits for the close frame that follows a pusher:error.
const closeWait = 5 * time.Second

// DialOptions configures Dial. A nil *DialOptions is the same as the zero value.
type DialOptions struct {
	// HTTPClient performs the upgrade request. Nil means http.DefaultClient, or a client dialing from
	// LocalAddr when that is set.
	HTTPClient *http.Client
	// Header is sent with the upgrade request (Origin, cookies, X-Forwarded-Proto, …). Nil sends none.
	Header http.Header
	// Protocol is the protocol query parameter Dial adds to a URL without a query; "" means "7".
	Protocol string
	// EventBuffer is how many events wait for the application before the reader stops reading from the
	// socket (the server then sees a slow consumer). Values below 1 mean 256. The queue is allocated at
	// Dial, 64 bytes an event: a load generator holding tens of thousands of connections wants a small one.
	EventBuffer int
	// LocalAddr, when valid, is the local IP the TCP connection is made from, so that a load generator
	// can spread more sockets than one source address allows over 127.0.0.x. It cannot be combined with
	// HTTPClient.
	LocalAddr netip.Addr
	// OnEvent, when non-nil, sees every event first, on the reader goroutine; returning true consumes
	// the event, false queues it for Events as usual. It lets a load generator count and time the
	// events of many connections without a goroutine per connection. While it runs the connection reads
	// nothing, so it must be quick, and it must not call Next, WaitFor or SubscribeAndWait.
	OnEvent func(Event) bool
}

// DialError reports a connection the server refused after the upgrade (PROTOCOL.md §1.4): it sent
// pusher:error and a close frame, or only a close frame as Pusher itself does for protocol ≥ 6.
type DialError struct {
	// Code is the pusher:error code; 0 when the server sent no pusher:error or a null code.
	Code int
	// Message is the pusher:error message, or the close reason when there was no pusher:error.
	Message string
	// CloseCode is the status of the server's close frame; -1 when none arrived.
	CloseCode websocket.StatusCode
}

func (e *DialError) Error() string {
	return fmt.Sprintf("refused by server: code %d, close status %d: %s", e.Code, int(e.CloseCode), e.Message)
}

// Conn is a realtime connection to one app. Its methods are safe for concurrent use; events are
// delivered in the order the server sent them to whoever calls Next, WaitFor or reads Events.
//
// The ctx of a send (Subscribe, Trigger, Send, …) bounds the write; as with coder/websocket, a ctx
// that ends while the frame is being written closes the connection. The connection does not send
// pusher:ping on its own: Herald probes with WebSocket Ping frames, which the reader answers.
type Conn struct {
	// Static after Dial.
	ws              *websocket.Conn
	socketID        string
	activityTimeout time.Duration
	onEvent         func(Event) bool

	events    chan Event    // filled and, at the end, closed by the reader
	closing   chan struct{} // closed by Close: the reader stops queueing events
	closeOnce sync.Once
	done      chan struct{} // closed once the reader has ended and Events is closed

	mu          sync.Mutex // guards the end state, written once by the reader
	err         error
	closeStatus websocket.StatusCode
}

// Dial connects to a Herald (or Pusher-compatible) server and returns once the server has sent
// pusher:connection_established. rawURL is the socket URL, e.g. "ws://127.0.0.1:6001/app/KEY"; when it
// has no query, Dial adds "protocol=7&client=herald-go&version=…" (see DialOptions.Protocol). A URL with
// a query, even an empty one ("…/app/KEY?"), is sent exactly as given, so tests can leave out or
// garble the protocol parameter.
//
// ctx bounds the upgrade and the wait for the first frame; it has no effect on the connection after
// Dial returns. A server that refuses the connection yields a *DialError.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	u, err := dialURL(rawURL, o.Protocol)
	if err != nil {
		return nil, fmt.Errorf("realtime: dial: %w", err)
	}
	client := o.HTTPClient
	if o.LocalAddr.IsValid() {
		if client != nil {
			return nil, errors.New("realtime: dial: LocalAddr and HTTPClient cannot both be set")
		}
		client = localClient(o.LocalAddr)
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client, HTTPHeader: o.Header})
	if err != nil {
		return nil, fmt.Errorf("realtime: dial %s: %w", u, err)
	}
	ws.SetReadLimit(readLimit)
	socketID, timeout, err := handshake(ctx, ws)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("realtime: dial %s: %w", u, err)
	}
	n := o.EventBuffer
	if n < 1 {
		n = 256
	}
	c := &Conn{
		ws:              ws,
		socketID:        socketID,
		activityTimeout: timeout,
		onEvent:         o.OnEvent,
		events:          make(chan Event, n),
		closing:         make(chan struct{}),
		done:            make(chan struct{}),
		closeStatus:     -1,
	}
	go c.readLoop()
	return c, nil
}

// dialURL adds the protocol query to a URL that has none.
func dialURL(rawURL, protocol string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return rawURL, nil
	}
	if protocol == "" {
		protocol = "7"
	}
	u.RawQuery = "protocol=" + url.QueryEscape(protocol) + "&client=herald-go&version=" + sdkVersion
	return u.String(), nil
}

// localClients holds one HTTP client per local address, so dialing many sockets from one address
// shares a transport. After the upgrade a transport holds nothing of the connection.
var localClients sync.Map // netip.Addr → *http.Client

func localClient(addr netip.Addr) *http.Client {
	if c, ok := localClients.Load(addr); ok {
		return c.(*http.Client)
	}
	d := &net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)),
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	c, _ := localClients.LoadOrStore(addr, &http.Client{Transport: t})
	return c.(*http.Client)
}

// handshake reads the first frame. It must be pusher:connection_established with string data holding
// a valid socket id and a positive activity timeout (PROTOCOL.md rule 1); a pusher:error or a close
// instead is the server refusing the connection.
func handshake(ctx context.Context, ws *websocket.Conn) (socketID string, activityTimeout time.Duration, err error) {
	typ, b, err := ws.Read(ctx)
	if err != nil {
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return "", 0, &DialError{CloseCode: ce.Code, Message: ce.Reason}
		}
		return "", 0, fmt.Errorf("read first frame: %w", err)
	}
	if typ != websocket.MessageText {
		return "", 0, errors.New("first frame is binary")
	}
	ev, isString := decodeEvent(b)
	switch ev.Event {
	case pusher.EventConnectionEstablished:
	case pusher.EventError:
		return "", 0, refusal(ctx, ws, ev)
	default:
		return "", 0, fmt.Errorf("first frame is not %s: %.200q", pusher.EventConnectionEstablished, b)
	}
	if !isString {
		return "", 0, fmt.Errorf("%s data is not a JSON string: %.200q", pusher.EventConnectionEstablished, b)
	}
	var d struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		return "", 0, fmt.Errorf("decode %s data: %w", pusher.EventConnectionEstablished, err)
	}
	if !pusher.ValidSocketID(d.SocketID) {
		return "", 0, fmt.Errorf("invalid socket_id %q", d.SocketID)
	}
	if d.ActivityTimeout <= 0 {
		return "", 0, fmt.Errorf("activity_timeout %d is not positive", d.ActivityTimeout)
	}
	return d.SocketID, time.Duration(d.ActivityTimeout) * time.Second, nil
}

// refusal builds the DialError for a pusher:error received instead of connection_established, after
// waiting (briefly) for the close frame that should follow it.
func refusal(ctx context.Context, ws *websocket.Conn, ev Event) error {
	de := &DialError{CloseCode: -1}
	if pe, ok := ev.PusherError(); ok {
		de.Code, de.Message = pe.Code, pe.Message
	} else {
		de.Message = ev.Data
	}
	ctx, cancel := context.WithTimeout(ctx, closeWait)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err != nil {
			de.CloseCode = websocket.CloseStatus(err)
			return de
		}
	}
}

// readLoop is the connection's one goroutine: it reads frames and queues their events until the
// connection ends, then records why and closes Events.
func (c *Conn) readLoop() {
	err := c.readFrames()
	c.mu.Lock()
	c.err = fmt.Errorf("realtime: connection ended: %w", err)
	c.closeStatus = websocket.CloseStatus(err)
	c.mu.Unlock()
	c.ws.CloseNow() // after a read error the socket may still be open; release it
	close(c.events)
	close(c.done)
}

// readBufs recycles message buffers among all connections, so an idle connection holds none.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps the occasional huge message from pinning a large buffer in the pool.
const maxPooledBuf = 64 << 10

func (c *Conn) readFrames() error {
	ctx := context.Background() // cancelling a read context would close the connection
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return err
		}
		buf := readBufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		var ev Event
		if err == nil && typ == websocket.MessageText {
			ev, _ = decodeEvent(buf.Bytes())
		}
		if buf.Cap() <= maxPooledBuf {
			readBufs.Put(buf)
		}
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			continue // binary frames are not part of the protocol
		}
		if c.onEvent != nil && c.onEvent(ev) {
			continue
		}
		select {
		case <-c.closing:
			continue // Close was called: nobody is going to read it
		default:
		}
		select {
		case c.events <- ev:
		case <-c.closing:
		}
	}
}

// SocketID is the id the server assigned in pusher:connection_established.
func (c *Conn) SocketID() string { return c.socketID }

// ActivityTimeout is the activity_timeout the server announced.
func (c *Conn) ActivityTimeout() time.Duration { return c.activityTimeout }

// Events delivers the server's events in order. It is closed when the connection ends, after the
// events already queued; then Err and CloseStatus tell why. Not reading it eventually stops the
// reader (see DialOptions.EventBuffer).
func (c *Conn) Events() <-chan Event { return c.events }

// Next returns the next event. Once the connection has ended and the queue is drained it returns
// Err(); when ctx ends first it returns an error wrapping ctx.Err() and the connection stays open.
func (c *Conn) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-c.events:
		if !ok {
			return Event{}, c.Err()
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, fmt.Errorf("realtime: next: %w", ctx.Err())
	}
}

// WaitFor returns the first event for which match returns true, discarding the events before it.
// It fails as Next does.
func (c *Conn) WaitFor(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			return Event{}, err
		}
		if match(ev) {
			return ev, nil
		}
	}
}

// Close performs the WebSocket close handshake (status 1000), waiting up to about 10 s for a
// server that does not answer, and returns once the reader has ended and Events is closed. Events
// queued before Close stay readable; later ones are dropped. Closing an ended connection returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("realtime: close: %w", err)
	}
	return nil
}

// CloseStatus is the status of the close frame the server sent, or -1 while the connection is open
// and when it ended without one. After Close it is the server's answer to the handshake if the
// reader saw it, else -1.
func (c *Conn) CloseStatus() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeStatus
}

// Err is nil while the connection is open and, once it has ended, why: an error wrapping the
// websocket.CloseError of the server's close frame (see websocket.CloseStatus), or the read error.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
