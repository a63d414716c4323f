package channels

import (
	"sync"
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// sendQueue is one connection's outgoing frames. A frame is written at once when nothing is queued,
// as far as the socket takes it without waiting; otherwise it queues, up to a byte bound, for a writer
// goroutine that exists only while there is a backlog, drains it in batches of one socket write each,
// and exits. A client whose backlog would pass the bound is cut off (4100): a slow consumer must not
// grow memory or hold up the publisher. Closing is part of the queue: the close frame goes out after
// what was queued before it, and nothing is accepted after.
type sendQueue struct {
	// owner is the connection the queue belongs to, static: its transport is where frames go, its
	// server's MaxQueueBytes is the bound, and it is told what the queue cannot handle itself (its
	// methods slowConsumer, hangUp, closing and closeSent), never with mu held.
	owner *Conn

	mu sync.Mutex
	// The bound applies to queued (bytes waiting in frames) plus inflight (bytes of the batch a
	// writer holds, or of a direct write and what it left unsent): the true backlog of the client.
	frames   []ws.Frame
	spare    []ws.Frame // the last batch's array, for reuse
	queued   int32
	inflight int32
	writing  bool // a write is under way: the writer goroutine, or a direct write in send
	unsent   bool // a direct write left bytes in the socket that the writer must flush
	closing  bool // no further frame is accepted
	readDone bool // the reader has stopped for good: nothing will read a close reply
	// echoing: the close frame answers the client's own, so the client has nothing more to send and
	// the socket may close as soon as the answer is out, without lingering.
	echoing bool
	// closeFrame is the close payload the writer sends once what was queued before it is out;
	// closeSent records that it went, after which the socket waits for the client's reply.
	closeSent  bool
	closeFrame []byte
	closeCode  int // the code the server closed with (startClose); 0: it did not
}

// closedWith returns the code the server closed the connection with, or 0.
func (q *sendQueue) closedWith() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeCode
}

// sink is the writing half of a connection's transport.
type sink interface {
	Write(frames ...ws.Frame) error
	TryWrite(f ws.Frame) (complete bool, err error)
	LingerClose(grace time.Duration)
}

// closeGrace is how long a socket waits for the client's reply to a close frame before it is closed
// anyway. Closing at once could reset the connection before the client reads the close code.
const closeGrace = 5 * time.Second

// slowConsumerError is what a client cut off for its backlog is told.
var slowConsumerError = pusher.CloseError(pusher.CodeOverCapacity, "Client too slow: messages were dropped")

// newSendQueue returns a queue whose first write (the handshake's) is under way: frames sent before
// it is done wait behind it.
func newSendQueue(owner *Conn) sendQueue { return sendQueue{owner: owner, writing: true} }

func cost(f ws.Frame) int32 { return int32(f.Cost()) }

// frameOverhead is what a frame costs beyond its payload wherever frames wait for a connection.
const frameOverhead = ws.FrameOverhead

// send takes a frame and never blocks. With nothing queued and direct set it writes at once;
// otherwise it queues the frame for the writer. It reports false when the frame was not taken: the
// connection is closing, or the backlog would pass the bound and the client is being cut off.
func (q *sendQueue) send(f ws.Frame, direct bool) bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	if int(q.queued+q.inflight+cost(f)) > q.owner.srv.cfg.MaxQueueBytes {
		q.startClose(slowConsumerError, true)
		q.mu.Unlock()
		q.owner.slowConsumer() // once: the queue is closing from now on
		return false
	}
	if q.writing || len(q.frames) > 0 || !direct {
		q.frames = append(q.frames, f)
		q.queued += cost(f)
		q.startWriter()
		q.mu.Unlock()
		return true
	}
	// Nothing is being written: write at once, as far as the socket takes it without waiting. Frames
	// sent meanwhile queue behind this one (writing is set), and the rest goes to the writer.
	q.writing = true
	q.inflight = cost(f)
	q.mu.Unlock()
	q.wrote(q.owner.ws.TryWrite(f))
	return true
}

// wrote ends a write made outside the writer goroutine, with writing set so that frames sent meanwhile
// queued: the handshake's first write, or a direct write. A writer starts if anything is left to
// write, close or hang up.
func (q *sendQueue) wrote(complete bool, err error) {
	q.mu.Lock()
	if err != nil {
		q.failed()
		q.mu.Unlock()
		q.owner.hangUp()
		return
	}
	if !complete {
		q.unsent = true // inflight stays charged until the writer has flushed it
	} else {
		q.inflight = 0
	}
	if q.unsent || len(q.frames) > 0 || q.closeFrame != nil || q.readDone {
		go q.writeLoop() // writing stays set: the writer drains, closes or hangs up
	} else {
		q.writing = false
	}
	q.mu.Unlock()
}

