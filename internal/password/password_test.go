package password

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// fast are cheap parameters for tests that do not check the cost itself.
var fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashFormatOWASP(t *testing.T) {
	h, err := Hash("correct horse battery staple", OWASP)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not match %v", h, re)
	}
	ok, rehash, err := Verify(h, "correct horse battery staple", OWASP)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify(OWASP round trip) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, _, err = Verify(h, "correct horse battery stapler", OWASP)
	if ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, pw, try string
		want          bool
	}{
		{"same", "hunter2", "hunter2", true},
		{"wrong", "hunter2", "hunter3", false},
		{"prefix", "hunter2", "hunter", false},
		{"empty password", "", "", true},
		{"empty vs nonempty", "", "x", false},
		{"unicode", "pässwörd 🔑", "pässwörd 🔑", true},
		{"unicode normalisation differs", "\u00e9", "e\u0301", false},
		{"max length", strings.Repeat("a", MaxPasswordLen), strings.Repeat("a", MaxPasswordLen), true},
		{"long vs bcrypt-style truncation", strings.Repeat("a", 100), strings.Repeat("a", 72), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Hash(tt.pw, fast)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := Verify(h, tt.try, fast)
			if ok != tt.want || rehash || err != nil {
				t.Fatalf("Verify = %v, %v, %v; want %v, false, nil", ok, rehash, err, tt.want)
			}
		})
	}
}

func TestHashRandomSalt(t *testing.T) {
	a, err := Hash("same", fast)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Hash("same", fast)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of the same password are equal: %q", a)
	}
	if a[:strings.LastIndex(a, "$")] == b[:strings.LastIndex(b, "$")] {
		t.Fatal("two hashes share a salt")
	}
}

func TestHashRefuses(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		p       Params
		wantErr error
	}{
		{"too long", strings.Repeat("x", MaxPasswordLen+1), fast, ErrPasswordTooLong},
		{"zero params", "x", Params{}, errInvalidParams},
		{"t=0", "x", Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}, errInvalidParams},
		{"m too small for p", "x", Params{Memory: 16, Time: 1, Threads: 4, SaltLen: 16, KeyLen: 32}, errInvalidParams},
		{"m too big", "x", Params{Memory: maxMemory + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, errInvalidParams},
		{"short salt", "x", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}, errInvalidParams},
		{"short key", "x", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8}, errInvalidParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Hash(tt.pw, tt.p)
			if !errors.Is(err, tt.wantErr) || h != "" {
				t.Fatalf("Hash = %q, %v; want \"\", %v", h, err, tt.wantErr)
			}
		})
	}
}

// assemble builds a PHC string by hand, independently of encode.
func assemble(m, t, p int, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestKnownVectors(t *testing.T) {
	salt := []byte("0123456789abcdef")
	fixed := assemble(64, 1, 1, salt, argon2.IDKey([]byte("vector pw"), salt, 1, 64, 1, 32))

	cost4, err := bcrypt.GenerateFromPassword([]byte("imported pw"), 4)
	if err != nil {
		t.Fatal(err)
	}
	// Generated once with Go's bcrypt (cost 4, "$2a$"), prefix changed to
	// "$2b$" as passlib writes it; bcrypt treats the variants alike.
	const literal2b = "$2b$04$k3V27FIFtMof3WxmA7CQ6uyhez1qK1thHy7XDL.k8Ms.3BjauedCi"
	literal2y := "$2y$" + literal2b[4:]
	literal2a := "$2a$" + literal2b[4:]

	tests := []struct {
		name, hash, pw   string
		want             Params
		wantOK, wantRehs bool
	}{
		// Output of the reference implementation (phc-winner-argon2):
		// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
		{"reference argon2 CLI", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "password",
			Params{Memory: 65536, Time: 2, Threads: 4, SaltLen: 8, KeyLen: 32}, true, false},
		{"reference argon2 CLI, rehash", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "password",
			OWASP, true, true},
		{"reference argon2 CLI, wrong pw", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "password\x00",
			OWASP, false, false},
		{"fixed salt IDKey", fixed, "vector pw", fast, true, false},
		{"fixed salt IDKey, wrong pw", fixed, "vector pX", fast, false, false},
		{"fixed salt IDKey, other want", fixed, "vector pw", OWASP, true, true},
		{"fixed salt IDKey, other salt len wanted", fixed, "vector pw", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32}, true, true},
		{"bcrypt cost 4", string(cost4), "imported pw", OWASP, true, true},
		{"bcrypt cost 4, wrong pw", string(cost4), "imported pX", OWASP, false, false},
		{"bcrypt literal $2b$", literal2b, "imported from passlib", OWASP, true, true},
		{"bcrypt literal $2y$", literal2y, "imported from passlib", OWASP, true, true},
		{"bcrypt literal $2a$", literal2a, "imported from passlib", OWASP, true, true},
		{"bcrypt literal, wrong pw", literal2b, "imported from passlib!", OWASP, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := Verify(tt.hash, tt.pw, tt.want)
			if ok != tt.wantOK || rehash != tt.wantRehs || err != nil {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.wantOK, tt.wantRehs)
			}
		})
	}
}

