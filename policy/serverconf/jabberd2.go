package serverconf

func readJabberd2(r *reader, show string, data []byte, version string) (*Config, error) { return nil, nil }
