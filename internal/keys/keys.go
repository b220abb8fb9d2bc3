// Package keys keeps the keys that sign tokens in PostgreSQL, their private
// halves sealed under the master key, and rotates them, each purpose's
// (access tokens, id tokens) apart from the other's: a new key
// is published (in the JWKS) PublishAhead before it signs anything, so that
// every JWKS cache has it by then; the key it replaces signs no more and
// stays published until every token it signed has expired, then it is
// deleted. Every replica reads the same rows, so all sign with the same key
// once it is active, whichever replica made it.
package keys

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/token"
)

// MinMasterKeyLen is the shortest master key accepted.
const MinMasterKeyLen = 32

// The purposes of keys: each is a key set of its own, which rotates on its
// own, and a key of one never verifies a token of the other.
const (
	Access = "access" // access tokens
	ID     = "id"     // OpenID Connect id tokens
)

// algs are the algorithms of each purpose's keys.
var algs = map[string][]string{
	Access: {token.EdDSA, token.ES256},
	ID:     {token.RS256, token.ES256, token.EdDSA},
}

// Config configures a Store.
type Config struct {
	// Purpose is what the keys sign: Access (the default, for "") or ID.
	Purpose string
	// Alg is the algorithm of new keys: token.EdDSA or token.ES256 for
	// access tokens; token.RS256, token.ES256 or token.EdDSA for id tokens.
	Alg string
	// MasterKey seals the private keys (at least 32 bytes); every replica
	// must have the same.
	MasterKey []byte
	// Rotation is how often a new key is made.
	Rotation time.Duration
	// PublishAhead is how long a new key is published before it signs:
	// at least the JWKS cache lifetime.
	PublishAhead time.Duration
	// Keep is how long a replaced key stays published: the lifetime of the
	// tokens it signed, and the leeway.
	Keep time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnCreate, if set, is told of every key made, once its transaction
	// has committed.
	OnCreate func(ctx context.Context, kid string)
}

// Store reads, makes and retires the signing keys of one purpose.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
	aead cipher.AEAD
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if len(cfg.MasterKey) < MinMasterKeyLen {
		return nil, fmt.Errorf("keys: the master key must be at least %d bytes", MinMasterKeyLen)
	}
	if cfg.Purpose == "" {
		cfg.Purpose = Access
	}
	allowed, ok := algs[cfg.Purpose]
	switch {
	case !ok:
		return nil, fmt.Errorf("keys: no such purpose %q (want %s or %s)", cfg.Purpose, Access, ID)
	case !slices.Contains(allowed, cfg.Alg):
		return nil, fmt.Errorf("keys: %s keys are not %q (want %s)", cfg.Purpose, cfg.Alg, strings.Join(allowed, ", "))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := sha256.Sum256(append([]byte("rolegate signing keys\x00"), cfg.MasterKey...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, cfg: cfg, aead: aead}, nil
}

// Purpose is what the store's keys sign: Access or ID.
func (s *Store) Purpose() string { return s.cfg.Purpose }

// State is a key's place in its life at some time.
type State struct {
	// Purpose is what the key signs: Access or ID.
	Purpose   string
	Kid, Alg  string
	CreatedAt time.Time
	// ActiveAt is when it starts signing.
	ActiveAt time.Time
	// RetiredAt is when the next key took over, and UnpublishAt when the
	// key leaves the JWKS; both zero while it is the newest active key.
	RetiredAt, UnpublishAt time.Time
	// Status is "published" (not signing yet), "signing" or "retired".
	Status string
}

// Sync makes the keys right for now, under a lock that replicas share (one
// per purpose, so that one purpose's rotation never waits on the other): it
// makes the first key, or a new one when the newest is older than
// Rotation, and deletes keys past their publication. It returns the key
// set to sign and verify with, and every key's state.
func (s *Store) Sync(ctx context.Context) (token.KeySet, []State, error) {
	return s.sync(ctx, false)
}

// Rotate makes a new key now, whatever the age of the newest, and returns
// Sync's result.
func (s *Store) Rotate(ctx context.Context) (token.KeySet, []State, error) {
	return s.sync(ctx, true)
}

func (s *Store) sync(ctx context.Context, force bool) (ks token.KeySet, states []State, err error) {
	var made string
	defer func() {
		if made != "" && err == nil && s.cfg.OnCreate != nil {
			s.cfg.OnCreate(ctx, made)
		}
	}()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := q.LockSigningKeys(ctx, s.cfg.Purpose); err != nil {
			return err
		}
		rows, err := q.ListSigningKeys(ctx, s.cfg.Purpose)
		if err != nil {
			return err
		}
		now := s.cfg.Now()
		switch {
		case len(rows) == 0:
			// The first key signs at once: no one can have cached a JWKS
			// without it yet.
			if made, err = s.create(ctx, q, now, now); err != nil {
				return err
			}
		case force || !now.Before(rows[0].CreatedAt.Time.Add(s.cfg.Rotation)):
			if made, err = s.create(ctx, q, now, now.Add(s.cfg.PublishAhead)); err != nil {
				return err
			}
		}
		if rows, err = q.ListSigningKeys(ctx, s.cfg.Purpose); err != nil {
			return err
		}
		ks, states, err = s.states(ctx, q, rows, now)
		return err
	})
	return ks, states, err
}

