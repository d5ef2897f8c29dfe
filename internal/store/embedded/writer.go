package embedded

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// txn is what a write operation sees: the transaction and a place to put
// the decision changes to publish, and in-memory updates to run, once the
// transaction has committed.
type txn struct {
	*bolt.Tx
	changes []store.Change
	after   []func()
}

func (t *txn) emit(c store.Change) { t.changes = append(t.changes, c) }

// afterCommit runs fn in the writer once the transaction has committed
// (and not at all if it rolls back), so that in-memory state such as queue
// wake-ups never runs ahead of the file.
func (t *txn) afterCommit(fn func()) { t.after = append(t.after, fn) }

// writeOp is one caller's write. fn may run more than once (if another op
// in its batch fails, the batch is rolled back and each op retried alone),
// so it must set its results afresh on every run.
type writeOp struct {
	fn   func(t *txn) error
	done chan error // buffered: the writer never waits for a caller
}

// update hands fn to the writer loop and waits until it has committed.
// If ctx ends first, update returns at once while fn may still run (and
// commit): callers must read results that fn sets only when update
// returned nil.
func (s *Store) update(ctx context.Context, fn func(t *txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.writes <- op:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		// The write may still commit; the caller only stops waiting.
		return ctx.Err()
	}
}

// writeLoop is the only writer. While one commit (and its fsync) is in
// flight, new ops queue up in s.writes; the next iteration takes all of
// them into one transaction. There is no artificial delay, so a lone
// writer pays one fsync and a busy store amortises it.
func (s *Store) writeLoop() {
	defer s.writerWG.Done()
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	t := &txn{}
	for op := range s.writes {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case next, ok := <-s.writes:
				if !ok {
					break fill
				}
				batch = append(batch, next)
			default:
				break fill
			}
		}
		s.commit(t, batch)
		clear(batch)
	}
}

// commit runs batch in one transaction, publishes its changes in commit
// order and answers every op. If one op fails, the others must not fail
// with it: each is retried in a transaction of its own.
func (s *Store) commit(t *txn, batch []*writeOp) {
	failed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		t.Tx, t.changes, t.after = tx, t.changes[:0], t.after[:0]
		for _, op := range batch {
			if err := op.fn(t); err != nil {
				failed = true
				return err
			}
		}
		return nil
	})
	t.Tx = nil
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = store.ErrClosed
	}
	if err == nil {
		s.commits.Add(1)
		s.writesDone.Add(int64(len(batch)))
		s.hub.Publish(t.changes...)
		for _, fn := range t.after {
			fn()
		}
	}
	clear(t.changes)
	clear(t.after)
	if err != nil && failed && len(batch) > 1 {
		for _, op := range batch {
			s.commit(t, []*writeOp{op})
		}
		return
	}
	for _, op := range batch {
		op.done <- err
	}
}
