package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Bad arguments to federate are usage errors that name what is wrong
// and what is accepted, before any server starts.
func TestFederateUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"federate", "prosody"}, "give two kinds of server"},
		{[]string{"federate", "prosody", "openfire"}, `unknown server "openfire": accepted values are prosody`},
		{[]string{"federate", "prosody", "ejabberd", "--b-set", "s2s_use_starttls=maybe"}, "--b-set: s2s_use_starttls: invalid value \"maybe\": accepted values are false, optional, required"},
		{[]string{"federate", "prosody", "ejabberd", "--a-set", "nope=1"}, `--a-set: prosody has no knob "nope"`},
		{[]string{"federate", "prosody", "ejabberd", "--a-set", "dialback"}, `--a-set "dialback" is not KNOB=VALUE`},
		{[]string{"federate", "prosody", "ejabberd", "--a-set", "dialback=false", "--a-set", "dialback=true"}, "--a-set: dialback given twice"},
		{[]string{"federate", "prosody", "ejabberd", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"federate", "--matrix", "openfire"}, `unknown server "openfire"`},
		{[]string{"federate", "--matrix", "-j", "0"}, "-j must be between 1 and 64"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.says, "%v", tc.args)
	}
}