// states works out each key's state from the keys, newest to sign first,
// deletes the keys past their publication, and returns the key set.
func (s *Store) states(ctx context.Context, q *db.Queries, rows []db.ListSigningKeysRow, now time.Time) (token.KeySet, []State, error) {
	var ks token.KeySet
	var states []State
	signing := -1
	for i, r := range rows {
		st := State{Purpose: s.cfg.Purpose, Kid: r.Kid, Alg: r.Alg, CreatedAt: r.CreatedAt.Time, ActiveAt: r.ActiveAt.Time}
		switch {
		case now.Before(st.ActiveAt):
			st.Status = "published"
		case signing < 0:
			st.Status, signing = "signing", i
		default:
			st.Status = "retired"
			// The key just newer took over from it: keys between the
			// signing one and this are all active.
			st.RetiredAt = rows[i-1].ActiveAt.Time
			st.UnpublishAt = st.RetiredAt.Add(s.cfg.Keep)
			if !now.Before(st.UnpublishAt) {
				if err := q.DeleteSigningKey(ctx, db.DeleteSigningKeyParams{Kid: r.Kid, Purpose: s.cfg.Purpose}); err != nil {
					return ks, nil, err
				}
				continue
			}
		}
		pub, err := x509.ParsePKIXPublicKey(r.PublicKey)
		if err != nil {
			return ks, nil, fmt.Errorf("keys: the public key of %s: %w", r.Kid, err)
		}
		k := token.Key{ID: r.Kid, Alg: r.Alg, Public: pub}
		if i == signing {
			if k.Private, err = s.open(r); err != nil {
				return ks, nil, err
			}
			ks.Signing = k
		}
		ks.Verify = append(ks.Verify, k)
		states = append(states, st)
	}
	if signing < 0 {
		return ks, nil, errors.New("keys: no key is active yet")
	}
	return ks, states, nil
}

// create makes a key that is published now and signs from activeAt, and
// returns its kid.
func (s *Store) create(ctx context.Context, q *db.Queries, now, activeAt time.Time) (string, error) {
	k, err := token.GenerateKey(s.cfg.Alg)
	if err != nil {
		return "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return "", err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return k.ID, q.CreateSigningKey(ctx, db.CreateSigningKeyParams{
		Kid: k.ID, Purpose: s.cfg.Purpose, Alg: k.Alg, PublicKey: pub, PrivateKey: s.aead.Seal(nonce, nonce, priv, []byte(k.ID)),
		CreatedAt: ts(now), ActiveAt: ts(activeAt),
	})
}

// open unseals a key's private half.
func (s *Store) open(r db.ListSigningKeysRow) (crypto.Signer, error) {
	n := s.aead.NonceSize()
	if len(r.PrivateKey) < n {
		return nil, fmt.Errorf("keys: the private key of %s is damaged", r.Kid)
	}
	der, err := s.aead.Open(nil, r.PrivateKey[:n], r.PrivateKey[n:], []byte(r.Kid))
	if err != nil {
		return nil, fmt.Errorf("keys: the private key of %s does not open with this master key (do all replicas have the same ROLEGATE_MASTER_KEY?)", r.Kid)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: the private key of %s: %w", r.Kid, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: the private key of %s cannot sign", r.Kid)
	}
	return signer, nil
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
