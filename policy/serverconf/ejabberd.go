package serverconf

func readEjabberd(r *reader, show string, data []byte, version string) (*Config, error) { return nil, nil }
