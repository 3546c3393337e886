package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// envFlags is a FlagSet whose defaults come from HUDDLE_* variables, so
// that a container or a systemd unit can configure huddle without flags.
type envFlags struct {
	*flag.FlagSet
}

func newEnvFlags(name string) envFlags {
	return envFlags{flag.NewFlagSet(name, flag.ContinueOnError)}
}

func envName(flagName string) string {
	return "HUDDLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f envFlags) String(name, def, usage string) *string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	return f.FlagSet.String(name, def, fmt.Sprintf("%s (env %s)", usage, envName(name)))
}

// list splits a comma-separated value.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (f envFlags) Int(name string, def int, usage string) *int {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		}
	}
	return f.FlagSet.Int(name, def, fmt.Sprintf("%s (env %s)", usage, envName(name)))
}

func (f envFlags) Duration(name string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, fmt.Sprintf("%s (env %s)", usage, envName(name)))
}
