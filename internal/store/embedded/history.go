package embedded

import (
	"bytes"
	"context"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// maxEvictPerAppend bounds the keys one append evicts, so that lowering
// MaxHistoryKeys on a big file converges over several appends instead of
// stalling one.
const maxEvictPerAppend = 16

// AppendHistory implements store.History. One append writes the record,
// trims the key to store.MaxHistoryPerKey records, moves the key to the
// young end of the eviction order and evicts the oldest keys beyond
// Options.MaxHistoryKeys, all in one transaction.
func (s *Store) AppendHistory(ctx context.Context, key string, record []byte) error {
	if err := store.CheckHistoryRecord(key, record); err != nil {
		return err
	}
	k := []byte(key)
	rec := bytes.Clone(record)
	if rec == nil {
		rec = []byte{}
	}
	prefix := historyPrefix(key)
	keyLimit := uint64(s.opts.MaxHistoryKeys)
	return s.update(ctx, func(t *txn) error {
		hist, keys, lru, meta := t.Bucket(bucketHistory), t.Bucket(bucketHistoryKeys), t.Bucket(bucketHistoryLRU), t.Bucket(bucketMeta)
		nKeys, _ := decodeUint(meta.Get(metaHistoryKeys))
		nRecords, _ := decodeUint(meta.Get(metaHistoryRecords))

		seq, err := hist.NextSequence()
		if err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		lastSeq, count, known := decodeHistoryMeta(keys.Get(k))
		if known {
			if err := lru.Delete(historyLRUKey(lastSeq, k)); err != nil {
				return fmt.Errorf("append history: %w", err)
			}
		} else {
			nKeys++
			count = 0
		}
		if err := hist.Put(historyRecordKey(prefix, seq), rec); err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		count++
		nRecords++
		if count > store.MaxHistoryPerKey {
			n, err := deleteHistory(hist, prefix, count-store.MaxHistoryPerKey)
			if err != nil {
				return err
			}
			count -= n
			nRecords -= min(nRecords, n)
		}
		if err := keys.Put(k, encodeHistoryMeta(seq, count)); err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		if err := lru.Put(historyLRUKey(seq, k), nil); err != nil {
			return fmt.Errorf("append history: %w", err)
		}

		evicted := int64(0)
		c := lru.Cursor()
		for i := 0; nKeys > keyLimit && i < maxEvictPerAppend; i++ {
			lk, _ := c.First()
			if lk == nil {
				break
			}
			damaged, victim := len(lk) < 9, bytes.Clone(lk[min(len(lk), 8):])
			if !damaged && bytes.Equal(victim, k) {
				break // only the key just appended to is left
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("evict history: %w", err)
			}
			if damaged {
				continue // dropping a damaged entry is the repair
			}
			if keys.Get(victim) == nil {
				continue // a stale entry: the key is already gone
			}
			n, err := deleteHistory(hist, historyPrefix(string(victim)), math.MaxUint64)
			if err != nil {
				return err
			}
			if err := keys.Delete(victim); err != nil {
				return fmt.Errorf("evict history: %w", err)
			}
			nKeys--
			nRecords -= min(nRecords, n)
			evicted++
		}
		if evicted > 0 {
			t.afterCommit(func() { s.historyEvictions.Add(evicted) })
		}
		if err := meta.Put(metaHistoryKeys, encodeUint(nKeys)); err != nil {
			return err
		}
		return meta.Put(metaHistoryRecords, encodeUint(nRecords))
	})
}

// deleteHistory deletes up to n of the oldest records under prefix and
// returns how many it deleted.
func deleteHistory(hist *bolt.Bucket, prefix []byte, n uint64) (uint64, error) {
	c := hist.Cursor()
	var deleted uint64
	for deleted < n {
		// Seek again after each delete: a bbolt cursor may skip an
		// element when Next follows Delete.
		k, _ := c.Seek(prefix)
		if k == nil || len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
			break
		}
		if err := c.Delete(); err != nil {
			return deleted, fmt.Errorf("trim history: %w", err)
		}
		deleted++
	}
	return deleted, nil
}

// ListHistory implements store.History.
func (s *Store) ListHistory(ctx context.Context, key string, limit int) ([][]byte, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, err
	}
	limit = store.HistoryLimit(limit)
	prefix := historyPrefix(key)
	upper := historyRecordKey(prefix, math.MaxUint64)
	var out [][]byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		k, v := c.Seek(upper)
		switch {
		case k == nil:
			k, v = c.Last()
		case !bytes.Equal(k, upper):
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
				break
			}
			rec := make([]byte, len(v)) // bbolt memory is valid only inside the transaction
			copy(rec, v)
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
