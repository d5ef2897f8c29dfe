package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Get implements store.KV.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, false, err
	}
	var out []byte
	var found bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketKV).Get([]byte(key))
		if rec == nil {
			return nil
		}
		exp, value, err := decodeKV(rec)
		if err != nil {
			s.noteCorrupt(bucketKV, []byte(key), err)
			return err
		}
		if expired(exp, time.Now()) {
			return nil
		}
		// bbolt memory is valid only inside the transaction.
		out, found = bytes.Clone(value), true
		if out == nil {
			out = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, found, nil
}

// Set implements store.KV.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	k := []byte(key)
	rec := encodeKV(expiryAt(time.Now(), ttl), value)
	return s.update(ctx, func(t *txn) error {
		return putKV(t.Tx, k, rec)
	})
}

// SetNX implements store.KV. The single writer makes the check and the
// write atomic.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKV(key, value); err != nil {
		return false, err
	}
	k := []byte(key)
	var set bool
	err := s.update(ctx, func(t *txn) error {
		set = false
		now := time.Now()
		if old := t.Bucket(bucketKV).Get(k); old != nil {
			if exp, _, err := decodeKV(old); err == nil && !expired(exp, now) {
				return nil
			}
		}
		if err := putKV(t.Tx, k, encodeKV(expiryAt(now, ttl), value)); err != nil {
			return err
		}
		set = true
		return nil
	})
	if err != nil {
		return false, err // fn may still be running: do not read set
	}
	return set, nil
}

// Delete implements store.KV.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	k := []byte(key)
	return s.update(ctx, func(t *txn) error {
		b := t.Bucket(bucketKV)
		old := b.Get(k)
		if old == nil {
			return nil
		}
		if err := unindexKV(t.Tx, k, old); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete %q: %w", key, err)
		}
		return nil
	})
}

func checkKV(key string, value []byte) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	return store.CheckValue(value)
}

// putKV writes rec under k and keeps the expiry index in step.
func putKV(tx *bolt.Tx, k, rec []byte) error {
	b := tx.Bucket(bucketKV)
	if old := b.Get(k); old != nil {
		if err := unindexKV(tx, k, old); err != nil {
			return err
		}
	}
	if err := b.Put(k, rec); err != nil {
		return fmt.Errorf("set %q: %w", k, err)
	}
	if exp, _, _ := decodeKV(rec); exp != 0 {
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(exp, kindKV, k), nil); err != nil {
			return fmt.Errorf("index expiry of %q: %w", k, err)
		}
	}
	return nil
}

func unindexKV(tx *bolt.Tx, k, old []byte) error {
	exp, _, err := decodeKV(old)
	if err != nil || exp == 0 {
		return nil
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(exp, kindKV, k)); err != nil {
		return fmt.Errorf("unindex expiry of %q: %w", k, err)
	}
	return nil
}

// Incr implements store.Counters. A counter record holds only its current
// window; the first increment in a new window replaces it.
func (s *Store) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	if err := store.CheckKey(key); err != nil {
		return 0, err
	}
	if err := store.CheckWindow(window); err != nil {
		return 0, err
	}
	k := []byte(key)
	var value int64
	err := s.update(ctx, func(t *txn) error {
		b := t.Bucket(bucketCounters)
		cur := counterRecord{
			start:  unixNano(store.WindowStart(time.Now(), window)),
			window: uint64(window),
		}
		raw := b.Get(k)
		old, oldErr := decodeCounter(raw)
		if raw != nil && oldErr == nil && old.start == cur.start && old.window == cur.window {
			cur.count = old.count + delta
		} else {
			cur.count = delta
			idx := t.Bucket(bucketExpiry)
			if raw != nil && oldErr == nil {
				if err := idx.Delete(expiryKey(old.expiry(), kindCounter, k)); err != nil {
					return fmt.Errorf("unindex counter %q: %w", k, err)
				}
			}
			if err := idx.Put(expiryKey(cur.expiry(), kindCounter, k), nil); err != nil {
				return fmt.Errorf("index counter %q: %w", k, err)
			}
		}
		if err := b.Put(k, encodeCounter(cur)); err != nil {
			return fmt.Errorf("incr %q: %w", k, err)
		}
		value = cur.count
		return nil
	})
	if err != nil {
		return 0, err
	}
	return value, nil
}

// janitorLoop deletes expired KV entries and counters every
// JanitorInterval until Close.
func (s *Store) janitorLoop() {
	defer s.janitorWG.Done()
	tick := time.NewTicker(s.opts.JanitorInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopJanitor:
			return
		case <-tick.C:
		}
		// Keep going while passes come back full, yielding to Close.
		for {
			n, err := s.sweep(context.Background(), time.Now())
			if errors.Is(err, store.ErrClosed) {
				return
			}
			if err != nil {
				s.log.Warn("janitor pass failed", "err", err)
				break
			}
			if n > 0 {
				s.log.Debug("janitor deleted expired keys", "count", n)
			}
			if n < s.opts.JanitorBatch {
				break
			}
			select {
			case <-s.stopJanitor:
				return
			default:
			}
		}
	}
}

// sweep deletes up to JanitorBatch records whose expiry has passed at now,
// oldest first, and returns how many index entries it consumed.
func (s *Store) sweep(ctx context.Context, now time.Time) (int, error) {
	limit := unixNano(now)
	n := 0
	err := s.update(ctx, func(t *txn) error {
		n = 0
		idx := t.Bucket(bucketExpiry)
		var due [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(due) < s.opts.JanitorBatch; k, _ = c.Next() {
			exp, _, _, err := decodeExpiryKey(k)
			if err == nil && exp > limit {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		for _, ik := range due {
			if err := idx.Delete(ik); err != nil {
				return fmt.Errorf("janitor: %w", err)
			}
			n++
			exp, kind, key, err := decodeExpiryKey(ik)
			if err != nil {
				continue // a damaged index entry: dropping it is the repair
			}
			if err := expireRecord(t.Tx, kind, key, exp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// expireRecord deletes the record an index entry points to, but only if
// the record still carries that expiry: the index is advisory.
func expireRecord(tx *bolt.Tx, kind byte, key []byte, exp uint64) error {
	switch kind {
	case kindKV:
		b := tx.Bucket(bucketKV)
		if got, _, err := decodeKV(b.Get(key)); err == nil && got == exp {
			return b.Delete(key)
		}
	case kindCounter:
		b := tx.Bucket(bucketCounters)
		if got, err := decodeCounter(b.Get(key)); err == nil && got.expiry() == exp {
			return b.Delete(key)
		}
	}
	return nil
}