func TestRehashOnParams(t *testing.T) {
	small := Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	tests := []struct {
		name       string
		hashWith   Params
		want       Params
		wantRehash bool
	}{
		{"m=8192 vs OWASP", small, OWASP, true},
		{"OWASP vs OWASP", OWASP, OWASP, false},
		{"OWASP vs m=8192", OWASP, small, true},
		{"other key length", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, fast, true},
		{"other salt length", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 32}, fast, true},
		{"other threads", Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, fast, true},
		{"other time", Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, fast, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Hash("pw", tt.hashWith)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := Verify(h, "pw", tt.want)
			if !ok || rehash != tt.wantRehash || err != nil {
				t.Fatalf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.wantRehash)
			}
			// A wrong password never asks for a rehash.
			if ok, rehash, err := Verify(h, "wrong", tt.want); ok || rehash || err != nil {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	good, err := Hash("pw", fast)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(good, "$")
	head, salt, key := good[:strings.LastIndex(good[:i], "$")], good[strings.LastIndex(good[:i], "$")+1:i], good[i+1:]
	if head != "$argon2id$v=19$m=64,t=1,p=1" {
		t.Fatalf("unexpected head %q", head)
	}
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	b := func(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	if err != nil {
		t.Fatal(err)
	}
	bcs := string(bc)

	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"unknown scheme", "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
		{"plain text", "hunter2"},
		{"argon2i", strings.Replace(good, "$argon2id$", "$argon2i$", 1)},
		{"argon2d", strings.Replace(good, "$argon2id$", "$argon2d$", 1)},
		{"upper-case variant", strings.Replace(good, "$argon2id$", "$ARGON2ID$", 1)},
		{"version 16", strings.Replace(good, "$v=19$", "$v=16$", 1)},
		{"no version", strings.Replace(good, "$v=19$", "$", 1)},
		{"truncated", good[:len(good)-30]}, // the key left is under 16 bytes whatever its bits
		{"truncated to params", head},
		{"truncated to prefix", "$argon2id$v=19$"},
		{"missing key", head + "$" + salt},
		{"empty key", head + "$" + salt + "$"},
		{"extra field", good + "$" + key},
		{"trailing dollar", good + "$"},
		{"bad base64 salt", head + "$" + salt[:len(salt)-1] + "!$" + key},
		{"bad base64 key", head + "$" + salt + "$" + key[:len(key)-1] + "*"},
		{"padded base64", head + "$" + salt + "==$" + key},
		{"url-safe base64", head + "$" + strings.Repeat("_", 22) + "$" + key},
		{"non-canonical base64 trailing bits", head + "$" + salt[:len(salt)-1] + "B$" + key},
		{"newline in key", head + "$" + salt + "$" + key[:10] + "\n" + key[10:]},
		{"huge m", with("m=1048577,t=1,p=1")},
		{"huge m overflow", with("m=99999999999,t=1,p=1")},
		{"m below 8p", with("m=16,t=1,p=4")},
		{"t=0", with("m=64,t=0,p=1")},
		{"t=17", with("m=64,t=17,p=1")},
		{"p=0", with("m=64,t=1,p=0")},
		{"p=17", with("m=256,t=1,p=17")},
		{"p=256", with("m=4096,t=1,p=256")},
		{"params out of order", with("t=1,m=64,p=1")},
		{"missing param", with("m=64,t=1")},
		{"extra param", with("m=64,t=1,p=1,k=2")},
		{"keyid/data params", with("m=64,t=1,p=1,data=YWJj")},
		{"leading zero", with("m=064,t=1,p=1")},
		{"sign", with("m=+64,t=1,p=1")},
		{"spaces", with("m=64, t=1, p=1")},
		{"empty number", with("m=,t=1,p=1")},
		{"salt too short", head + "$" + b(7) + "$" + key},
		{"salt too long", head + "$" + b(65) + "$" + key},
		{"key too short", head + "$" + salt + "$" + b(15)},
		{"key too long", head + "$" + salt + "$" + b(129)},
		{"huge row", head + "$" + salt + "$" + strings.Repeat("A", 100000)},
		{"bcrypt unknown minor", "$2x$" + bcs[4:]},
		{"bcrypt no minor", "$2$" + bcs[4:]},
		{"bcrypt truncated", bcs[:59]},
		{"bcrypt trailing garbage", bcs + "x"},
		{"bcrypt bad char", bcs[:59] + "!"},
		{"bcrypt cost 03", bcs[:4] + "03" + bcs[6:]},
		{"bcrypt cost 31", bcs[:4] + "31" + bcs[6:]},
		{"bcrypt cost 17", bcs[:4] + "17" + bcs[6:]},
		{"bcrypt non-digit cost", bcs[:4] + "1a" + bcs[6:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := Verify(tt.hash, "pw", fast)
			if ok || rehash || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v, %v; want false, false, ErrMalformedHash", ok, rehash, err)
			}
			// Errors must not leak the hash or the password.
			if tt.hash != "" && strings.Contains(err.Error(), tt.hash) {
				t.Fatalf("error %q contains the hash", err)
			}
		})
	}
}

