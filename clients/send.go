package clients

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// Authorizer returns the auth string ("key:signature") and, for presence channels, the channel_data
// a subscription to channel needs. In an application it calls the app's auth endpoint; in tests and
// trusted backends SignedAuthorizer signs locally.
type Authorizer func(socketID, channel string) (auth, channelData string, err error)

// SignedAuthorizer signs subscriptions with the app's secret, as an app's auth endpoint would.
// Channels that need no signature (public, cache-, #server-to-user-) get an empty auth. channelData,
// when non-nil, gives the channel_data of presence channels (it is not called for others); a nil
// channelData subscribes to presence channels without it, which only works for signed-in sockets.
func SignedAuthorizer(key, secret string, channelData func(channel string) string) Authorizer {
	return func(socketID, channel string) (string, string, error) {
		kind, _ := pusher.KindOf(channel)
		if !kind.NeedsSignature() {
			return "", "", nil
		}
		var data string
		if kind == pusher.KindPresence && channelData != nil {
			data = channelData(channel)
		}
		return auth.SignChannel(key, secret, socketID, channel, data), data, nil
	}
}

// Subscribe sends pusher:subscribe for channel and returns without waiting for the answer, which
// arrives as an event (see SubscribeAndWait). authorize may be nil for channels that need no
// signature; the auth field is then sent empty, as pusher-js sends it.
func (c *Conn) Subscribe(ctx context.Context, channel string, authorize Authorizer) error {
	var authString, channelData string
	if authorize != nil {
		var err error
		if authString, channelData, err = authorize(c.socketID, channel); err != nil {
			return fmt.Errorf("realtime: subscribe %q: authorize: %w", channel, err)
		}
	}
	b := make([]byte, 0, 64+len(channel)+len(authString)+len(channelData)*5/4)
	b = append(b, `{"event":"pusher:subscribe","data":{"auth":`...)
	b = pusher.AppendString(b, authString)
	if channelData != "" {
		b = append(b, `,"channel_data":`...)
		b = pusher.AppendString(b, channelData)
	}
	b = append(b, `,"channel":`...)
	b = pusher.AppendString(b, channel)
	b = append(b, "}}"...)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtime: subscribe %q: %w", channel, err)
	}
	return nil
}

// SubscribeAndWait subscribes and waits for the outcome. It returns the channel's
// pusher_internal:subscription_succeeded event (whose Data is the presence payload on presence
// channels), or, when the server answers with pusher:error or with the channel's
// pusher:subscription_error, that event and an error wrapping its *pusher.Error.
//
// Events of other kinds that arrive meanwhile are discarded: call it before anything else is
// expected on the connection. After a refusal, a pusher:subscription_error that follows the
// pusher:error is left queued.
func (c *Conn) SubscribeAndWait(ctx context.Context, channel string, authorize Authorizer) (Event, error) {
	if err := c.Subscribe(ctx, channel, authorize); err != nil {
		return Event{}, err
	}
	ev, err := c.WaitFor(ctx, func(ev Event) bool {
		switch ev.Event {
		case pusher.EventError:
			return true
		case pusher.EventSubscriptionSucceeded, pusher.EventSubscriptionError:
			return ev.Channel == channel
		}
		return false
	})
	if err != nil {
		return Event{}, fmt.Errorf("realtime: subscribe %q: %w", channel, err)
	}
	if ev.Event == pusher.EventSubscriptionSucceeded {
		return ev, nil
	}
	pe, ok := ev.PusherError()
	if !ok {
		pe = &pusher.Error{Message: ev.Data}
	}
	return ev, fmt.Errorf("realtime: subscribe %q: %s: %w", channel, ev.Event, pe)
}

// Unsubscribe sends pusher:unsubscribe for channel. The server does not answer.
func (c *Conn) Unsubscribe(ctx context.Context, channel string) error {
	b := make([]byte, 0, 56+len(channel))
	b = append(b, `{"event":"pusher:unsubscribe","data":{"channel":`...)
	b = pusher.AppendString(b, channel)
	b = append(b, "}}"...)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtime: unsubscribe %q: %w", channel, err)
	}
	return nil
}

// Signin sends pusher:signin with userData (a JSON object with an "id", signed byte for byte) and its
// auth string, e.g. auth.SignUser(key, secret, c.SocketID(), userData). It does not wait: the answer
// is a pusher:signin_success or pusher:error event.
func (c *Conn) Signin(ctx context.Context, userData, authString string) error {
	b := make([]byte, 0, 64+len(authString)+len(userData)*5/4)
	b = append(b, `{"event":"pusher:signin","data":{"auth":`...)
	b = pusher.AppendString(b, authString)
	b = append(b, `,"user_data":`...)
	b = pusher.AppendString(b, userData)
	b = append(b, "}}"...)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtime: signin: %w", err)
	}
	return nil
}

// Trigger sends a client event. A string data is sent as a JSON string, exactly as given; any other
// value is sent as its JSON encoding (an object, as pusher-js sends it; nil is null). The event name
// and channel are not checked here: the server's answer to a bad one is a pusher:error event.
func (c *Conn) Trigger(ctx context.Context, channel, event string, data any) error {
	var encoded []byte
	if s, ok := data.(string); ok {
		encoded = pusher.AppendString(make([]byte, 0, len(s)+len(s)/8+2), s)
	} else {
		var err error
		if encoded, err = json.Marshal(data); err != nil {
			return fmt.Errorf("realtime: trigger %q: encode data: %w", event, err)
		}
	}
	b := make([]byte, 0, 40+len(event)+len(channel)+len(encoded))
	b = append(b, `{"event":`...)
	b = pusher.AppendString(b, event)
	b = append(b, `,"channel":`...)
	b = pusher.AppendString(b, channel)
	b = append(b, `,"data":`...)
	b = append(b, encoded...)
	b = append(b, '}')
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtime: trigger %q: %w", event, err)
	}
	return nil
}

// Send writes frame as one text message, unchecked: tests use it to send what no SDK would.
func (c *Conn) Send(ctx context.Context, frame []byte) error {
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("realtime: send: %w", err)
	}
	return nil
}

// SendBinary writes b as one binary message, which the protocol does not use.
func (c *Conn) SendBinary(ctx context.Context, b []byte) error {
	if err := c.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		return fmt.Errorf("realtime: send binary: %w", err)
	}
	return nil
}

// Ping sends a WebSocket Ping frame and waits for the Pong, which the reader receives; it therefore
// times out when the application has let the event queue fill up.
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.ws.Ping(ctx); err != nil {
		return fmt.Errorf("realtime: ping: %w", err)
	}
	return nil
}
