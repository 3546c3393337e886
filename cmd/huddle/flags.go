package main

import (
	"encoding/json"
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

// parse reads the command line, after a config file named by --config (or
// HUDDLE_CONFIG) when there is one. Precedence: flags, then environment,
// then the file, then defaults. The file is a JSON object whose keys are
// flag names: {"http-addr": ":8080", "api-keys": "k:s", "turn": "off"}.
func (f envFlags) parse(args []string) error {
	path := os.Getenv("HUDDLE_CONFIG")
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		switch {
		case hasVal:
			path = val
		case i+1 < len(args):
			path = args[i+1]
		}
	}
	f.FlagSet.String("config", path, "JSON file of flag values (env HUDDLE_CONFIG)")
	if path != "" {
		if err := f.loadConfig(path); err != nil {
			return err
		}
	}
	return f.FlagSet.Parse(args)
}

func (f envFlags) loadConfig(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for name, v := range values {
		if f.FlagSet.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("config %s: unknown setting %q", path, name)
		}
		if _, set := os.LookupEnv(envName(name)); set {
			continue // the environment wins over the file
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64, bool:
			s = fmt.Sprint(v)
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		default:
			return fmt.Errorf("config %s: %q must be a string, number, boolean or list", path, name)
		}
		if err := f.FlagSet.Set(name, s); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, name, err)
		}
	}
	return nil
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