// TestBounds checks that the limits themselves parse (without running the
// derivation, which at the limits would be slow).
func TestBounds(t *testing.T) {
	b := func(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name, hash string
		want       Params
	}{
		{"max", "$argon2id$v=19$m=1048576,t=16,p=16$" + b(64) + "$" + b(128),
			Params{Memory: 1048576, Time: 16, Threads: 16, SaltLen: 64, KeyLen: 128}},
		{"min", "$argon2id$v=19$m=8,t=1,p=1$" + b(8) + "$" + b(16),
			Params{Memory: 8, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"m=8p", "$argon2id$v=19$m=128,t=1,p=16$" + b(16) + "$" + b(32),
			Params{Memory: 128, Time: 1, Threads: 16, SaltLen: 16, KeyLen: 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _, err := parseArgon2id(tt.hash)
			if err != nil || p != tt.want {
				t.Fatalf("parseArgon2id = %+v, %v; want %+v, nil", p, err, tt.want)
			}
		})
	}
	if !validBcrypt("$2b$16$" + strings.Repeat("a", 53)) {
		t.Fatal("bcrypt cost 16 rejected")
	}
}

func TestBcryptLongPassword(t *testing.T) {
	long := strings.Repeat("0123456789", 8) // 80 bytes
	h, err := bcrypt.GenerateFromPassword([]byte(long[:72]), 4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		pw     string
		wantOK bool
	}{
		{"first 72 bytes", long[:72], true},
		{"73 bytes", long[:73], false},
		{"80 bytes sharing the first 72", long, false},
		{"71 bytes", long[:71], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := Verify(string(h), tt.pw, OWASP)
			if ok != tt.wantOK || err != nil {
				t.Fatalf("Verify = %v, %v; want %v, nil", ok, err, tt.wantOK)
			}
		})
	}
}

func TestVerifyHugePassword(t *testing.T) {
	huge := strings.Repeat("a", MaxPasswordLen+1)
	// A hash of the first MaxPasswordLen bytes must not match either.
	h, err := Hash(huge[:MaxPasswordLen], fast)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := Verify(h, huge, fast)
	if ok || rehash || err != nil {
		t.Fatalf("Verify(huge) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	// The hash is still checked first.
	if _, _, err := Verify("", huge, fast); !errors.Is(err, ErrMalformedHash) {
		t.Fatalf("Verify(empty hash, huge) err = %v; want ErrMalformedHash", err)
	}
}

// blocker occupies a worker of pool until release is called.
func blocker(t *testing.T, pool *Pool) (release func(), result <-chan error) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- pool.do(context.Background(), func() {
			close(started)
			<-unblock
		})
	}()
	<-started
	var once sync.Once
	return func() { once.Do(func() { close(unblock) }) }, res
}

