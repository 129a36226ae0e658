package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"xmppneg/sim/realserver"
)

// interopSuites run against real servers rather than in-process endpoints.
var interopSuites = []string{"interop-prosody", "interop-ejabberd"}

func isInterop(name string) bool {
	for _, s := range interopSuites {
		if s == name {
			return true
		}
	}
	return false
}

func runInterop(e *env, args []string, format, outDir string) int {
	if len(args) != 1 {
		e.errorf("run %s on its own, not with other suites", args[0])
		return exitUsage
	}
	if format != "table" && format != "json" {
		e.errorf("%s reports as table or json", args[0])
		return exitUsage
	}
	server := strings.TrimPrefix(args[0], "interop-")
	sweep := map[string][]realserver.Setting{"prosody": realserver.ProsodySettingsSweep(), "ejabberd": realserver.EjabberdSettingsSweep()}[server]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	outs, err := realserver.RunInterop(ctx, server, sweep, realserver.InteropPartners(), 2*time.Second)
	if err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	agree := 0
	for _, o := range outs {
		if o.Agree {
			agree++
		}
	}
	w := e.stdout
	if outDir != "" {
		if err := os.MkdirAll(filepath.Join(outDir, "transcripts"), 0o755); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		ext := map[string]string{"table": "txt", "json": "json"}[format]
		f, err := os.Create(filepath.Join(outDir, "report."+ext))
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		defer f.Close()
		w = f
		for i, o := range outs {
			name := filepath.Join(outDir, "transcripts", fmt.Sprintf("%03d.txt", i+1))
			text := fmt.Sprintf("%s\n"+server+" %s, partner %s\nobserved %s, predicted %s\n\n%s", o.Result.Explain(), o.ServerSettings, o.Partner, o.Observed(), o.Predicted(), o.Result.TranscriptText())
			if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
				e.errorf("%v", err)
				return exitFail
			}
		}
	}
	if format == "json" {
		writeJSON(w, map[string]any{"suite": args[0], "cases": outs, "agree": agree, "total": len(outs), "duration_ms": time.Since(start).Milliseconds()})
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "\t%s settings\tharness partner\tdirection\tobserved\tpredicted\n", server)
		for _, o := range outs {
			status := "AGREE"
			if !o.Agree {
				status = "DIFFER"
			}
			dir := "harness→" + server
			if o.ServerInitiates {
				dir = server + "→harness"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", status, o.ServerSettings, o.Partner.Short()+",cert="+string(o.Partner.Cert), dir, o.Observed(), o.Predicted())
		}
		tw.Flush()
		fmt.Fprintf(w, "\n%d of %d negotiations with a real %s agree with the oracle (%.1f s)\n", agree, len(outs), server, time.Since(start).Seconds())
		fmt.Fprintf(w, "Summary: %d passed, %d failed\n", agree, len(outs)-agree)
	}
	if outDir != "" {
		fmt.Fprintf(e.stdout, "wrote %s\nSummary: %d passed, %d failed\n", filepath.Join(outDir, "report."+map[string]string{"table": "txt", "json": "json"}[format]), agree, len(outs)-agree)
	}
	if agree != len(outs) {
		return exitFail
	}
	return exitOK
}