// failed gives up on a socket that failed a write: nothing more is queued or sent; the caller hangs
// up once it has released mu. Called with mu held.
func (q *sendQueue) failed() {
	q.closing = true
	q.dropBacklog()
	q.writing = false
}

// isClosing reports that the queue accepts no further frame: the connection is on its way out.
func (q *sendQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// close sends pusher:error e after what is already queued, then the close frame with e's code. With
// dropBacklog the queued frames are discarded first.
func (q *sendQueue) close(e *pusher.Error, dropBacklog bool) {
	q.mu.Lock()
	q.startClose(e, dropBacklog)
	q.mu.Unlock()
}

// startClose stops accepting frames and has the writer send e, then the close frame. Called with mu
// held.
func (q *sendQueue) startClose(e *pusher.Error, dropBacklog bool) {
	if q.closing {
		return
	}
	q.closing = true
	q.closeCode = e.Code
	q.closeFrame = ws.ClosePayload(e.Code, e.Message)
	if dropBacklog {
		q.dropBacklog()
	}
	f := ws.Frame{Op: ws.OpText, Data: pusher.ErrorFrame(e)}
	q.frames = append(q.frames, f)
	q.queued += cost(f)
	q.startWriter()
}

// dropBacklog discards the queued frames. Called with mu held.
func (q *sendQueue) dropBacklog() {
	clear(q.frames)
	q.frames, q.queued = q.frames[:0], 0
}

// readerDone records that the reader has stopped for good. Unless a close frame already went out,
// the backlog is dropped and reply (when not nil) becomes the close frame, after a close already
// requested; echo says that reply answers the client's own close frame. It reports whether the writer
// still runs: it then ends the connection itself (lingering after the close frame, or hanging up), and
// the caller must not close the socket.
func (q *sendQueue) readerDone(reply []byte, echo bool) (lingering bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.readDone = true
	if !q.closeSent {
		q.dropBacklog()
		q.closing = true
		if q.closeFrame == nil {
			q.closeFrame, q.echoing = reply, echo
		}
		if q.closeFrame != nil {
			q.startWriter()
		}
	}
	return q.writing
}

// startWriter starts the writer unless a write is under way. Called with mu held.
func (q *sendQueue) startWriter() {
	if !q.writing {
		q.writing = true
		go q.writeLoop()
	}
}

// writeLoop drains the queue in batches, one socket write each, then exits. Once a close was
// requested and the queue is drained, the close frame goes out with the last batch; the socket then
// waits for the client's reply for closeGrace or, when the reader has already stopped, lingers that
// long for the client to read it.
func (q *sendQueue) writeLoop() {
	for {
		q.mu.Lock()
		batch := q.frames
		closing := q.closeFrame != nil && !q.closeSent
		if closing {
			batch = append(batch, ws.Frame{Op: ws.OpClose, Data: q.closeFrame})
			q.closeSent = true
		}
		if len(batch) == 0 && !q.unsent {
			q.writing = false
			hangUp := q.readDone
			q.mu.Unlock()
			if hangUp {
				q.owner.hangUp()
			}
			return
		}
		q.frames = q.spare[:0]
		q.spare = nil
		q.inflight += q.queued
		q.queued = 0
		q.unsent = false
		q.mu.Unlock()

		if closing {
			q.owner.closing()
		}
		err := q.owner.ws.Write(batch...)

		q.mu.Lock()
		q.inflight = 0
		clear(batch)
		if cap(batch) <= 64 {
			q.spare = batch[:0]
		}
		if err != nil {
			q.failed()
			q.mu.Unlock()
			q.owner.hangUp()
			return
		}
		if closing {
			q.dropBacklog()
			q.writing = false
			readDone, echoing := q.readDone, q.echoing
			q.mu.Unlock()
			switch {
			case echoing: // the handshake is complete
				q.owner.hangUp()
			case readDone: // nothing reads the reply: end the connection after the close frame
				q.owner.ws.LingerClose(closeGrace)
			default:
				q.owner.closeSent()
			}
			return
		}
		q.mu.Unlock()
	}
}

// backlog returns the bytes counted against the bound.
func (q *sendQueue) backlog() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.queued + q.inflight)
}

// idle reports whether no write is under way.
func (q *sendQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.writing
}