// waitQueued waits until n jobs are waiting in pool's queue.
func waitQueued(t *testing.T, pool *Pool, n int) {
	t.Helper()
	for len(pool.jobs) != n {
		runtime.Gosched()
	}
}

// returnsWhileBlocked runs f and fails if it has not returned after a long
// time. It is a guard against hanging, not a timing assertion: f is expected
// to return while a worker is still blocked.
func returnsWhileBlocked(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("call blocked while the worker was busy")
		return nil
	}
}

func TestPoolRoundTrip(t *testing.T) {
	pool := NewPool(2, 0, fast)
	defer pool.Close()
	ctx := context.Background()
	h, err := pool.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, hash, pw string
		wantOK         bool
		wantErr        error
	}{
		{"match", h, "pw", true, nil},
		{"mismatch", h, "px", false, nil},
		{"malformed", "$argon2i$", "pw", false, ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := pool.Verify(ctx, tt.hash, tt.pw)
			if ok != tt.wantOK || rehash || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, %v, %v; want %v, false, %v", ok, rehash, err, tt.wantOK, tt.wantErr)
			}
		})
	}
	if _, err := pool.Hash(ctx, strings.Repeat("x", MaxPasswordLen+1)); !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("Hash(huge) err = %v; want ErrPasswordTooLong", err)
	}
}

func TestPoolDefaults(t *testing.T) {
	pool := NewPool(0, 0, fast)
	defer pool.Close()
	workers := max(1, runtime.NumCPU()/2)
	if cap(pool.jobs) != QueuePerWorker*workers {
		t.Fatalf("queue = %d; want %d", cap(pool.jobs), QueuePerWorker*workers)
	}
}

func TestPoolBusy(t *testing.T) {
	pool := NewPool(1, 1, fast)
	defer pool.Close()
	release, blocked := blocker(t, pool)
	defer release()

	// Fill the queue with one job.
	queued := make(chan error, 1)
	var queuedHash string
	go func() {
		h, err := pool.Hash(context.Background(), "queued")
		queuedHash = h
		queued <- err
	}()
	waitQueued(t, pool, 1)

	ctx := context.Background()
	calls := []struct {
		name string
		f    func() error
	}{
		{"Hash", func() error { _, err := pool.Hash(ctx, "pw"); return err }},
		{"Verify", func() error { _, _, err := pool.Verify(ctx, pool.dummy, "pw"); return err }},
		{"VerifyDummy", func() error { return pool.VerifyDummy(ctx, "pw") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := returnsWhileBlocked(t, c.f); !errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v; want ErrBusy", err)
			}
		})
	}
	select {
	case err := <-blocked:
		t.Fatalf("blocked job returned (%v) before release", err)
	default:
	}

	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("queued Hash: %v", err)
	}
	if ok, _, err := Verify(queuedHash, "queued", fast); !ok || err != nil {
		t.Fatalf("queued hash does not verify: %v, %v", ok, err)
	}
	// Room again.
	if _, err := pool.Hash(ctx, "pw"); err != nil {
		t.Fatalf("Hash after release: %v", err)
	}
}

func TestPoolCancelWhileQueued(t *testing.T) {
	pool := NewPool(1, 2, fast)
	release, blocked := blocker(t, pool)
	defer release()

	// Two jobs wait in the queue behind the blocked worker: one that
	// records whether it ran, and a public Hash.
	ctx, cancel := context.WithCancel(context.Background())
	var ran bool // written by the worker only if the job runs
	doErr := make(chan error, 1)
	go func() { doErr <- pool.do(ctx, func() { ran = true }) }()
	waitQueued(t, pool, 1)
	hashErr := make(chan error, 1)
	go func() { _, err := pool.Hash(ctx, "pw"); hashErr <- err }()
	waitQueued(t, pool, 2)

	cancel()
	// The callers stop waiting while the worker is still blocked.
	for name, c := range map[string]chan error{"do": doErr, "Hash": hashErr} {
		if err := returnsWhileBlocked(t, func() error { return <-c }); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s err = %v; want context.Canceled", name, err)
		}
	}
	select {
	case err := <-blocked:
		t.Fatalf("blocked job returned (%v) before release", err)
	default:
	}

	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	pool.Close() // waits for the worker to drain the queue
	if ran {
		t.Fatal("job whose ctx ended while queued was run")
	}
}

