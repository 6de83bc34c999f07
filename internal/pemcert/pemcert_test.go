package pemcert

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/testcerts"
)

func TestParse(t *testing.T) {
	ca := testcerts.MustCA(t, "ca")
	leaf := ca.MustLeaf(t, "leaf", "127.0.0.1")
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	for _, tc := range []struct {
		name    string
		data    []byte
		n       int
		wantErr string
	}{
		{"chain", leaf.ChainPEM(), 2, ""},
		{"key and chain", append(leaf.KeyPEM(), leaf.ChainPEM()...), 2, ""},
		{"key alone", leaf.KeyPEM(), 0, ""},
		{"not PEM", []byte("hello"), 0, ""},
		{"a bad certificate among good ones", append(leaf.ChainPEM(), bad...), 0, "bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := Parse(tc.data)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || len(certs) != tc.n):
				t.Fatalf("%d certificates, %v; want %d", len(certs), err, tc.n)
			}
		})
	}
	if certs, _ := Parse(leaf.ChainPEM()); !Pool(certs).Equal(Pool(certs)) || Pool(certs).Equal(Pool(certs[:1])) {
		t.Error("Pool")
	}
}
