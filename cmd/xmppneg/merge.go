package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"xmppneg/policy/report"
	"xmppneg/policy/safefile"
	"xmppneg/scenarios"
)

func init() {
	register(&command{
		name:    "merge",
		summary: "Combine the JSON reports of the shards of one run (run -o json --shard I/N, or TEST_SHARD_INDEX/TEST_TOTAL_SHARDS) into its report, checking that every shard is there once.",
		usage:   "REPORT.json|DIR... [-o " + mergeWriters.Usage() + "] [--out DIR] [-v]",
		example: "xmppneg merge shard-1 shard-2 shard-3 shard-4 -o junit --out merged/\nxmppneg merge shard-*/report.json",
		setup:   setupMerge,
	})
}

// mergeWriters are the suite report's but JSON Lines, whose negotiations
// go out as they end: a merged report has none left to stream.
var mergeWriters = scenarios.Writers.Without(report.JSONL)

func setupMerge(fs *flag.FlagSet, e *env) func([]string) int {
	out := outputFlag(fs, mergeWriters.Formats()...)
	outDir := fs.String("out", "", "`directory` for the merged report file")
	verbose := fs.Bool("v", false, "list every negotiation")
	return func(args []string) int {
		if len(args) == 0 {
			e.errorf("give the shards' JSON reports, or the directories of 'run -o json --out DIR'")
			return exitUsage
		}
		var shards []*scenarios.ShardReport
		for _, a := range args {
			s, err := scenarios.ReadShard(a)
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			shards = append(shards, s)
		}
		rep, err := scenarios.Merge(shards)
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		w := io.Writer(e.stdout)
		var report *safefile.File // nil once committed
		if *outDir != "" {
			if err := writable(*outDir); err != nil {
				e.errorf("--out %s: %v", *outDir, err)
				return exitUsage
			}
			name := filepath.Join(*outDir, "report."+reportExt(*out))
			f, err := safefile.Create(name, 0o644)
			if err != nil {
				e.errorf("--out: %v", err)
				return exitUsage
			}
			defer f.Discard()
			w, report = f, f
			defer func() {
				if report == nil {
					fmt.Fprintf(e.stdout, "wrote %s: %d shards, %s\n", name, len(shards), scenarios.Counted(len(rep.Negotiations), "negotiation"))
				}
			}()
		}
		// The merged report links only to transcripts that exist: copied
		// next to it with --out, else the shards' own files.
		if err := scenarios.CopyTranscripts(rep, *outDir); err != nil {
			e.errorf("copying the shards' transcripts: %v", err)
			return exitFail
		}
		style := e.style(*verbose)
		if *outDir != "" {
			style.Color = false
		}
		if err := mergeWriters.Write(w, *out, rep, style); err != nil {
			e.errorf("writing the report: %v", err)
			return exitFail
		}
		if report != nil {
			if err := report.Commit(); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
			report = nil
		}
		if !rep.Passed() {
			return exitFail
		}
		return exitOK
	}
}