// A job no worker takes within MaxWait is refused with ErrBusy, and skipped
// when a worker comes to it.
func TestPoolMaxWait(t *testing.T) {
	pool := NewPool(1, 2, fast)
	pool.maxWait = 50 * time.Millisecond
	release, blocked := blocker(t, pool)
	defer release()

	var ran bool // written by the worker only if the job runs
	doErr := make(chan error, 1)
	go func() { doErr <- pool.do(context.Background(), func() { ran = true }) }()
	if err := returnsWhileBlocked(t, func() error { return <-doErr }); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v; want ErrBusy", err)
	}
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	pool.Close() // waits for the worker to drain the queue
	if ran {
		t.Fatal("a job refused after MaxWait was run")
	}
	// A job a worker has started is waited for, however long it takes.
	slow := NewPool(1, 1, fast)
	defer slow.Close()
	slow.maxWait = 250 * time.Millisecond // an idle worker takes the job long before
	if err := slow.do(context.Background(), func() { time.Sleep(500 * time.Millisecond) }); err != nil {
		t.Fatalf("a started job: err = %v", err)
	}
}

func TestPoolCancelledBeforeQueueing(t *testing.T) {
	pool := NewPool(1, 1, fast)
	defer pool.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pool.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash err = %v; want context.Canceled", err)
	}
	if _, _, err := pool.Verify(ctx, pool.dummy, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify err = %v; want context.Canceled", err)
	}
	if err := pool.VerifyDummy(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("VerifyDummy err = %v; want context.Canceled", err)
	}
}

func TestPoolVerifyDummy(t *testing.T) {
	pool := NewPool(1, 1, fast)
	defer pool.Close()
	if !strings.HasPrefix(pool.dummy, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("dummy hash %q not made with the pool's params", pool.dummy)
	}
	var calls []string
	pool.verify = func(hash, pw string, want Params) (bool, bool, error) {
		calls = append(calls, hash)
		ok, rehash, err := Verify(hash, pw, want)
		if ok || rehash || err != nil {
			t.Errorf("dummy Verify = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
		return ok, rehash, err
	}
	for _, pw := range []string{"", "pw", "some much longer password than usual"} {
		if err := pool.VerifyDummy(context.Background(), pw); err != nil {
			t.Fatalf("VerifyDummy(%q) = %v", pw, err)
		}
	}
	if len(calls) != 3 || calls[0] != pool.dummy {
		t.Fatalf("verify calls = %q; want 3 against the dummy hash", calls)
	}
}

func TestPoolClose(t *testing.T) {
	before := runtime.NumGoroutine()
	pool := NewPool(4, 8, fast)
	if n := runtime.NumGoroutine(); n < before+4 {
		t.Fatalf("goroutines = %d after NewPool(4); want >= %d", n, before+4)
	}
	// Work done concurrently before Close.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := pool.Hash(context.Background(), fmt.Sprint("pw", i)); err != nil && !errors.Is(err, ErrBusy) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pool.Close()
	pool.Close() // idempotent

	// Workers have called wg.Done; give them a moment to finish exiting.
	for i := 0; runtime.NumGoroutine() > before && i < 1000; i++ {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines = %d after Close; want <= %d", n, before)
	}

	ctx := context.Background()
	if _, err := pool.Hash(ctx, "pw"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Hash after Close = %v; want ErrClosed", err)
	}
	if _, _, err := pool.Verify(ctx, pool.dummy, "pw"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Verify after Close = %v; want ErrClosed", err)
	}
	if err := pool.VerifyDummy(ctx, "pw"); !errors.Is(err, ErrClosed) {
		t.Fatalf("VerifyDummy after Close = %v; want ErrClosed", err)
	}
}

func TestCloseRunsQueuedJobs(t *testing.T) {
	pool := NewPool(1, 2, fast)
	release, blocked := blocker(t, pool)
	results := make(chan error, 2)
	for range 2 {
		go func() { _, err := pool.Hash(context.Background(), "pw"); results <- err }()
	}
	waitQueued(t, pool, 2)
	closed := make(chan struct{})
	go func() { pool.Close(); close(closed) }()
	release()
	<-closed
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("queued job after Close: %v", err)
		}
	}
}

func BenchmarkHashOWASP(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", OWASP); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyOWASP(b *testing.B) {
	h, err := Hash("correct horse battery staple", OWASP)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := Verify(h, "correct horse battery staple", OWASP); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
