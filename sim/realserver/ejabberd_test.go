package realserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEjabberdInterop negotiates with a real ejabberd under every setting
// of the sweep, against each interop partner, in both directions, and
// checks every outcome against the oracle for the mapped settings.
func TestEjabberdInterop(t *testing.T) {
	requireInstalled(t, "ejabberd")
	outs, err := RunInterop(context.Background(), "ejabberd", EjabberdSettingsSweep(), InteropPartners(), 2*time.Second)
	require.NoError(t, err)
	require.Len(t, outs, len(EjabberdSettingsSweep())*len(InteropPartners())*2)
	checkInterop(t, outs)
}
