package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kinesis-network/portal/api/client"
)

// config is what login saves.
type config struct {
	APIURL string `json:"api_url"`
	Token  string `json:"token"`
	CAFile string `json:"ca_file,omitempty"`
}

// configPath returns the config file: --config, $KCTL_CONFIG, else <user config dir>/kctl/config.json.
func (k *kctl) configPath() (string, error) {
	if k.g.config != "" {
		return k.g.config, nil
	}
	if p := os.Getenv("KCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w (set KCTL_CONFIG)", err)
	}
	return filepath.Join(dir, "kctl", "config.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func (k *kctl) loadConfig() (config, error) {
	var c config
	p, err := k.configPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", p, err)
	}
	return c, nil
}

// saveConfig writes c with mode 0600 (the token is a secret), atomically.
func (k *kctl) saveConfig(c config) (string, error) {
	p, err := k.configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(append(b, '\n'))
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	return p, nil
}

// settings resolves the connection settings: flags, then environment, then the config file.
func (k *kctl) settings() (config, error) {
	c, err := k.loadConfig()
	if err != nil {
		return c, err
	}
	pick := func(flag, env string, file *string) {
		if flag != "" {
			*file = flag
		} else if v := os.Getenv(env); v != "" {
			*file = v
		}
	}
	pick(k.g.api, "KCTL_API", &c.APIURL)
	pick(k.g.token, "KCTL_TOKEN", &c.Token)
	pick(k.g.ca, "KCTL_CA", &c.CAFile)
	return c, nil
}

// client returns an API client from the resolved settings.
func (k *kctl) client() (*client.Client, error) {
	c, err := k.settings()
	if err != nil {
		return nil, err
	}
	if c.APIURL == "" || c.Token == "" {
		return nil, errors.New("not logged in: run 'kctl login --api URL --token TOKEN [--ca FILE]' or set KCTL_API and KCTL_TOKEN")
	}
	cl, err := client.New(c.APIURL, c.Token, c.CAFile)
	if err != nil {
		return nil, err
	}
	cl.UserAgent = "kctl/" + version()
	return cl, nil
}

// devJSON is the part of portal dev's dev.json that login reads.
type devJSON struct {
	APIURL string `json:"api_url"`
	Token  string `json:"token"`
	CAFile string `json:"ca_file"`
}

func (k *kctl) login(args []string) error {
	fs := k.newFlagSet("login")
	devPath := fs.String("dev-json", "", "read api_url, token and ca_file from portal dev's dev.json")
	noVerify := fs.Bool("no-verify", false, "save without calling whoami")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var c config
	if *devPath != "" {
		b, err := os.ReadFile(*devPath)
		if err != nil {
			return fmt.Errorf("read dev.json: %w", err)
		}
		var d devJSON
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("dev.json %s: %w", *devPath, err)
		}
		c = config{APIURL: d.APIURL, Token: d.Token, CAFile: d.CAFile}
		if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
			c.CAFile = filepath.Join(filepath.Dir(*devPath), c.CAFile) // relative to the state directory
		}
	}
	if k.g.api != "" {
		c.APIURL = k.g.api
	}
	if k.g.token != "" {
		c.Token = k.g.token
	}
	if k.g.ca != "" {
		c.CAFile = k.g.ca
	}
	if c.APIURL == "" || c.Token == "" {
		return usagef("login needs --api and --token (or --dev-json PATH)")
	}
	if c.CAFile != "" {
		abs, err := filepath.Abs(c.CAFile)
		if err != nil {
			return err
		}
		c.CAFile = abs
	}
	cl, err := client.New(c.APIURL, c.Token, c.CAFile)
	if err != nil {
		return err
	}
	who := "(not verified)"
	if !*noVerify {
		w, err := cl.Whoami(k.ctx)
		if err != nil {
			return fmt.Errorf("login check failed, nothing saved: %w", err)
		}
		who = fmt.Sprintf("tenant %s, token %s", w.TenantID, w.TokenID)
		if w.Admin {
			who += ", admin"
		}
	}
	p, err := k.saveConfig(c)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(map[string]string{"config": p, "api_url": c.APIURL})
	}
	fmt.Fprintf(k.stdout, "Logged in to %s as %s.\nSaved to %s.\n", cl.BaseURL(), who, p)
	return nil
}
