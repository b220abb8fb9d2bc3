package mail

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// Files is the sender of a machine without a mail server: it writes each
// message, as it would be sent, to an RFC 5322 file (.eml, which mail
// clients open) in Dir, private to rolegate's user, and logs the file's
// path (never the body). Its parts are 8bit, not quoted-printable, so
// that the links in the file can be read, and copied, as they are. Another attempt at a message writes the same
// file again.
type Files struct {
	// Dir is where the files go, made 0700 when missing.
	Dir string
	// From is the sender address of the messages.
	From string
	// Logger is told each file's path; nil discards.
	Logger *slog.Logger
}

// Send writes m to Dir/<queued at>-<id>.eml (0600), whole or not at all.
func (f *Files) Send(ctx context.Context, m Outgoing) error {
	msg, err := compose(f.From, m, true)
	if err != nil {
		return err
	}
	if err := privateDir(f.Dir); err != nil {
		return fmt.Errorf("mail: the mail directory: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".mail-*") // 0600
	if err != nil {
		return fmt.Errorf("mail: writing a file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := msg.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: writing a file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: writing a file: %w", err)
	}
	path := filepath.Join(f.Dir, m.Date.UTC().Format("20060102T150405Z")+"-"+strconv.FormatInt(m.ID, 10)+".eml")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mail: writing a file: %w", err)
	}
	if f.Logger != nil {
		f.Logger.InfoContext(ctx, "mail written to a file", "path", path, "to", m.To, "subject", m.Subject)
	}
	return nil
}

// privateDir makes dir, or closes it to other users should it be open.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(dir, fi.Mode().Perm()&0o700)
	}
	return nil
}
