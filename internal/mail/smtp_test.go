package mail_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/internal/mail"
)

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url        string
		want       mail.SMTPServer
		wantString string
		wantErr    string // part of the error
	}{
		{url: "smtp://mail.example.com", want: mail.SMTPServer{Host: "mail.example.com", Port: 587, TLS: mail.StartTLS},
			wantString: "smtp://mail.example.com:587"},
		{url: "smtp://user:pa%3Ass%40word@mail.example.com:2525/", want: mail.SMTPServer{Host: "mail.example.com", Port: 2525, TLS: mail.StartTLS, Username: "user", Password: "pa:ss@word"},
			wantString: "smtp://user:xxxxx@mail.example.com:2525"},
		{url: "SMTP://mail.example.com?starttls=required", want: mail.SMTPServer{Host: "mail.example.com", Port: 587, TLS: mail.StartTLS},
			wantString: "smtp://mail.example.com:587"},
		{url: "smtp://127.0.0.1:25?starttls=off", want: mail.SMTPServer{Host: "127.0.0.1", Port: 25, TLS: mail.NoTLS},
			wantString: "smtp://127.0.0.1:25?starttls=off"},
		{url: "smtp://[::1]:25?starttls=opportunistic", want: mail.SMTPServer{Host: "::1", Port: 25, TLS: mail.OpportunisticTLS},
			wantString: "smtp://[::1]:25?starttls=opportunistic"},
		{url: "smtps://apikey:secret@smtp.example.com", want: mail.SMTPServer{Host: "smtp.example.com", Port: 465, TLS: mail.ImplicitTLS, Username: "apikey", Password: "secret"},
			wantString: "smtps://apikey:xxxxx@smtp.example.com:465"},
		{url: "http://mail.example.com", wantErr: "the scheme must be smtp://"},
		{url: "mail.example.com:587", wantErr: "the scheme must be smtp://"},
		{url: "smtp://", wantErr: "no host"},
		{url: "smtp:mail.example.com", wantErr: "no host"},
		{url: "smtp://mail.example.com:0", wantErr: "the port must be"},
		{url: "smtp://mail.example.com:99999", wantErr: "the port must be"},
		{url: "smtp://mail.example.com/relay", wantErr: "no path"},
		{url: "smtp://mail.example.com#x", wantErr: "no path or fragment"},
		{url: "smtp://mail.example.com?starttls=maybe", wantErr: "starttls must be required, opportunistic or off"},
		{url: "smtp://mail.example.com?starttls=off&starttls=off", wantErr: "more than once"},
		{url: "smtp://mail.example.com?tls=off", wantErr: `unknown parameter "tls"`},
		{url: "smtps://mail.example.com?starttls=off", wantErr: "starttls does not apply"},
		{url: "smtp://user@mail.example.com", wantErr: "both a user and a password"},
		{url: "smtp://:hunter2-secret@mail.example.com", wantErr: "both a user and a password"},
		{url: "smtp://user:hunter2-secret@mail.example.com:port", wantErr: "not a URL"},
		{url: "smtp://user:hunter2-secret@mail.example.com:587?starttls=sometimes", wantErr: "starttls must be"},
		{url: "smtp://user:hunter2-secret@mail.example.com:587/x", wantErr: "no path"},
		{url: "smtp://user:hunter2-secret@mail.example.com\x7f", wantErr: "not a URL"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			got, err := mail.ParseSMTPURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error %q tells the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if s := got.String(); s != tt.wantString {
				t.Errorf("String() = %q, want %q", s, tt.wantString)
			}
			if got.Password != "" && strings.Contains(fmt.Sprint(got), got.Password) {
				t.Errorf("%v shows the password", got)
			}
		})
	}
}
